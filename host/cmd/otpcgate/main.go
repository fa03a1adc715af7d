// Command otpcgate is the gateway's one binary: it serves Google's
// Refundable One Time Payment Code v2 calls (serve) and carries the
// operator tools as further subcommands.
//
// Configuration comes from a JSON file (--config or OTPCGATE_CONFIG), then
// OTPCGATE_* environment variables, then flags; flags win. See
// internal/config and testdata/config.example.json.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/otpcgate/otpcgate/host/admin"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := execute(ctx, os.Args[1:], env{lookup: os.LookupEnv, stdout: os.Stdout, stderr: os.Stderr})
	stop()
	os.Exit(code)
}

// env is the process environment a command sees; tests substitute it.
type env struct {
	lookup         func(string) (string, bool)
	stdout, stderr io.Writer
}

// execute runs the command line and returns the exit code.
func execute(ctx context.Context, args []string, e env) int {
	root := newRootCmd(e)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintln(e.stderr, "otpcgate:", err)
	if asJSON, _ := cmd.Flags().GetBool("json"); asJSON {
		// A script that asked for JSON gets its failure as JSON too, on
		// stdout where it reads the answers.
		writeJSONError(e.stdout, err)
	}
	return 1
}

// cliError is a failure as --json prints it.
type cliError struct {
	Error string `json:"error"`
	// Next is the hint a human reads after "next:".
	Next string `json:"next,omitempty"`
	// Status is the admin API's HTTP status, when the API refused.
	Status int `json:"status,omitempty"`
}

func writeJSONError(w io.Writer, err error) {
	var out cliError
	var ae *admin.APIError
	if errors.As(err, &ae) {
		out = cliError{Error: ae.Msg, Next: ae.Hint, Status: ae.Status}
	} else {
		msg, next, _ := strings.Cut(err.Error(), "\n  next: ")
		out = cliError{Error: msg, Next: next}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(out)
}

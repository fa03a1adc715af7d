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
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
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
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(e.stderr, "otpcgate:", err)
		return 1
	}
	return 0
}

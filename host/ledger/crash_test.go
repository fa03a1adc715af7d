package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const crashEnv = "LEDGER_CRASH_CHILD_DB"

// crashChild commits requests from several goroutines forever and prints each
// request id once Do has returned, i.e. once it is reported durable.
func crashChild(path string) {
	ctx := context.Background()
	l, err := Open(ctx, path, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var out sync.Mutex
	for g := 0; g < 8; g++ {
		go func(g int) {
			for i := 0; ; i++ {
				id := fmt.Sprintf("c%d-%d", g, i)
				req := Request{PIAID: testPIAID, RequestID: id, Method: "generateReferenceNumber", Hash: hashOf(id)}
				_, _, err := l.Do(ctx, req, func(context.Context) (Outcome, error) {
					return Outcome{Body: []byte(id), Apply: func(tx *Tx) error {
						if err := tx.CreateCode(newCode(id)); err != nil {
							return err
						}
						return tx.ApplyKV(testMerchant, []KVChange{{Key: id, Value: []byte("1")}})
					}}, nil
				})
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(3)
				}
				out.Lock()
				os.Stdout.WriteString(id + "\n")
				out.Unlock()
			}
		}(g)
	}
	select {}
}

// TestCrashDurability kills a committing process with SIGKILL and checks
// that every commit it reported is in the database after reopening.
func TestCrashDurability(t *testing.T) {
	if path := os.Getenv(crashEnv); path != "" {
		crashChild(path)
		return
	}
	if testing.Short() {
		t.Skip("spawns a subprocess")
	}
	ctx := context.Background()
	// Prepare the merchant, then hand the file to the child.
	l, path := openTest(t, Options{})
	l.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashDurability$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill it mid-flight once it has committed a few hundred requests.
	var buf bytes.Buffer
	chunk := make([]byte, 4096)
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(buf.String(), "\n") < 400 && time.Now().Before(deadline) {
		n, err := stdout.Read(chunk)
		buf.Write(chunk[:n])
		if err != nil {
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(stdout) // lines already written before the kill
	buf.Write(rest)
	werr := cmd.Wait()
	var exitErr *exec.ExitError
	if !errors.As(werr, &exitErr) || exitErr.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die by SIGKILL: %v; stderr: %s", werr, stderr.String())
	}
	lines := strings.Split(buf.String(), "\n")
	lines = lines[:len(lines)-1] // the last element is empty or a torn line
	if len(lines) < 100 {
		t.Fatalf("child reported only %d commits; stderr: %s", len(lines), stderr.String())
	}

	l2, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	for _, id := range lines {
		rec, err := l2.Record(ctx, testPIAID, id)
		if err != nil || string(rec.Body) != id {
			t.Fatalf("reported commit %s lost: %v", id, err)
		}
		if _, err := l2.Code(ctx, testPIAID, id); err != nil {
			t.Fatalf("code of reported commit %s lost: %v", id, err)
		}
		if _, ok, err := l2.KVGet(ctx, testMerchant, id); !ok || err != nil {
			t.Fatalf("KV of reported commit %s lost: %v", id, err)
		}
	}
	// Whatever else is in the file is whole: every record has its code.
	var orphans int
	if err := l2.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM idempotency i
		LEFT JOIN codes c ON c.piaid = i.piaid AND c.transaction_id = i.request_id WHERE c.transaction_id IS NULL`).Scan(&orphans); err != nil {
		t.Fatal(err)
	}
	if orphans != 0 {
		t.Fatalf("%d records without their code", orphans)
	}
	t.Logf("%d reported commits all present after SIGKILL", len(lines))
}

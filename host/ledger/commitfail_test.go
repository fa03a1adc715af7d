package ledger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"testing"

	"github.com/otpcgate/otpcgate/internal/pgtest"
	"time"
)

// failCommits makes COMMIT itself fail for any transaction that created a
// code whose transaction id starts with "fail-": a trigger adds a row that
// breaks a deferred foreign key, which SQLite checks only at COMMIT. Every
// statement of the transaction succeeds; only COMMIT returns an error.
func failCommits(t *testing.T, l *Ledger) {
	t.Helper()
	qs := []string{
		`CREATE TABLE commit_fault_parent (id INTEGER PRIMARY KEY)`,
		`CREATE TABLE commit_fault_child (pid INTEGER REFERENCES commit_fault_parent(id) DEFERRABLE INITIALLY DEFERRED)`,
		`CREATE TRIGGER commit_fault AFTER INSERT ON codes WHEN NEW.transaction_id LIKE 'fail-%'
		 BEGIN INSERT INTO commit_fault_child(pid) VALUES (42); END`,
	}
	if pgtest.OnPostgres() {
		// The same deferred foreign key, and the trigger in PL/pgSQL.
		qs[2] = `CREATE FUNCTION commit_fault_fn() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN IF NEW.transaction_id LIKE 'fail-%' THEN INSERT INTO commit_fault_child(pid) VALUES (42); END IF; RETURN NEW; END $$`
		qs = append(qs, `CREATE TRIGGER commit_fault AFTER INSERT ON codes FOR EACH ROW EXECUTE FUNCTION commit_fault_fn()`)
	}
	for _, q := range qs {
		if _, err := l.DB().Exec(q); err != nil {
			t.Fatal(err)
		}
	}
}

func codeExists(t *testing.T, l *Ledger, txID string) bool {
	t.Helper()
	_, err := l.Code(context.Background(), testPIAID, txID)
	switch {
	case err == nil:
		return true
	case errors.Is(err, ErrUnknownTransaction):
		return false
	}
	t.Fatal(err)
	return false
}

// TestCommitFailureAcknowledgesNobody: when COMMIT fails, no caller whose
// closure shared the transaction is told its change is stored — each gets
// ErrCommitFailed (a closure that failed by itself keeps its own error) —
// and none of the batch is in the database. The whole batch is queued
// before the writer takes it, so the failing and the innocent closures
// really share one transaction.
func TestCommitFailureAcknowledgesNobody(t *testing.T) {
	l, _ := openTest(t, Options{Logger: slog.New(slog.DiscardHandler)})
	failCommits(t, l)

	// A lone failing commit.
	err := l.Apply(context.Background(), func(tx *Tx) error { return tx.CreateCode(newCode("fail-alone")) })
	if !errors.Is(err, ErrCommitFailed) {
		t.Errorf("lone failing commit: %v, want ErrCommitFailed", err)
	}
	if codeExists(t, l, "fail-alone") {
		t.Error("the code of a failed commit is stored")
	}

	// A batch: hold the writer in a closure until every caller is queued.
	const n = 24
	if n > DefaultMaxBatch {
		t.Fatalf("batch of %d exceeds MaxBatch %d", n, DefaultMaxBatch)
	}
	before := l.Stats()
	release := make(chan struct{})
	holding := make(chan struct{})
	blockerDone := make(chan error, 1)
	go func() {
		blockerDone <- l.Apply(context.Background(), func(*Tx) error {
			close(holding)
			<-release
			return nil
		})
	}()
	select {
	case <-holding:
	case err := <-blockerDone:
		// E.g. the failed COMMIT left its transaction open.
		t.Fatalf("the writer could not start the next batch: %v", err)
	}
	errOwn := errors.New("closure's own error")
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		switch {
		case i == 5:
			ids[i] = fmt.Sprintf("fail-%d", i)
		default:
			ids[i] = fmt.Sprintf("ok-%d", i)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = l.Apply(context.Background(), func(tx *Tx) error {
				if err := tx.CreateCode(newCode(ids[i])); err != nil {
					return err
				}
				if i == 9 {
					return errOwn
				}
				return nil
			})
		}()
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(l.reqs) < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d callers queued", len(l.reqs), n)
		}
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	if err := <-blockerDone; err != nil {
		t.Fatal(err)
	}
	for i, err := range errs {
		want := ErrCommitFailed
		if i == 9 {
			want = errOwn
		}
		if !errors.Is(err, want) {
			t.Errorf("caller %d (%s): %v, want %v", i, ids[i], err, want)
		}
		if codeExists(t, l, ids[i]) {
			t.Errorf("caller %d (%s): code stored although its transaction failed", i, ids[i])
		}
	}
	after := l.Stats()
	// The blocker committed (one transaction); the batch did not.
	if got := after.Transactions - before.Transactions; got != 1 {
		t.Errorf("%d transactions committed, want 1 (the blocker's)", got)
	}
	if got := after.Failed - before.Failed; got != n {
		t.Errorf("%d closures counted failed, want %d", got, n)
	}

	// The writer is not wedged: the transaction was rolled back, and the
	// innocent change commits on its own.
	if err := l.Apply(context.Background(), func(tx *Tx) error { return tx.CreateCode(newCode("ok-again")) }); err != nil {
		t.Fatalf("after the failed batch: %v", err)
	}
	if !codeExists(t, l, "ok-again") {
		t.Fatal("a successful commit is not stored")
	}
}

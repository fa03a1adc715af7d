package ledger

import (
	"context"
	"testing"
	"time"
)

// TestLoginFailures: failures add up within a window opened by the first,
// a window that has passed counts as none (and is pruned by the next
// failure), clearing forgets them, and they survive reopening the ledger.
func TestLoginFailures(t *testing.T) {
	l, path := openTest(t, Options{})
	ctx := context.Background()
	t0 := time.UnixMilli(1_700_000_000_000)
	add := func(l *Ledger, account string, at time.Time) LoginFailures {
		t.Helper()
		var f LoginFailures
		mustApply(t, l, func(tx *Tx) error {
			var err error
			f, err = tx.AddLoginFailure(testMerchant, account, at, time.Minute)
			return err
		})
		return f
	}
	get := func(l *Ledger, account string, at time.Time) LoginFailures {
		t.Helper()
		f, err := l.LoginFailures(ctx, testMerchant, account, at)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	for i := 1; i <= 3; i++ {
		if f := add(l, "acct", t0.Add(time.Duration(i)*time.Second)); f.Failures != i || !f.Until.Equal(t0.Add(time.Second+time.Minute)) {
			t.Fatalf("failure %d: %+v", i, f)
		}
	}
	if f := get(l, "other", t0); f.Failures != 0 {
		t.Fatalf("another account: %+v", f)
	}
	// Reopened (a restart): the failures are still there.
	l.Close()
	l2, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l2.Close() })
	if f := get(l2, "acct", t0.Add(30*time.Second)); f.Failures != 3 {
		t.Fatalf("after reopening: %+v", f)
	}
	if f := get(l2, "acct", t0.Add(2*time.Minute)); f.Failures != 0 {
		t.Fatalf("after the window: %+v", f)
	}
	// A new failure after the window starts again at 1 and prunes the old.
	add(l2, "old", t0)
	if f := add(l2, "acct", t0.Add(2*time.Minute)); f.Failures != 1 {
		t.Fatalf("a failure after the window: %+v", f)
	}
	var rows int
	if err := l2.DB().QueryRow(`SELECT COUNT(*) FROM login_failures`).Scan(&rows); err != nil || rows != 1 {
		t.Fatalf("%d rows (%v), want only the open window", rows, err)
	}
	mustApply(t, l2, func(tx *Tx) error { return tx.ClearLoginFailures(testMerchant, "acct") })
	if f := get(l2, "acct", t0.Add(2*time.Minute)); f.Failures != 0 {
		t.Fatalf("after clearing: %+v", f)
	}
}

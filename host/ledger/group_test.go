package ledger

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// blockWriter occupies the writer with a closure until release is closed, so
// the Apply calls made meanwhile queue up and form one batch.
func blockWriter(t *testing.T, l *Ledger) (release func(), wait func()) {
	t.Helper()
	started, rel := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- l.Apply(context.Background(), func(tx *Tx) error {
			close(started)
			<-rel
			return nil
		})
	}()
	<-started
	return func() { close(rel) }, func() {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

func waitQueued(t *testing.T, l *Ledger, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(l.reqs) < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d commits queued", len(l.reqs), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// A request's record, KV change set and outbox entry commit together; a
// failing closure in a group commit leaves nothing of itself while the
// others in the same SQLite transaction commit.
func TestGroupCommitIsolatesFailingClosure(t *testing.T) {
	ctx := context.Background()
	l, _ := openTest(t, Options{})
	before := l.Stats()
	release, waitBlocker := blockWriter(t, l)
	const n, bad = 6, 3
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			id := fmt.Sprintf("g%d", i)
			errs[i] = l.Apply(ctx, func(tx *Tx) error {
				if err := tx.PutRecord(Record{PIAID: testPIAID, RequestID: id, Method: "m", Hash: hashOf(id), Status: StatusOK, Body: []byte(id)}); err != nil {
					return err
				}
				if err := tx.ApplyKV(testMerchant, []KVChange{{Key: id, Value: []byte("v")}, {Key: "shared-" + id, Value: []byte("x")}}); err != nil {
					return err
				}
				if v, ok, err := tx.KVGet(testMerchant, id); err != nil || !ok || string(v) != "v" {
					return fmt.Errorf("tx does not see its own KV write: %q %v %v", v, ok, err)
				}
				if _, err := tx.Enqueue(OutboxItem{MerchantID: testMerchant, PIAID: testPIAID, Method: "referenceNumberPaidNotification",
					RequestID: "n-" + id, Payload: []byte(`{}`), OrderingKey: id}); err != nil {
					return err
				}
				if i == bad {
					// Fails after writing record, KV and outbox.
					return tx.ApplyKV(testMerchant, []KVChange{{Key: strings.Repeat("k", MaxKVKeyBytes+1)}})
				}
				return nil
			})
		}(i)
	}
	waitQueued(t, l, n)
	release()
	wg.Wait()
	waitBlocker()
	for i, err := range errs {
		if (i == bad) != (err != nil) {
			t.Fatalf("closure %d: %v", i, err)
		}
	}
	if !errors.Is(errs[bad], ErrKVLimit) {
		t.Fatalf("bad closure error %v, want ErrKVLimit", errs[bad])
	}
	after := l.Stats()
	if got := after.Transactions - before.Transactions; got != 2 {
		t.Fatalf("%d transactions, want 2 (blocker + one group)", got)
	}
	if got := after.Closures - before.Closures; got != n {
		t.Fatalf("%d closures committed, want %d", got, n) // blocker + n-1
	}
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("g%d", i)
		_, recErr := l.Record(ctx, testPIAID, id)
		_, kvOK, _ := l.KVGet(ctx, testMerchant, "shared-"+id)
		if i == bad {
			if !errors.Is(recErr, ErrNotFound) || kvOK {
				t.Fatalf("failed closure left record (%v) or KV (%v)", recErr, kvOK)
			}
			continue
		}
		if recErr != nil || !kvOK {
			t.Fatalf("closure %d: record %v, kv %v", i, recErr, kvOK)
		}
	}
	if d, err := l.Depth(ctx); err != nil || d != n-1 {
		t.Fatalf("outbox depth %d, %v; want %d", d, err, n-1)
	}
}

func TestGroupCommitSkipsCancelledWaiters(t *testing.T) {
	l, _ := openTest(t, Options{})
	release, waitBlocker := blockWriter(t, l)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- l.Apply(ctx, func(tx *Tx) error { ran <- struct{}{}; return nil })
	}()
	waitQueued(t, l, 1)
	cancel()
	release()
	waitBlocker()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	select {
	case <-ran:
		t.Fatal("cancelled closure ran")
	default:
	}
}

func TestKV(t *testing.T) {
	ctx := context.Background()
	l, _ := openTest(t, Options{})
	apply := func(ch ...KVChange) error {
		return l.Apply(ctx, func(tx *Tx) error { return tx.ApplyKV(testMerchant, ch) })
	}
	tests := []struct {
		name    string
		changes []KVChange
		want    error
	}{
		{"put", []KVChange{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2")}}, nil},
		{"overwrite and delete", []KVChange{{Key: "a", Value: []byte("3")}, {Key: "b", Delete: true}}, nil},
		{"empty value", []KVChange{{Key: "e", Value: nil}}, nil},
		{"key too long", []KVChange{{Key: "c", Value: []byte("x")}, {Key: strings.Repeat("k", MaxKVKeyBytes+1)}}, ErrKVLimit},
		{"empty key", []KVChange{{Key: ""}}, ErrKVLimit},
		{"value too big", []KVChange{{Key: "c", Value: make([]byte, MaxKVValueBytes+1)}}, ErrKVLimit},
		{"too many changes", make([]KVChange, MaxKVChanges+1), ErrKVLimit},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := apply(tc.changes...); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	want := map[string]string{"a": "3", "e": ""}
	for k, v := range want {
		got, ok, err := l.KVGet(ctx, testMerchant, k)
		if err != nil || !ok || string(got) != v {
			t.Fatalf("KVGet(%s) = %q %v %v, want %q", k, got, ok, err, v)
		}
	}
	for _, k := range []string{"b", "c"} {
		if _, ok, err := l.KVGet(ctx, testMerchant, k); ok || err != nil {
			t.Fatalf("KVGet(%s) present=%v err=%v", k, ok, err)
		}
	}
	// Namespaces are separate.
	if _, ok, _ := l.KVGet(ctx, "other-merchant", "a"); ok {
		t.Fatal("namespace leak")
	}
}

// Close lets every commit already queued finish and report its real result.
func TestCloseDrainsQueuedCommits(t *testing.T) {
	ctx := context.Background()
	l, path := openTest(t, Options{})
	release, waitBlocker := blockWriter(t, l)
	const n = 5
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func(i int) {
			errs <- l.Apply(ctx, func(tx *Tx) error { return tx.CreateCode(newCode(fmt.Sprintf("q%d", i))) })
		}(i)
	}
	waitQueued(t, l, n)
	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	release()
	waitBlocker()
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("queued commit: %v", err)
		}
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	l2, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	for i := 0; i < n; i++ {
		if _, err := l2.Code(ctx, testPIAID, fmt.Sprintf("q%d", i)); err != nil {
			t.Fatalf("queued commit q%d lost: %v", i, err)
		}
	}
}

// With a window configured, a lone commit still does not wait for it: the
// writer waits only while another Do is preparing its commit.
func TestGroupWindowDoesNotDelayLoneCommit(t *testing.T) {
	const win = 300 * time.Millisecond
	l, _ := openTest(t, Options{GroupWindow: win})
	start := time.Now()
	for i := 0; i < 3; i++ {
		createCode(t, l, newCode(fmt.Sprintf("lone%d", i)))
	}
	var calls atomic.Int64
	for i := 0; i < 3; i++ {
		id := fmt.Sprintf("do%d", i)
		if _, _, err := l.Do(context.Background(), genRequest(id), genProcess(id, &calls)); err != nil {
			t.Fatal(err)
		}
	}
	if el := time.Since(start); el >= win {
		t.Fatalf("6 lone commits took %v, window is %v", el, win)
	}
}

// preparing starts a Do whose process blocks until the returned function
// is called with the error it should return (nil: it commits).
func preparing(t *testing.T, l *Ledger, id string) (finish func(error), result <-chan error) {
	t.Helper()
	entered, proceed := make(chan struct{}), make(chan error)
	res := make(chan error, 1)
	go func() {
		var calls atomic.Int64
		_, _, err := l.Do(context.Background(), genRequest(id), func(ctx context.Context) (Outcome, error) {
			close(entered)
			if err := <-proceed; err != nil {
				return Outcome{}, err
			}
			return genProcess(id, &calls)(ctx)
		})
		res <- err
	}()
	<-entered
	return func(err error) { proceed <- err }, res
}

// A commit that arrives while another request is preparing its own waits
// for it (up to the window), and the two share one transaction.
func TestGroupWindowWaitsForPreparedCommit(t *testing.T) {
	ctx := context.Background()
	l, _ := openTest(t, Options{GroupWindow: 10 * time.Second})
	before := l.Stats()
	finish, slow := preparing(t, l, "slow")
	fast := make(chan error, 1)
	go func() {
		var calls atomic.Int64
		_, _, err := l.Do(ctx, genRequest("fast"), genProcess("fast", &calls))
		fast <- err
	}()
	select {
	case err := <-fast:
		t.Fatalf("fast commit returned (%v) while the slow one was still preparing", err)
	case <-time.After(200 * time.Millisecond):
	}
	finish(nil)
	for name, ch := range map[string]<-chan error{"fast": fast, "slow": slow} {
		if err := <-ch; err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	st := l.Stats()
	if tx, cl := st.Transactions-before.Transactions, st.Closures-before.Closures; tx != 1 || cl != 2 {
		t.Fatalf("%d transactions for %d closures, want 1 for 2", tx, cl)
	}
	for _, id := range []string{"fast", "slow"} {
		if _, err := l.Record(ctx, testPIAID, id); err != nil {
			t.Fatalf("record %s: %v", id, err)
		}
	}
}

// A preparation that ends without a commit (the plugin refused, say) wakes
// the waiting writer at once instead of leaving it to the window.
func TestGroupWindowWokenByFailedPreparation(t *testing.T) {
	const win = 10 * time.Second
	l, _ := openTest(t, Options{GroupWindow: win})
	finish, failed := preparing(t, l, "refused")
	fast := make(chan error, 1)
	go func() {
		var calls atomic.Int64
		_, _, err := l.Do(context.Background(), genRequest("fast"), genProcess("fast", &calls))
		fast <- err
	}()
	time.Sleep(100 * time.Millisecond) // fast is queued, the writer waits
	start := time.Now()
	refusal := errors.New("plugin refused")
	finish(refusal)
	if err := <-failed; !errors.Is(err, refusal) {
		t.Fatalf("refused Do: %v", err)
	}
	if err := <-fast; err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > win/4 {
		t.Fatalf("commit waited %v after the other preparation ended; window %v", el, win)
	}
	if n := l.preparing.Load(); n != 0 {
		t.Fatalf("%d preparations still counted", n)
	}
}

package google_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/host/google"
	"github.com/otpcgate/otpcgate/host/ledger"
	"github.com/otpcgate/otpcgate/host/sim/googlesim"
	"github.com/otpcgate/otpcgate/internal/testenv"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

func openLedger(t testing.TB, path string, lease time.Duration) *ledger.Ledger {
	t.Helper()
	l, err := ledger.Open(context.Background(), path, ledger.Options{ClaimLease: lease})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func paid(in integration, requestID, orderingKey string) google.Notification {
	return google.Notification{
		MerchantID: "merchant-" + in.piaid, PIAID: in.piaid, Method: otpc.MethodReferenceNumberPaidNotification,
		RequestID: requestID, OrderingKey: orderingKey,
		Request: &otpc.ReferenceNumberPaidNotificationRequest{
			PaymentIntegratorTransactionID:   "pay-" + requestID,
			GenerateReferenceNumberRequestID: orderingKey,
			PaymentTimestamp:                 otpc.TimestampOf(time.Now()),
		},
	}
}

func refundDone(in integration, requestID, orderingKey string) google.Notification {
	return google.Notification{
		MerchantID: "merchant-" + in.piaid, PIAID: in.piaid, Method: otpc.MethodRefundResultNotification,
		RequestID: requestID, OrderingKey: orderingKey,
		Request: &otpc.RefundResultNotificationRequest{RefundRequestID: "refund-" + requestID,
			Result: otpc.RefundResult{Success: &otpc.Empty{}}},
	}
}

// enqueue writes n to the outbox in one ledger transaction, as the gateway
// does together with the change that causes it.
func enqueue(t testing.TB, l *ledger.Ledger, n google.Notification) int64 {
	t.Helper()
	it, err := google.OutboxItem(n)
	if err != nil {
		t.Fatal(err)
	}
	var id int64
	if err := l.Apply(context.Background(), func(tx *ledger.Tx) (err error) {
		id, err = tx.Enqueue(it)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return id
}

// resolver routes every test integration's merchant to endpoint.
func resolver(endpoint string, ins ...integration) google.Resolver {
	return google.ResolverFunc(func(_ context.Context, merchantID, piaid string) (google.Route, error) {
		for _, in := range ins {
			if in.piaid == piaid && merchantID == "merchant-"+in.piaid {
				return in.route(endpoint), nil
			}
		}
		return google.Route{}, fmt.Errorf("%w: unknown merchant %s", google.ErrPermanent, merchantID)
	})
}

// startWorker runs a worker until the test ends (or stop is called) with
// test-sized timings.
func startWorker(t testing.TB, l *ledger.Ledger, c *google.Client, r google.Resolver,
	mod func(*google.WorkerConfig)) (w *google.Worker, stop func()) {
	t.Helper()
	cfg := google.WorkerConfig{PollInterval: 50 * time.Millisecond,
		BackoffBase: 10 * time.Millisecond, BackoffCap: 60 * time.Millisecond, MaxAttempts: 50}
	if mod != nil {
		mod(&cfg)
	}
	w, err := google.NewWorker(cfg, l, c, r)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(func() {
		if ctx.Err() == nil {
			stop()
		}
	})
	return w, stop
}

// waitItem polls the outbox item until cond holds.
func waitItem(t testing.TB, l *ledger.Ledger, id int64, what string, cond func(ledger.OutboxItem) bool) ledger.OutboxItem {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		it, err := l.OutboxItem(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if cond(it) {
			return it
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox item %d: timed out waiting for %s; now %s, attempts %d, last error %q",
				id, what, it.State, it.Attempts, it.LastError)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func delivered(it ledger.OutboxItem) bool { return it.State == ledger.OutboxDelivered }
func dead(it ledger.OutboxItem) bool      { return it.State == ledger.OutboxDead }

// callsFor returns the calls Google processed for requestID.
func callsFor(g *googlesim.Google, requestID string) []googlesim.Call {
	var out []googlesim.Call
	for _, c := range g.Calls() {
		if c.RequestID == requestID {
			out = append(out, c)
		}
	}
	return out
}

func stats(t testing.TB, w *google.Worker) google.Stats {
	t.Helper()
	s, err := w.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestWorkerNotify: with a poll interval of an hour, Notify alone makes a
// new item go out at once, in both envelopes.
func TestWorkerNotify(t *testing.T) {
	ins := integrations(t)
	gs := startGoogle(t, ins...)
	l := openLedger(t, filepath.Join(t.TempDir(), "ledger.db"), 0)
	w, _ := startWorker(t, l, newClient(t, gs.srv, nil), resolver(gs.endpoint, ins...),
		func(c *google.WorkerConfig) { c.PollInterval = time.Hour })
	// A first item goes out by the start-up poll or by Notify; once it is
	// delivered the start-up poll is over, and with an hour between polls
	// only Notify can send what follows.
	warm := enqueue(t, l, google.Notification{MerchantID: "merchant-" + ins[0].piaid, PIAID: ins[0].piaid,
		Method: otpc.MethodEcho, Request: &otpc.EchoRequest{ClientMessage: "warm"}})
	w.Notify()
	waitItem(t, l, warm, "delivered", delivered)
	start := time.Now()
	var ids []int64
	for _, in := range ins {
		ids = append(ids, enqueue(t, l, paid(in, "notify-"+in.piaid, "txn-"+in.piaid)))
	}
	w.Notify()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	calls, err := gs.sim.WaitCalls(ctx, 2, otpc.MethodReferenceNumberPaidNotification)
	if err != nil {
		t.Fatalf("not delivered after Notify: %v", err)
	}
	t.Logf("two notifications (PGP, JOSE) delivered %s after Notify", time.Since(start).Round(time.Millisecond))
	// The two items have different ordering keys, so they go out
	// concurrently, in either order.
	byPIAID := map[string]googlesim.Call{}
	for _, c := range calls {
		byPIAID[c.PIAID] = c
	}
	for i, in := range ins {
		c, ok := byPIAID[in.piaid]
		if !ok || c.RequestID != "notify-"+in.piaid {
			t.Fatalf("no call for %s with requestId notify-%s: %+v", in.piaid, in.piaid, calls)
		}
		p := c.Request.(*otpc.ReferenceNumberPaidNotificationRequest)
		if p.GenerateReferenceNumberRequestID != "txn-"+in.piaid || p.PaymentIntegratorTransactionID != "pay-notify-"+in.piaid {
			t.Fatalf("payload as Google saw it: %+v", p)
		}
		// The stored payload has no timestamp; Google got a fresh one.
		if d := time.Since(p.RequestHeader.RequestTimestamp.Time()); d < 0 || d > 5*time.Second {
			t.Fatalf("requestTimestamp %v off by %s", p.RequestHeader.RequestTimestamp, d)
		}
		waitItem(t, l, ids[i], "delivered", delivered)
	}
	testenv.WaitFor(t, func() string { // the warm-up item and the two
		if s := stats(t, w); s.Delivered != 3 || s.Failed != 0 || s.Dead != 0 || s.Depth != 0 || s.InFlight != 0 {
			return fmt.Sprintf("stats %+v, want 3 delivered and nothing else", s)
		}
		return ""
	})
}

// TestWorkerGoogleDown: Google answers 503, then 200s whose bodies fail
// our checks, then works: the item is delivered, with the same requestId on
// every attempt, and Google processed it exactly once.
func TestWorkerGoogleDown(t *testing.T) {
	ins := integrations(t)
	in := ins[1]
	gs := startGoogle(t, ins...)
	l := openLedger(t, filepath.Join(t.TempDir(), "ledger.db"), 0)
	// Google is down (503 three times, then two dropped connections), then
	// answers twice with a 200 whose body fails our checks: those requests
	// were processed, so the retries must reuse the requestId to be
	// replays on Google's side.
	invalid := &googlesim.Fault{Times: 2, MutateResponse: func(b []byte) []byte {
		return bytes.Replace(b, []byte(`"success":{}`), []byte(`"x":{}`), 1)
	}}
	drop := googlesim.FaultDrop(2)
	drop.Next = invalid
	down := googlesim.FaultUnavailable(3)
	down.Next = &drop
	gs.sim.SetFault(down)
	w, _ := startWorker(t, l, newClient(t, gs.srv, nil), resolver(gs.endpoint, ins...), nil)
	id := enqueue(t, l, paid(in, "down-1", "txn-down"))
	w.Notify()
	it := waitItem(t, l, id, "delivered", delivered)
	if n := len(callsFor(gs.sim, "down-1")); n != 1 {
		t.Fatalf("Google processed the notification %d times, want once", n)
	}
	if len(gs.sim.Calls()) != 1 {
		t.Fatalf("Google saw other requestIds: %+v", gs.sim.Calls())
	}
	if hits := gs.sim.Hits(); it.Attempts != 8 || hits != 8 {
		t.Fatalf("attempts %d, hits %d: want 8 (3 × 503, 2 dropped, 2 bad 200, 1 good)", it.Attempts, hits)
	}
	if it.LastError != "" || it.DeliveredAt.IsZero() {
		t.Fatalf("delivered item %+v", it)
	}
	testenv.WaitFor(t, func() string {
		if s := stats(t, w); s.Delivered != 1 || s.Failed != uint64(it.Attempts-1) || s.Dead != 0 || s.InFlight != 0 {
			return fmt.Sprintf("stats %+v after %d attempts", s, it.Attempts)
		}
		return ""
	})
	t.Logf("delivered after %d attempts (%d HTTP requests), processed once", it.Attempts, gs.sim.Hits())
}

const crashEnv = "OTPCGATE_GOOGLE_TEST_CRASH_DB"

// crashChild runs in a child process: it enqueues two notifications, claims
// the first as a worker would right before sending, and dies by SIGKILL.
func crashChild(path string) {
	ctx := context.Background()
	l, err := ledger.Open(ctx, path, ledger.Options{ClaimLease: 300 * time.Millisecond})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	in := integration{piaid: "TEST_PGP_JPY"}
	for _, n := range []google.Notification{paid(in, "crash-claimed", "txn-crash-1"), paid(in, "crash-queued", "txn-crash-2")} {
		it, err := google.OutboxItem(n)
		if err == nil {
			err = l.Apply(ctx, func(tx *ledger.Tx) error { _, err := tx.Enqueue(it); return err })
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
	items, err := l.ClaimDue(ctx, time.Now(), 1)
	if err != nil || len(items) != 1 || items[0].RequestID != "crash-claimed" {
		fmt.Fprintln(os.Stderr, "claim:", items, err)
		os.Exit(2)
	}
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}

// TestWorkerResumesAfterKill: a process enqueued two notifications, claimed
// one and was killed (SIGKILL) before sending; a worker on the reopened
// ledger delivers both, each once.
func TestWorkerResumesAfterKill(t *testing.T) {
	ins := integrations(t)
	path := filepath.Join(t.TempDir(), "ledger.db")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die by SIGKILL: %v\n%s", err, out)
	}
	gs := startGoogle(t, ins...)
	l := openLedger(t, path, 0)
	if d, err := l.Depth(context.Background()); err != nil || d != 2 {
		t.Fatalf("depth after crash %d, %v", d, err)
	}
	start := time.Now()
	startWorker(t, l, newClient(t, gs.srv, nil), resolver(gs.endpoint, ins...), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := gs.sim.WaitCalls(ctx, 2, ""); err != nil {
		t.Fatalf("not delivered after restart: %v", err)
	}
	for _, rid := range []string{"crash-claimed", "crash-queued"} {
		if n := len(callsFor(gs.sim, rid)); n != 1 {
			t.Fatalf("%s processed %d times", rid, n)
		}
	}
	t.Logf("both delivered %s after restart (claimed item waited for its 300 ms lease)", time.Since(start).Round(time.Millisecond))
}

// TestWorkerPlainText4xx: Google answers 400 with its generic plain text.
// By default that is retried and dead-lettered at the attempt limit (and
// can be requeued); with GenericErrorsPermanent it is dead at once.
func TestWorkerPlainText4xx(t *testing.T) {
	ins := integrations(t)
	in := ins[0]
	for _, permanent := range []bool{false, true} {
		t.Run(fmt.Sprintf("genericPermanent=%v", permanent), func(t *testing.T) {
			gs := startGoogle(t, ins...)
			gs.sim.SetFault(googlesim.FaultPlainText(400, 0))
			l := openLedger(t, filepath.Join(t.TempDir(), "ledger.db"), 0)
			c := newClient(t, gs.srv, func(cfg *google.Config) { cfg.GenericErrorsPermanent = permanent })
			w, _ := startWorker(t, l, c, resolver(gs.endpoint, ins...), func(cfg *google.WorkerConfig) { cfg.MaxAttempts = 3 })
			id := enqueue(t, l, paid(in, "plain-1", "txn-plain"))
			w.Notify()
			it := waitItem(t, l, id, "dead", dead)
			wantAttempts := 3
			if permanent {
				wantAttempts = 1
			}
			if it.Attempts != wantAttempts || !strings.Contains(it.LastError, "HTTP 400") ||
				!strings.Contains(it.LastError, googlesim.GenericErrorText) {
				t.Fatalf("dead item: attempts %d (want %d), last error %q", it.Attempts, wantAttempts, it.LastError)
			}
			dl, err := l.DeadLetters(context.Background(), 10)
			if err != nil || len(dl) != 1 || dl[0].ID != id {
				t.Fatalf("dead letters %+v, %v", dl, err)
			}
			// The ledger shows the item dead before the worker's counters
			// move; wait for them rather than read them once.
			testenv.WaitFor(t, func() string {
				if s := stats(t, w); s.Dead != 1 || s.Failed != uint64(wantAttempts-1) || s.Depth != 0 || s.InFlight != 0 {
					return fmt.Sprintf("stats %+v, want Dead 1, Failed %d, nothing pending or in flight", s, wantAttempts-1)
				}
				return ""
			})
			// The operator fixes the cause and requeues: delivered, same
			// requestId.
			gs.sim.ClearFault()
			if err := l.Requeue(context.Background(), id, time.Now()); err != nil {
				t.Fatal(err)
			}
			w.Notify()
			waitItem(t, l, id, "delivered after requeue", delivered)
			if calls := gs.sim.Calls(); len(calls) != 1 || calls[0].RequestID != "plain-1" {
				t.Fatalf("calls %+v", calls)
			}
		})
	}
}

// TestWorkerPermanentErrorResponse: an opened ErrorResponse that no retry
// can change (invalidIdentifier) dead-letters at the first attempt.
func TestWorkerPermanentErrorResponse(t *testing.T) {
	ins := integrations(t)
	in := ins[1]
	gs := startGoogle(t, ins...)
	l := openLedger(t, filepath.Join(t.TempDir(), "ledger.db"), 0)
	w, _ := startWorker(t, l, newClient(t, gs.srv, nil), resolver(gs.endpoint, ins...), nil)
	id := enqueue(t, l, google.Notification{MerchantID: "merchant-" + in.piaid, PIAID: in.piaid,
		Method: otpc.MethodAcceptRemittanceStatement, Request: &otpc.AcceptRemittanceStatementRequest{StatementID: "no-such"}})
	w.Notify()
	it := waitItem(t, l, id, "dead", dead)
	if it.Attempts != 1 || !strings.Contains(it.LastError, "invalidIdentifier") || !strings.Contains(it.LastError, "HTTP 404") {
		t.Fatalf("attempts %d, last error %q", it.Attempts, it.LastError)
	}
	// A merchant the resolver refuses permanently is dead-lettered too.
	id2 := enqueue(t, l, google.Notification{MerchantID: "gone", PIAID: in.piaid, Method: otpc.MethodEcho,
		Request: &otpc.EchoRequest{ClientMessage: "x"}})
	w.Notify()
	if it := waitItem(t, l, id2, "dead", dead); !strings.Contains(it.LastError, "unknown merchant") {
		t.Fatalf("last error %q", it.LastError)
	}
}

// TestWorkerOrderPerKey: the paid notification of a transaction fails a
// few times; its refund result waits behind it while another transaction's
// notification goes out.
func TestWorkerOrderPerKey(t *testing.T) {
	ins := integrations(t)
	in := ins[0]
	gs := startGoogle(t, ins...)
	l := openLedger(t, filepath.Join(t.TempDir(), "ledger.db"), 0)
	gs.sim.SetFault(googlesim.Fault{Times: 3, Method: otpc.MethodReferenceNumberPaidNotification,
		Status: 503, Body: googlesim.GenericErrorText})
	paidA := enqueue(t, l, paid(in, "paid-A", "txn-A"))
	refundA := enqueue(t, l, refundDone(in, "refund-A", "txn-A"))
	refundB := enqueue(t, l, refundDone(in, "refund-B", "txn-B"))
	startWorker(t, l, newClient(t, gs.srv, nil), resolver(gs.endpoint, ins...), nil)
	waitItem(t, l, refundA, "delivered", delivered)
	a := waitItem(t, l, paidA, "delivered", delivered)
	b := waitItem(t, l, refundB, "delivered", delivered)
	if a.Attempts != 4 || b.Attempts != 1 {
		t.Fatalf("attempts: paid-A %d (want 4), refund-B %d (want 1)", a.Attempts, b.Attempts)
	}
	var order []string
	for _, c := range gs.sim.Calls() {
		order = append(order, c.RequestID)
	}
	want := "refund-B paid-A refund-A"
	if strings.Join(order, " ") != want {
		t.Fatalf("Google saw %v, want %s", order, want)
	}
}

// TestWorkerStop: Run returns after its context ends, but only once the
// delivery in flight (a slow Google) has finished and been recorded.
func TestWorkerStop(t *testing.T) {
	ins := integrations(t)
	in := ins[0]
	gs := startGoogle(t, ins...)
	// Slow enough that the call is still in flight when the test looks,
	// even on a loaded machine.
	gs.sim.SetFault(googlesim.FaultSlow(2*time.Second, 1))
	l := openLedger(t, filepath.Join(t.TempDir(), "ledger.db"), 0)
	w, stop := startWorker(t, l, newClient(t, gs.srv, nil), resolver(gs.endpoint, ins...), nil)
	id := enqueue(t, l, paid(in, "slow-1", "txn-slow"))
	w.Notify()
	testenv.WaitFor(t, func() string {
		if gs.sim.Hits() == 0 {
			return "Google was never called"
		}
		return ""
	})
	if s := stats(t, w); s.InFlight != 1 {
		t.Fatalf("in flight %d", s.InFlight)
	}
	stop()
	it, err := l.OutboxItem(context.Background(), id)
	if err != nil || it.State != ledger.OutboxDelivered {
		t.Fatalf("after stop: %s, %v", it.State, err)
	}
	// Stopped for good: a new item stays pending.
	id2 := enqueue(t, l, paid(in, "after-stop", "txn-2"))
	w.Notify()
	time.Sleep(150 * time.Millisecond)
	if it, _ := l.OutboxItem(context.Background(), id2); it.State != ledger.OutboxPending || it.Attempts != 0 {
		t.Fatalf("stopped worker touched item: %+v", it)
	}
}

func TestBackoff(t *testing.T) {
	base, cp := 100*time.Millisecond, 5*time.Second
	cases := []struct {
		attempt int
		jitter  float64
		want    time.Duration
	}{
		{1, 0.5, 50 * time.Millisecond},
		{2, 0.5, 100 * time.Millisecond},
		{3, 0.5, 200 * time.Millisecond},
		{7, 0.5, 2500 * time.Millisecond}, // 6.4 s capped at 5 s
		{1000, 0.5, 2500 * time.Millisecond},
		{4, 0, 0},
		{1, 0.999, 99900 * time.Microsecond},
	}
	for _, tc := range cases {
		if got := google.Backoff(tc.attempt, base, cp, tc.jitter); got != tc.want {
			t.Errorf("Backoff(%d, %v) = %v, want %v", tc.attempt, tc.jitter, got, tc.want)
		}
	}
}

func TestOutboxItem(t *testing.T) {
	in := integration{piaid: "P1"}
	echo, err := google.OutboxItem(google.Notification{MerchantID: "m", PIAID: "P1", Method: otpc.MethodEcho,
		Request: &otpc.EchoRequest{ClientMessage: "x"}})
	if err != nil || !otpc.ValidRequestID(echo.RequestID) || echo.OrderingKey != echo.RequestID {
		t.Fatalf("defaults: %+v, %v", echo, err)
	}
	it, err := google.OutboxItem(paid(in, "r1", "txn-1"))
	if err != nil {
		t.Fatal(err)
	}
	if it.RequestID != "r1" || it.OrderingKey != "txn-1" || it.Method != otpc.MethodReferenceNumberPaidNotification {
		t.Fatalf("item %+v", it)
	}
	var p otpc.ReferenceNumberPaidNotificationRequest
	if err := p.UnmarshalJSON(it.Payload); err != nil {
		t.Fatal(err)
	}
	if p.RequestHeader.RequestID != it.RequestID || p.RequestHeader.PaymentIntegratorAccountID != "P1" ||
		p.RequestHeader.ProtocolVersion.Major != 2 || !p.RequestHeader.RequestTimestamp.IsZero() {
		t.Fatalf("stored header %+v", p.RequestHeader)
	}
	bad := []google.Notification{
		{MerchantID: "m", PIAID: "P1", Method: otpc.MethodRefundResultNotification, Request: &otpc.RefundResultNotificationRequest{RefundRequestID: "r"}},
		{MerchantID: "m", PIAID: "P1", Method: otpc.MethodGenerateReferenceNumber, Request: &otpc.EchoRequest{ClientMessage: "x"}},
		{MerchantID: "m", PIAID: "P1", Method: otpc.MethodEcho, RequestID: "bad id!", Request: &otpc.EchoRequest{ClientMessage: "x"}},
		{PIAID: "P1", Method: otpc.MethodEcho, Request: &otpc.EchoRequest{ClientMessage: "x"}},
	}
	for i, n := range bad {
		if _, err := google.OutboxItem(n); !errors.Is(err, google.ErrInvalidRequest) {
			t.Errorf("case %d: %v", i, err)
		}
	}
}

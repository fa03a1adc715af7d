package ledger

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// codeIn brings a fresh code txID into state s.
func codeIn(t *testing.T, l *Ledger, txID string, s CodeState) {
	t.Helper()
	createCode(t, l, newCode(txID))
	switch s {
	case CodeIssued:
	case CodePaid:
		payCode(t, l, txID)
	case CodePartiallyRefunded, CodeRefunded:
		payCode(t, l, txID)
		amount := int64(400_000)
		if s == CodeRefunded {
			amount = 1_000_000
		}
		mustApply(t, l, func(tx *Tx) error {
			return tx.AddRefund(Refund{PIAID: testPIAID, RefundID: "pre-" + txID, TransactionID: txID,
				AmountMicros: amount, Currency: "USD", Kind: RefundSync, State: RefundSucceeded})
		})
	case CodeCancelled:
		mustApply(t, l, func(tx *Tx) error { _, err := tx.Cancel(testPIAID, txID); return err })
	case CodeExpired:
		mustApply(t, l, func(tx *Tx) error { _, err := tx.Expire(testPIAID, txID); return err })
	default:
		t.Fatalf("no way to reach %s", s)
	}
	c, err := l.Code(context.Background(), testPIAID, txID)
	if err != nil || c.State != s {
		t.Fatalf("setup: code %s in %s, %v; want %s", txID, c.State, err, s)
	}
}

func TestCodeTransitions(t *testing.T) {
	ctx := context.Background()
	l, _ := openTest(t, Options{})
	pay := func(tx *Tx, id string) (Code, error) {
		return tx.MarkPaid(testPIAID, id, Payment{IntegratorTransactionID: "itx", PaidAt: time.Now()})
	}
	refund := func(tx *Tx, id string) (Code, error) {
		err := tx.AddRefund(Refund{PIAID: testPIAID, RefundID: "rf-" + id, TransactionID: id,
			AmountMicros: 100_000, Currency: "USD", Kind: RefundSync, State: RefundSucceeded})
		if err != nil {
			return Code{}, err
		}
		return tx.Code(testPIAID, id)
	}
	cancel := func(tx *Tx, id string) (Code, error) { return tx.Cancel(testPIAID, id) }
	expire := func(tx *Tx, id string) (Code, error) { return tx.Expire(testPIAID, id) }
	ops := []struct {
		name string
		fn   func(*Tx, string) (Code, error)
	}{{"pay", pay}, {"refund", refund}, {"cancel", cancel}, {"expire", expire}}
	// want[from][op]: the resulting state, or the error.
	type res struct {
		to  CodeState
		err error
	}
	want := map[CodeState]map[string]res{
		CodeIssued: {"pay": {CodePaid, nil}, "refund": {"", ErrNotPaid}, "cancel": {CodeCancelled, nil}, "expire": {CodeExpired, nil}},
		CodePaid: {"pay": {"", ErrInvalidTransition}, "refund": {CodePartiallyRefunded, nil},
			"cancel": {"", ErrAlreadyPaid}, "expire": {"", ErrAlreadyPaid}},
		CodePartiallyRefunded: {"pay": {"", ErrInvalidTransition}, "refund": {CodePartiallyRefunded, nil},
			"cancel": {"", ErrAlreadyPaid}, "expire": {"", ErrAlreadyPaid}},
		CodeRefunded: {"pay": {"", ErrInvalidTransition}, "refund": {"", ErrRefundExceedsRemaining},
			"cancel": {"", ErrAlreadyPaid}, "expire": {"", ErrAlreadyPaid}},
		CodeCancelled: {"pay": {"", ErrInvalidTransition}, "refund": {"", ErrNotPaid},
			"cancel": {"", ErrInvalidTransition}, "expire": {"", ErrInvalidTransition}},
		CodeExpired: {"pay": {"", ErrInvalidTransition}, "refund": {"", ErrNotPaid},
			"cancel": {"", ErrInvalidTransition}, "expire": {"", ErrInvalidTransition}},
	}
	n := 0
	for from, byOp := range want {
		for _, op := range ops {
			w := byOp[op.name]
			n++
			txID := fmt.Sprintf("c%d", n)
			t.Run(string(from)+"/"+op.name, func(t *testing.T) {
				codeIn(t, l, txID, from)
				var got Code
				err := l.Apply(ctx, func(tx *Tx) (err error) { got, err = op.fn(tx, txID); return err })
				if !errors.Is(err, w.err) {
					t.Fatalf("err = %v, want %v", err, w.err)
				}
				stored, rerr := l.Code(ctx, testPIAID, txID)
				if rerr != nil {
					t.Fatal(rerr)
				}
				if w.err != nil {
					if stored.State != from {
						t.Fatalf("refused op changed state to %s", stored.State)
					}
					var se *StateError
					if errors.As(err, &se) && se.From != string(from) {
						t.Fatalf("StateError.From = %s", se.From)
					}
					return
				}
				if got.State != w.to || stored.State != w.to {
					t.Fatalf("state returned %s, stored %s, want %s", got.State, stored.State, w.to)
				}
			})
		}
	}
	if _, err := l.Code(ctx, testPIAID, "never"); !errors.Is(err, ErrUnknownTransaction) {
		t.Fatalf("unknown code: %v", err)
	}
}

func TestCodeCreateAndPayRules(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	l, _ := openTest(t, Options{})
	createCode(t, l, newCode("a"))
	tests := []struct {
		name string
		fn   func(tx *Tx) error
		want error
	}{
		{"duplicate transaction id", func(tx *Tx) error { return tx.CreateCode(newCode("a")) }, ErrDuplicate},
		{"printable of a live code", func(tx *Tx) error {
			c := newCode("b")
			c.Printable = "P-a"
			return tx.CreateCode(c)
		}, ErrPrintableInUse},
		{"zero amount", func(tx *Tx) error { c := newCode("z"); c.AmountMicros = 0; return tx.CreateCode(c) }, ErrInvalidAmount},
		{"unknown PIAID", func(tx *Tx) error { c := newCode("u"); c.PIAID = "ghost"; return tx.CreateCode(c) }, ErrUnknownPIAID},
		{"paid after expiry", func(tx *Tx) error {
			c := newCode("e")
			c.ExpiresAt = now
			if err := tx.CreateCode(c); err != nil {
				return err
			}
			_, err := tx.MarkPaid(testPIAID, "e", Payment{IntegratorTransactionID: "i", PaidAt: now.Add(time.Second)})
			return err
		}, ErrCodeExpired},
		{"paid a different amount", func(tx *Tx) error {
			_, err := tx.MarkPaid(testPIAID, "a", Payment{IntegratorTransactionID: "i", PaidAt: time.Now(), PaidMicros: 5})
			return err
		}, ErrInvalidAmount},
		{"paid in another currency", func(tx *Tx) error {
			_, err := tx.MarkPaid(testPIAID, "a", Payment{IntegratorTransactionID: "i", PaidAt: time.Now(), Currency: "XXX"})
			return err
		}, ErrCurrencyMismatch},
		{"paid before the code existed", func(tx *Tx) error {
			_, err := tx.MarkPaid(testPIAID, "a", Payment{IntegratorTransactionID: "i", PaidAt: time.Now().Add(-time.Hour)})
			return err
		}, ErrInvalidTransition},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := l.Apply(ctx, tc.fn); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	// Once the code is no longer live its printable string may be reused.
	mustApply(t, l, func(tx *Tx) error { _, err := tx.Cancel(testPIAID, "a"); return err })
	c := newCode("b")
	c.Printable = "P-a"
	createCode(t, l, c)
	got, err := l.CodeByPrintable(ctx, testMerchant, "P-a")
	if err != nil || got.TransactionID != "b" {
		t.Fatalf("CodeByPrintable = %+v, %v; want the live code b", got, err)
	}
	payCode(t, l, "b")
	got, _ = l.Code(ctx, testPIAID, "b")
	if got.PaidMicros != got.AmountMicros || got.IntegratorTransactionID != "itx-b" || got.PaidAt.IsZero() {
		t.Fatalf("paid code %+v", got)
	}
}

func TestExpireDue(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	l, _ := openTest(t, Options{})
	for i, exp := range []time.Duration{-time.Hour, -time.Minute, time.Hour} {
		c := newCode(fmt.Sprintf("x%d", i))
		c.ExpiresAt = now.Add(exp)
		createCode(t, l, c)
	}
	createCode(t, l, newCode("forever"))
	got, err := l.ExpireDue(ctx, now, 10)
	if err != nil || len(got) != 2 || got[0].TransactionID != "x0" || got[1].State != CodeExpired {
		t.Fatalf("ExpireDue = %+v, %v", got, err)
	}
	if c, _ := l.Code(ctx, testPIAID, "x2"); c.State != CodeIssued {
		t.Fatalf("future code %s", c.State)
	}
}

func TestRefundTransitions(t *testing.T) {
	ctx := context.Background()
	l, _ := openTest(t, Options{})
	codeIn(t, l, "t", CodePaid)
	add := func(id string, kind RefundKind, st RefundState, amount int64, cur string) error {
		return l.Apply(ctx, func(tx *Tx) error {
			return tx.AddRefund(Refund{PIAID: testPIAID, RefundID: id, TransactionID: "t", AmountMicros: amount,
				Currency: cur, Kind: kind, State: st, Result: []byte(`{"success":{}}`)})
		})
	}
	resolve := func(id string, ok bool) error {
		return l.Apply(ctx, func(tx *Tx) error { _, err := tx.ResolveRefund(testPIAID, id, ok, []byte(`{}`)); return err })
	}
	steps := []struct {
		name string
		do   func() error
		want error
		// after the step: code state and refunded micros
		state    CodeState
		refunded int64
	}{
		{"sync created acknowledged", func() error { return add("bad1", RefundSync, RefundAcknowledged, 1, "USD") }, ErrInvalidTransition, CodePaid, 0},
		{"async created succeeded", func() error { return add("bad2", RefundAsync, RefundSucceeded, 1, "USD") }, ErrInvalidTransition, CodePaid, 0},
		{"created failed", func() error { return add("bad3", RefundAsync, RefundFailed, 1, "USD") }, ErrInvalidTransition, CodePaid, 0},
		{"wrong currency", func() error { return add("bad4", RefundSync, RefundSucceeded, 1, "EUR") }, ErrCurrencyMismatch, CodePaid, 0},
		{"zero amount", func() error { return add("bad5", RefundSync, RefundSucceeded, 0, "USD") }, ErrInvalidAmount, CodePaid, 0},
		{"more than paid", func() error { return add("bad6", RefundSync, RefundSucceeded, 1_000_001, "USD") }, ErrRefundExceedsRemaining, CodePaid, 0},
		{"sync succeeded", func() error { return add("s1", RefundSync, RefundSucceeded, 300_000, "USD") }, nil, CodePartiallyRefunded, 300_000},
		{"sync declined does not count", func() error { return add("s2", RefundSync, RefundDeclined, 700_000, "USD") }, nil, CodePartiallyRefunded, 300_000},
		{"duplicate refund id", func() error { return add("s1", RefundSync, RefundSucceeded, 1, "USD") }, ErrDuplicate, CodePartiallyRefunded, 300_000},
		{"async acknowledged reserves", func() error { return add("a1", RefundAsync, RefundAcknowledged, 500_000, "USD") }, nil, CodePartiallyRefunded, 300_000},
		{"in-flight counts against remaining", func() error { return add("bad7", RefundSync, RefundSucceeded, 200_001, "USD") }, ErrRefundExceedsRemaining, CodePartiallyRefunded, 300_000},
		{"async a1 fails: money freed", func() error { return resolve("a1", false) }, nil, CodePartiallyRefunded, 300_000},
		{"resolve failed again", func() error { return resolve("a1", true) }, ErrInvalidTransition, CodePartiallyRefunded, 300_000},
		{"resolve sync refund", func() error { return resolve("s1", true) }, ErrInvalidTransition, CodePartiallyRefunded, 300_000},
		{"resolve unknown", func() error { return resolve("nope", true) }, ErrNotFound, CodePartiallyRefunded, 300_000},
		{"async a2 acknowledged", func() error { return add("a2", RefundAsync, RefundAcknowledged, 700_000, "USD") }, nil, CodePartiallyRefunded, 300_000},
		{"async a2 succeeds: fully refunded", func() error { return resolve("a2", true) }, nil, CodeRefunded, 1_000_000},
		{"resolve succeeded again", func() error { return resolve("a2", false) }, ErrInvalidTransition, CodeRefunded, 1_000_000},
		{"nothing left", func() error { return add("bad8", RefundSync, RefundSucceeded, 1, "USD") }, ErrRefundExceedsRemaining, CodeRefunded, 1_000_000},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if err := s.do(); !errors.Is(err, s.want) {
				t.Fatalf("err = %v, want %v", err, s.want)
			}
			c, err := l.Code(ctx, testPIAID, "t")
			if err != nil || c.State != s.state || c.RefundedMicros != s.refunded {
				t.Fatalf("code %s refunded %d (%v); want %s %d", c.State, c.RefundedMicros, err, s.state, s.refunded)
			}
		})
	}
	rs, err := l.Refunds(ctx, testPIAID, "t")
	if err != nil || len(rs) != 4 {
		t.Fatalf("Refunds = %d, %v; want 4", len(rs), err)
	}
	r, err := l.Refund(ctx, testPIAID, "a2")
	if err != nil || r.State != RefundSucceeded || r.Kind != RefundAsync {
		t.Fatalf("Refund a2 = %+v, %v", r, err)
	}
	err = l.Apply(ctx, func(tx *Tx) error {
		return tx.AddRefund(Refund{PIAID: testPIAID, RefundID: "u", TransactionID: "ghost", AmountMicros: 1,
			Currency: "USD", Kind: RefundSync, State: RefundSucceeded})
	})
	if !errors.Is(err, ErrUnknownTransaction) {
		t.Fatalf("refund of unknown transaction: %v", err)
	}
}

// Many concurrent refunds race for one paid code through group commit: the
// in-transaction re-read must never let them exceed the paid amount.
func TestRefundInvariantUnderConcurrency(t *testing.T) {
	modes := []struct {
		name string
		opts Options
	}{
		{"group", Options{}},
		{"group with window", Options{GroupWindow: 200 * time.Microsecond}},
		{"single", Options{MaxBatch: 1}},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) { refundRace(t, m.opts) })
	}
}

func refundRace(t *testing.T, opts Options) {
	ctx := context.Background()
	l, _ := openTest(t, opts)
	codeIn(t, l, "hot", CodePaid) // 1,000,000 micros
	const workers, amount = 40, 70_000
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, exceeded := 0, 0
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			kind, state := RefundSync, RefundSucceeded
			if i%2 == 1 {
				kind, state = RefundAsync, RefundAcknowledged
			}
			req := Request{PIAID: testPIAID, RequestID: fmt.Sprintf("rf%d", i), Method: "refund", Hash: hashOf(fmt.Sprint(i))}
			_, _, err := l.Do(ctx, req, func(context.Context) (Outcome, error) {
				// The caller's own pre-check would pass for everyone; the
				// ledger's re-read inside the transaction decides.
				return Outcome{Body: []byte(`{}`), Apply: func(tx *Tx) error {
					return tx.AddRefund(Refund{PIAID: testPIAID, RefundID: req.RequestID, TransactionID: "hot",
						AmountMicros: amount, Currency: "USD", Kind: kind, State: state})
				}}, nil
			})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, ErrRefundExceedsRemaining):
				exceeded++
			default:
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	if want := 1_000_000 / amount; ok != want || exceeded != workers-want {
		t.Fatalf("%d refunds accepted, %d refused; want %d and %d", ok, exceeded, want, workers-want)
	}
	var sum int64
	if err := l.DB().QueryRowContext(ctx, `SELECT SUM(amount_micros) FROM refunds WHERE transaction_id = 'hot'
		AND state IN ('succeeded','acknowledged')`).Scan(&sum); err != nil {
		t.Fatal(err)
	}
	if sum > 1_000_000 {
		t.Fatalf("over-refunded: %d micros", sum)
	}
}

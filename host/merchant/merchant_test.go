package merchant_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/host/devenv"
	"github.com/otpcgate/otpcgate/host/directory"
	"github.com/otpcgate/otpcgate/host/ledger"
	"github.com/otpcgate/otpcgate/host/merchant"
	"github.com/otpcgate/otpcgate/host/plugincall"
	"github.com/otpcgate/otpcgate/host/plugincall/plugincalltest"
	"github.com/otpcgate/otpcgate/host/runtime"
	"github.com/otpcgate/otpcgate/host/runtime/runtimetest"
	"github.com/otpcgate/otpcgate/internal/db"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// Two merchants, each with one issued code of 1,000 JPY whose printable
// string passes konbini's check digit.
var codes = map[string]ledger.Code{
	"m1": {PIAID: "p1", TransactionID: "t1", AccountID: "a1", GPTHash: ledger.GPTHash("g1"), AmountMicros: 1000_000000, Currency: "JPY", Printable: "79927398713"},
	"m2": {PIAID: "p2", TransactionID: "t2", AccountID: "a2", GPTHash: ledger.GPTHash("g2"), AmountMicros: 1000_000000, Currency: "JPY", Printable: "4111111111111111"},
}

type fixture struct {
	s       *merchant.Service
	l       *ledger.Ledger
	plugins *plugincalltest.Counting
	notify  atomic.Int64
}

// newFixture builds the service over real parts: a SQLite ledger, the
// directory's snapshot of two merchants and the konbini plugin in the wasm
// runtime.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	d, err := db.Open(ctx, t.TempDir()+"/merchant.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	l, err := ledger.New(ctx, d, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	dir, err := directory.Open(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	rt := runtimetest.Manager(t, runtime.Options{})
	wasm := runtimetest.Build(t, "../../plugins/konbini")
	for id, c := range codes {
		if err := l.Apply(ctx, func(tx *ledger.Tx) error {
			if err := tx.CreateMerchant(ledger.Merchant{ID: id, Status: ledger.MerchantActive}); err != nil {
				return err
			}
			if err := tx.AddPIAID(c.PIAID, id); err != nil {
				return err
			}
			return tx.CreateCode(c)
		}); err != nil {
			t.Fatal(err)
		}
		if err := dir.PutIntegration(ctx, directory.Integration{MerchantID: id, BasePath: "/" + id, Envelope: "pgp", KeysetID: "ks-" + id}); err != nil {
			t.Fatal(err)
		}
		if _, err := rt.Load(ctx, id, runtime.VersionSpec{Version: "v1", Wasm: wasm, Config: devenv.KonbiniConfig}); err != nil {
			t.Fatal(err)
		}
		if err := rt.Activate(id, "v1"); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := dir.Load(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	var pub directory.Published
	pub.Store(snap)
	f := &fixture{l: l, plugins: &plugincalltest.Counting{Service: plugincall.New(plugincall.Config{}, rt, l)}}
	f.s = merchant.New(merchant.Config{Notify: func() { f.notify.Add(1) }}, l, f.plugins, &pub)
	return f
}

func (f *fixture) queued(t *testing.T) []ledger.OutboxItem {
	t.Helper()
	items, err := f.l.ClaimDue(context.Background(), time.Now().Add(time.Hour), 100)
	if err != nil {
		t.Fatal(err)
	}
	return items
}

func yen(n int64) otpc.Amount { return otpc.Amount{AmountMicros: n * 1_000_000, CurrencyCode: "JPY"} }

// TestReportPaymentRefusals: every report the host or the plugin refuses
// changes nothing — no code paid, nothing queued for Google.
func TestReportPaymentRefusals(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tests := []struct {
		name     string
		merchant string
		p        merchant.Payment
		want     error
		calls    int64 // plugin calls the report may make
	}{
		{"unknown merchant", "ghost", merchant.Payment{Key: "k1", Printable: "79927398713", Amount: yen(1000)}, merchant.ErrNotFound, 0},
		{"key missing", "m1", merchant.Payment{Printable: "79927398713", Amount: yen(1000)}, merchant.ErrInvalid, 0},
		{"key with a space", "m1", merchant.Payment{Key: "k 1", Printable: "79927398713", Amount: yen(1000)}, merchant.ErrInvalid, 0},
		{"zero amount", "m1", merchant.Payment{Key: "k1", Printable: "79927398713", Amount: yen(0)}, merchant.ErrInvalid, 0},
		{"lower-case currency", "m1", merchant.Payment{Key: "k1", Printable: "79927398713", Amount: otpc.Amount{AmountMicros: 1, CurrencyCode: "jpy"}}, merchant.ErrInvalid, 0},
		{"paid in the future", "m1", merchant.Payment{Key: "k1", Printable: "79927398713", Amount: yen(1000), PaidAt: time.Now().Add(time.Hour)}, merchant.ErrInvalid, 0},
		{"no code named", "m1", merchant.Payment{Key: "k1", Amount: yen(1000)}, merchant.ErrInvalid, 0},
		{"another merchant's printable", "m1", merchant.Payment{Key: "k1", Printable: "4111111111111111", Amount: yen(1000)}, merchant.ErrNotFound, 0},
		{"another merchant's PIAID", "m1", merchant.Payment{Key: "k1", PIAID: "p2", TransactionID: "t2", Amount: yen(1000)}, merchant.ErrNotFound, 0},
		{"unknown transaction", "m1", merchant.Payment{Key: "k1", PIAID: "p1", TransactionID: "nope", Amount: yen(1000)}, merchant.ErrNotFound, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := f.plugins.N.Load()
			_, err := f.s.ReportPayment(ctx, tc.merchant, tc.p)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if n := f.plugins.N.Load() - before; n != tc.calls {
				t.Fatalf("%d plugin calls, want %d: the host decides this alone", n, tc.calls)
			}
		})
	}
	if items := f.queued(t); len(items) != 0 || f.notify.Load() != 0 {
		t.Fatalf("refused reports queued %d notifications (notified %d)", len(items), f.notify.Load())
	}
	for id, c := range codes {
		if got, err := f.l.Code(ctx, c.PIAID, c.TransactionID); err != nil || got.State != ledger.CodeIssued {
			t.Fatalf("%s's code after refusals: %v %v", id, got.State, err)
		}
	}
}

// TestReportPayment: a plugin's decline is an answer that changes nothing;
// an accepted payment marks the code paid and queues exactly one paid
// notification in the same transaction; the same report again is
// answered identically without asking the plugin; the key reused for
// another event, or another key for the paid code, is a conflict.
func TestReportPayment(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	res, err := f.s.ReportPayment(ctx, "m1", merchant.Payment{Key: "short", Printable: "79927398713", Amount: yen(999)})
	if err != nil || res.Accepted || res.DeclineReason == "" {
		t.Fatalf("under-payment: %+v %v, want a decline", res, err)
	}
	if c, _ := f.l.Code(ctx, "p1", "t1"); c.State != ledger.CodeIssued {
		t.Fatalf("a declined payment changed the code to %s", c.State)
	}
	if items := f.queued(t); len(items) != 0 {
		t.Fatalf("a decline queued %d notifications", len(items))
	}

	pay := merchant.Payment{Key: "pay-1", PIAID: "p1", TransactionID: "t1", Amount: yen(1000), StoreID: "S1",
		PaidAt: time.Now().Add(-time.Minute).Truncate(time.Millisecond)}
	res, err = f.s.ReportPayment(ctx, "m1", pay)
	if err != nil || !res.Accepted || res.PaymentIntegratorTransactionID != "KNB-79927398713-S1" || res.NotificationRequestID == "" || res.TransactionID != "t1" {
		t.Fatalf("payment: %+v %v", res, err)
	}
	c, err := f.l.Code(ctx, "p1", "t1")
	if err != nil || c.State != ledger.CodePaid || c.PaidMicros != 1000_000000 || !c.PaidAt.Equal(pay.PaidAt) {
		t.Fatalf("code after payment: %+v %v", c, err)
	}
	items := f.queued(t)
	if len(items) != 1 || items[0].Method != otpc.MethodReferenceNumberPaidNotification || items[0].RequestID != res.NotificationRequestID {
		t.Fatalf("queued %+v, want the one paid notification", items)
	}

	calls, notified := f.plugins.N.Load(), f.notify.Load()
	again, err := f.s.ReportPayment(ctx, "m1", pay)
	if err != nil || again != res {
		t.Fatalf("the same report again: %+v %v, want %+v", again, err, res)
	}
	if f.plugins.N.Load() != calls || f.notify.Load() != notified {
		t.Fatal("a replayed report asked the plugin or woke the outbox again")
	}
	changed := pay
	changed.StoreID = "S2"
	if _, err := f.s.ReportPayment(ctx, "m1", changed); !errors.Is(err, merchant.ErrConflict) {
		t.Fatalf("key reused for another event: %v, want ErrConflict", err)
	}
	other := pay
	other.Key = "pay-2"
	if _, err := f.s.ReportPayment(ctx, "m1", other); !errors.Is(err, merchant.ErrConflict) {
		t.Fatalf("a second payment of the paid code: %v, want ErrConflict", err)
	}
	if items := f.queued(t); len(items) != 0 {
		t.Fatalf("replays and conflicts queued %d more notifications", len(items))
	}
	if c2, _ := f.l.Code(ctx, "p2", "t2"); c2.State != ledger.CodeIssued {
		t.Fatalf("m2's code changed to %s", c2.State)
	}
}

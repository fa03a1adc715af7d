package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/host/admin"
	"github.com/otpcgate/otpcgate/host/merchant"
	"github.com/otpcgate/otpcgate/host/sim/googlesim"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// TestCrossMerchantAPI: merchant A's token can neither read nor change
// anything of merchant B through the merchant API — not on B's paths
// (403), and not on A's own paths by naming B's codes, PIAID, refunds or
// statements (404, as if they did not exist) — and every such refusal
// leaves the database and Google untouched. A's event log shows none of
// B's events.
func TestCrossMerchantAPI(t *testing.T) {
	a := newAdminEnv(t, admin.Config{})
	e := a.env
	ctx := context.Background()
	ca := a.client(a.issue(t, "demo-pgp").Secret)
	b := e.jose
	sb := e.seedMerchant(t, b)
	e.seedMerchant(t, e.pgp)
	code, err := e.g.Ledger.Code(ctx, b.PIAID, sb.issued)
	if err != nil {
		t.Fatal(err)
	}
	paidCode, err := e.g.Ledger.Code(ctx, b.PIAID, sb.paid)
	if err != nil {
		t.Fatal(err)
	}
	// B has events of its own: an operator re-activates B's plugin.
	op := a.client(a.operator)
	if err := op.Do(ctx, http.MethodPost, "/v1/merchants/demo-jose/plugins/konbini-test/activate", nil, nil); err != nil {
		t.Fatal(err)
	}
	e.sim.AddStatement(b.PIAID, sb.statement, simStatement(b.PIAID))

	pay := func(key string, p merchant.Payment) merchant.Payment {
		p.Key = key
		p.Amount = otpc.Amount{AmountMicros: code.AmountMicros, CurrencyCode: "JPY"}
		p.PaidAt = time.Now().Add(-time.Second)
		p.StoreID = "till-1"
		return p
	}
	stmtB := "/statements/" + b.PIAID + "/" + sb.statement
	refundB := merchant.RefundOutcome{PIAID: b.PIAID, RefundRequestID: sb.refundID, Success: true}
	cases := []struct {
		name   string
		method string
		path   string
		body   any
		want   int
	}{
		// On A's own paths, naming B's things: not found.
		{"pay B's code by printable", http.MethodPost, "/v1/merchants/demo-pgp/payments",
			pay("x1", merchant.Payment{Printable: code.Printable}), http.StatusNotFound},
		{"pay B's code by PIAID and transaction", http.MethodPost, "/v1/merchants/demo-pgp/payments",
			pay("x2", merchant.Payment{PIAID: b.PIAID, TransactionID: sb.issued}), http.StatusNotFound},
		{"pay B's paid code again", http.MethodPost, "/v1/merchants/demo-pgp/payments",
			pay("x3", merchant.Payment{Printable: paidCode.Printable}), http.StatusNotFound},
		{"report B's refund result", http.MethodPost, "/v1/merchants/demo-pgp/refund-results", refundB, http.StatusNotFound},
		{"read B's statement", http.MethodGet, "/v1/merchants/demo-pgp" + stmtB + "?count=10", nil, http.StatusNotFound},
		{"accept B's statement", http.MethodPost, "/v1/merchants/demo-pgp" + stmtB + "/accept", nil, http.StatusNotFound},
		// On B's paths: forbidden.
		{"pay on B's path", http.MethodPost, "/v1/merchants/demo-jose/payments",
			pay("x4", merchant.Payment{Printable: code.Printable}), http.StatusForbidden},
		{"refund result on B's path", http.MethodPost, "/v1/merchants/demo-jose/refund-results", refundB, http.StatusForbidden},
		{"statement on B's path", http.MethodGet, "/v1/merchants/demo-jose" + stmtB + "?count=10", nil, http.StatusForbidden},
		{"accept on B's path", http.MethodPost, "/v1/merchants/demo-jose" + stmtB + "/accept", nil, http.StatusForbidden},
		{"B's plugins", http.MethodGet, "/v1/merchants/demo-jose/plugins", nil, http.StatusForbidden},
		{"upload B's plugin", http.MethodPost, "/v1/merchants/demo-jose/plugins",
			admin.PluginUpload{Version: "evil", Wasm: []byte("\x00asm")}, http.StatusForbidden},
		{"activate B's plugin", http.MethodPost, "/v1/merchants/demo-jose/plugins/konbini-test/activate", nil, http.StatusForbidden},
		{"roll B's plugin back", http.MethodPost, "/v1/merchants/demo-jose/plugins/rollback", nil, http.StatusForbidden},
		{"B's event log", http.MethodGet, "/v1/merchants/demo-jose/events", nil, http.StatusForbidden},
		{"B's metrics", http.MethodGet, "/v1/merchants/demo-jose/metrics", nil, http.StatusForbidden},
		{"B's keys", http.MethodGet, "/v1/merchants/demo-jose/keys", nil, http.StatusForbidden},
		{"the whole audit log", http.MethodGet, "/v1/audit", nil, http.StatusForbidden},
	}
	before := dbSnapshot(t, e.g.DB)
	callsBefore := len(e.sim.Calls())
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out json.RawMessage
			if got := status(ca.Do(ctx, c.method, c.path, c.body, &out)); got != c.want {
				t.Fatalf("%s %s: status %d, want %d (%s)", c.method, c.path, got, c.want, out)
			}
		})
	}
	e.checkState(t, b, sb)
	assertUnchanged(t, before, dbSnapshot(t, e.g.DB))
	if n := len(e.sim.Calls()); n != callsBefore {
		t.Fatalf("Google received %d calls during the refusals", n-callsBefore)
	}

	// A's event log holds A's events only, although B has some.
	var evA, evB []admin.AuditEntry
	if err := ca.Do(ctx, http.MethodGet, "/v1/merchants/demo-pgp/events", nil, &evA); err != nil {
		t.Fatal(err)
	}
	if err := op.Do(ctx, http.MethodGet, "/v1/merchants/demo-jose/events", nil, &evB); err != nil {
		t.Fatal(err)
	}
	if len(evB) == 0 {
		t.Fatal("B has no events: the check below proves nothing")
	}
	for _, ev := range evA {
		if ev.Subject != admin.MerchantSubject("demo-pgp") {
			t.Fatalf("A's event log shows %+v", ev)
		}
	}

	// A can still do all of it for itself: the refusals above were about
	// ownership, not broken requests.
	sa := e.seedMerchant(t, e.pgp)
	own, err := e.g.Ledger.Code(ctx, e.pgp.PIAID, sa.issued)
	if err != nil {
		t.Fatal(err)
	}
	var res merchant.PaymentResult
	if err := ca.Do(ctx, http.MethodPost, "/v1/merchants/demo-pgp/payments",
		pay("own-1", merchant.Payment{Printable: own.Printable}), &res); err != nil || !res.Accepted {
		t.Fatalf("A pays its own code: %+v %v", res, err)
	}
	if err := ca.Do(ctx, http.MethodPost, "/v1/merchants/demo-pgp/refund-results",
		merchant.RefundOutcome{PIAID: e.pgp.PIAID, RefundRequestID: sa.refundID, Success: true}, nil); err != nil {
		t.Fatalf("A reports its own refund: %v", err)
	}
}

// simStatement is a statement the simulated Google can page through.
func simStatement(piaid string) googlesim.Statement {
	return googlesim.Statement{Summary: statementRequest(otpc.RequestHeader{PaymentIntegratorAccountID: piaid}).RemittanceStatementSummary}
}

package gateway

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/host/ledger"
	"github.com/otpcgate/otpcgate/host/protocol"
	"github.com/otpcgate/otpcgate/host/sim"
	"github.com/otpcgate/otpcgate/internal/db"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// dbSnapshot digests every row of every table of the gateway's database,
// per table, so a test can show that a refused request changed nothing:
// no code, idempotency record, refund, association, statement, plugin KV,
// outbox item or audit entry. admin_tokens is left out: authenticating a
// token stamps its last use, which is not business state; so are the
// admin API's shared rate counters (login_failures rows of the admin-*
// scopes, written on PostgreSQL for every request).
func dbSnapshot(t testing.TB, d *sql.DB) map[string]string {
	t.Helper()
	ctx := context.Background()
	q := `SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`
	if db.EngineOf(d) == db.Postgres {
		q = `SELECT table_name FROM information_schema.tables
			WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1`
	}
	rows, err := d.QueryContext(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != "admin_tokens" {
			tables = append(tables, n)
		}
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	out := make(map[string]string, len(tables))
	for _, table := range tables {
		q := `SELECT * FROM "` + table + `"`
		if table == "login_failures" {
			q += ` WHERE merchant_id NOT LIKE 'admin-%'`
		}
		rs, err := d.QueryContext(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rs.Columns()
		var lines []string
		for rs.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rs.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			lines = append(lines, fmt.Sprintf("%q", vals))
		}
		if err := rs.Close(); err != nil {
			t.Fatal(err)
		}
		slices.Sort(lines) // row order is not part of the state
		sum := sha256.Sum256([]byte(strings.Join(lines, "\n")))
		out[table] = fmt.Sprintf("%d rows %s", len(lines), hex.EncodeToString(sum[:8]))
	}
	return out
}

// assertUnchanged fails with the tables whose content differs.
func assertUnchanged(t testing.TB, before, after map[string]string) {
	t.Helper()
	var changed []string
	for table, b := range before {
		if a := after[table]; a != b {
			changed = append(changed, fmt.Sprintf("%s: %s -> %s", table, b, a))
		}
	}
	for table, a := range after {
		if _, ok := before[table]; !ok {
			changed = append(changed, fmt.Sprintf("%s: new table, %s", table, a))
		}
	}
	if len(changed) > 0 {
		slices.Sort(changed)
		t.Fatalf("refused requests changed the database:\n%s", strings.Join(changed, "\n"))
	}
}

// merchantState is what merchant B owns in the ledger before A's path is
// tried with it.
type merchantState struct {
	issued    string // transaction id of an issued code
	paid      string // transaction id of a paid code
	refundID  string // an acknowledged asynchronous refund of paid
	statement string // a notified remittance statement
	authID    string // a successful web authentication not yet consumed
}

// seedMerchant gives tg real state of every kind an integrator-hosted
// method can refer to, through the gateway itself.
func (e *env) seedMerchant(t *testing.T, tg *sim.Target) merchantState {
	t.Helper()
	ctx := context.Background()
	var s merchantState
	hdr, _ := e.generate(tg, 1000_000000)
	s.issued = hdr.RequestID
	hdr, _ = e.generate(tg, 2000_000000)
	s.paid = hdr.RequestID
	e.pay(tg, s.paid, 2000_000000)
	async := &otpc.RefundRequest{RequestHeader: e.client.Header(tg), TransactionID: s.paid,
		RefundAmount: otpc.Amount{AmountMicros: 300_000000, CurrencyCode: "JPY"}}
	if res, err := e.client.Call(ctx, tg, otpc.MethodAsynchronousRefund, async, nil); err != nil || res.Status != http.StatusOK {
		t.Fatalf("seed asynchronousRefund: %v %+v", err, res)
	}
	s.refundID = async.RequestHeader.RequestID
	stmt := statementRequest(e.client.Header(tg))
	if res, err := e.client.Call(ctx, tg, otpc.MethodRemittanceStatementNotification, stmt, nil); err != nil || res.Status != http.StatusOK {
		t.Fatalf("seed remittanceStatementNotification: %v %+v", err, res)
	}
	s.statement = stmt.RequestHeader.RequestID
	s.authID = "auth-" + sim.NewRequestID()
	if err := e.g.Ledger.Apply(ctx, func(tx *ledger.Tx) error {
		return tx.SaveAuthSession(ledger.AuthSession{AuthRequestID: s.authID, PIAID: tg.PIAID,
			AccountID: "account-of-" + e.merchant(tg).ID, Result: protocol.AuthSuccess})
	}); err != nil {
		t.Fatal(err)
	}
	return s
}

func statementRequest(h otpc.RequestHeader) *otpc.RemittanceStatementNotificationRequest {
	now := time.Now()
	return &otpc.RemittanceStatementNotificationRequest{RequestHeader: h,
		RemittanceStatementSummary: otpc.RemittanceStatementSummary{
			StatementDate:        otpc.TimestampOf(now),
			BillingPeriod:        otpc.BillingPeriod{StartDate: otpc.TimestampOf(now.Add(-48 * time.Hour)), EndDate: otpc.TimestampOf(now.Add(-24 * time.Hour))},
			DateDue:              otpc.TimestampOf(now.Add(72 * time.Hour)),
			TotalDueByIntegrator: otpc.Amount{AmountMicros: 1000_000000, CurrencyCode: "JPY"},
		}}
}

// checkState asserts that B's seeded state is exactly as seeded.
func (e *env) checkState(t *testing.T, tg *sim.Target, s merchantState) {
	t.Helper()
	ctx := context.Background()
	if c, err := e.g.Ledger.Code(ctx, tg.PIAID, s.issued); err != nil || c.State != ledger.CodeIssued {
		t.Errorf("%s's issued code: state %s %v", tg.PIAID, c.State, err)
	}
	if c, err := e.g.Ledger.Code(ctx, tg.PIAID, s.paid); err != nil || c.State != ledger.CodePaid {
		t.Errorf("%s's paid code: state %s %v", tg.PIAID, c.State, err)
	}
	if r, err := e.g.Ledger.Refund(ctx, tg.PIAID, s.refundID); err != nil || r.State != ledger.RefundAcknowledged {
		t.Errorf("%s's refund: state %s %v", tg.PIAID, r.State, err)
	}
	if st, err := e.g.Ledger.Statement(ctx, tg.PIAID, s.statement); err != nil || st.State != ledger.StatementNotified {
		t.Errorf("%s's statement: state %s %v", tg.PIAID, st.State, err)
	}
}

// TestCrossMerchantPIAID: a request on merchant A's base path, sealed with
// A's keys, that names merchant B's real PIAID is refused for every
// integrator-hosted method with 404 invalidIdentifier (spec §9.3 step 8:
// the PIAID is not known on this path), sealed for Google, and leaves the
// database exactly as it was. A's own PIAID with B's transaction ids,
// tokens or authentication is refused the same way and changes nothing of
// B's. Both envelopes, both directions.
func TestCrossMerchantPIAID(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, dir := range []struct{ a, b *sim.Target }{{e.pgp, e.jose}, {e.jose, e.pgp}} {
		a, b := dir.a, dir.b
		ma, mb := e.merchant(a), e.merchant(b)
		t.Run(ma.ID+"_path_"+mb.ID+"_data", func(t *testing.T) {
			sb := e.seedMerchant(t, b)
			e.seedMerchant(t, a) // A has live state of its own too
			gptB := otpc.GooglePaymentToken{IssuerID: otpc.IssuerID{Value: mb.DemoIssuer}, Token: mb.DemoToken}
			jpy := func(m int64) otpc.Amount { return otpc.Amount{AmountMicros: m, CurrencyCode: "JPY"} }
			// hdr is a header for A's path naming piaid.
			hdr := func(piaid string) otpc.RequestHeader {
				h := e.client.Header(a)
				h.PaymentIntegratorAccountID = piaid
				return h
			}
			// Every integrator-hosted method, each naming B's real data.
			requests := func(piaid string) []struct {
				method string
				req    otpc.Message
			} {
				return []struct {
					method string
					req    otpc.Message
				}{
					{otpc.MethodEcho, &otpc.EchoRequest{RequestHeader: hdr(piaid), ClientMessage: "cross-merchant"}},
					{otpc.MethodGenerateReferenceNumber, &otpc.GenerateReferenceNumberRequest{RequestHeader: hdr(piaid),
						GooglePaymentToken: gptB, TransactionDescription: "Google - cross", Amount: jpy(500_000000)}},
					{otpc.MethodCancelReferenceNumber, &otpc.CancelReferenceNumberRequest{RequestHeader: hdr(piaid),
						GenerateReferenceNumberRequestID: sb.issued}},
					{otpc.MethodRefund, &otpc.RefundRequest{RequestHeader: hdr(piaid), TransactionID: sb.paid, RefundAmount: jpy(100_000000)}},
					{otpc.MethodAsynchronousRefund, &otpc.RefundRequest{RequestHeader: hdr(piaid), TransactionID: sb.paid, RefundAmount: jpy(100_000000)}},
					{otpc.MethodAssociateAccount, &otpc.AssociateAccountRequest{RequestHeader: hdr(piaid),
						GooglePaymentToken:      otpc.GooglePaymentToken{IssuerID: otpc.IssuerID{Value: "issuer"}, Token: "token-" + sim.NewRequestID()},
						AuthenticationRequestID: sb.authID, AssociationID: "assoc-" + sim.NewRequestID()}},
					{otpc.MethodRemittanceStatementNotification, statementRequest(hdr(piaid))},
				}
			}
			before := dbSnapshot(t, e.g.DB)

			// B's PIAID on A's path.
			served := map[string]bool{}
			for _, c := range requests(b.PIAID) {
				served[c.method] = true
				t.Run("piaid_of_B/"+c.method, func(t *testing.T) {
					res, err := e.client.Call(ctx, a, c.method, c.req, nil)
					if err != nil {
						t.Fatal(err)
					}
					// res.Error is set only if the body opened with A's
					// simulated Google keys: the refusal is sealed.
					if res.Status != http.StatusNotFound || res.Error == nil || res.Member() != "invalidIdentifier" {
						t.Fatalf("status %d member %q sealed %v, want 404 invalidIdentifier, sealed (%s)",
							res.Status, res.Member(), res.Error != nil, res.Plaintext)
					}
					if got := res.Error.ErrorResponseResult.InvalidIdentifier.InvalidIdentifierType; got != "paymentIntegratorAccountId" {
						t.Fatalf("invalidIdentifierType %q, want paymentIntegratorAccountId", got)
					}
				})
			}
			// The table covers every method the gateway serves.
			for _, m := range []string{otpc.MethodEcho, otpc.MethodAssociateAccount, otpc.MethodGenerateReferenceNumber,
				otpc.MethodCancelReferenceNumber, otpc.MethodRefund, otpc.MethodAsynchronousRefund,
				otpc.MethodRemittanceStatementNotification} {
				if otpc.NewIntegratorRequest(m) == nil || !served[m] {
					t.Fatalf("method %s not covered", m)
				}
			}

			// A's own PIAID, B's transactions, token and authentication.
			for _, c := range requests(a.PIAID) {
				if c.method == otpc.MethodEcho || c.method == otpc.MethodRemittanceStatementNotification {
					continue // name nothing of B's
				}
				t.Run("ids_of_B/"+c.method, func(t *testing.T) {
					res, err := e.client.Call(ctx, a, c.method, c.req, nil)
					if err != nil {
						t.Fatal(err)
					}
					if res.Status != http.StatusNotFound || res.Error == nil || res.Member() != "invalidIdentifier" {
						t.Fatalf("status %d member %q sealed %v, want 404 invalidIdentifier, sealed (%s)",
							res.Status, res.Member(), res.Error != nil, res.Plaintext)
					}
				})
			}
			e.checkState(t, b, sb)
			assertUnchanged(t, before, dbSnapshot(t, e.g.DB))

			// The idempotency key is (PIAID, requestId): A reusing the
			// requestId of B's code is a new request of A's, never a replay
			// of B's stored answer.
			codeB, err := e.g.Ledger.Code(ctx, b.PIAID, sb.issued)
			if err != nil {
				t.Fatal(err)
			}
			reuse := &otpc.GenerateReferenceNumberRequest{RequestHeader: e.client.Header(a),
				GooglePaymentToken:     otpc.GooglePaymentToken{IssuerID: otpc.IssuerID{Value: ma.DemoIssuer}, Token: ma.DemoToken},
				TransactionDescription: "Google - reuse", Amount: jpy(1000_000000)}
			reuse.RequestHeader.RequestID = sb.issued
			var gen otpc.GenerateReferenceNumberResponse
			res, err := e.client.Call(ctx, a, otpc.MethodGenerateReferenceNumber, reuse, &gen)
			if err != nil || res.Status != http.StatusOK || gen.Result.Success == nil {
				t.Fatalf("A reusing B's requestId: %v status %d %s", err, res.Status, res.Plaintext)
			}
			if got := printable(gen.Result.Success.DisplayableReferenceNumber); got == codeB.Printable {
				t.Fatalf("A was answered with B's code %s", got)
			}
			if c, err := e.g.Ledger.Code(ctx, a.PIAID, sb.issued); err != nil || c.MerchantID != ma.ID {
				t.Fatalf("A's code under the reused requestId: merchant %q %v", c.MerchantID, err)
			}
			e.checkState(t, b, sb)
		})
	}
}

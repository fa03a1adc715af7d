package gateway

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/host/admin"
	"github.com/otpcgate/otpcgate/host/merchant"
	"github.com/otpcgate/otpcgate/host/server"
	"github.com/otpcgate/otpcgate/host/sim/googlesim"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// TestMerchantAPI drives the merchant-side events over the admin listener
// with merchant tokens: a payment at a store reaches Google as a verified
// paid notification, the same report replays, bad input is a clear 4xx
// and one merchant cannot report for another.
func TestMerchantAPI(t *testing.T) {
	a := newAdminEnv(t, admin.Config{})
	e := a.env
	ctx := context.Background()
	pgpTok, joseTok := a.issue(t, "demo-pgp"), a.issue(t, "demo-jose")
	pgp := a.client(pgpTok.Secret)

	hdr, gen := e.generate(e.pgp, 1800_000000)
	report := merchant.Payment{Key: "till-42-0001", Printable: printable(gen.Result.Success.DisplayableReferenceNumber),
		Amount: otpc.Amount{AmountMicros: 1800_000000, CurrencyCode: "JPY"}, PaidAt: time.Now().Add(-time.Second), StoreID: "till-42"}
	var res merchant.PaymentResult
	if err := pgp.Do(ctx, http.MethodPost, "/v1/merchants/demo-pgp/payments", report, &res); err != nil {
		t.Fatal(err)
	}
	if !res.Accepted || res.TransactionID != hdr.RequestID || res.NotificationRequestID == "" {
		t.Fatalf("payment result %+v", res)
	}
	n := findCall(t, e.sim, otpc.MethodReferenceNumberPaidNotification, res.NotificationRequestID)
	if got := n.Request.(*otpc.ReferenceNumberPaidNotificationRequest).GenerateReferenceNumberRequestID; got != hdr.RequestID {
		t.Fatalf("Google was told about %s, want %s", got, hdr.RequestID)
	}
	var again merchant.PaymentResult
	if err := pgp.Do(ctx, http.MethodPost, "/v1/merchants/demo-pgp/payments", report, &again); err != nil || again != res {
		t.Fatalf("replayed report: %+v %v", again, err)
	}

	for _, c := range []struct {
		name   string
		client *admin.Client
		path   string
		body   any
		status int
	}{
		{"another merchant's token", a.client(joseTok.Secret), "/v1/merchants/demo-pgp/payments", report, http.StatusForbidden},
		{"no token", a.client(""), "/v1/merchants/demo-pgp/payments", report, http.StatusUnauthorized},
		{"code of another merchant", a.client(joseTok.Secret), "/v1/merchants/demo-jose/payments", report, http.StatusNotFound},
		{"key reused for another payment", pgp, "/v1/merchants/demo-pgp/payments",
			merchant.Payment{Key: report.Key, Printable: report.Printable, Amount: otpc.Amount{AmountMicros: 1, CurrencyCode: "JPY"}}, http.StatusConflict},
		{"unknown code", pgp, "/v1/merchants/demo-pgp/payments",
			merchant.Payment{Key: "k2", Printable: "000", Amount: report.Amount}, http.StatusNotFound},
		{"bad key", pgp, "/v1/merchants/demo-pgp/payments",
			merchant.Payment{Key: "no spaces allowed", Printable: report.Printable, Amount: report.Amount}, http.StatusBadRequest},
		{"payment dated in the future", pgp, "/v1/merchants/demo-pgp/payments",
			merchant.Payment{Key: "k4", Printable: report.Printable, Amount: report.Amount, PaidAt: time.Now().Add(time.Hour)}, http.StatusBadRequest},
		{"unknown field", pgp, "/v1/merchants/demo-pgp/payments", map[string]any{"key": "k3", "surprise": 1}, http.StatusBadRequest},
		{"unknown refund", pgp, "/v1/merchants/demo-pgp/refund-results",
			merchant.RefundOutcome{PIAID: e.pgp.PIAID, RefundRequestID: "nope", Success: true}, http.StatusNotFound},
		{"unknown statement", pgp, "/v1/merchants/demo-pgp/statements/" + e.pgp.PIAID + "/nope/accept", nil, http.StatusNotFound},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.client.Do(ctx, http.MethodPost, c.path, c.body, nil)
			if got := status(err); got != c.status {
				t.Fatalf("status %d (%v), want %d", got, err, c.status)
			}
		})
	}

	// An asynchronous refund reported over HTTP reaches Google.
	refReq := &otpc.RefundRequest{RequestHeader: e.client.Header(e.pgp), TransactionID: hdr.RequestID,
		RefundAmount: otpc.Amount{AmountMicros: 800_000000, CurrencyCode: "JPY"}}
	if r, err := e.client.Call(ctx, e.pgp, otpc.MethodAsynchronousRefund, refReq, nil); err != nil || r.Status != 200 {
		t.Fatalf("asynchronousRefund: %v %+v", err, r)
	}
	var out merchant.RefundOutcomeResult
	if err := pgp.Do(ctx, http.MethodPost, "/v1/merchants/demo-pgp/refund-results",
		merchant.RefundOutcome{PIAID: e.pgp.PIAID, RefundRequestID: refReq.RequestHeader.RequestID, Success: true}, &out); err != nil {
		t.Fatal(err)
	}
	findCall(t, e.sim, otpc.MethodRefundResultNotification, out.NotificationRequestID)

	// A statement: details from Google, then accepted.
	stmt := &otpc.RemittanceStatementNotificationRequest{RequestHeader: e.client.Header(e.pgp),
		RemittanceStatementSummary: otpc.RemittanceStatementSummary{StatementDate: otpc.TimestampOf(time.Now()),
			BillingPeriod: otpc.BillingPeriod{StartDate: otpc.TimestampOf(time.Now().Add(-48 * time.Hour)), EndDate: otpc.TimestampOf(time.Now())},
			DateDue:       otpc.TimestampOf(time.Now().Add(48 * time.Hour)), TotalDueByIntegrator: otpc.Amount{AmountMicros: 5_000000, CurrencyCode: "JPY"}}}
	e.sim.AddStatement(e.pgp.PIAID, stmt.RequestHeader.RequestID, googlesim.Statement{Summary: stmt.RemittanceStatementSummary})
	if r, err := e.client.Call(ctx, e.pgp, otpc.MethodRemittanceStatementNotification, stmt, nil); err != nil || r.Status != 200 {
		t.Fatalf("remittanceStatementNotification: %v %+v", err, r)
	}
	base := "/v1/merchants/demo-pgp/statements/" + e.pgp.PIAID + "/" + stmt.RequestHeader.RequestID
	var details otpc.RemittanceStatementDetailsResponse
	if err := pgp.Do(ctx, http.MethodGet, base+"?count=10", nil, &details); err != nil ||
		details.RemittanceStatementSummary.TotalDueByIntegrator.AmountMicros != 5_000000 {
		t.Fatalf("details: %+v %v", details, err)
	}
	var acc merchant.AcceptanceResult
	if err := pgp.Do(ctx, http.MethodPost, base+"/accept", nil, &acc); err != nil {
		t.Fatal(err)
	}
	findCall(t, e.sim, otpc.MethodAcceptRemittanceStatement, acc.NotificationRequestID)
}

// TestMerchantAPIUnderAdmission: a store payment calls the merchant's
// plugin through the same fair admission limiter as Google's requests: with
// every slot taken it is refused (503, nothing recorded) instead of running
// beside them, and it goes through once a slot is free.
func TestMerchantAPIUnderAdmission(t *testing.T) {
	lim := server.NewLimiter(server.LimiterConfig{MaxInFlight: 1, MaxQueue: 1, MaxWait: 50 * time.Millisecond})
	a := newAdminEnv(t, admin.Config{}, func(o *Options) { o.Admission = lim })
	e := a.env
	ctx := context.Background()
	pgp := a.client(a.issue(t, "demo-pgp").Secret)
	_, gen := e.generate(e.pgp, 1800_000000)
	report := merchant.Payment{Key: "till-7-0001", Printable: printable(gen.Result.Success.DisplayableReferenceNumber),
		Amount: otpc.Amount{AmountMicros: 1800_000000, CurrencyCode: "JPY"}, PaidAt: time.Now().Add(-time.Second), StoreID: "till-7"}

	release, err := lim.AcquireFor(ctx, "another-merchant")
	if err != nil {
		t.Fatal(err)
	}
	err = pgp.Do(ctx, http.MethodPost, "/v1/merchants/demo-pgp/payments", report, nil)
	if got := status(err); got != http.StatusServiceUnavailable {
		release()
		t.Fatalf("payment with every slot taken: %d %v, want 503", got, err)
	}
	release()
	var res merchant.PaymentResult
	if err := pgp.Do(ctx, http.MethodPost, "/v1/merchants/demo-pgp/payments", report, &res); err != nil || !res.Accepted {
		t.Fatalf("payment with a free slot: %+v %v", res, err)
	}
}

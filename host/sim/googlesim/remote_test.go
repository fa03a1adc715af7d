package googlesim_test

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/host/sim/googlesim"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// TestRemoteGoogle observes a simulated Google through its hooks over TLS,
// the way `otpcgate sim run` observes a dev gateway's: statements
// registered remotely are served, calls come back parsed and in order,
// acceptances are seen, and failures are reported, never hidden.
func TestRemoteGoogle(t *testing.T) {
	e := newGoogleSimEnv(t)
	hooks := httptest.NewTLSServer(http.StripPrefix("/sim-google", googlesim.Hooks(e.g)))
	t.Cleanup(hooks.Close)
	rg := googlesim.NewRemote(hooks.URL+"/sim-google/", hooks.Client())
	if err := rg.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	if calls := rg.Calls(); len(calls) != 0 || rg.Err() != nil {
		t.Fatalf("fresh Google: %d calls, %v", len(calls), rg.Err())
	}

	summary := otpc.RemittanceStatementSummary{
		StatementDate: otpc.TimestampOf(time.Now()), DateDue: otpc.TimestampOf(time.Now()),
		BillingPeriod:        otpc.BillingPeriod{StartDate: otpc.TimestampOf(time.Now()), EndDate: otpc.TimestampOf(time.Now())},
		TotalDueByIntegrator: otpc.Amount{AmountMicros: -2_500000, CurrencyCode: "JPY"}}
	rg.AddStatement(googleSimPIAID, "remote-1", googlesim.Statement{Summary: summary, Events: []googlesim.Event{
		{Event: otpc.Event{EventRequestID: "cap-1", PaymentIntegratorEventID: "p1"}},
		{Kind: "refund", Event: otpc.Event{EventRequestID: "ref-1", PaymentIntegratorEventID: "p2",
			EventCharge: &otpc.Amount{AmountMicros: -1_000000, CurrencyCode: "JPY"}}},
	}})
	if rg.Err() != nil {
		t.Fatal(rg.Err())
	}
	if _, ok := rg.Accepted(googleSimPIAID, "remote-1"); ok {
		t.Fatal("accepted before anyone accepted it")
	}

	status, pt := e.call(t, otpc.MethodRemittanceStatementDetails, &otpc.RemittanceStatementDetailsRequest{
		RequestHeader: e.header("details-1"), StatementID: "remote-1", NumberOfEvents: 10})
	var details otpc.RemittanceStatementDetailsResponse
	if status != 200 || details.UnmarshalJSON(pt) != nil {
		t.Fatalf("details: HTTP %d %s", status, pt)
	}
	if details.RemittanceStatementSummary.TotalDueByIntegrator != summary.TotalDueByIntegrator || len(details.CaptureEvents) != 1 ||
		len(details.RefundEvents) != 1 || details.RefundEvents[0].EventCharge.AmountMicros != -1_000000 {
		t.Fatalf("statement registered remotely came back as %s", pt)
	}
	first := rg.Calls()
	if status, _ := e.call(t, otpc.MethodAcceptRemittanceStatement, &otpc.AcceptRemittanceStatementRequest{
		RequestHeader: e.header("accept-1"), StatementID: "remote-1"}); status != 200 {
		t.Fatalf("accept: HTTP %d", status)
	}
	if method, ok := rg.Accepted(googleSimPIAID, "remote-1"); !ok || method != otpc.MethodAcceptRemittanceStatement {
		t.Fatalf("Accepted = %q %v (%v)", method, ok, rg.Err())
	}

	calls := rg.Calls() // the second fetch asks only for the new call
	local := e.g.Calls()
	if len(first) != 1 || len(calls) != 2 || len(local) != 2 {
		t.Fatalf("calls: first %d, then %d; Google has %d", len(first), len(calls), len(local))
	}
	for i, c := range calls {
		l := local[i]
		if c.Method != l.Method || c.PIAID != l.PIAID || c.RequestID != l.RequestID || !c.At.Equal(l.At) || !bytes.Equal(c.Plaintext, l.Plaintext) {
			t.Errorf("call %d: remote %s %s %s %v, local %s %s %s %v", i, c.Method, c.PIAID, c.RequestID, c.At, l.Method, l.PIAID, l.RequestID, l.At)
		}
	}
	if req, ok := calls[1].Request.(*otpc.AcceptRemittanceStatementRequest); !ok || req.StatementID != "remote-1" || req.RequestHeader.RequestID != "accept-1" {
		t.Fatalf("accept call parsed as %#v", calls[1].Request)
	}

	// Bad input to the hooks is refused with a 400.
	for _, c := range []struct{ method, path, body string }{
		{http.MethodGet, "/sim-google/_calls?since=-1", ""},
		{http.MethodPost, "/sim-google/_statements", `{"piaid":"x"}`},
		{http.MethodPost, "/sim-google/_statements", `not json`},
	} {
		req, _ := http.NewRequestWithContext(t.Context(), c.method, hooks.URL+c.path, strings.NewReader(c.body))
		res, err := hooks.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("%s %s %s: HTTP %d, want 400", c.method, c.path, c.body, res.StatusCode)
		}
	}

	// A listener without the hooks (production-like) is an error, not an
	// empty Google.
	bare := googlesim.NewRemote(e.srv.URL+"/deep", e.srv.Client())
	if err := bare.Ping(t.Context()); !errors.Is(err, googlesim.ErrRemote) {
		t.Fatalf("Ping without hooks: %v", err)
	}
	if _, ok := bare.Accepted(googleSimPIAID, "remote-1"); ok || !errors.Is(bare.Err(), googlesim.ErrRemote) {
		t.Fatalf("Accepted without hooks: %v %v", ok, bare.Err())
	}
}

package googlesim_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/host/envelope"
	"github.com/otpcgate/otpcgate/host/sim/googlesim"
	"github.com/otpcgate/otpcgate/keystore"
	"github.com/otpcgate/otpcgate/keystore/keystoretest"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// googleSimEnv is one PGP integration and a simulated Google serving it
// over TLS under an arbitrary prefix.
type googleSimEnv struct {
	g        *googlesim.Google
	srv      *httptest.Server
	codec    envelope.Codec
	merchant func(ctx context.Context) (*keystore.Keyset, error)
	base     string
}

const googleSimPIAID = "SIM_TEST_PIAID"

func newGoogleSimEnv(t *testing.T) *googleSimEnv {
	t.Helper()
	st, _ := keystoretest.Open(t)
	pair := keystoretest.Exchange(t, st, keystore.KindPGP)
	codec, err := envelope.New(envelope.FormatPGP, envelope.Config{})
	if err != nil {
		t.Fatal(err)
	}
	keyset := func(id string) func(context.Context) (*keystore.Keyset, error) {
		return func(ctx context.Context) (*keystore.Keyset, error) { return st.Keyset(ctx, id) }
	}
	g := googlesim.New(googlesim.Config{})
	g.AddAccount(googlesim.Account{PIAID: googleSimPIAID, Codec: codec, Keyset: keyset(pair.Google)})
	srv := httptest.NewTLSServer(http.StripPrefix("/deep", g))
	t.Cleanup(srv.Close)
	return &googleSimEnv{g: g, srv: srv, codec: codec, merchant: keyset(pair.Ours),
		base: srv.URL + "/deep/any/prefix" + otpc.PathPrefix}
}

func (e *googleSimEnv) header(requestID string) otpc.RequestHeader {
	return otpc.RequestHeader{RequestID: requestID, RequestTimestamp: otpc.TimestampOf(time.Now()),
		ProtocolVersion: otpc.Version{Major: 2}, PaymentIntegratorAccountID: googleSimPIAID}
}

// post sends raw to method/piaid and returns the status and body.
func (e *googleSimEnv) post(t *testing.T, httpMethod, path string, raw []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(httpMethod, e.base+path, bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, body
}

// call seals msg with the merchant's keys, posts it, and opens the answer.
func (e *googleSimEnv) call(t *testing.T, method string, msg otpc.Message) (int, []byte) {
	t.Helper()
	ks, err := e.merchant(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	body, err := e.codec.Seal(context.Background(), ks, msg.AppendJSON(nil))
	if err != nil {
		t.Fatal(err)
	}
	status, raw := e.post(t, http.MethodPost, method+"/"+googleSimPIAID, body)
	if len(raw) == 0 {
		return status, nil
	}
	opened, err := e.codec.Open(context.Background(), ks, raw)
	if err != nil {
		t.Fatalf("HTTP %d body does not open: %v", status, err)
	}
	return status, opened.Plaintext
}

func errorMember(t *testing.T, plaintext []byte) string {
	t.Helper()
	var er otpc.ErrorResponse
	if err := er.UnmarshalJSON(plaintext); err != nil || er.ErrorResponseResult == nil {
		t.Fatalf("not an ErrorResponse: %v", err)
	}
	b := string(er.ErrorResponseResult.AppendJSON(nil))
	name, _, _ := strings.Cut(strings.TrimPrefix(b, `{"`), `"`)
	return name
}

func TestSimulatedGoogle(t *testing.T) {
	e := newGoogleSimEnv(t)
	echo := func(id, msg string) *otpc.EchoRequest {
		return &otpc.EchoRequest{RequestHeader: e.header(id), ClientMessage: msg}
	}

	t.Run("routing and generic refusals", func(t *testing.T) {
		for _, tc := range []struct {
			httpMethod, path string
			body             []byte
			status           int
		}{
			{http.MethodGet, "echo/" + googleSimPIAID, nil, 405},
			{http.MethodPost, "refund/" + googleSimPIAID, []byte("x"), 404}, // integrator-hosted method
			{http.MethodPost, "echo", []byte("x"), 404},
			{http.MethodPost, "echo/NOBODY", []byte("x"), 404},
			{http.MethodPost, "echo/" + googleSimPIAID, []byte("not a pgp message"), 404},
		} {
			status, body := e.post(t, tc.httpMethod, tc.path, tc.body)
			if status != tc.status || len(body) != 0 {
				t.Errorf("%s %s: HTTP %d with %d body bytes, want %d and an empty body", tc.httpMethod, tc.path, status, len(body), tc.status)
			}
		}
	})

	t.Run("echo, replay, idempotency violation", func(t *testing.T) {
		status, pt := e.call(t, otpc.MethodEcho, echo("echo-1", "hi"))
		var r otpc.EchoResponse
		if status != 200 || r.UnmarshalJSON(pt) != nil || r.Validate() != nil || r.ClientMessage != "hi" {
			t.Fatalf("HTTP %d %s", status, pt)
		}
		// Same request, later timestamp: replayed, not processed again.
		again := echo("echo-1", "hi")
		again.RequestHeader.RequestTimestamp.EpochMillis += 1500
		if status, _ := e.call(t, otpc.MethodEcho, again); status != 200 {
			t.Fatalf("replay: HTTP %d", status)
		}
		status, pt = e.call(t, otpc.MethodEcho, echo("echo-1", "changed"))
		if status != 412 || errorMember(t, pt) != "idempotencyViolation" {
			t.Fatalf("changed content: HTTP %d %s", status, pt)
		}
		n := 0
		for _, c := range e.g.Calls() {
			if c.RequestID == "echo-1" {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("echo-1 recorded %d times", n)
		}
	})

	t.Run("request checks", func(t *testing.T) {
		otherPIAID := echo("hdr-1", "x")
		otherPIAID.RequestHeader.PaymentIntegratorAccountID = "SOMEONE_ELSE"
		stale := echo("stale-1", "x")
		stale.RequestHeader.RequestTimestamp = otpc.TimestampOf(time.Now().Add(-2 * time.Minute))
		v3 := echo("v3-1", "x")
		v3.RequestHeader.ProtocolVersion.Major = 3
		for _, tc := range []struct {
			name   string
			msg    otpc.Message
			status int
			member string
		}{
			{"header PIAID differs from path", otherPIAID, 404, "invalidIdentifier"},
			{"stale requestTimestamp", stale, 400, "requestTimestampOutOfRange"},
			{"protocol version", v3, 400, "invalidApiVersion"},
			{"missing field", &otpc.EchoRequest{RequestHeader: e.header("missing-1")}, 400, "missingRequiredField"},
		} {
			status, pt := e.call(t, otpc.MethodEcho, tc.msg)
			if status != tc.status || errorMember(t, pt) != tc.member {
				t.Errorf("%s: HTTP %d %s, want %d %s", tc.name, status, pt, tc.status, tc.member)
			}
		}
	})

	t.Run("statement paging", func(t *testing.T) {
		st := googlesim.Statement{Summary: otpc.RemittanceStatementSummary{
			StatementDate: otpc.TimestampOf(time.Now()), DateDue: otpc.TimestampOf(time.Now()),
			BillingPeriod:        otpc.BillingPeriod{StartDate: otpc.TimestampOf(time.Now()), EndDate: otpc.TimestampOf(time.Now())},
			TotalDueByIntegrator: otpc.Amount{AmountMicros: 1, CurrencyCode: "JPY"}}}
		for i := range 1203 {
			st.Events = append(st.Events, googlesim.Event{Event: otpc.Event{EventRequestID: fmt.Sprint("e", i)}})
		}
		e.g.AddStatement(googleSimPIAID, "s1", st)
		page := func(id string, n, off int32) otpc.RemittanceStatementDetailsResponse {
			status, pt := e.call(t, otpc.MethodRemittanceStatementDetails, &otpc.RemittanceStatementDetailsRequest{
				RequestHeader: e.header(id), StatementID: "s1", NumberOfEvents: n, EventOffset: off})
			var r otpc.RemittanceStatementDetailsResponse
			if status != 200 || r.UnmarshalJSON(pt) != nil || r.Validate() != nil {
				t.Fatalf("HTTP %d %s", status, pt)
			}
			return r
		}
		// Default page size is the maximum, 1000.
		if r := page("p1", 0, 0); len(r.CaptureEvents) != 1000 || r.NextEventOffset != 1000 || r.TotalEvents != 1203 {
			t.Fatalf("first page: %d events, next %d, total %d", len(r.CaptureEvents), r.NextEventOffset, r.TotalEvents)
		}
		r := page("p2", 500, 1000)
		if len(r.CaptureEvents) != 203 || r.NextEventOffset != 0 || r.EventOffset != 1000 ||
			r.CaptureEvents[0].EventRequestID != "e1000" {
			t.Fatalf("last page: %d events, next %d", len(r.CaptureEvents), r.NextEventOffset)
		}
		status, pt := e.call(t, otpc.MethodRemittanceStatementDetails, &otpc.RemittanceStatementDetailsRequest{
			RequestHeader: e.header("p3"), StatementID: "s1", NumberOfEvents: 1001})
		if status != 400 || errorMember(t, pt) != "invalidFieldValue" {
			t.Fatalf("1001 events: HTTP %d %s", status, pt)
		}
	})

	t.Run("fault sequence and method filter", func(t *testing.T) {
		second := googlesim.FaultEmpty404(1)
		first := googlesim.Fault{Times: 2, Method: otpc.MethodEcho, Status: 503, Body: googlesim.GenericErrorText, Next: &second}
		e.g.SetFault(first)
		// Another method is not affected.
		if status, _ := e.call(t, otpc.MethodAcceptRemittanceStatement, &otpc.AcceptRemittanceStatementRequest{
			RequestHeader: e.header("acc-1"), StatementID: "s1"}); status != 200 {
			t.Fatalf("filtered fault hit another method: HTTP %d", status)
		}
		var got []int
		for i := range 4 {
			ks, _ := e.merchant(context.Background())
			body, _ := e.codec.Seal(context.Background(), ks, echo(fmt.Sprint("f-", i), "x").AppendJSON(nil))
			status, raw := e.post(t, http.MethodPost, "echo/"+googleSimPIAID, body)
			if status == 503 && string(raw) != googlesim.GenericErrorText {
				t.Fatalf("503 body %q", raw)
			}
			got = append(got, status)
		}
		if fmt.Sprint(got) != "[503 503 404 200]" {
			t.Fatalf("statuses %v", got)
		}
	})

	t.Run("WaitCalls", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		calls, err := e.g.WaitCalls(ctx, 1, otpc.MethodRefundResultNotification)
		if !errors.Is(err, context.DeadlineExceeded) || len(calls) != 0 {
			t.Fatalf("%d calls, %v", len(calls), err)
		}
		ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel2()
		type result struct {
			calls []googlesim.Call
			err   error
		}
		waited := make(chan result, 1)
		go func() {
			c, err := e.g.WaitCalls(ctx2, 1, otpc.MethodRefundResultNotification)
			waited <- result{c, err}
		}()
		e.call(t, otpc.MethodRefundResultNotification, &otpc.RefundResultNotificationRequest{
			RequestHeader: e.header("rr-1"), RefundRequestID: "ref-1", Result: otpc.RefundResult{Success: &otpc.Empty{}}})
		w := <-waited
		calls, err = w.calls, w.err
		if err != nil || len(calls) != 1 || calls[0].RequestID != "rr-1" {
			t.Fatalf("%+v, %v", calls, err)
		}
	})
}

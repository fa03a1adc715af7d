package google_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/host/envelope"
	"github.com/otpcgate/otpcgate/host/google"
	"github.com/otpcgate/otpcgate/host/sim/googlesim"
	"github.com/otpcgate/otpcgate/keystore"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

func testStatement(events int) googlesim.Statement {
	st := googlesim.Statement{Summary: otpc.RemittanceStatementSummary{
		StatementDate:        otpc.TimestampOf(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)),
		BillingPeriod:        otpc.BillingPeriod{StartDate: otpc.TimestampOf(time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)), EndDate: otpc.TimestampOf(time.Date(2026, 10, 31, 0, 0, 0, 0, time.UTC))},
		DateDue:              otpc.TimestampOf(time.Date(2026, 11, 15, 0, 0, 0, 0, time.UTC)),
		TotalDueByIntegrator: otpc.Amount{AmountMicros: 1_000_000_000, CurrencyCode: "JPY"},
		TotalEvents:          int64(events),
	}}
	for i := range events {
		kind := "capture"
		if i%10 == 9 {
			kind = "refund"
		}
		st.Events = append(st.Events, googlesim.Event{Kind: kind, Event: otpc.Event{
			EventRequestID: fmt.Sprintf("txn-%d", i), PaymentIntegratorEventID: fmt.Sprintf("pi-%d", i),
			EventCharge: &otpc.Amount{AmountMicros: 100_000_000, CurrencyCode: "JPY"}}})
	}
	return st
}

// TestClientMethods calls every Google-hosted method against the simulated
// Google over TLS, in both envelopes, and checks what Google recorded.
func TestClientMethods(t *testing.T) {
	ins := integrations(t)
	gs := startGoogle(t, ins...)
	c := newClient(t, gs.srv, nil)
	ctx := context.Background()
	for _, in := range ins {
		t.Run(string(in.format), func(t *testing.T) {
			rt := in.route(gs.endpoint)
			gs.sim.AddStatement(in.piaid, "stmt-1", testStatement(2500))
			gs.sim.AddStatement(in.piaid, "stmt-2", testStatement(3))

			echo := &otpc.EchoRequest{ClientMessage: "hello " + string(in.format)}
			er, err := c.Echo(ctx, rt, echo)
			if err != nil || er.ClientMessage != echo.ClientMessage {
				t.Fatalf("echo: %+v, %v", er, err)
			}
			if echo.RequestHeader.RequestID == "" || echo.RequestHeader.PaymentIntegratorAccountID != in.piaid {
				t.Fatalf("echo header not filled in: %+v", echo.RequestHeader)
			}

			paid := &otpc.ReferenceNumberPaidNotificationRequest{
				RequestHeader:                    otpc.RequestHeader{RequestID: "paid-" + in.piaid},
				PaymentIntegratorTransactionID:   "pay-1",
				GenerateReferenceNumberRequestID: "grn-1",
				PaymentTimestamp:                 otpc.TimestampOf(time.Now()),
			}
			pr, err := c.ReferenceNumberPaidNotification(ctx, rt, paid)
			if err != nil || pr.Result.Success == nil {
				t.Fatalf("paid: %+v, %v", pr, err)
			}
			rr, err := c.RefundResultNotification(ctx, rt, &otpc.RefundResultNotificationRequest{
				RefundRequestID: "refund-1", Result: otpc.RefundResult{Success: &otpc.Empty{}}})
			if err != nil || rr.Result.Success == nil {
				t.Fatalf("refund result: %+v, %v", rr, err)
			}

			// Page through 2500 events: 1000 + 1000 + 500.
			var got, pages int
			offset := int32(0)
			for {
				d, err := c.RemittanceStatementDetails(ctx, rt, &otpc.RemittanceStatementDetailsRequest{
					StatementID: "stmt-1", NumberOfEvents: 1000, EventOffset: offset})
				if err != nil {
					t.Fatalf("details at %d: %v", offset, err)
				}
				pages++
				if d.TotalEvents != 2500 || d.EventOffset != offset {
					t.Fatalf("page %d: total %d offset %d", pages, d.TotalEvents, d.EventOffset)
				}
				got += len(d.CaptureEvents) + len(d.RefundEvents)
				if d.NextEventOffset == 0 {
					break
				}
				offset = d.NextEventOffset
			}
			if got != 2500 || pages != 3 {
				t.Fatalf("paged %d events in %d pages, want 2500 in 3", got, pages)
			}

			ar, err := c.AcceptRemittanceStatement(ctx, rt, &otpc.AcceptRemittanceStatementRequest{StatementID: "stmt-1"})
			if err != nil || ar.Result.Success == nil {
				t.Fatalf("accept: %+v, %v", ar, err)
			}
			if m, ok := gs.sim.Accepted(in.piaid, "stmt-1"); !ok || m != otpc.MethodAcceptRemittanceStatement {
				t.Fatalf("statement not accepted: %q %v", m, ok)
			}
			mr, err := c.AcceptRemittanceStatementWithModifications(ctx, rt, &otpc.AcceptRemittanceStatementWithModificationsRequest{
				StatementID:                        "stmt-2",
				SettlementExchangeRateModification: &otpc.SettlementExchangeRateModification{ExchangeRateInMicros: 2_000_000}})
			if err != nil || mr.Result.Success == nil || mr.ModifiedTotalDueByIntegrator == nil ||
				mr.ModifiedTotalDueByIntegrator.AmountMicros != 2_000_000_000 {
				t.Fatalf("accept with modifications: %+v, %v", mr, err)
			}

			// Google saw each call once, with our PIAID and requestIds.
			var mine []googlesim.Call
			for _, call := range gs.sim.Calls() {
				if call.PIAID == in.piaid {
					mine = append(mine, call)
				}
			}
			want := []string{otpc.MethodEcho, otpc.MethodReferenceNumberPaidNotification, otpc.MethodRefundResultNotification,
				otpc.MethodRemittanceStatementDetails, otpc.MethodRemittanceStatementDetails, otpc.MethodRemittanceStatementDetails,
				otpc.MethodAcceptRemittanceStatement, otpc.MethodAcceptRemittanceStatementWithModifications}
			if len(mine) != len(want) {
				t.Fatalf("Google recorded %d calls, want %d", len(mine), len(want))
			}
			for i, m := range want {
				if mine[i].Method != m {
					t.Fatalf("call %d is %s, want %s", i, mine[i].Method, m)
				}
			}
			if p, ok := mine[1].Request.(*otpc.ReferenceNumberPaidNotificationRequest); !ok ||
				p.RequestHeader.RequestID != "paid-"+in.piaid || p.GenerateReferenceNumberRequestID != "grn-1" {
				t.Fatalf("paid notification as Google saw it: %+v", mine[1].Request)
			}
		})
	}
}

// TestClientResponseChecks: a 200 whose body fails a check is refused
// (retryable), and the retry with the same requestId is answered from
// Google's idempotency record.
func TestClientResponseChecks(t *testing.T) {
	ins := integrations(t)
	gs := startGoogle(t, ins...)
	c := newClient(t, gs.srv, nil)
	ctx := context.Background()
	for _, in := range ins {
		faults := []struct {
			name  string
			fault googlesim.Fault
			cause error
		}{
			{"untrusted signature", googlesim.Fault{Times: 1, SealWith: keysetFunc(in.rogue)}, envelope.ErrSignature},
			{"stale responseTimestamp", googlesim.Fault{Times: 1, ResponseSkew: -2 * time.Minute}, nil},
			{"future responseTimestamp", googlesim.Fault{Times: 1, ResponseSkew: 2 * time.Minute}, nil},
			{"invalid union", googlesim.Fault{Times: 1, MutateResponse: func(b []byte) []byte {
				return bytes.Replace(b, []byte(`"result":{"success":{}}`), []byte(`"result":{}`), 1)
			}}, otpc.ErrInvalid},
			{"not sealed", googlesim.Fault{Times: 1, SealWith: func(context.Context) (*keystore.Keyset, error) {
				return nil, errors.New("no keys")
			}}, nil},
		}
		for _, f := range faults {
			t.Run(string(in.format)+"/"+f.name, func(t *testing.T) {
				gs.sim.SetFault(f.fault)
				req := &otpc.RefundResultNotificationRequest{RefundRequestID: "r-" + strings.ReplaceAll(f.name, " ", "-"),
					Result: otpc.RefundResult{Success: &otpc.Empty{}}}
				_, err := c.RefundResultNotification(ctx, rt(in, gs), req)
				var ce *google.CallError
				if !errors.As(err, &ce) {
					t.Fatalf("err = %v, want *CallError", err)
				}
				if f.name == "not sealed" {
					// The simulator could not seal: a plain 500.
					if ce.Status != 500 || !errors.Is(err, google.ErrRetryable) {
						t.Fatalf("err = %v", err)
					}
					return
				}
				if !errors.Is(err, google.ErrBadResponse) || !errors.Is(err, google.ErrRetryable) || ce.Status != 200 {
					t.Fatalf("err = %v, want a retryable bad 200", err)
				}
				if f.cause != nil && !errors.Is(err, f.cause) {
					t.Fatalf("err = %v, want it to wrap %v", err, f.cause)
				}
				// Retry: same requestId, fresh timestamp; Google replays.
				before := len(gs.sim.Calls())
				if _, err := c.RefundResultNotification(ctx, rt(in, gs), req); err != nil {
					t.Fatalf("retry: %v", err)
				}
				if after := len(gs.sim.Calls()); after != before {
					t.Fatalf("retry was processed again (%d → %d calls)", before, after)
				}
			})
		}
	}
}

func rt(in integration, gs *googleServer) google.Route { return in.route(gs.endpoint) }

// TestClientErrorClassification drives every kind of error answer of spec
// §6 and checks the classification.
func TestClientErrorClassification(t *testing.T) {
	ins := integrations(t)
	in := ins[0]
	gs := startGoogle(t, ins...)
	gs.sim.AddStatement(in.piaid, "known", testStatement(1))
	ctx := context.Background()
	c := newClient(t, gs.srv, nil)
	strict := newClient(t, gs.srv, func(cfg *google.Config) { cfg.GenericErrorsPermanent = true })
	impatient := newClient(t, gs.srv, func(cfg *google.Config) { cfg.Timeout = 150 * time.Millisecond })
	// A client 90 s behind: Google refuses its timestamps; its own check
	// is widened so it can read Google's ErrorResponse.
	late := newClient(t, gs.srv, func(cfg *google.Config) {
		cfg.Now = func() time.Time { return time.Now().Add(-90 * time.Second) }
		cfg.Skew = 5 * time.Minute
	})
	refund := func(id, member string) *otpc.RefundResultNotificationRequest {
		r := &otpc.RefundResultNotificationRequest{RefundRequestID: id}
		if member == "success" {
			r.Result.Success = &otpc.Empty{}
		} else {
			r.Result.AccountClosed = &otpc.AccountClosed{}
		}
		return r
	}
	// Seed: refund "conflict" reported as success; same requestId "dup".
	if _, err := c.RefundResultNotification(ctx, rt(in, gs), refund("conflict", "success")); err != nil {
		t.Fatal(err)
	}
	dup := refund("dup-refund", "success")
	dup.RequestHeader.RequestID = "dup-request"
	if _, err := c.RefundResultNotification(ctx, rt(in, gs), dup); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name      string
		client    *google.Client
		fault     *googlesim.Fault
		call      func(c *google.Client) error
		status    int
		body      google.BodyKind
		member    string
		retryable bool
	}{
		{"plain 400", c, ptr(googlesim.FaultPlainText(400, 1)), nil, 400, google.BodyPlain, "", true},
		{"plain 400, generic errors permanent", strict, ptr(googlesim.FaultPlainText(400, 1)), nil, 400, google.BodyPlain, "", false},
		{"plain 403", c, ptr(googlesim.FaultPlainText(403, 1)), nil, 403, google.BodyPlain, "", true},
		{"empty 404", c, ptr(googlesim.FaultEmpty404(1)), nil, 404, google.BodyEmpty, "", true},
		{"empty 404, generic errors permanent", strict, ptr(googlesim.FaultEmpty404(1)), nil, 404, google.BodyEmpty, "", false},
		{"503", c, ptr(googlesim.FaultUnavailable(1)), nil, 503, google.BodyPlain, "", true},
		{"500 empty", strict, &googlesim.Fault{Times: 1, Status: 500}, nil, 500, google.BodyEmpty, "", true},
		{"429", strict, ptr(googlesim.FaultPlainText(429, 1)), nil, 429, google.BodyPlain, "", true},
		{"409", strict, ptr(googlesim.FaultPlainText(409, 1)), nil, 409, google.BodyPlain, "", true},
		{"423", strict, ptr(googlesim.FaultPlainText(423, 1)), nil, 423, google.BodyPlain, "", true},
		{"408", strict, ptr(googlesim.FaultPlainText(408, 1)), nil, 408, google.BodyPlain, "", true},
		{"connection dropped", c, ptr(googlesim.FaultDrop(1)), nil, 0, google.BodyNone, "", true},
		{"slow answer, client timeout", impatient, ptr(googlesim.FaultSlow(time.Second, 1)), nil, 0, google.BodyNone, "", true},
		{"redirect not followed", c, &googlesim.Fault{Times: 1, Status: 302}, nil, 302, google.BodyEmpty, "", false},
		{"unknown PIAID", c, nil, func(c *google.Client) error {
			r := rt(in, gs)
			r.PIAID = "NOBODY"
			_, err := c.Echo(ctx, r, &otpc.EchoRequest{ClientMessage: "x"})
			return err
		}, 404, google.BodyEmpty, "", true},
		{"invalidIdentifier", c, nil, func(c *google.Client) error {
			_, err := c.AcceptRemittanceStatement(ctx, rt(in, gs), &otpc.AcceptRemittanceStatementRequest{StatementID: "unknown"})
			return err
		}, 404, google.BodyErrorResponse, "invalidIdentifier", false},
		{"preconditionViolation: refund result changed", c, nil, func(c *google.Client) error {
			_, err := c.RefundResultNotification(ctx, rt(in, gs), refund("conflict", "closed"))
			return err
		}, 400, google.BodyErrorResponse, "preconditionViolation", false},
		{"idempotencyViolation", c, nil, func(c *google.Client) error {
			r := refund("other-refund", "success")
			r.RequestHeader.RequestID = "dup-request"
			_, err := c.RefundResultNotification(ctx, rt(in, gs), r)
			return err
		}, 412, google.BodyErrorResponse, "idempotencyViolation", false},
		{"requestTimestampOutOfRange", late, nil, nil, 400, google.BodyErrorResponse, "requestTimestampOutOfRange", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.fault != nil {
				gs.sim.SetFault(*tc.fault)
				defer gs.sim.ClearFault()
			}
			call := tc.call
			if call == nil {
				call = func(c *google.Client) error {
					_, err := c.Echo(ctx, rt(in, gs), &otpc.EchoRequest{ClientMessage: "ping"})
					return err
				}
			}
			err := call(tc.client)
			var ce *google.CallError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *CallError", err)
			}
			if ce.Status != tc.status || ce.Body != tc.body || ce.Member != tc.member || ce.Retryable != tc.retryable {
				t.Fatalf("got status %d body %s member %q retryable %v (%v); want %d %s %q %v",
					ce.Status, ce.Body, ce.Member, ce.Retryable, err, tc.status, tc.body, tc.member, tc.retryable)
			}
			if errors.Is(err, google.ErrRetryable) != tc.retryable || errors.Is(err, google.ErrPermanent) == tc.retryable {
				t.Fatalf("errors.Is disagrees with Retryable: %v", err)
			}
			if tc.body == google.BodyPlain && !strings.Contains(err.Error(), googlesim.GenericErrorText) {
				t.Fatalf("plain body not reported: %v", err)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestClassify pins the retry rule per status.
func TestClassify(t *testing.T) {
	cases := []struct {
		status  int
		member  string
		generic bool
		want    bool
	}{
		{400, "", false, true},
		{400, "", true, false},
		{404, "", false, true},
		{400, "invalidIdentifier", false, false},
		{404, "invalidIdentifier", false, false},
		{400, "preconditionViolation", false, false},
		{412, "idempotencyViolation", false, false},
		{403, "forbidden", false, false},
		{400, "invalidApiVersion", false, false},
		{400, "missingRequiredField", false, false},
		{400, "requestTimestampOutOfRange", false, true},
		{401, "invalidPayloadSignature", false, true},
		{400, "invalidPayloadEncryption", false, true},
		{423, "userActionInProgress", false, true},
		{400, "userActionInProgress", false, true},
		{409, "", true, true},
		{423, "", true, true},
		{408, "", true, true},
		{429, "", true, true},
		{409, "preconditionViolation", false, true},
		{500, "", true, true},
		{503, "invalidIdentifier", false, true},
		{302, "", false, false},
		{100, "", false, false},
	}
	for _, tc := range cases {
		if got := google.Classify(tc.status, tc.member, tc.generic); got != tc.want {
			t.Errorf("Classify(%d, %q, %v) = %v, want %v", tc.status, tc.member, tc.generic, got, tc.want)
		}
	}
}

// TestClientTLS: certificates and host names are verified; skipping
// verification is refused.
func TestClientTLS(t *testing.T) {
	ins := integrations(t)
	gs := startGoogle(t, ins...)
	ctx := context.Background()
	if _, err := google.NewTransport(&tls.Config{InsecureSkipVerify: true}); err == nil {
		t.Fatal("InsecureSkipVerify accepted")
	}
	tr, err := google.NewTransport(&tls.Config{MinVersion: tls.VersionTLS10})
	if err != nil || tr.TLSClientConfig.MinVersion != tls.VersionTLS12 {
		t.Fatalf("min version not raised: %v", err)
	}
	untrusting, err := google.NewClient(google.Config{Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	_, err = untrusting.Echo(ctx, rt(ins[0], gs), &otpc.EchoRequest{ClientMessage: "x"})
	if !errors.Is(err, google.ErrRetryable) || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("unknown CA: %v", err)
	}
	// Trusted CA, wrong host name (the test certificate names 127.0.0.1,
	// not localhost).
	c := newClient(t, gs.srv, nil)
	r := rt(ins[0], gs)
	r.Endpoint = strings.Replace(r.Endpoint, "127.0.0.1", "localhost", 1)
	_, err = c.Echo(ctx, r, &otpc.EchoRequest{ClientMessage: "x"})
	if err == nil || !strings.Contains(err.Error(), "localhost") {
		t.Fatalf("host name mismatch accepted: %v", err)
	}
}

// TestClientInvalidRequest: a request that fails validation never leaves.
func TestClientInvalidRequest(t *testing.T) {
	ins := integrations(t)
	gs := startGoogle(t, ins...)
	c := newClient(t, gs.srv, nil)
	_, err := c.RefundResultNotification(context.Background(), rt(ins[0], gs), &otpc.RefundResultNotificationRequest{RefundRequestID: "x"})
	if !errors.Is(err, google.ErrInvalidRequest) || !errors.Is(err, google.ErrPermanent) {
		t.Fatalf("err = %v", err)
	}
	if gs.sim.Hits() != 0 {
		t.Fatalf("invalid request was sent (%d hits)", gs.sim.Hits())
	}
	if _, err := c.Deliver(context.Background(), rt(ins[0], gs), "generateReferenceNumber", "id-1", []byte(`{}`)); !errors.Is(err, google.ErrInvalidRequest) {
		t.Fatalf("integrator-hosted method accepted: %v", err)
	}
}

func TestEndpoint(t *testing.T) {
	for env, want := range map[keystore.Env]string{
		keystore.EnvSandbox:    "https://vgw.sandbox.google.com/gsp",
		keystore.EnvProduction: "https://vgw.googleapis.com/gsp",
	} {
		if got, err := google.Endpoint(env); err != nil || got != want {
			t.Errorf("Endpoint(%s) = %q, %v", env, got, err)
		}
	}
	if _, err := google.Endpoint("staging"); err == nil {
		t.Error("unknown environment accepted")
	}
	r := google.Route{Endpoint: google.SandboxEndpoint + "/", PIAID: "P_1"}
	if got := r.URL(otpc.MethodEcho); got != "https://vgw.sandbox.google.com/gsp/refundable-one-time-payment-code-v2/echo/P_1" {
		t.Errorf("URL = %s", got)
	}
	// A route missing its codec is our configuration gap: retryable.
	c, err := google.NewClient(google.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Echo(context.Background(), r, &otpc.EchoRequest{ClientMessage: "x"}); !errors.Is(err, google.ErrRetryable) {
		t.Errorf("incomplete route: %v", err)
	}
}

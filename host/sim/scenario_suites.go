package sim

// The protocol suites: happy path, idempotency, error members, clock skew
// and notifications. Each step checks the answer against the spec (the
// client opens and verifies the envelope, checks responseTimestamp within
// ±60 s and runs Validate, which includes "exactly one union member");
// steps add what the method promises.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/otpcgate/otpcgate/host/merchant"
	"github.com/otpcgate/otpcgate/host/sim/googlesim"
	"github.com/otpcgate/otpcgate/keystore"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// HappySuite drives every integrator-hosted method on each merchant.
func HappySuite() Scenario {
	return Scenario{Name: "happy", Run: func(ctx context.Context, env *Env) error {
		for _, m := range env.Merchants {
			happy(ctx, env, m)
		}
		return nil
	}}
}

func happy(ctx context.Context, env *Env, m *Merchant) {
	c, tg := env.Client, m.Target
	env.Check(ctx, m, "echo", func(ctx context.Context) (string, error) {
		var resp otpc.EchoResponse
		res, err := c.Call(ctx, tg, otpc.MethodEcho, &otpc.EchoRequest{RequestHeader: c.Header(tg), ClientMessage: "sim happy path"}, &resp)
		if err := want200(res, err); err != nil {
			return "", err
		}
		if resp.ClientMessage != "sim happy path" || resp.ServerMessage == "" {
			return "", fmt.Errorf("echo answered clientMessage %q serverMessage %q", resp.ClientMessage, resp.ServerMessage)
		}
		return "", nil
	})

	var codeID string
	env.Check(ctx, m, "generateReferenceNumber", func(ctx context.Context) (string, error) {
		id, p, err := generate(ctx, env, m, 1500_000000, "Google - Sim happy path")
		codeID = id
		if err != nil {
			return "", err
		}
		return "code " + p, nil
	})
	env.Check(ctx, m, "cancelReferenceNumber", func(ctx context.Context) (string, error) {
		if codeID == "" {
			return "", Skipped("no code was generated")
		}
		var resp otpc.CancelReferenceNumberResponse
		res, err := c.Call(ctx, tg, otpc.MethodCancelReferenceNumber, &otpc.CancelReferenceNumberRequest{
			RequestHeader: c.Header(tg), GenerateReferenceNumberRequestID: codeID}, &resp)
		if err := wantUnion(res, err); err != nil {
			return "", err
		}
		if resp.Result.Success == nil {
			return "", fmt.Errorf("cancel of a fresh code: %s", res.Plaintext)
		}
		return "", nil
	})

	// A paid code (merchant event) is refunded synchronously in part and
	// asynchronously in part.
	var paidID string
	env.Check(ctx, m, "code paid at a store", func(ctx context.Context) (string, error) {
		if env.Events == nil {
			return "", Skipped(env.eventsMissing() + " (needed to pay a code)")
		}
		id, _, err := generateAndPay(ctx, env, m, 2000_000000)
		paidID = id
		return "", err
	})
	env.Check(ctx, m, "refund", func(ctx context.Context) (string, error) {
		if paidID == "" {
			return "", Skipped("no paid code (" + env.eventsMissing() + ")")
		}
		var resp otpc.RefundResponse
		res, err := c.Call(ctx, tg, otpc.MethodRefund, &otpc.RefundRequest{RequestHeader: c.Header(tg), TransactionID: paidID,
			RefundAmount: otpc.Amount{AmountMicros: 500_000000, CurrencyCode: "JPY"}}, &resp)
		if err := wantUnion(res, err); err != nil {
			return "", err
		}
		if resp.Result.Success == nil {
			return "", fmt.Errorf("refund of a paid code: %s", res.Plaintext)
		}
		return "", nil
	})
	env.Check(ctx, m, "asynchronousRefund", func(ctx context.Context) (string, error) {
		if paidID == "" {
			return "", Skipped("no paid code (" + env.eventsMissing() + ")")
		}
		_, err := asyncRefund(ctx, env, m, paidID, 700_000000)
		return "", err
	})
	env.Check(ctx, m, "associateAccount", func(ctx context.Context) (string, error) {
		if env.AuthSession == nil {
			return "", Skipped("no way to create a web-authentication session from here (needs the web login flow)")
		}
		authID, err := env.AuthSession(ctx, m, "account-42")
		if err != nil {
			return "", fmt.Errorf("create auth session: %w", err)
		}
		var resp otpc.AssociateAccountResponse
		res, err := c.Call(ctx, tg, otpc.MethodAssociateAccount, &otpc.AssociateAccountRequest{
			RequestHeader:           c.Header(tg),
			GooglePaymentToken:      otpc.GooglePaymentToken{IssuerID: otpc.IssuerID{Value: "sim-issuer"}, Token: "sim-token-" + NewRequestID()},
			AuthenticationRequestID: authID,
			AssociationID:           "sim-assoc-" + NewRequestID(),
		}, &resp)
		if err := wantUnion(res, err); err != nil {
			return "", err
		}
		if resp.Result.Success == nil {
			return "", fmt.Errorf("associateAccount after authentication: %s", res.Plaintext)
		}
		return "", nil
	})
	env.Check(ctx, m, "remittanceStatementNotification", func(ctx context.Context) (string, error) {
		_, err := notifyStatement(ctx, env, m, statementSummary(1000_000000))
		return "", err
	})
}

// IdempotencySuite checks replays, changed content under a used requestId
// and concurrent duplicates.
func IdempotencySuite() Scenario {
	return Scenario{Name: "idempotency", Run: func(ctx context.Context, env *Env) error {
		for _, m := range env.Merchants {
			idempotency(ctx, env, m)
		}
		return nil
	}}
}

func idempotency(ctx context.Context, env *Env, m *Merchant) {
	c, tg := env.Client, m.Target
	req := generateRequest(c, m, 990_000000, "Google - Sim replay")
	var first []byte
	env.Check(ctx, m, "replay answers identically", func(ctx context.Context) (string, error) {
		a, err := callStripped(ctx, c, tg, req)
		if err != nil {
			return "", err
		}
		first = a
		time.Sleep(5 * time.Millisecond)
		req.RequestHeader.RequestTimestamp = otpc.TimestampOf(c.now())
		b, err := callStripped(ctx, c, tg, req)
		if err != nil {
			return "", fmt.Errorf("replay: %w", err)
		}
		if !bytes.Equal(a, b) {
			return "", fmt.Errorf("replay differs apart from responseTimestamp:\n%s\n%s", a, b)
		}
		return "", nil
	})
	env.Check(ctx, m, "changed content: 412 idempotencyViolation", func(ctx context.Context) (string, error) {
		if first == nil {
			return "", Skipped("the first request failed")
		}
		changed := *req
		changed.Amount.AmountMicros++
		changed.RequestHeader.RequestTimestamp = otpc.TimestampOf(c.now())
		res, err := c.Call(ctx, tg, otpc.MethodGenerateReferenceNumber, &changed, nil)
		return "", wantError(res, err, http.StatusPreconditionFailed, "idempotencyViolation")
	})
	const n = 8
	env.Check(ctx, m, fmt.Sprintf("%d concurrent duplicates answer identically", n), func(ctx context.Context) (string, error) {
		dup := generateRequest(c, m, 120_000000, "Google - Sim duplicates")
		answers := make([][]byte, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				answers[i], errs[i] = callStripped(ctx, c, tg, dup)
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return "", err
		}
		for i := 1; i < n; i++ {
			if !bytes.Equal(answers[0], answers[i]) {
				return "", fmt.Errorf("answer %d differs:\n%s\n%s", i, answers[0], answers[i])
			}
		}
		return "", nil
	})
}

// ErrorsSuite produces each errorResponseResult member the gateway emits,
// with its HTTP status, plus the envelope members.
func ErrorsSuite() Scenario {
	return Scenario{Name: "errors", Run: func(ctx context.Context, env *Env) error {
		for _, m := range env.Merchants {
			errorMembers(ctx, env, m)
		}
		return nil
	}}
}

func errorMembers(ctx context.Context, env *Env, m *Merchant) {
	c, tg := env.Client, m.Target
	gpt := otpc.GooglePaymentToken{IssuerID: otpc.IssuerID{Value: m.DemoIssuer}, Token: m.DemoToken}
	gen := func(mut func(*otpc.GenerateReferenceNumberRequest)) func() []byte {
		return func() []byte {
			r := generateRequest(c, m, 100_000000, "Google - Sim errors")
			mut(r)
			return r.AppendJSON(nil)
		}
	}
	refund := func(txID, currency string) func() []byte {
		return func() []byte {
			return (&otpc.RefundRequest{RequestHeader: c.Header(tg), TransactionID: txID,
				RefundAmount: otpc.Amount{AmountMicros: 1, CurrencyCode: currency}}).AppendJSON(nil)
		}
	}
	// The refund cases need an unpaid and, if payments can be reported, a
	// paid code; without them this merchant's cases cannot run.
	var unpaid, paid string
	if !env.Check(ctx, m, "set up codes for the error cases", func(ctx context.Context) (string, error) {
		var err error
		if unpaid, _, err = generate(ctx, env, m, 100_000000, "Google - Sim errors"); err != nil {
			return "", err
		}
		if env.Events != nil {
			if paid, _, err = generateAndPay(ctx, env, m, 300_000000); err != nil {
				return "", err
			}
		}
		return "", nil
	}) {
		return
	}
	cases := []struct {
		name      string
		method    string
		plaintext func() []byte
		status    int
		member    string
		skip      string
	}{
		{"wrong major version", otpc.MethodGenerateReferenceNumber, gen(func(r *otpc.GenerateReferenceNumberRequest) {
			r.RequestHeader.ProtocolVersion.Major = 1
		}), 400, "invalidApiVersion", ""},
		{"timestamp two minutes old", otpc.MethodGenerateReferenceNumber, gen(func(r *otpc.GenerateReferenceNumberRequest) {
			r.RequestHeader.RequestTimestamp = otpc.TimestampOf(c.now().Add(-2 * time.Minute))
		}), 400, "requestTimestampOutOfRange", ""},
		{"unknown PIAID", otpc.MethodGenerateReferenceNumber, gen(func(r *otpc.GenerateReferenceNumberRequest) {
			r.RequestHeader.PaymentIntegratorAccountID = "SOMEONE_ELSE"
		}), 404, "invalidIdentifier", ""},
		{"unknown payment token", otpc.MethodGenerateReferenceNumber, gen(func(r *otpc.GenerateReferenceNumberRequest) {
			r.GooglePaymentToken.Token = "never-associated"
		}), 404, "invalidIdentifier", ""},
		{"lower-case currency", otpc.MethodGenerateReferenceNumber, gen(func(r *otpc.GenerateReferenceNumberRequest) {
			r.Amount.CurrencyCode = "jpy"
		}), 400, "invalidFieldValue", ""},
		{"missing description", otpc.MethodGenerateReferenceNumber, gen(func(r *otpc.GenerateReferenceNumberRequest) {
			r.TransactionDescription = ""
		}), 400, "missingRequiredField", ""},
		{"malformed JSON", otpc.MethodGenerateReferenceNumber, func() []byte { return []byte(`{"requestHeader": {`) }, 400, "invalidDecryptedRequest", ""},
		{"trailing garbage", otpc.MethodEcho, func() []byte {
			return append((&otpc.EchoRequest{RequestHeader: c.Header(tg), ClientMessage: "x"}).AppendJSON(nil), '}')
		}, 400, "invalidDecryptedRequest", ""},
		{"refund of an unpaid code", otpc.MethodRefund, refund(unpaid, "JPY"), 400, "preconditionViolation", ""},
		{"refund in another currency", otpc.MethodRefund, refund(paid, "USD"), 400, "invalidFieldValue",
			skipIf(paid == "", "no paid code ("+env.eventsMissing()+")")},
		{"refund of an unknown transaction", otpc.MethodRefund, refund("no-such-transaction", "JPY"), 404, "invalidIdentifier", ""},
		{"associate without authentication", otpc.MethodAssociateAccount, func() []byte {
			return (&otpc.AssociateAccountRequest{RequestHeader: c.Header(tg), GooglePaymentToken: gpt,
				AuthenticationRequestID: "never-authenticated", AssociationID: "a1"}).AppendJSON(nil)
		}, 404, "invalidIdentifier", ""},
	}
	for _, tc := range cases {
		env.Check(ctx, m, fmt.Sprintf("%s: %d %s", tc.name, tc.status, tc.member), func(ctx context.Context) (string, error) {
			if tc.skip != "" {
				return "", Skipped(tc.skip)
			}
			res, err := c.CallRaw(ctx, tg, tc.method, tc.plaintext(), nil)
			return "", wantError(res, err, tc.status, tc.member)
		})
	}

	env.Check(ctx, m, "stranger's signing key: 401 invalidPayloadSignature", func(ctx context.Context) (string, error) {
		ours, err := tg.Keyset(ctx)
		if err != nil {
			return "", err
		}
		stranger, err := strangerKeyset(ours)
		if err != nil {
			return "", err
		}
		body, err := tg.Codec.Seal(ctx, stranger, (&otpc.EchoRequest{RequestHeader: c.Header(tg), ClientMessage: "x"}).AppendJSON(nil))
		if err != nil {
			return "", err
		}
		res, err := c.Post(ctx, tg, otpc.MethodEcho, body, nil)
		return "", wantError(res, err, http.StatusUnauthorized, "invalidPayloadSignature")
	})
	env.Check(ctx, m, "undecryptable body: 400 invalidPayloadEncryption", func(ctx context.Context) (string, error) {
		res, err := c.Post(ctx, tg, otpc.MethodEcho, []byte("bm90IGEgbWVzc2FnZQ"), nil)
		return "", wantError(res, err, http.StatusBadRequest, "invalidPayloadEncryption")
	})
}

func skipIf(cond bool, reason string) string {
	if cond {
		return reason
	}
	return ""
}

// strangerKeyset signs with a fresh key the gateway has never seen and
// encrypts to the gateway's real public key: it decrypts, but its
// signature is unknown.
func strangerKeyset(google *keystore.Keyset) (*keystore.Keyset, error) {
	peer := google.Primary(keystore.OwnerPeer)
	if peer == nil {
		return nil, fmt.Errorf("sim: keyset %s has no peer primary", google.ID)
	}
	self := &keystore.Key{Kind: google.Kind, Owner: keystore.OwnerSelf, State: keystore.StatePrimary, Created: time.Now()}
	switch google.Kind {
	case keystore.KindPGP:
		e, err := openpgp.NewEntity("sim stranger", "", "", &packet.Config{RSABits: 2048})
		if err != nil {
			return nil, err
		}
		self.PGP, self.ID = e, fmt.Sprintf("%X", e.PrimaryKey.Fingerprint)
	case keystore.KindJWK:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		self.ID = "sim-stranger"
		self.JWK = &jose.JSONWebKey{Key: k, KeyID: self.ID}
	default:
		return nil, fmt.Errorf("sim: keyset kind %s", google.Kind)
	}
	return keystore.NewKeyset("sim-stranger", google.Kind, google.Env, []*keystore.Key{self, asState(peer, keystore.StatePrimary)})
}

// ClockSkewSuite checks the ±60 s requestTimestamp window from both sides.
func ClockSkewSuite() Scenario {
	return Scenario{Name: "clock-skew", Run: func(ctx context.Context, env *Env) error {
		for _, m := range env.Merchants {
			for _, tc := range []struct {
				skew time.Duration
				ok   bool
			}{{-59 * time.Second, true}, {59 * time.Second, true}, {-61 * time.Second, false}, {61 * time.Second, false}} {
				name := fmt.Sprintf("requestTimestamp %+ds: accepted", int(tc.skew.Seconds()))
				if !tc.ok {
					name = fmt.Sprintf("requestTimestamp %+ds: 400 requestTimestampOutOfRange", int(tc.skew.Seconds()))
				}
				env.Check(ctx, m, name, func(ctx context.Context) (string, error) {
					c, tg := env.Client, m.Target
					req := &otpc.EchoRequest{RequestHeader: c.Header(tg), ClientMessage: "skew"}
					req.RequestHeader.RequestTimestamp = otpc.TimestampOf(c.now().Add(tc.skew))
					var resp otpc.EchoResponse
					res, err := c.Call(ctx, tg, otpc.MethodEcho, req, &resp)
					if tc.ok {
						return "", want200(res, err)
					}
					return "", wantError(res, err, http.StatusBadRequest, "requestTimestampOutOfRange")
				})
			}
		}
		return nil
	}}
}

// NotificationsSuite checks that merchant events reach Google: a code paid
// at a store, an asynchronous refund's result, and a statement accepted.
func NotificationsSuite() Scenario {
	return Scenario{Name: "notifications", Run: func(ctx context.Context, env *Env) error {
		for _, m := range env.Merchants {
			if env.Events == nil || env.Google == nil {
				reason := env.eventsMissing()
				if env.Events != nil {
					reason = "the simulated Google is not observable from this process"
				}
				env.Skip(m, "notifications", reason)
				continue
			}
			notifications(ctx, env, m)
		}
		return nil
	}}
}

func notifications(ctx context.Context, env *Env, m *Merchant) {
	c, tg := env.Client, m.Target
	env.Check(ctx, m, "paid at store → referenceNumberPaidNotification", func(ctx context.Context) (string, error) {
		id, res, err := generateAndPay(ctx, env, m, 2500_000000)
		if err != nil {
			return "", err
		}
		call, err := waitCall(ctx, env, otpc.MethodReferenceNumberPaidNotification, res.NotificationRequestID)
		if err != nil {
			return "", err
		}
		req, ok := call.Request.(*otpc.ReferenceNumberPaidNotificationRequest)
		if !ok || req.GenerateReferenceNumberRequestID != id || call.PIAID != tg.PIAID {
			return "", fmt.Errorf("notification for the wrong code: %s", call.Plaintext)
		}
		return "received after " + call.At.Sub(callStart(ctx)).Round(time.Millisecond).String(), nil
	})
	env.Check(ctx, m, "async refund reported → refundResultNotification", func(ctx context.Context) (string, error) {
		id, _, err := generateAndPay(ctx, env, m, 800_000000)
		if err != nil {
			return "", err
		}
		refundID, err := asyncRefund(ctx, env, m, id, 300_000000)
		if err != nil {
			return "", err
		}
		out, err := env.Events.ReportRefundResult(ctx, m.ID, merchant.RefundOutcome{PIAID: tg.PIAID, RefundRequestID: refundID, Success: true})
		if err != nil {
			return "", fmt.Errorf("report refund result: %w", err)
		}
		call, err := waitCall(ctx, env, otpc.MethodRefundResultNotification, out.NotificationRequestID)
		if err != nil {
			return "", err
		}
		req, ok := call.Request.(*otpc.RefundResultNotificationRequest)
		if !ok || req.RefundRequestID != refundID || req.Result.Success == nil {
			return "", fmt.Errorf("refund result notification: %s", call.Plaintext)
		}
		return "", nil
	})
	env.Check(ctx, m, "statement notified, fetched, accepted → acceptRemittanceStatement", func(ctx context.Context) (string, error) {
		summary := statementSummary(1000_000000)
		note := &otpc.RemittanceStatementNotificationRequest{RequestHeader: c.Header(tg), RemittanceStatementSummary: summary}
		stmtID := note.RequestHeader.RequestID
		env.Google.AddStatement(tg.PIAID, stmtID, googlesim.Statement{Summary: summary})
		var ack otpc.RemittanceStatementNotificationResponse
		res, err := c.Call(ctx, tg, otpc.MethodRemittanceStatementNotification, note, &ack)
		if err := wantUnion(res, err); err != nil {
			return "", err
		}
		if ack.Result.Accepted == nil {
			return "", fmt.Errorf("statement not accepted: %s", res.Plaintext)
		}
		details, err := env.Events.StatementDetails(ctx, m.ID, tg.PIAID, stmtID, 0, 100)
		if err != nil {
			return "", fmt.Errorf("statement details: %w", err)
		}
		if details.RemittanceStatementSummary.TotalDueByIntegrator != summary.TotalDueByIntegrator {
			return "", fmt.Errorf("details total %+v, want %+v", details.RemittanceStatementSummary.TotalDueByIntegrator, summary.TotalDueByIntegrator)
		}
		acc, err := env.Events.AcceptStatement(ctx, m.ID, merchant.Acceptance{PIAID: tg.PIAID, StatementID: stmtID})
		if err != nil {
			return "", fmt.Errorf("accept statement: %w", err)
		}
		if _, err := waitCall(ctx, env, otpc.MethodAcceptRemittanceStatement, acc.NotificationRequestID); err != nil {
			return "", err
		}
		if method, ok := env.Google.Accepted(tg.PIAID, stmtID); !ok || method != otpc.MethodAcceptRemittanceStatement {
			return "", fmt.Errorf("Google's view of the statement: %q accepted=%v", method, ok)
		}
		return "", nil
	})
}

type startKey struct{}

// callStart is when the current step started (for "received after").
func callStart(ctx context.Context) time.Time {
	if t, ok := ctx.Value(startKey{}).(time.Time); ok {
		return t
	}
	return time.Now()
}

// waitCall waits until the simulated Google processed the call with
// requestID (it opens and verifies the envelope before recording it).
func waitCall(ctx context.Context, env *Env, method, requestID string) (googlesim.Call, error) {
	timeout := env.NotifyTimeout
	if timeout <= 0 {
		timeout = 20 * time.Second
	}
	deadline := time.Now().Add(timeout)
	for {
		for _, call := range env.Google.Calls() {
			if call.Method == method && call.RequestID == requestID {
				return call, nil
			}
		}
		if time.Now().After(deadline) {
			return googlesim.Call{}, fmt.Errorf("Google did not receive %s %s within %s", method, requestID, timeout)
		}
		select {
		case <-ctx.Done():
			return googlesim.Call{}, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Helpers shared by the suites.

func generateRequest(c *Client, m *Merchant, micros int64, desc string) *otpc.GenerateReferenceNumberRequest {
	return &otpc.GenerateReferenceNumberRequest{
		RequestHeader:          c.Header(m.Target),
		GooglePaymentToken:     otpc.GooglePaymentToken{IssuerID: otpc.IssuerID{Value: m.DemoIssuer}, Token: m.DemoToken},
		TransactionDescription: desc,
		Amount:                 otpc.Amount{AmountMicros: micros, CurrencyCode: "JPY"},
	}
}

// generate creates a code and returns its transaction id (the request's
// requestId) and printable string.
func generate(ctx context.Context, env *Env, m *Merchant, micros int64, desc string) (string, string, error) {
	req := generateRequest(env.Client, m, micros, desc)
	var resp otpc.GenerateReferenceNumberResponse
	res, err := env.Client.Call(ctx, m.Target, otpc.MethodGenerateReferenceNumber, req, &resp)
	if err := wantUnion(res, err); err != nil {
		return "", "", err
	}
	if resp.Result.Success == nil {
		return "", "", fmt.Errorf("generateReferenceNumber refused: %s", res.Plaintext)
	}
	p := printable(resp.Result.Success.DisplayableReferenceNumber)
	if p == "" {
		return "", "", fmt.Errorf("no printable string in %s", res.Plaintext)
	}
	return req.RequestHeader.RequestID, p, nil
}

// generateAndPay creates a code and reports it paid at a store.
func generateAndPay(ctx context.Context, env *Env, m *Merchant, micros int64) (string, merchant.PaymentResult, error) {
	id, p, err := generate(ctx, env, m, micros, "Google - Sim payment")
	if err != nil {
		return "", merchant.PaymentResult{}, err
	}
	res, err := env.Events.ReportPayment(ctx, m.ID, merchant.Payment{Key: "sim-" + id, Printable: p,
		Amount: otpc.Amount{AmountMicros: micros, CurrencyCode: "JPY"}, StoreID: "sim-store"})
	if err != nil {
		return "", res, fmt.Errorf("report payment: %w", err)
	}
	if !res.Accepted || res.TransactionID != id {
		return "", res, fmt.Errorf("payment not accepted: %+v", res)
	}
	return id, res, nil
}

// asyncRefund asks for an asynchronous refund and returns its requestId.
func asyncRefund(ctx context.Context, env *Env, m *Merchant, txID string, micros int64) (string, error) {
	c, tg := env.Client, m.Target
	req := &otpc.RefundRequest{RequestHeader: c.Header(tg), TransactionID: txID,
		RefundAmount: otpc.Amount{AmountMicros: micros, CurrencyCode: "JPY"}}
	var resp otpc.AsynchronousRefundResponse
	res, err := c.Call(ctx, tg, otpc.MethodAsynchronousRefund, req, &resp)
	if err := wantUnion(res, err); err != nil {
		return "", err
	}
	if resp.Result.Acknowledged == nil {
		return "", fmt.Errorf("asynchronousRefund not acknowledged: %s", res.Plaintext)
	}
	return req.RequestHeader.RequestID, nil
}

func statementSummary(micros int64) otpc.RemittanceStatementSummary {
	now := time.Now()
	return otpc.RemittanceStatementSummary{
		StatementDate: otpc.TimestampOf(now),
		BillingPeriod: otpc.BillingPeriod{StartDate: otpc.TimestampOf(now.Add(-48 * time.Hour)),
			EndDate: otpc.TimestampOf(now.Add(-24 * time.Hour))},
		DateDue:              otpc.TimestampOf(now.Add(72 * time.Hour)),
		TotalDueByIntegrator: otpc.Amount{AmountMicros: micros, CurrencyCode: "JPY"},
	}
}

func notifyStatement(ctx context.Context, env *Env, m *Merchant, summary otpc.RemittanceStatementSummary) (string, error) {
	c, tg := env.Client, m.Target
	req := &otpc.RemittanceStatementNotificationRequest{RequestHeader: c.Header(tg), RemittanceStatementSummary: summary}
	var resp otpc.RemittanceStatementNotificationResponse
	res, err := c.Call(ctx, tg, otpc.MethodRemittanceStatementNotification, req, &resp)
	if err := wantUnion(res, err); err != nil {
		return "", err
	}
	if resp.Result.Accepted == nil {
		return "", fmt.Errorf("statement not accepted: %s", res.Plaintext)
	}
	return req.RequestHeader.RequestID, nil
}

// callStripped calls generateReferenceNumber and returns the answer with
// the responseHeader removed, for byte comparison of replays.
func callStripped(ctx context.Context, c *Client, tg *Target, req *otpc.GenerateReferenceNumberRequest) ([]byte, error) {
	var resp otpc.GenerateReferenceNumberResponse
	res, err := c.Call(ctx, tg, otpc.MethodGenerateReferenceNumber, req, &resp)
	if err := wantUnion(res, err); err != nil {
		return nil, err
	}
	resp.ResponseHeader = otpc.ResponseHeader{}
	return resp.AppendJSON(nil), nil
}

// want200 turns a failed call or a non-200 answer into an error.
func want200(res *Result, err error) error {
	if err != nil {
		return err
	}
	if res.Status != http.StatusOK {
		return fmt.Errorf("HTTP %d %s %s", res.Status, res.Member(), errDesc(res))
	}
	return nil
}

// wantUnion is want200 plus an independent check that the result union
// has exactly one member (Validate checks it too, on the parsed form).
func wantUnion(res *Result, err error) error {
	if err := want200(res, err); err != nil {
		return err
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(res.Plaintext, &top); err != nil {
		return fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	var result map[string]json.RawMessage
	if err := json.Unmarshal(top["result"], &result); err != nil {
		return fmt.Errorf("%w: result: %w", ErrBadResponse, err)
	}
	if len(result) != 1 {
		return fmt.Errorf("%w: result has %d members, want exactly one", ErrBadResponse, len(result))
	}
	return nil
}

// wantError checks a refused call's status and errorResponseResult member
// and that it carries an errorDescription.
func wantError(res *Result, err error, status int, member string) error {
	if err != nil {
		return err
	}
	if res.Status != status || res.Member() != member {
		return fmt.Errorf("got HTTP %d %q, want %d %q %s", res.Status, res.Member(), status, member, errDesc(res))
	}
	if res.Error == nil || res.Error.ErrorDescription == "" {
		return errors.New("no errorDescription in the error response")
	}
	return nil
}

func errDesc(res *Result) string {
	if res != nil && res.Error != nil {
		return res.Error.ErrorDescription
	}
	return ""
}

// printable returns the printable string of a displayable reference number.
func printable(d otpc.DisplayableReferenceNumber) string {
	switch {
	case d.BarcodeWithPrintableString != nil:
		return d.BarcodeWithPrintableString.PrintableString
	case d.PrintableString != nil:
		return *d.PrintableString
	}
	return ""
}

package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/host/devenv"
	"github.com/otpcgate/otpcgate/host/directory"
	"github.com/otpcgate/otpcgate/host/ledger"
	"github.com/otpcgate/otpcgate/host/protocol"
	"github.com/otpcgate/otpcgate/host/runtime/runtimetest"
	"github.com/otpcgate/otpcgate/host/sim"
	"github.com/otpcgate/otpcgate/internal/testenv"
	"github.com/otpcgate/otpcgate/keystore"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// TestEveryMethod drives every integrator-hosted method through real TLS,
// both envelopes, the ledger and the konbini plugin, as Google would.
func TestEveryMethod(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, tg := range []*sim.Target{e.pgp, e.jose} {
		t.Run(e.merchant(tg).ID, func(t *testing.T) {
			// echo
			var echo otpc.EchoResponse
			res, err := e.client.Call(ctx, tg, otpc.MethodEcho, &otpc.EchoRequest{
				RequestHeader: e.client.Header(tg), ClientMessage: "hello from the simulator",
			}, &echo)
			if err != nil || res.Status != 200 {
				t.Fatalf("echo: %v status %d", err, res.Status)
			}
			if echo.ClientMessage != "hello from the simulator" || echo.ServerMessage == "" {
				t.Fatalf("echo answered %+v", echo)
			}

			// generateReferenceNumber, then cancel it.
			hdr, gen := e.generate(tg, 1500_000000)
			printable := printable(gen.Result.Success.DisplayableReferenceNumber)
			if printable == "" {
				t.Fatalf("no printable string in %+v", gen.Result.Success)
			}
			code, err := e.g.Ledger.Code(ctx, tg.PIAID, hdr.RequestID)
			if err != nil || code.State != ledger.CodeIssued || code.Printable != printable {
				t.Fatalf("ledger code %+v err %v", code, err)
			}
			var cancel otpc.CancelReferenceNumberResponse
			res, err = e.client.Call(ctx, tg, otpc.MethodCancelReferenceNumber, &otpc.CancelReferenceNumberRequest{
				RequestHeader: e.client.Header(tg), GenerateReferenceNumberRequestID: hdr.RequestID,
			}, &cancel)
			if err != nil || res.Status != 200 || cancel.Result.Success == nil {
				t.Fatalf("cancel: %v status %d %s", err, res.Status, res.Plaintext)
			}
			if code, _ := e.g.Ledger.Code(ctx, tg.PIAID, hdr.RequestID); code.State != ledger.CodeCancelled {
				t.Fatalf("after cancel: state %s", code.State)
			}

			// A paid code: cancel says already paid; refund part of it
			// synchronously and part asynchronously.
			hdr, _ = e.generate(tg, 2000_000000)
			e.pay(tg, hdr.RequestID, 2000_000000)
			res, err = e.client.Call(ctx, tg, otpc.MethodCancelReferenceNumber, &otpc.CancelReferenceNumberRequest{
				RequestHeader: e.client.Header(tg), GenerateReferenceNumberRequestID: hdr.RequestID,
			}, &cancel)
			if err != nil || res.Status != 200 || cancel.Result.ReferenceNumberAlreadyPaid == nil {
				t.Fatalf("cancel paid: %v status %d %s", err, res.Status, res.Plaintext)
			}
			var refund otpc.RefundResponse
			res, err = e.client.Call(ctx, tg, otpc.MethodRefund, &otpc.RefundRequest{
				RequestHeader: e.client.Header(tg), TransactionID: hdr.RequestID,
				RefundAmount: otpc.Amount{AmountMicros: 500_000000, CurrencyCode: "JPY"},
			}, &refund)
			if err != nil || res.Status != 200 || refund.Result.Success == nil {
				t.Fatalf("refund: %v status %d %s", err, res.Status, res.Plaintext)
			}
			var async otpc.AsynchronousRefundResponse
			asyncReq := &otpc.RefundRequest{
				RequestHeader: e.client.Header(tg), TransactionID: hdr.RequestID,
				RefundAmount: otpc.Amount{AmountMicros: 700_000000, CurrencyCode: "JPY"},
			}
			res, err = e.client.Call(ctx, tg, otpc.MethodAsynchronousRefund, asyncReq, &async)
			if err != nil || res.Status != 200 || async.Result.Acknowledged == nil {
				t.Fatalf("asynchronousRefund: %v status %d %s", err, res.Status, res.Plaintext)
			}
			if r, err := e.g.Ledger.Refund(ctx, tg.PIAID, asyncReq.RequestHeader.RequestID); err != nil || r.State != ledger.RefundAcknowledged {
				t.Fatalf("async refund in ledger: %+v %v", r, err)
			}
			// 2000 paid - 500 refunded - 700 in flight leaves 800: 900 is refused.
			res, err = e.client.Call(ctx, tg, otpc.MethodRefund, &otpc.RefundRequest{
				RequestHeader: e.client.Header(tg), TransactionID: hdr.RequestID,
				RefundAmount: otpc.Amount{AmountMicros: 900_000000, CurrencyCode: "JPY"},
			}, &refund)
			if err != nil || res.Status != 400 || res.Member() != "preconditionViolation" {
				t.Fatalf("over-refund: %v status %d member %q", err, res.Status, res.Member())
			}

			// associateAccount after a successful web authentication,
			// then a purchase with the new token.
			authID := "auth-" + sim.NewRequestID()
			if err := e.g.Ledger.Apply(ctx, func(tx *ledger.Tx) error {
				return tx.SaveAuthSession(ledger.AuthSession{AuthRequestID: authID, PIAID: tg.PIAID,
					AccountID: "account-42", Result: protocol.AuthSuccess})
			}); err != nil {
				t.Fatal(err)
			}
			token := "token-" + sim.NewRequestID()
			var assoc otpc.AssociateAccountResponse
			res, err = e.client.Call(ctx, tg, otpc.MethodAssociateAccount, &otpc.AssociateAccountRequest{
				RequestHeader:           e.client.Header(tg),
				GooglePaymentToken:      otpc.GooglePaymentToken{IssuerID: otpc.IssuerID{Value: "issuer"}, Token: token},
				AuthenticationRequestID: authID,
				AssociationID:           "assoc-" + sim.NewRequestID(),
			}, &assoc)
			if err != nil || res.Status != 200 || assoc.Result.Success == nil {
				t.Fatalf("associateAccount: %v status %d %s", err, res.Status, res.Plaintext)
			}
			if a, err := e.g.Ledger.AccountByGPT(ctx, tg.PIAID, token); err != nil || a.AccountID != "account-42" {
				t.Fatalf("association: %+v %v", a, err)
			}

			// remittanceStatementNotification
			var rem otpc.RemittanceStatementNotificationResponse
			remReq := &otpc.RemittanceStatementNotificationRequest{RequestHeader: e.client.Header(tg),
				RemittanceStatementSummary: otpc.RemittanceStatementSummary{
					StatementDate: otpc.TimestampOf(time.Now()),
					BillingPeriod: otpc.BillingPeriod{StartDate: otpc.TimestampOf(time.Now().Add(-48 * time.Hour)),
						EndDate: otpc.TimestampOf(time.Now().Add(-24 * time.Hour))},
					DateDue:              otpc.TimestampOf(time.Now().Add(72 * time.Hour)),
					TotalDueByIntegrator: otpc.Amount{AmountMicros: 1000_000000, CurrencyCode: "JPY"},
				}}
			res, err = e.client.Call(ctx, tg, otpc.MethodRemittanceStatementNotification, remReq, &rem)
			if err != nil || res.Status != 200 || rem.Result.Accepted == nil {
				t.Fatalf("remittance: %v status %d %s", err, res.Status, res.Plaintext)
			}
			if s, err := e.g.Ledger.Statement(ctx, tg.PIAID, remReq.RequestHeader.RequestID); err != nil || s.State != ledger.StatementNotified {
				t.Fatalf("statement: %+v %v", s, err)
			}
		})
	}
}

// TestReplayIdentical: a retried request gets the stored answer, identical
// apart from responseTimestamp, also across a restart of the host; changed
// content with the same requestId is an idempotency violation.
func TestReplayIdentical(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, id := range []string{"demo-pgp", "demo-jose"} {
		tg := e.target(id) // the address changes on restart
		m := e.merchant(tg)
		req := &otpc.GenerateReferenceNumberRequest{
			RequestHeader:          e.client.Header(tg),
			GooglePaymentToken:     otpc.GooglePaymentToken{IssuerID: otpc.IssuerID{Value: m.DemoIssuer}, Token: m.DemoToken},
			TransactionDescription: "Google - Replay",
			Amount:                 otpc.Amount{AmountMicros: 990_000000, CurrencyCode: "JPY"},
		}
		first := e.callStripped(t, tg, otpc.MethodGenerateReferenceNumber, req)
		time.Sleep(5 * time.Millisecond)
		req.RequestHeader.RequestTimestamp = otpc.TimestampOf(time.Now())
		if again := e.callStripped(t, tg, otpc.MethodGenerateReferenceNumber, req); !bytes.Equal(first, again) {
			t.Fatalf("replay differs:\n%s\n%s", first, again)
		}
		e.restart()
		tg = e.target(m.ID)
		req.RequestHeader.RequestTimestamp = otpc.TimestampOf(time.Now())
		if again := e.callStripped(t, tg, otpc.MethodGenerateReferenceNumber, req); !bytes.Equal(first, again) {
			t.Fatalf("replay after restart differs:\n%s\n%s", first, again)
		}
		req.Amount.AmountMicros++
		res, err := e.client.Call(ctx, tg, otpc.MethodGenerateReferenceNumber, req, nil)
		if err != nil || res.Status != 412 || res.Member() != "idempotencyViolation" {
			t.Fatalf("changed content: %v status %d member %q", err, res.Status, res.Member())
		}
	}
}

// callStripped calls method and returns the response plaintext with the
// responseTimestamp removed.
func (e *env) callStripped(t *testing.T, tg *sim.Target, method string, req sim.Message) []byte {
	t.Helper()
	var resp otpc.GenerateReferenceNumberResponse
	res, err := e.client.Call(context.Background(), tg, method, req, &resp)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	if res.Status != 200 {
		t.Fatalf("%s: status %d %s", method, res.Status, res.Plaintext)
	}
	resp.ResponseHeader = otpc.ResponseHeader{}
	return resp.AppendJSON(nil)
}

// TestConcurrentDuplicates: N copies of one request at once make one code
// and N identical answers.
func TestConcurrentDuplicates(t *testing.T) {
	e := newEnv(t)
	tg := e.pgp
	m := e.merchant(tg)
	req := &otpc.GenerateReferenceNumberRequest{
		RequestHeader:          e.client.Header(tg),
		GooglePaymentToken:     otpc.GooglePaymentToken{IssuerID: otpc.IssuerID{Value: m.DemoIssuer}, Token: m.DemoToken},
		TransactionDescription: "Google - Dup",
		Amount:                 otpc.Amount{AmountMicros: 120_000000, CurrencyCode: "JPY"},
	}
	const n = 8
	answers := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = e.callStripped(t, tg, otpc.MethodGenerateReferenceNumber, req)
		}()
	}
	wg.Wait()
	for i := 1; i < n; i++ {
		if !bytes.Equal(answers[0], answers[i]) {
			t.Fatalf("answer %d differs:\n%s\n%s", i, answers[0], answers[i])
		}
	}
	var count int
	if err := e.g.DB.QueryRow(`SELECT COUNT(*) FROM codes WHERE piaid = ? AND transaction_id = ?`,
		tg.PIAID, req.RequestHeader.RequestID).Scan(&count); err != nil || count != 1 {
		t.Fatalf("codes for the request: %d (%v), want 1", count, err)
	}
}

// TestErrorMembers produces every errorResponseResult member the gateway
// emits, with its status, over both envelopes.
func TestErrorMembers(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, tg := range []*sim.Target{e.pgp, e.jose} {
		m := e.merchant(tg)
		gpt := otpc.GooglePaymentToken{IssuerID: otpc.IssuerID{Value: m.DemoIssuer}, Token: m.DemoToken}
		genReq := func(mut func(*otpc.GenerateReferenceNumberRequest)) []byte {
			r := &otpc.GenerateReferenceNumberRequest{RequestHeader: e.client.Header(tg), GooglePaymentToken: gpt,
				TransactionDescription: "Google - Errors", Amount: otpc.Amount{AmountMicros: 100_000000, CurrencyCode: "JPY"}}
			mut(r)
			return r.AppendJSON(nil)
		}
		paidHdr, _ := e.generate(tg, 300_000000)
		e.pay(tg, paidHdr.RequestID, 300_000000)
		cases := []struct {
			name      string
			method    string
			plaintext []byte
			status    int
			member    string
		}{
			{"wrong major version", otpc.MethodGenerateReferenceNumber, genReq(func(r *otpc.GenerateReferenceNumberRequest) {
				r.RequestHeader.ProtocolVersion.Major = 1
			}), 400, "invalidApiVersion"},
			{"timestamp two minutes old", otpc.MethodGenerateReferenceNumber, genReq(func(r *otpc.GenerateReferenceNumberRequest) {
				r.RequestHeader.RequestTimestamp = otpc.TimestampOf(time.Now().Add(-2 * time.Minute))
			}), 400, "requestTimestampOutOfRange"},
			{"timestamp in the future", otpc.MethodGenerateReferenceNumber, genReq(func(r *otpc.GenerateReferenceNumberRequest) {
				r.RequestHeader.RequestTimestamp = otpc.TimestampOf(time.Now().Add(90 * time.Second))
			}), 400, "requestTimestampOutOfRange"},
			{"unknown PIAID", otpc.MethodGenerateReferenceNumber, genReq(func(r *otpc.GenerateReferenceNumberRequest) {
				r.RequestHeader.PaymentIntegratorAccountID = "SOMEONE_ELSE"
			}), 404, "invalidIdentifier"},
			{"unknown payment token", otpc.MethodGenerateReferenceNumber, genReq(func(r *otpc.GenerateReferenceNumberRequest) {
				r.GooglePaymentToken.Token = "never-associated"
			}), 404, "invalidIdentifier"},
			{"lower-case currency", otpc.MethodGenerateReferenceNumber, genReq(func(r *otpc.GenerateReferenceNumberRequest) {
				r.Amount.CurrencyCode = "jpy"
			}), 400, "invalidFieldValue"},
			{"missing description", otpc.MethodGenerateReferenceNumber, genReq(func(r *otpc.GenerateReferenceNumberRequest) {
				r.TransactionDescription = ""
			}), 400, "missingRequiredField"},
			{"malformed JSON", otpc.MethodGenerateReferenceNumber, []byte(`{"requestHeader": {`), 400, "invalidDecryptedRequest"},
			{"trailing garbage", otpc.MethodEcho, append((&otpc.EchoRequest{RequestHeader: e.client.Header(tg), ClientMessage: "x"}).AppendJSON(nil), []byte("}")...), 400, "invalidDecryptedRequest"},
			{"refund of an unpaid code", otpc.MethodRefund, (&otpc.RefundRequest{RequestHeader: e.client.Header(tg),
				TransactionID: e.mustGenerate(tg), RefundAmount: otpc.Amount{AmountMicros: 1, CurrencyCode: "JPY"}}).AppendJSON(nil), 400, "preconditionViolation"},
			{"refund in another currency", otpc.MethodRefund, (&otpc.RefundRequest{RequestHeader: e.client.Header(tg),
				TransactionID: paidHdr.RequestID, RefundAmount: otpc.Amount{AmountMicros: 1, CurrencyCode: "USD"}}).AppendJSON(nil), 400, "invalidFieldValue"},
			{"refund of an unknown transaction", otpc.MethodRefund, (&otpc.RefundRequest{RequestHeader: e.client.Header(tg),
				TransactionID: "no-such-transaction", RefundAmount: otpc.Amount{AmountMicros: 1, CurrencyCode: "JPY"}}).AppendJSON(nil), 404, "invalidIdentifier"},
			{"associate without authentication", otpc.MethodAssociateAccount, (&otpc.AssociateAccountRequest{RequestHeader: e.client.Header(tg),
				GooglePaymentToken: gpt, AuthenticationRequestID: "never-authenticated", AssociationID: "a1"}).AppendJSON(nil), 404, "invalidIdentifier"},
		}
		for _, c := range cases {
			t.Run(m.ID+"/"+c.name, func(t *testing.T) {
				res, err := e.client.CallRaw(ctx, tg, c.method, c.plaintext, nil)
				if err != nil {
					t.Fatal(err)
				}
				if res.Status != c.status || res.Member() != c.member {
					t.Fatalf("status %d member %q, want %d %q (%s)", res.Status, res.Member(), c.status, c.member, res.Plaintext)
				}
				if res.Error.ErrorDescription == "" {
					t.Fatal("no errorDescription")
				}
			})
		}
	}
}

func (e *env) mustGenerate(tg *sim.Target) string {
	hdr, _ := e.generate(tg, 100_000000)
	return hdr.RequestID
}

// TestEnvelopeErrors: bodies Google's keys did not produce are refused
// with the envelope members, sealed so Google can read them.
func TestEnvelopeErrors(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, tg := range []*sim.Target{e.pgp, e.jose} {
		m := e.merchant(tg)
		plain := (&otpc.EchoRequest{RequestHeader: e.client.Header(tg), ClientMessage: "x"}).AppendJSON(nil)

		// A stranger's keyset: its own signing key, our public key as
		// recipient. Decrypts fine, signature unknown.
		kind := keystore.KindPGP
		if m.Envelope == "jose" {
			kind = keystore.KindJWK
		}
		stranger := e.strangerKeyset(t, kind, m)
		body, err := tg.Codec.Seal(ctx, stranger, plain)
		if err != nil {
			t.Fatal(err)
		}
		res, err := e.client.Post(ctx, tg, otpc.MethodEcho, body, nil)
		if err != nil || res.Status != 401 || res.Member() != "invalidPayloadSignature" {
			t.Fatalf("%s unknown signer: %v status %d member %q", m.ID, err, res.Status, res.Member())
		}
		for name, body := range map[string][]byte{
			"garbage":   []byte("bm90IGEgbWVzc2FnZQ"),
			"truncated": body[:len(body)/2],
		} {
			res, err := e.client.Post(ctx, tg, otpc.MethodEcho, body, nil)
			if err != nil || res.Status != 400 || res.Member() != "invalidPayloadEncryption" {
				t.Fatalf("%s %s: %v status %d member %q", m.ID, name, err, res.Status, res.Member())
			}
		}
	}
}

// strangerKeyset builds a keyset that signs with a key the gateway does not
// know and encrypts to the gateway's real public key.
func (e *env) strangerKeyset(t *testing.T, kind keystore.Kind, m devenv.Merchant) *keystore.Keyset {
	t.Helper()
	ctx := context.Background()
	ks, err := e.g.Keys.CreateKeyset(ctx, "test", "stranger-"+m.ID, kind, keystore.EnvSandbox)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := devenv.NewPrimaryKey(ctx, e.g.Keys, ks.ID, "stranger"); err != nil {
		t.Fatal(err)
	}
	pub, err := e.g.Keys.ExportPublic(ctx, m.KeysetID)
	if err != nil {
		t.Fatal(err)
	}
	if err := devenv.ImportPrimaryKey(ctx, e.g.Keys, ks.ID, pub, time.Time{}); err != nil {
		t.Fatal(err)
	}
	snap, err := e.g.Keys.Keyset(ctx, ks.ID)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// TestMerchantDisabled: a disabled merchant is refused with forbidden.
func TestMerchantDisabled(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.g.Ledger.Apply(ctx, func(tx *ledger.Tx) error {
		return tx.SetMerchantStatus("demo-jose", ledger.MerchantDisabled)
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.g.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := e.client.Call(ctx, e.jose, otpc.MethodEcho, &otpc.EchoRequest{RequestHeader: e.client.Header(e.jose), ClientMessage: "x"}, nil)
	if err != nil || res.Status != 403 || res.Member() != "forbidden" {
		t.Fatalf("disabled merchant: %v status %d member %q", err, res.Status, res.Member())
	}
	// The other merchant is unaffected.
	res, err = e.client.Call(ctx, e.pgp, otpc.MethodEcho, &otpc.EchoRequest{RequestHeader: e.client.Header(e.pgp), ClientMessage: "x"}, nil)
	if err != nil || res.Status != 200 {
		t.Fatalf("other merchant: %v status %d", err, res.Status)
	}
}

// TestPluginFailureCommitsNothing: a plugin that traps, or one that answers
// garbage, gets 503 and leaves no trace (no record, no code, no KV); after
// the merchant rolls back to a good plugin the same request (same
// requestId) succeeds.
func TestPluginFailureCommitsNothing(t *testing.T) {
	for name, dir := range map[string]string{
		"trap":       "testdata/trapper",
		"bad result": "../../testdata/plugins/evil",
	} {
		t.Run(name, func(t *testing.T) { testPluginFailure(t, dir) })
	}
}

func testPluginFailure(t *testing.T, dir string) {
	e := newEnv(t)
	ctx := context.Background()
	bad := runtimetest.Build(t, dir)
	if _, err := e.g.Directory.AddPluginVersion(ctx, directory.PluginVersion{MerchantID: "demo-pgp", Version: "bad", Wasm: bad}); err != nil {
		t.Fatal(err)
	}
	if err := e.g.Directory.ActivatePluginVersion(ctx, "demo-pgp", "bad"); err != nil {
		t.Fatal(err)
	}
	if err := e.g.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	m := e.merchant(e.pgp)
	req := &otpc.GenerateReferenceNumberRequest{
		RequestHeader:          e.client.Header(e.pgp),
		GooglePaymentToken:     otpc.GooglePaymentToken{IssuerID: otpc.IssuerID{Value: m.DemoIssuer}, Token: m.DemoToken},
		TransactionDescription: "Google - Trap",
		Amount:                 otpc.Amount{AmountMicros: 100_000000, CurrencyCode: "JPY"},
	}
	res, err := e.client.Call(ctx, e.pgp, otpc.MethodGenerateReferenceNumber, req, nil)
	if err != nil || res.Status != http.StatusServiceUnavailable {
		t.Fatalf("trapping plugin: %v status %d", err, res.Status)
	}
	if _, err := e.g.Ledger.Record(ctx, e.pgp.PIAID, req.RequestHeader.RequestID); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("record after trap: %v", err)
	}
	if _, err := e.g.Ledger.Code(ctx, e.pgp.PIAID, req.RequestHeader.RequestID); err == nil {
		t.Fatal("code committed after trap")
	}
	if _, ok, _ := e.g.Ledger.KVGet(ctx, "demo-pgp", "trap"); ok {
		t.Fatal("plugin KV write committed after trap")
	}
	if err := e.g.Directory.ActivatePluginVersion(ctx, "demo-pgp", m.Plugin); err != nil {
		t.Fatal(err)
	}
	if err := e.g.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	req.RequestHeader.RequestTimestamp = otpc.TimestampOf(time.Now())
	var resp otpc.GenerateReferenceNumberResponse
	res, err = e.client.Call(ctx, e.pgp, otpc.MethodGenerateReferenceNumber, req, &resp)
	if err != nil || res.Status != 200 || resp.Result.Success == nil {
		t.Fatalf("retry after rollback: %v status %d", err, res.Status)
	}
}

// TestRotationUnderTraffic: our key is rotated while requests run: a new
// key is added and promoted, the old one retired then disabled. No request
// fails, and messages for the disabled key are refused.
func TestRotationUnderTraffic(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, tg := range []*sim.Target{e.pgp, e.jose} {
		m := e.merchant(tg)
		oldKeys, err := e.g.Keys.List(ctx, m.KeysetID)
		if err != nil {
			t.Fatal(err)
		}
		var oldID string
		for _, k := range oldKeys {
			if k.Owner == keystore.OwnerSelf && k.State == keystore.StatePrimary {
				oldID = k.ID
			}
		}
		// Google still knows only the old key: snapshot its view now.
		oldView, err := tg.Keyset(ctx)
		if err != nil {
			t.Fatal(err)
		}

		stop := make(chan struct{})
		var failures, sent int
		var mu sync.Mutex
		var wg sync.WaitGroup
		// underTraffic waits until 20 more requests went through, so each
		// rotation step is taken and observed under load.
		underTraffic := func() {
			mu.Lock()
			target := sent + 20
			mu.Unlock()
			testenv.WaitFor(t, func() string {
				mu.Lock()
				defer mu.Unlock()
				if sent < target {
					return fmt.Sprintf("traffic stalled at %d requests (%d failed)", sent, failures)
				}
				return ""
			})
		}
		for w := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					res, err := e.client.Call(ctx, tg, otpc.MethodEcho, &otpc.EchoRequest{RequestHeader: e.client.Header(tg),
						ClientMessage: "w" + strconv.Itoa(w) + "-" + strconv.Itoa(i)}, nil)
					mu.Lock()
					sent++
					if err != nil || res.Status != 200 {
						failures++
					}
					mu.Unlock()
				}
			}()
		}
		// Rotate as an operator would: add the new key (decrypts at once),
		// give its public half to Google, promote it (responses are now
		// signed with it), retire the old key, then disable it.
		newKey, err := e.g.Keys.Generate(ctx, "test", m.KeysetID, keystore.GenerateOptions{Name: "rotated"})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.g.Keys.SetState(ctx, "test", m.KeysetID, newKey.ID, keystore.StateActive); err != nil {
			t.Fatal(err)
		}
		pub, err := e.g.Keys.ExportPublic(ctx, m.KeysetID, newKey.ID)
		if err != nil {
			t.Fatal(err)
		}
		underTraffic()
		if err := devenv.ImportPrimaryKey(ctx, e.g.Keys, m.SimKeysetID, pub, newKey.Expires); err != nil {
			t.Fatal(err)
		}
		underTraffic()
		for _, step := range []struct {
			id string
			st keystore.State
		}{{newKey.ID, keystore.StatePrimary}, {oldID, keystore.StateRetiring}, {oldID, keystore.StateDisabled}} {
			if err := e.g.Keys.SetState(ctx, "test", m.KeysetID, step.id, step.st); err != nil {
				t.Fatal(err)
			}
			underTraffic()
		}
		close(stop)
		wg.Wait()
		if failures != 0 || sent == 0 {
			t.Fatalf("%s: %d of %d requests failed during rotation", m.ID, failures, sent)
		}
		// A message encrypted for the disabled key only is refused.
		body, err := tg.Codec.Seal(ctx, oldView, (&otpc.EchoRequest{RequestHeader: e.client.Header(tg), ClientMessage: "old"}).AppendJSON(nil))
		if err != nil {
			t.Fatal(err)
		}
		res, err := e.client.Post(ctx, tg, otpc.MethodEcho, body, nil)
		if err != nil || res.Status != 400 || res.Member() != "invalidPayloadEncryption" {
			t.Fatalf("%s: old key after disable: %v status %d member %q", m.ID, err, res.Status, res.Member())
		}
		t.Logf("%s rotation: %d requests during rotation, 0 failed", m.ID, sent)
	}
}

// TestRefusalMetrics: every refusal is counted under its errorResponseResult
// member, so envelope failures show up by reason.
func TestRefusalMetrics(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	before := e.g.Pipeline.Stats().Refusals()
	if res, err := e.client.Post(ctx, e.pgp, otpc.MethodEcho, []byte("bm90IGEgbWVzc2FnZQ"), nil); err != nil || res.Status != 400 {
		t.Fatalf("garbage body: %v %+v", err, res)
	}
	req := &otpc.EchoRequest{RequestHeader: e.client.Header(e.jose), ClientMessage: "x"}
	req.RequestHeader.RequestTimestamp = otpc.TimestampOf(time.Now().Add(-time.Hour))
	if res, err := e.client.Call(ctx, e.jose, otpc.MethodEcho, req, nil); err != nil || res.Status != 400 {
		t.Fatalf("stale timestamp: %v %+v", err, res)
	}
	after := e.g.Pipeline.Stats().Refusals()
	for reason, want := range map[string]int64{"invalidPayloadEncryption": 1, "requestTimestampOutOfRange": 1, "invalidPayloadSignature": 0} {
		if got := after[reason] - before[reason]; got != want {
			t.Errorf("%s: counted %d, want %d", reason, got, want)
		}
	}
}

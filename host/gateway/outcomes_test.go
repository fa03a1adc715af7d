package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/host/admin"
	"github.com/otpcgate/otpcgate/host/directory"
	"github.com/otpcgate/otpcgate/host/ledger"
	"github.com/otpcgate/otpcgate/host/merchant"
	"github.com/otpcgate/otpcgate/host/plugincall"
	"github.com/otpcgate/otpcgate/host/protocol"
	"github.com/otpcgate/otpcgate/host/runtime/runtimetest"
	"github.com/otpcgate/otpcgate/host/sim"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// outcomesTimeout is the plugin call timeout of the outcome tests: the
// "timeout" outcome spins until it.
const outcomesTimeout = 400 * time.Millisecond

// outcomesEnv is a gateway whose two dev merchants run the outcomes test
// plugin (testdata/plugins/outcomes), with the admin API for the merchant
// API's ops.
func outcomesEnv(t *testing.T) *adminEnv {
	t.Helper()
	a := newAdminEnv(t, admin.Config{Rate: 1000, Burst: 1000}, func(o *Options) {
		o.Runtime.Limits.CallTimeout = outcomesTimeout
	})
	ctx := context.Background()
	wasm := runtimetest.Build(t, "../../testdata/plugins/outcomes")
	for _, id := range []string{"demo-pgp", "demo-jose"} {
		if _, err := a.g.Directory.AddPluginVersion(ctx, directory.PluginVersion{MerchantID: id, Version: "outcomes", Wasm: wasm}); err != nil {
			t.Fatal(err)
		}
		if err := a.g.Directory.ActivatePluginVersion(ctx, id, "outcomes"); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.g.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	return a
}

// outcomes are what the outcomes plugin is asked to do, in the order the
// table runs them.
var outcomes = []string{"success", "decline", "refuse", "reserved", "fail", "trap", "timeout"}

// googleOp is one integrator-hosted method driven with a chosen outcome.
type googleOp struct {
	method string
	op     otpc.Op
	// request builds the request whose requestId is requestID (its prefix
	// picks the outcome).
	request func(t *testing.T, e *env, tg *sim.Target, requestID string) otpc.Message
	// response is the typed 200 body; result names its result member.
	response func() otpc.Message
	result   func(otpc.Message) string
	// success and decline are the result members of the two 200 outcomes;
	// refusal and refusalStatus what the plugin's refusal becomes.
	success, decline, refusal string
	refusalStatus             int
}

func header(e *env, tg *sim.Target, requestID string) otpc.RequestHeader {
	h := e.client.Header(tg)
	h.RequestID = requestID
	return h
}

// paidCode is a code of the demo account, generated and paid.
func paidCode(t *testing.T, e *env, tg *sim.Target) string {
	t.Helper()
	hdr, _ := e.generateID(t, tg, "success-"+sim.NewRequestID(), 2000_000000, "JPY")
	e.pay(tg, hdr, 2000_000000)
	return hdr
}

// generateID calls generateReferenceNumber with a chosen requestId.
func (e *env) generateID(t *testing.T, tg *sim.Target, requestID string, micros int64, currency string) (string, *sim.Result) {
	t.Helper()
	m := e.merchant(tg)
	req := &otpc.GenerateReferenceNumberRequest{RequestHeader: header(e, tg, requestID),
		GooglePaymentToken:     otpc.GooglePaymentToken{IssuerID: otpc.IssuerID{Value: m.DemoIssuer}, Token: m.DemoToken},
		TransactionDescription: "Google - Outcomes", Amount: otpc.Amount{AmountMicros: micros, CurrencyCode: currency}}
	res, err := e.client.Call(context.Background(), tg, otpc.MethodGenerateReferenceNumber, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	return requestID, res
}

func googleOps() []googleOp {
	refund := func(t *testing.T, e *env, tg *sim.Target, id string) otpc.Message {
		return &otpc.RefundRequest{RequestHeader: header(e, tg, id), TransactionID: paidCode(t, e, tg),
			RefundAmount: otpc.Amount{AmountMicros: 500_000000, CurrencyCode: "JPY"}}
	}
	return []googleOp{
		{method: otpc.MethodGenerateReferenceNumber, op: otpc.OpGenerate,
			request: func(t *testing.T, e *env, tg *sim.Target, id string) otpc.Message {
				m := e.merchant(tg)
				return &otpc.GenerateReferenceNumberRequest{RequestHeader: header(e, tg, id),
					GooglePaymentToken:     otpc.GooglePaymentToken{IssuerID: otpc.IssuerID{Value: m.DemoIssuer}, Token: m.DemoToken},
					TransactionDescription: "Google - Outcomes", Amount: otpc.Amount{AmountMicros: 1500_000000, CurrencyCode: "JPY"}}
			},
			response: func() otpc.Message { return &otpc.GenerateReferenceNumberResponse{} },
			result: func(m otpc.Message) string {
				return unionMember(m.(*otpc.GenerateReferenceNumberResponse).Result.AppendJSON(nil))
			},
			success: "success", decline: "accountClosed", refusal: "invalidFieldValue", refusalStatus: 400},
		{method: otpc.MethodCancelReferenceNumber, op: otpc.OpCancel,
			request: func(t *testing.T, e *env, tg *sim.Target, id string) otpc.Message {
				code, res := e.generateID(t, tg, "success-"+sim.NewRequestID(), 1000_000000, "JPY")
				if res.Status != 200 {
					t.Fatalf("generate for cancel: %d", res.Status)
				}
				return &otpc.CancelReferenceNumberRequest{RequestHeader: header(e, tg, id), GenerateReferenceNumberRequestID: code}
			},
			response: func() otpc.Message { return &otpc.CancelReferenceNumberResponse{} },
			result: func(m otpc.Message) string {
				return unionMember(m.(*otpc.CancelReferenceNumberResponse).Result.AppendJSON(nil))
			},
			success: "success", decline: "referenceNumberAlreadyPaid", refusal: "preconditionViolation", refusalStatus: 400},
		{method: otpc.MethodRefund, op: otpc.OpRefund, request: refund,
			response: func() otpc.Message { return &otpc.RefundResponse{} },
			result:   func(m otpc.Message) string { return unionMember(m.(*otpc.RefundResponse).Result.AppendJSON(nil)) },
			success:  "success", decline: "accountOnHold", refusal: "preconditionViolation", refusalStatus: 400},
		{method: otpc.MethodAsynchronousRefund, op: otpc.OpAsyncRefund, request: refund,
			response: func() otpc.Message { return &otpc.AsynchronousRefundResponse{} },
			result: func(m otpc.Message) string {
				return unionMember(m.(*otpc.AsynchronousRefundResponse).Result.AppendJSON(nil))
			},
			success: "acknowledged", decline: "accountOnHold", refusal: "preconditionViolation", refusalStatus: 400},
		{method: otpc.MethodAssociateAccount, op: otpc.OpAssociate,
			request: func(t *testing.T, e *env, tg *sim.Target, id string) otpc.Message {
				authID := "auth-" + sim.NewRequestID()
				if err := e.g.Ledger.Apply(context.Background(), func(tx *ledger.Tx) error {
					return tx.SaveAuthSession(ledger.AuthSession{AuthRequestID: authID, PIAID: tg.PIAID,
						AccountID: "account-" + authID, Result: protocol.AuthSuccess})
				}); err != nil {
					t.Fatal(err)
				}
				return &otpc.AssociateAccountRequest{RequestHeader: header(e, tg, id),
					GooglePaymentToken:      otpc.GooglePaymentToken{IssuerID: otpc.IssuerID{Value: "issuer"}, Token: "token-" + authID},
					AuthenticationRequestID: authID, AssociationID: "assoc-" + authID}
			},
			response: func() otpc.Message { return &otpc.AssociateAccountResponse{} },
			result: func(m otpc.Message) string {
				return unionMember(m.(*otpc.AssociateAccountResponse).Result.AppendJSON(nil))
			},
			success: "success", decline: "accountClosed", refusal: "invalidIdentifier", refusalStatus: 404},
		{method: otpc.MethodRemittanceStatementNotification, op: otpc.OpRemittance,
			request: func(t *testing.T, e *env, tg *sim.Target, id string) otpc.Message {
				now := time.Now()
				return &otpc.RemittanceStatementNotificationRequest{RequestHeader: header(e, tg, id),
					RemittanceStatementSummary: otpc.RemittanceStatementSummary{
						StatementDate: otpc.TimestampOf(now),
						BillingPeriod: otpc.BillingPeriod{StartDate: otpc.TimestampOf(now.Add(-48 * time.Hour)),
							EndDate: otpc.TimestampOf(now.Add(-24 * time.Hour))},
						DateDue:              otpc.TimestampOf(now.Add(72 * time.Hour)),
						TotalDueByIntegrator: otpc.Amount{AmountMicros: 1000_000000, CurrencyCode: "JPY"},
					}}
			},
			response: func() otpc.Message { return &otpc.RemittanceStatementNotificationResponse{} },
			result: func(m otpc.Message) string {
				return unionMember(m.(*otpc.RemittanceStatementNotificationResponse).Result.AppendJSON(nil))
			},
			// A statement has no business decline: the plugin accepts it.
			success: "accepted", decline: "accepted", refusal: "invalidFieldValue", refusalStatus: 400},
	}
}

// unionMember names the one member of a result union's JSON.
func unionMember(b []byte) string {
	s := string(b)
	if i := strings.Index(s, `"`); i >= 0 {
		s = s[i+1:]
		if j := strings.Index(s, `"`); j >= 0 {
			return s[:j]
		}
	}
	return ""
}

// TestOutcomesToGoogle is the op × outcome table through the real
// gateway: real TLS, both envelopes, the ledger and a real wasm plugin.
// A success or business decline is a 200 with its result member, stored
// and replayed; a refusal is its member's 4xx, sealed, never stored (a
// retry is decided afresh) and commits no KV; a refusal with a host-only
// member, an error, a trap and a timeout are 503 with Retry-After and
// commit nothing. A refusal never yields 5xx, a failure never 4xx.
func TestOutcomesToGoogle(t *testing.T) {
	a := outcomesEnv(t)
	e := a.env
	ctx := context.Background()
	for _, tg := range []*sim.Target{e.pgp, e.jose} {
		m := e.merchant(tg)
		for _, op := range googleOps() {
			for _, outcome := range outcomes {
				t.Run(string(m.Envelope)+"/"+op.method+"/"+outcome, func(t *testing.T) {
					req := op.request(t, e, tg, outcome+"-"+sim.NewRequestID())
					id := req.(interface{ Header() *otpc.RequestHeader }).Header().RequestID
					kvBefore, _, _ := e.g.Ledger.KVGet(ctx, m.ID, "last")
					calls := e.g.Calls.Outcomes(m.ID)[op.op]
					resp := op.response()
					res, err := e.client.Call(ctx, tg, op.method, req, resp)
					if err != nil {
						t.Fatal(err)
					}
					_, recErr := e.g.Ledger.Record(ctx, tg.PIAID, id)
					kvAfter, _, _ := e.g.Ledger.KVGet(ctx, m.ID, "last")
					switch outcome {
					case "success", "decline":
						want := op.success
						if outcome == "decline" {
							want = op.decline
						}
						if res.Status != 200 || op.result(resp) != want {
							t.Fatalf("status %d result %q, want 200 %q (%s)", res.Status, op.result(resp), want, res.Plaintext)
						}
						if recErr != nil || string(kvAfter) != outcome {
							t.Fatalf("a 200 was not committed: record %v, KV %q", recErr, kvAfter)
						}
					case "refuse":
						if res.Status != op.refusalStatus || res.Member() != op.refusal || res.Error.ErrorDescription == "" {
							t.Fatalf("status %d member %q, want %d %q", res.Status, res.Member(), op.refusalStatus, op.refusal)
						}
						if res.RetryAfter != "" {
							t.Fatalf("a refusal carries Retry-After %q", res.RetryAfter)
						}
					default:
						if res.Status != http.StatusServiceUnavailable || res.Member() != "" || res.RetryAfter == "" {
							t.Fatalf("status %d member %q Retry-After %q, want 503 without member, with Retry-After",
								res.Status, res.Member(), res.RetryAfter)
						}
					}
					if outcome != "success" && outcome != "decline" {
						if !errors.Is(recErr, ledger.ErrNotFound) {
							t.Fatalf("a non-200 answer was stored: %v", recErr)
						}
						if string(kvAfter) != string(kvBefore) {
							t.Fatalf("a non-200 answer committed the plugin's KV write: %q → %q", kvBefore, kvAfter)
						}
					}
					if got := e.g.Calls.Outcomes(m.ID)[op.op]; sum(got) != sum(calls)+1 {
						t.Fatalf("plugin calls %v → %v, want one more", calls, got)
					}
					if outcome == "refuse" {
						// Google's retry of a refused request is decided
						// afresh (spec §7.4): the plugin is asked again.
						req.(interface{ Header() *otpc.RequestHeader }).Header().RequestTimestamp = otpc.TimestampOf(time.Now())
						again, err := e.client.Call(ctx, tg, op.method, req, nil)
						if err != nil || again.Status != op.refusalStatus || again.Member() != op.refusal {
							t.Fatalf("retry: %v status %d member %q", err, again.Status, again.Member())
						}
						if got := e.g.Calls.Outcomes(m.ID)[op.op]; got[plugincallRefusal] != calls[plugincallRefusal]+2 {
							t.Fatalf("retry was not re-evaluated by the plugin: %v → %v", calls, got)
						}
					}
				})
			}
		}
	}
	// Every member a plugin may refuse with, on every op: the member's
	// status, sealed, never stored.
	kinds := map[string]int{"invalidFieldValue": 400, "missingRequiredField": 400, "preconditionViolation": 400,
		"invalidIdentifier": 404, "userActionInProgress": 423, "forbidden": 403}
	for _, tg := range []*sim.Target{e.pgp, e.jose} {
		m := e.merchant(tg)
		for _, op := range googleOps() {
			for member, want := range kinds {
				t.Run(string(m.Envelope)+"/"+op.method+"/refuse_"+member, func(t *testing.T) {
					req := op.request(t, e, tg, "refuse_"+member+"-"+sim.NewRequestID())
					res, err := e.client.Call(ctx, tg, op.method, req, nil)
					if err != nil {
						t.Fatal(err)
					}
					if res.Status != want || res.Member() != member || res.Error.ErrorDescription != "outcomes: "+member {
						t.Fatalf("status %d member %q (%s), want %d %q", res.Status, res.Member(), errDescription(res), want, member)
					}
					id := req.(interface{ Header() *otpc.RequestHeader }).Header().RequestID
					if _, err := e.g.Ledger.Record(ctx, tg.PIAID, id); !errors.Is(err, ledger.ErrNotFound) {
						t.Fatalf("a refusal was stored: %v", err)
					}
				})
			}
		}
	}

	// The refusal with a host-only member is logged as an error naming it.
	if logs := a.logs.String(); !strings.Contains(logs, "idempotencyViolation, a member only the host may answer with") ||
		!strings.Contains(logs, `"level":"ERROR"`) {
		t.Fatal("no error log naming the reserved member")
	}
}

const plugincallRefusal = "refusal"

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// TestOutcomesToMerchantAPI: the merchant API's plugin ops (a store
// payment, an asynchronous refund's result) make the same distinction: a
// decline is a 200 the API reports, a refusal is its member's 4xx, any
// failure a 503; neither refusal nor failure records anything.
func TestOutcomesToMerchantAPI(t *testing.T) {
	a := outcomesEnv(t)
	e := a.env
	ctx := context.Background()
	tok := a.issue(t, "demo-pgp")
	api := a.client(tok.Secret)
	tg := e.pgp
	for _, outcome := range outcomes {
		t.Run("payment/"+outcome, func(t *testing.T) {
			_, res := e.generateID(t, tg, "success-"+sim.NewRequestID(), 1000_000000, "JPY")
			var gen otpc.GenerateReferenceNumberResponse
			if err := gen.UnmarshalJSON(res.Plaintext); err != nil || gen.Result.Success == nil {
				t.Fatalf("generate: %v %s", err, res.Plaintext)
			}
			p := merchant.Payment{Key: outcome + "-" + sim.NewRequestID(), Printable: printable(gen.Result.Success.DisplayableReferenceNumber),
				Amount: otpc.Amount{AmountMicros: 1000_000000, CurrencyCode: "JPY"}}
			var pr merchant.PaymentResult
			err := api.Do(ctx, http.MethodPost, "/v1/merchants/demo-pgp/payments", p, &pr)
			checkEvent(t, outcome, err, http.StatusBadRequest)
			if outcome == "success" && !pr.Accepted || outcome == "decline" && pr.Accepted {
				t.Fatalf("payment result %+v", pr)
			}
		})
		t.Run("refund-result/"+outcome, func(t *testing.T) {
			txID := paidCode(t, e, tg)
			refID := "success-" + sim.NewRequestID()
			if r, err := e.client.Call(ctx, tg, otpc.MethodAsynchronousRefund, &otpc.RefundRequest{RequestHeader: header(e, tg, refID),
				TransactionID: txID, RefundAmount: otpc.Amount{AmountMicros: 100_000000, CurrencyCode: "JPY"}}, nil); err != nil || r.Status != 200 {
				t.Fatalf("asynchronousRefund: %v %+v", err, r)
			}
			o := merchant.RefundOutcome{PIAID: tg.PIAID, RefundRequestID: refID, Success: true, Detail: outcome + "-detail"}
			err := api.Do(ctx, http.MethodPost, "/v1/merchants/demo-pgp/refund-results", o, nil)
			checkEvent(t, outcome, err, http.StatusBadRequest)
			r, _ := e.g.Ledger.Refund(ctx, tg.PIAID, refID)
			if resolved := r.State != ledger.RefundAcknowledged; resolved != (err == nil) {
				t.Fatalf("refund is %s after status %d", r.State, status(err))
			}
		})
	}
}

// checkEvent asserts the merchant API's status for an outcome.
func checkEvent(t *testing.T, outcome string, err error, refusal int) {
	t.Helper()
	want := http.StatusServiceUnavailable
	switch outcome {
	case "success", "decline":
		want = http.StatusOK
	case "refuse":
		want = refusal
	}
	if got := status(err); got != want {
		t.Fatalf("status %d (%v), want %d", got, err, want)
	}
}

// TestHostRulesBeforePlugin: what the host knows it decides before a
// plugin call is spent — the per-PIAID currencies and amount range set
// through the admin API, non-positive amounts, and a refund above what is
// left of the paid amount (in-flight asynchronous refunds included). The
// plugin's call counters prove it was not woken.
func TestHostRulesBeforePlugin(t *testing.T) {
	a := outcomesEnv(t)
	e := a.env
	ctx := context.Background()
	tg := e.jose
	m := e.merchant(tg)
	rules := map[string]ledger.AmountRules{tg.PIAID: {Currencies: []string{"JPY"}, MinMicros: 100_000000, MaxMicros: 300000_000000}}
	var am admin.Merchant
	if err := a.client(a.operator).Do(ctx, http.MethodPatch, admin.MerchantPath(m.ID), admin.MerchantUpdate{AmountRules: rules}, &am); err != nil {
		t.Fatal(err)
	}
	if len(am.AmountRules[tg.PIAID].Currencies) != 1 || am.AmountRules[tg.PIAID].MinMicros != 100_000000 {
		t.Fatalf("merchant after update: %+v", am.AmountRules)
	}
	err := a.client(a.operator).Do(ctx, http.MethodPatch, admin.MerchantPath(m.ID),
		admin.MerchantUpdate{AmountRules: map[string]ledger.AmountRules{"SOMEONE_ELSES": {MinMicros: 1}}}, nil)
	if status(err) != http.StatusBadRequest {
		t.Fatalf("rules for a foreign PIAID: %v", err)
	}

	for _, tc := range []struct {
		name     string
		micros   int64
		currency string
		status   int
		field    string
	}{
		{"inside the range", 1000_000000, "JPY", 200, ""},
		{"at the minimum", 100_000000, "JPY", 200, ""},
		{"below the minimum", 99_000000, "JPY", 400, "amount.amountMicros"},
		{"above the maximum", 300001_000000, "JPY", 400, "amount.amountMicros"},
		{"currency not taken", 1000_000000, "USD", 400, "amount.currencyCode"},
		{"zero", 0, "JPY", 400, "amount.amountMicros"},
		{"negative", -1, "JPY", 400, "amount.amountMicros"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := sum(e.g.Calls.Outcomes(m.ID)[otpc.OpGenerate])
			_, res := e.generateID(t, tg, "success-"+sim.NewRequestID(), tc.micros, tc.currency)
			after := sum(e.g.Calls.Outcomes(m.ID)[otpc.OpGenerate])
			if res.Status != tc.status {
				t.Fatalf("status %d member %q, want %d", res.Status, res.Member(), tc.status)
			}
			if tc.status == 200 {
				if after != before+1 {
					t.Fatalf("plugin calls %d → %d for an accepted amount", before, after)
				}
				return
			}
			if res.Member() != "invalidFieldValue" || res.Error.ErrorResponseResult.InvalidFieldValue.InvalidFieldName != tc.field {
				t.Fatalf("member %q %+v, want invalidFieldValue %s", res.Member(), res.Error.ErrorResponseResult, tc.field)
			}
			if after != before {
				t.Fatalf("the plugin was woken for a request the host refuses: calls %d → %d", before, after)
			}
		})
	}

	// Refunds: 2000 paid; 1500 refunded, 400 in flight; 100 left.
	txID := paidCode(t, e, tg)
	refund := func(method string, micros int64) *sim.Result {
		t.Helper()
		res, err := e.client.Call(ctx, tg, method, &otpc.RefundRequest{RequestHeader: header(e, tg, "success-"+sim.NewRequestID()),
			TransactionID: txID, RefundAmount: otpc.Amount{AmountMicros: micros, CurrencyCode: "JPY"}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if r := refund(otpc.MethodRefund, 1500_000000); r.Status != 200 {
		t.Fatalf("refund 1500: %d", r.Status)
	}
	if r := refund(otpc.MethodAsynchronousRefund, 400_000000); r.Status != 200 {
		t.Fatalf("async refund 400: %d", r.Status)
	}
	for _, method := range []string{otpc.MethodRefund, otpc.MethodAsynchronousRefund} {
		op := map[string]otpc.Op{otpc.MethodRefund: otpc.OpRefund, otpc.MethodAsynchronousRefund: otpc.OpAsyncRefund}[method]
		before := sum(e.g.Calls.Outcomes(m.ID)[op])
		if r := refund(method, 100_000001); r.Status != 400 || r.Member() != "preconditionViolation" {
			t.Fatalf("%s above the remaining amount: %d %q", method, r.Status, r.Member())
		}
		if after := sum(e.g.Calls.Outcomes(m.ID)[op]); after != before {
			t.Fatalf("%s: the plugin was woken for a refund above the remaining amount (%d → %d)", method, before, after)
		}
	}
	if r := refund(otpc.MethodRefund, 100_000000); r.Status != 200 {
		t.Fatalf("refund of exactly the remaining amount: %d %q", r.Status, r.Member())
	}
}

// TestExamplePluginsRefuse: the issue's cases against the example plugins
// with no host rules declared, so the plugins' own rules answer: an amount
// below the merchant's minimum and a currency it does not take come back
// as invalidFieldValue 400 with the field path, never 503.
func TestExamplePluginsRefuse(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cfg, err := os.ReadFile("../../plugins/banktransfer/testdata/config.json")
	if err != nil {
		t.Fatal(err)
	}
	wasm := runtimetest.Build(t, "../../plugins/banktransfer")
	if _, err := e.g.Directory.AddPluginVersion(ctx, directory.PluginVersion{MerchantID: "demo-jose", Version: "bt", Wasm: wasm, Config: cfg}); err != nil {
		t.Fatal(err)
	}
	if err := e.g.Directory.ActivatePluginVersion(ctx, "demo-jose", "bt"); err != nil {
		t.Fatal(err)
	}
	if err := e.g.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		plugin   string
		tg       *sim.Target
		micros   int64
		currency string
		field    string
	}{
		{"konbini", e.pgp, 99_000000, "JPY", "amount.amountMicros"},
		{"konbini", e.pgp, 300001_000000, "JPY", "amount.amountMicros"},
		{"konbini", e.pgp, 1000_000000, "EUR", "amount.currencyCode"},
		{"banktransfer", e.jose, 999_999, "EUR", "amount.amountMicros"},
		{"banktransfer", e.jose, 25_500_000, "JPY", "amount.currencyCode"},
		{"banktransfer", e.jose, 25_500_001, "EUR", "amount.amountMicros"},
	} {
		t.Run(tc.plugin+"/"+tc.field, func(t *testing.T) {
			_, res := e.generateID(t, tc.tg, sim.NewRequestID(), tc.micros, tc.currency)
			if res.Status != 400 || res.Member() != "invalidFieldValue" ||
				res.Error.ErrorResponseResult.InvalidFieldValue.InvalidFieldName != tc.field || res.RetryAfter != "" {
				t.Fatalf("status %d member %q (%+v), want 400 invalidFieldValue %s", res.Status, res.Member(), res.Error, tc.field)
			}
		})
	}
}

func errDescription(res *sim.Result) string {
	if res.Error == nil {
		return ""
	}
	return res.Error.ErrorDescription
}

// TestCircuitOpenAnswersBeforeCrypto: once a merchant's plugin is
// circuit-broken, its plugin-backed requests are answered 503 with
// Retry-After before any decryption — even a body that could never be
// decrypted gets the 503, not invalidPayloadEncryption — while its echo and
// the other merchant are served.
func TestCircuitOpenAnswersBeforeCrypto(t *testing.T) {
	a := outcomesEnv(t)
	e := a.env
	ctx := context.Background()
	gen := googleOps()[0]
	for i := range plugincall.DefaultBreakerTimeouts {
		res, err := e.client.Call(ctx, e.pgp, gen.method, gen.request(t, e, e.pgp, "timeout-"+sim.NewRequestID()), gen.response())
		if err != nil || res.Status != http.StatusServiceUnavailable {
			t.Fatalf("timeout %d: %v %+v", i, err, res)
		}
	}
	url := strings.TrimSuffix(e.pgp.BaseURL, "/") + otpc.PathPrefix + gen.method
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader("not an envelope"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", e.pgp.Codec.ContentType())
	t0 := time.Now()
	res, err := e.client.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if held := time.Since(t0); held < protocol.DefaultCircuitOpenPause {
		t.Errorf("open circuit answered after %s, want it held at least %s so a caller ignoring Retry-After cannot flood", held, protocol.DefaultCircuitOpenPause)
	}
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
		t.Fatalf("open circuit, undecryptable body: %d Retry-After %q, want 503 with Retry-After before any crypto",
			res.StatusCode, res.Header.Get("Retry-After"))
	}
	echo := &otpc.EchoRequest{RequestHeader: e.client.Header(e.pgp), ClientMessage: "still here"}
	if r, err := e.client.Call(ctx, e.pgp, otpc.MethodEcho, echo, &otpc.EchoResponse{}); err != nil || r.Status != http.StatusOK {
		t.Fatalf("echo with the circuit open: %v %+v", err, r)
	}
	if r, err := e.client.Call(ctx, e.jose, gen.method, gen.request(t, e, e.jose, "success-"+sim.NewRequestID()), gen.response()); err != nil || r.Status != http.StatusOK {
		t.Fatalf("the other merchant: %v %+v", err, r)
	}
}

// TestPluginLogsPerMerchant: a merchant reads its own plugin's log lines
// and failed calls (a trap with the guest's trace and file:line), each with
// the request id, through its merchant token — never another merchant's
// lines, and not another merchant's buffer at all — and a follower wakes
// for its next line.
func TestPluginLogsPerMerchant(t *testing.T) {
	a := outcomesEnv(t)
	e := a.env
	ctx := context.Background()
	gen := googleOps()[0]
	call := func(tg *sim.Target, outcome string, want int) {
		t.Helper()
		res, err := e.client.Call(ctx, tg, gen.method, gen.request(t, e, tg, outcome+"-"+sim.NewRequestID()), gen.response())
		if err != nil || res.Status != want {
			t.Fatalf("%s: %v %+v", outcome, err, res)
		}
	}
	call(e.pgp, "success", http.StatusOK)
	call(e.pgp, "trap", http.StatusServiceUnavailable)
	call(e.jose, "decline", http.StatusOK)
	call(e.jose, "decline", http.StatusOK)

	pgp, jose := a.client(a.issue(t, "demo-pgp").Secret), a.client(a.issue(t, "demo-jose").Secret)
	var pl admin.PluginLogs
	if err := pgp.Do(ctx, http.MethodGet, "/v1/merchants/demo-pgp/plugin-logs", nil, &pl); err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, en := range pl.Entries {
		if en.RequestID == "" || en.Version != "outcomes" {
			t.Errorf("entry without request id or version: %+v", en)
		}
		texts = append(texts, en.Failure+":"+en.Text)
		if en.Failure == "trap" && (!strings.Contains(en.Stack, "panic: outcomes: trap requested") || !strings.Contains(en.Stack, "main.go:")) {
			t.Errorf("trap report without the guest's trace: %+v", en)
		}
	}
	if len(texts) != 3 || texts[0] != ":outcome success" || texts[1] != ":outcome trap" || !strings.HasPrefix(texts[2], "trap:") {
		t.Fatalf("demo-pgp's plugin logs %q, want its two lines and the trap", texts)
	}
	if err := pgp.Do(ctx, http.MethodGet, "/v1/merchants/demo-jose/plugin-logs", nil, &admin.PluginLogs{}); status(err) != http.StatusForbidden {
		t.Fatalf("demo-pgp reading demo-jose's plugin logs: %v, want 403", err)
	}
	var jl admin.PluginLogs
	if err := jose.Do(ctx, http.MethodGet, "/v1/merchants/demo-jose/plugin-logs?failures=true", nil, &jl); err != nil || len(jl.Entries) != 0 {
		t.Fatalf("demo-jose's failures %+v %v, want none", jl, err)
	}
	if err := jose.Do(ctx, http.MethodGet, "/v1/merchants/demo-jose/plugin-logs", nil, &jl); err != nil || len(jl.Entries) != 2 ||
		jl.Entries[0].Text != "outcome decline" || jl.Entries[1].Text != "outcome decline" {
		t.Fatalf("demo-jose's plugin logs %+v %v, want its two decline lines only", jl, err)
	}

	// Follow: a long poll after the last entry wakes for the next line.
	got := make(chan admin.PluginLogs, 1)
	go func() {
		var next admin.PluginLogs
		if err := pgp.Do(ctx, http.MethodGet, fmt.Sprintf("/v1/merchants/demo-pgp/plugin-logs?after=%d&wait=20s", pl.Next), nil, &next); err != nil {
			t.Error(err)
		}
		got <- next
	}()
	call(e.jose, "decline", http.StatusOK) // another merchant's line does not wake it
	select {
	case n := <-got:
		t.Fatalf("the follower woke on another merchant's line: %+v", n)
	case <-time.After(100 * time.Millisecond):
	}
	call(e.pgp, "success", http.StatusOK)
	select {
	case n := <-got:
		if len(n.Entries) != 1 || n.Entries[0].Text != "outcome success" || n.Next != pl.Next+1 {
			t.Fatalf("follower got %+v", n)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the follower was not woken by its merchant's new line")
	}
}

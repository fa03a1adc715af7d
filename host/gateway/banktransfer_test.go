package gateway

import (
	"context"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/host/directory"
	"github.com/otpcgate/otpcgate/host/ledger"
	"github.com/otpcgate/otpcgate/host/merchant"
	"github.com/otpcgate/otpcgate/host/runtime/runtimetest"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// TestBankTransferRules runs the banktransfer plugin behind the gateway:
// its over-payment and late-within-grace acceptances agree with the
// ledger's rules (the code is recorded paid at its own amount; the expiry
// the plugin reports includes the grace period), and an under-payment is
// declined.
func TestBankTransferRules(t *testing.T) {
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
	m := e.merchant(e.jose)
	gen := func() (string, string, time.Time) {
		req := &otpc.GenerateReferenceNumberRequest{RequestHeader: e.client.Header(e.jose),
			GooglePaymentToken:     otpc.GooglePaymentToken{IssuerID: otpc.IssuerID{Value: m.DemoIssuer}, Token: m.DemoToken},
			TransactionDescription: "Google - Transfer", Amount: otpc.Amount{AmountMicros: 25_500_000, CurrencyCode: "EUR"}}
		var resp otpc.GenerateReferenceNumberResponse
		res, err := e.client.Call(ctx, e.jose, otpc.MethodGenerateReferenceNumber, req, &resp)
		if err != nil || res.Status != http.StatusOK || resp.Result.Success == nil {
			t.Fatalf("generate: %v %+v", err, res)
		}
		code, err := e.g.Ledger.Code(ctx, e.jose.PIAID, req.RequestHeader.RequestID)
		if err != nil {
			t.Fatal(err)
		}
		return req.RequestHeader.RequestID, code.Printable, code.ExpiresAt
	}
	pay := func(key, printable string, micros int64, at time.Time) (merchant.PaymentResult, error) {
		return e.g.Merchants.ReportPayment(ctx, m.ID, merchant.Payment{Key: key, Printable: printable,
			Amount: otpc.Amount{AmountMicros: micros, CurrencyCode: "EUR"}, PaidAt: at})
	}

	txID, printable, expires := gen()
	if d := time.Until(expires); d < 16*24*time.Hour || d > 17*24*time.Hour {
		t.Fatalf("code payable for %s, want validity 14 days + grace 3 days", d)
	}
	res, err := pay("over-1", printable, 30_000_000, time.Now())
	if err != nil || !res.Accepted {
		t.Fatalf("over-payment: %+v %v", res, err)
	}
	if code, _ := e.g.Ledger.Code(ctx, e.jose.PIAID, txID); code.State != ledger.CodePaid || code.PaidMicros != 25_500_000 {
		t.Fatalf("over-paid code recorded as %s %d micros, want paid 25500000", code.State, code.PaidMicros)
	}

	_, printable, _ = gen()
	res, err = pay("under-1", printable, 25_000_000, time.Now())
	if err != nil || res.Accepted || res.DeclineReason != "underpaid" {
		t.Fatalf("under-payment: %+v %v", res, err)
	}
}

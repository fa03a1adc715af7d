package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/otpcgate/otpcgate/host/runtime"
	"github.com/otpcgate/otpcgate/host/runtime/runtimetest"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// TestWasmIntegration builds this plugin to wasm and runs a code's life
// through the real runtime, committing KV between calls as the gateway does.
func TestWasmIntegration(t *testing.T) {
	wasm := runtimetest.Build(t, ".")
	m := runtimetest.Manager(t, runtime.Options{})
	runtimetest.Load(t, m, "konbini", wasm, testConfig(t))
	kv := runtimetest.NewMapKV()
	env := runtime.CallEnv{Namespace: "merchant-1", KV: kv, Now: now}
	ctx := context.Background()
	call := func(op otpc.Op, in runtimetest.Marshaler, out runtimetest.Unmarshaler) {
		t.Helper()
		cs, err := runtimetest.Call(ctx, m, "konbini", op, in, out, env)
		if err != nil {
			t.Fatalf("%s: %v", op, err)
		}
		kv.Apply(cs)
	}

	var gen otpc.GenerateOutput
	call(otpc.OpGenerate, genInput("acct-1", 1_000_000_000, "JPY"), &gen)
	var gen2 otpc.GenerateOutput
	call(otpc.OpGenerate, genInput("acct-1", 1_000_000_000, "JPY"), &gen2)
	c1 := gen.Result.Success.DisplayableReferenceNumber.BarcodeWithPrintableString.PrintableString
	c2 := gen2.Result.Success.DisplayableReferenceNumber.BarcodeWithPrintableString.PrintableString
	if !strings.HasPrefix(c1, "810000001") || !strings.HasPrefix(c2, "810000002") || !luhnValid(c1) || !luhnValid(c2) {
		t.Fatalf("codes %q %q: sequence not kept in KV", c1, c2)
	}
	if v, ok, _ := kv.Get(ctx, "merchant-1", "code/"+c1); !ok || string(v) != "gen-1" {
		t.Fatalf("code mapping not committed: %q", v)
	}

	ci := code(otpc.CodeStateIssued)
	ci.PrintableString, ci.ExpiresAt = c1, gen.ExpiresAt
	var paidOut otpc.PaidOutput
	call(otpc.OpPaid, &otpc.PaidInput{Code: ci, Amount: ci.Amount, PaidAt: otpc.Timestamp{EpochMillis: now.UnixMilli()}}, &paidOut)
	if !paidOut.Accepted || paidOut.PaymentIntegratorTransactionID != "KNB-"+c1 {
		t.Fatalf("paid: %+v", paidOut)
	}

	var cancelOut otpc.CancelOutput
	paidCode := code(otpc.CodeStatePaid)
	call(otpc.OpCancel, &otpc.CancelInput{Code: paidCode}, &cancelOut)
	if cancelOut.Result.ReferenceNumberAlreadyPaid == nil {
		t.Fatalf("cancel of a paid code: %+v", cancelOut.Result)
	}

	var refundOut otpc.RefundOutput
	call(otpc.OpRefund, refundIn(otpc.CodeStatePaid, 5e8, 0), &refundOut)
	if refundOut.Result.Success == nil {
		t.Fatalf("refund: %+v", refundOut.Result)
	}
	var asyncOut otpc.AsyncRefundOutput
	call(otpc.OpAsyncRefund, refundIn(otpc.CodeStateRefunded, 5e8, 5e8), &asyncOut)
	var doneOut otpc.RefundDoneOutput
	call(otpc.OpRefundDone, &otpc.RefundDoneInput{RefundRequestID: "ref-1", Code: paidCode, Amount: otpc.Amount{AmountMicros: 5e8, CurrencyCode: "JPY"}, Success: true}, &doneOut)
	if asyncOut.Result.Acknowledged == nil || doneOut.Result.Success == nil {
		t.Fatalf("async refund: %+v / %+v", asyncOut.Result, doneOut.Result)
	}

	// Refunding more than remains is the plugin's refusal, carried over
	// the ABI as a refusal frame: preconditionViolation for Google.
	_, err := runtimetest.Call(ctx, m, "konbini", otpc.OpRefund, refundIn(otpc.CodeStateRefunded, 6e8, 5e8), &refundOut, env)
	var ce *runtime.CallError
	if !errors.As(err, &ce) || ce.Kind != runtime.KindRefusal {
		t.Fatalf("over-refund: %v", err)
	}
	if ref, perr := otpc.ParseRefusalFrame(ce.Refusal); perr != nil || ref.Member() != "preconditionViolation" ||
		!strings.Contains(ref.Description, "exceeds the remaining") {
		t.Fatalf("over-refund refusal: %+v %v", ref, perr)
	}

	var auth otpc.AuthenticateOutput
	call(otpc.OpAuthenticate, &otpc.AuthenticateInput{AccountID: "acct-1", Secret: "test-only-secret"}, &auth)
	var assoc otpc.AssociateOutput
	call(otpc.OpAssociate, &otpc.AssociateInput{AccountID: "acct-1"}, &assoc)
	var rem otpc.RemittanceOutput
	call(otpc.OpRemittance, &otpc.RemittanceInput{}, &rem)
	if !auth.Authenticated || assoc.Result.Success == nil || rem.Result.Accepted == nil {
		t.Fatalf("auth %+v assoc %+v remittance %+v", auth, assoc.Result, rem.Result)
	}
}

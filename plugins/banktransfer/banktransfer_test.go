package main

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/host/runtime"
	"github.com/otpcgate/otpcgate/host/runtime/runtimetest"
	"github.com/otpcgate/otpcgate/sdk"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

var now = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

func testConfig(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/config.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRF(t *testing.T) {
	// ISO 11649's example reference.
	for _, ok := range []string{"RF18539007547034", "RF18 5390 0754 7034", "rf18 5390 0754 7034", "RF712348231"} {
		if !validRF(ok) {
			t.Errorf("%q rejected", ok)
		}
	}
	for _, bad := range []string{"RF19539007547034", "RF18539007547043", "RF18", "XX18539007547034", "RF18-5390"} {
		if validRF(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
	ref, err := newRF("539007547034")
	if err != nil || ref != "RF18539007547034" {
		t.Fatalf("newRF = %q %v", ref, err)
	}
	if p := printRF(ref); p != "RF18 5390 0754 7034" {
		t.Fatalf("printRF = %q", p)
	}
	if _, err := newRF(strings.Repeat("A", 22)); err == nil {
		t.Fatal("22-character body accepted")
	}
}

func genInput(acct string, micros int64, ccy string) *otpc.GenerateInput {
	return &otpc.GenerateInput{AccountID: acct, Request: otpc.GenerateReferenceNumberRequest{
		RequestHeader: otpc.RequestHeader{RequestID: "gen-1"}, Amount: otpc.Amount{AmountMicros: micros, CurrencyCode: ccy}}}
}

func TestGenerate(t *testing.T) {
	h := sdk.NewMemHost(now, testConfig(t))
	c := sdk.NewContext(h)
	out, err := generate(c, genInput("acct-1", 25_500_000, "EUR"))
	if err != nil {
		t.Fatal(err)
	}
	p := *out.Result.Success.DisplayableReferenceNumber.PrintableString
	if !validRF(p) || !strings.HasPrefix(strings.ReplaceAll(p, " ", "")[4:], "OTPC0000001") {
		t.Fatalf("reference %q", p)
	}
	if err := out.Result.Validate(); err != nil {
		t.Fatal(err)
	}
	// Validity 14 days + grace 3 days: the host refuses payments after this.
	if out.ExpiresAt.EpochMillis != now.Add(17*24*time.Hour).UnixMilli() || string(h.KV["seq"]) != "2" {
		t.Fatalf("expiry %v seq %q", out.ExpiresAt, h.KV["seq"])
	}
	// The plugin's own rules are refusals Google gets as invalidFieldValue
	// 400 with the field path, never failures it would retry.
	tests := []struct {
		in        *otpc.GenerateInput
		wantField string
	}{
		{genInput("acct-1", 25_500_000, "JPY"), "amount.currencyCode"},
		{genInput("acct-1", 999_999, "EUR"), "amount.amountMicros"},
		{genInput("acct-1", 25_500_001, "EUR"), "amount.amountMicros"},
	}
	for _, tc := range tests {
		_, err := generate(c, tc.in)
		if ref := asRefusal(err); ref.Result.InvalidFieldValue == nil || ref.Result.InvalidFieldValue.InvalidFieldName != tc.wantField {
			t.Errorf("err %v, want an invalidFieldValue refusal of %s", err, tc.wantField)
		}
	}
	if out, err := generate(c, genInput("acct-closed", 25_500_000, "EUR")); err != nil || out.Result.AccountClosed == nil {
		t.Fatalf("closed account: %+v %v", out, err)
	}
}

func paidIn(mut func(*otpc.PaidInput)) *otpc.PaidInput {
	ref, _ := newRF("OTPC00000011234")
	exp := otpc.Timestamp{EpochMillis: now.Add(17 * 24 * time.Hour).UnixMilli()} // 14 days + 3 of grace
	in := &otpc.PaidInput{
		Code: otpc.CodeInfo{GenerateRequestID: "gen-1", State: otpc.CodeStateIssued, PrintableString: printRF(ref),
			Amount: otpc.Amount{AmountMicros: 25_500_000, CurrencyCode: "EUR"}, ExpiresAt: &exp},
		Amount: otpc.Amount{AmountMicros: 25_500_000, CurrencyCode: "EUR"},
		PaidAt: otpc.Timestamp{EpochMillis: now.UnixMilli()},
	}
	if mut != nil {
		mut(in)
	}
	return in
}

func TestPaid(t *testing.T) {
	tests := []struct {
		name   string
		in     *otpc.PaidInput
		reason string
	}{
		{"exact", paidIn(nil), ""},
		{"overpaid", paidIn(func(p *otpc.PaidInput) { p.Amount.AmountMicros = 30_000_000 }), ""},
		{"late within grace", paidIn(func(p *otpc.PaidInput) { p.PaidAt.EpochMillis = now.Add(16 * 24 * time.Hour).UnixMilli() }), ""},
		{"underpaid", paidIn(func(p *otpc.PaidInput) { p.Amount.AmountMicros = 25_000_000 }), "underpaid"},
		{"after grace", paidIn(func(p *otpc.PaidInput) { p.PaidAt.EpochMillis = now.Add(18 * 24 * time.Hour).UnixMilli() }), "grace"},
		{"bad reference", paidIn(func(p *otpc.PaidInput) { p.Code.PrintableString = "RF00 OTPC 0000 0011 234" }), "mod-97"},
		{"cancelled", paidIn(func(p *otpc.PaidInput) { p.Code.State = otpc.CodeStateCancelled }), "cancelled"},
		{"currency", paidIn(func(p *otpc.PaidInput) { p.Amount.CurrencyCode = "USD" }), "currency"},
	}
	for _, tc := range tests {
		out, err := paid(sdk.NewContext(sdk.NewMemHost(now, testConfig(t))), tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if (tc.reason == "") != out.Accepted || !strings.Contains(out.DeclineReason, tc.reason) {
			t.Errorf("%s: %+v", tc.name, out)
		}
	}
}

func refundIn(micros, paid, refunded int64) *otpc.RefundInput {
	return &otpc.RefundInput{
		Request: otpc.RefundRequest{RequestHeader: otpc.RequestHeader{RequestID: "r-1"}, TransactionID: "gen-1",
			RefundAmount: otpc.Amount{AmountMicros: micros, CurrencyCode: "EUR"}},
		Code: otpc.CodeInfo{State: otpc.CodeStatePaid, PaidMicros: paid, RefundedMicros: refunded,
			Amount: otpc.Amount{AmountMicros: paid, CurrencyCode: "EUR"}},
	}
}

func TestRefunds(t *testing.T) {
	c := sdk.NewContext(sdk.NewMemHost(now, testConfig(t)))
	if out, err := refund(c, refundIn(50_000_000, 100_000_000, 0)); err != nil || out.Result.Success == nil {
		t.Fatalf("instant refund: %+v %v", out, err)
	}
	if _, err := refund(c, refundIn(50_000_001, 100_000_000, 0)); asRefusal(err) == nil || !strings.Contains(err.Error(), "asynchronousRefund") {
		t.Fatalf("large sync refund: %v", err)
	}
	if out, err := asyncRefund(c, refundIn(100_000_000, 100_000_000, 0)); err != nil || out.Result.Acknowledged == nil {
		t.Fatalf("async refund: %+v %v", out, err)
	}
	if _, err := asyncRefund(c, refundIn(60_000_000, 100_000_000, 50_000_000)); asRefusal(err).Member() != "preconditionViolation" {
		t.Fatalf("refund beyond the remaining amount: %v", err)
	}
	if _, err := asyncRefund(c, refundIn(1, 0, 0)); asRefusal(err).Member() != "preconditionViolation" {
		t.Fatalf("refund of an unpaid reference: %v", err)
	}
	for _, tc := range []struct {
		in    otpc.RefundDoneInput
		check func(otpc.RefundResult) bool
	}{
		{otpc.RefundDoneInput{Success: true}, func(r otpc.RefundResult) bool { return r.Success != nil }},
		{otpc.RefundDoneInput{Detail: "Beneficiary account CLOSED"}, func(r otpc.RefundResult) bool { return r.AccountClosed != nil }},
		{otpc.RefundDoneInput{Detail: "returned"}, func(r otpc.RefundResult) bool { return r.AccountOnHold != nil }},
	} {
		if out, err := refundDone(c, &tc.in); err != nil || !tc.check(out.Result) {
			t.Errorf("%+v: %+v %v", tc.in, out, err)
		}
	}
}

func TestCancel(t *testing.T) {
	c := sdk.NewContext(sdk.NewMemHost(now, testConfig(t)))
	if out, _ := cancel(c, &otpc.CancelInput{Code: otpc.CodeInfo{State: otpc.CodeStateIssued}}); out.Result.Success == nil {
		t.Error("unpaid reference not cancellable")
	}
	if out, _ := cancel(c, &otpc.CancelInput{Code: otpc.CodeInfo{State: otpc.CodeStatePaid, PaidMicros: 1}}); out.Result.ReferenceNumberAlreadyPaid == nil {
		t.Error("paid reference cancelled")
	}
}

// TestWasmIntegration runs the plugin built to wasm in the real runtime.
func TestWasmIntegration(t *testing.T) {
	m := runtimetest.Manager(t, runtime.Options{})
	runtimetest.Load(t, m, "bt", runtimetest.Build(t, "."), testConfig(t))
	kv := runtimetest.NewMapKV()
	env := runtime.CallEnv{Namespace: "merchant-9", KV: kv, Now: now}
	ctx := context.Background()
	var refs []string
	for range 2 {
		var out otpc.GenerateOutput
		cs, err := runtimetest.Call(ctx, m, "bt", otpc.OpGenerate, genInput("acct-1", 25_500_000, "EUR"), &out, env)
		if err != nil {
			t.Fatal(err)
		}
		kv.Apply(cs)
		refs = append(refs, *out.Result.Success.DisplayableReferenceNumber.PrintableString)
	}
	for i, r := range refs {
		if !validRF(r) || !strings.Contains(strings.ReplaceAll(r, " ", ""), "OTPC000000"+string(rune('1'+i))) {
			t.Fatalf("reference %d %q", i, r)
		}
	}
	var paidOut otpc.PaidOutput
	if _, err := runtimetest.Call(ctx, m, "bt", otpc.OpPaid, paidIn(nil), &paidOut, env); err != nil || !paidOut.Accepted {
		t.Fatalf("paid: %+v %v", paidOut, err)
	}
	// Ops without a handler are the plugin's (typed) error.
	_, _, err := m.Call(ctx, "bt", otpc.OpAssociate, (&otpc.AssociateInput{}).AppendJSON(nil), env)
	if !runtime.IsKind(err, runtime.KindPluginError) || !strings.Contains(err.Error(), "unsupported op") {
		t.Fatalf("associate: %v", err)
	}
	// A malformed frame is reported as bad input, and the instance survives.
	_, _, err = m.Call(ctx, "bt", otpc.OpGenerate, []byte(`{"request":`), env)
	if !runtime.IsKind(err, runtime.KindPluginError) || !strings.Contains(err.Error(), "bad input") {
		t.Fatalf("malformed input: %v", err)
	}
	var rem otpc.RemittanceOutput
	if _, err := runtimetest.Call(ctx, m, "bt", otpc.OpRemittance, &otpc.RemittanceInput{}, &rem, env); err != nil || rem.Result.Accepted == nil {
		t.Fatalf("remittance: %+v %v", rem, err)
	}
}

// asRefusal returns err's refusal, or a refusal with no member.
func asRefusal(err error) *otpc.Refusal {
	var ref *otpc.Refusal
	if errors.As(err, &ref) {
		return ref
	}
	return &otpc.Refusal{}
}

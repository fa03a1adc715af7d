package main

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/sdk"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// Native unit tests of the plugin logic; integration_test.go runs the same
// plugin built to wasm in the real runtime.

var now = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

func testConfig(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/config.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newCtx(t testing.TB) (*sdk.Context, *sdk.MemHost) {
	h := sdk.NewMemHost(now, testConfig(t))
	return sdk.NewContext(h), h
}

func genInput(account string, micros int64, ccy string) *otpc.GenerateInput {
	return &otpc.GenerateInput{
		Request: otpc.GenerateReferenceNumberRequest{
			RequestHeader: otpc.RequestHeader{RequestID: "gen-1"},
			Amount:        otpc.Amount{AmountMicros: micros, CurrencyCode: ccy},
		},
		AccountID: account,
	}
}

func TestLuhn(t *testing.T) {
	tests := []struct {
		s  string
		ok bool
	}{
		{"79927398713", true}, // the classic ISO/IEC 7812 example
		{"79927398710", false},
		{"79927398731", false}, // adjacent swap caught
		{"0", false},
		{"7992739871a", false},
	}
	for _, tc := range tests {
		if got := luhnValid(tc.s); got != tc.ok {
			t.Errorf("luhnValid(%q) = %v, want %v", tc.s, got, tc.ok)
		}
	}
	if d := luhnDigit("7992739871"); d != '3' {
		t.Errorf("luhnDigit = %c, want 3", d)
	}
}

func TestMakeCodeAndBarcode(t *testing.T) {
	code := makeCode("81", 42, 123456, 14)
	if len(code) != 14 || !strings.HasPrefix(code, "810000042") || code[9:13] != "3456" || !luhnValid(code) {
		t.Fatalf("code %q", code)
	}
	// Sequence wider than its field keeps the low digits.
	if c := makeCode("81", 1234567890, 7, 14); c[2:9] != "4567890" || c[9:13] != "0007" || !luhnValid(c) {
		t.Fatalf("wrapped code %q", c)
	}
	bc := barcode(code, 1_234_560_000, now.Add(72*time.Hour))
	want := "91" + code + "000000123456" + "261130"
	if bc != want {
		t.Fatalf("barcode %q, want %q", bc, want)
	}
}

func TestGenerate(t *testing.T) {
	c, h := newCtx(t)
	out, err := generate(c, genInput("acct-1", 1_000_000_000, "JPY"))
	if err != nil {
		t.Fatal(err)
	}
	b := out.Result.Success.DisplayableReferenceNumber.BarcodeWithPrintableString
	if !luhnValid(b.PrintableString) || len(b.PrintableString) != 14 || !strings.HasPrefix(b.PrintableString, "810000001") {
		t.Fatalf("code %q", b.PrintableString)
	}
	if !strings.HasPrefix(b.BarcodeContents, "91"+b.PrintableString+"000000100000") {
		t.Fatalf("barcode %q", b.BarcodeContents)
	}
	if out.ExpiresAt.EpochMillis != now.Add(72*time.Hour).UnixMilli() {
		t.Fatalf("expiry %v", out.ExpiresAt)
	}
	if err := out.Result.Validate(); err != nil {
		t.Fatalf("result invalid: %v", err)
	}
	if string(h.KV["seq"]) != "2" || string(h.KV["code/"+b.PrintableString]) != "gen-1" {
		t.Fatalf("KV %q", h.KV)
	}
	out2, err := generate(c, genInput("acct-1", 1_000_000_000, "JPY"))
	if err != nil {
		t.Fatal(err)
	}
	if p := out2.Result.Success.DisplayableReferenceNumber.BarcodeWithPrintableString.PrintableString; !strings.HasPrefix(p, "810000002") {
		t.Fatalf("second code %q does not use the next sequence", p)
	}
}

func TestGenerateDeclinesAndErrors(t *testing.T) {
	tests := []struct {
		name    string
		in      *otpc.GenerateInput
		check   func(*otpc.GenerateOutput) bool
		wantErr string
	}{
		{"closed account", genInput("acct-closed", 1e9, "JPY"), func(o *otpc.GenerateOutput) bool { return o.Result.AccountClosed != nil }, ""},
		{"revoked token", genInput("acct-revoked", 1e9, "JPY"), func(o *otpc.GenerateOutput) bool { return o.Result.GooglePaymentTokenInvalidatedByUser != nil }, ""},
		{"currency", genInput("acct-1", 1e9, "EUR"), nil, "amount.currencyCode"},
		{"too small", genInput("acct-1", 99_999_999, "JPY"), nil, "amount.amountMicros"},
		{"too large", genInput("acct-1", 300_000_000_001, "JPY"), nil, "amount.amountMicros"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newCtx(t)
			out, err := generate(c, tc.in)
			if tc.wantErr != "" {
				// The merchant's own rule: a refusal Google gets as
				// invalidFieldValue 400, not a failure it retries.
				var ref *otpc.Refusal
				if !errors.As(err, &ref) || ref.Result.InvalidFieldValue == nil || ref.Result.InvalidFieldValue.InvalidFieldName != tc.wantErr {
					t.Fatalf("err %v, want an invalidFieldValue refusal of %s", err, tc.wantErr)
				}
				return
			}
			if err != nil || !tc.check(out) {
				t.Fatalf("out %+v err %v", out, err)
			}
		})
	}
}

func code(state string) otpc.CodeInfo {
	exp := otpc.Timestamp{EpochMillis: now.Add(72 * time.Hour).UnixMilli()}
	paidAt := otpc.Timestamp{EpochMillis: now.Add(-time.Hour).UnixMilli()}
	ci := otpc.CodeInfo{
		GenerateRequestID: "gen-1", AccountID: "acct-1", State: state,
		Amount:          otpc.Amount{AmountMicros: 1_000_000_000, CurrencyCode: "JPY"},
		PrintableString: makeCode("81", 1, 1, 14), ExpiresAt: &exp,
	}
	if state == otpc.CodeStatePaid || state == otpc.CodeStateRefunded {
		ci.PaidMicros, ci.PaidAt = 1_000_000_000, &paidAt
	}
	return ci
}

func TestCancel(t *testing.T) {
	tests := []struct {
		state      string
		alreadyPay bool
	}{
		{otpc.CodeStateIssued, false},
		{otpc.CodeStateExpired, false},
		{otpc.CodeStateCancelled, false},
		{otpc.CodeStatePaid, true},
		{otpc.CodeStateRefunded, true},
	}
	for _, tc := range tests {
		c, _ := newCtx(t)
		out, err := cancel(c, &otpc.CancelInput{Code: code(tc.state)})
		if err != nil {
			t.Fatal(err)
		}
		if got := out.Result.ReferenceNumberAlreadyPaid != nil; got != tc.alreadyPay || (out.Result.Success != nil) == tc.alreadyPay {
			t.Errorf("%s: result %+v", tc.state, out.Result)
		}
	}
}

func refundIn(state string, micros, refunded int64) *otpc.RefundInput {
	ci := code(state)
	ci.RefundedMicros = refunded
	return &otpc.RefundInput{
		Request: otpc.RefundRequest{RequestHeader: otpc.RequestHeader{RequestID: "ref-1"}, TransactionID: "gen-1",
			RefundAmount: otpc.Amount{AmountMicros: micros, CurrencyCode: "JPY"}},
		Code: ci,
	}
}

func TestRefund(t *testing.T) {
	tests := []struct {
		name    string
		in      *otpc.RefundInput
		now     time.Time
		wantErr string
		check   func(otpc.RefundResult) bool
	}{
		{"full", refundIn(otpc.CodeStatePaid, 1e9, 0), now, "", func(r otpc.RefundResult) bool { return r.Success != nil }},
		{"partial rest", refundIn(otpc.CodeStateRefunded, 4e8, 6e8), now, "", func(r otpc.RefundResult) bool { return r.Success != nil }},
		{"over remaining", refundIn(otpc.CodeStateRefunded, 5e8, 6e8), now, "exceeds the remaining", nil},
		{"unpaid", refundIn(otpc.CodeStateIssued, 1e8, 0), now, "not paid", nil},
		{"window", refundIn(otpc.CodeStatePaid, 1e8, 0), now.Add(91 * 24 * time.Hour), "", func(r otpc.RefundResult) bool { return r.RefundWindowExceeded != nil }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := sdk.NewMemHost(tc.now, testConfig(t))
			out, err := refund(sdk.NewContext(h), tc.in)
			if tc.wantErr != "" {
				// A refund the code cannot take: preconditionViolation.
				var ref *otpc.Refusal
				if !errors.As(err, &ref) || ref.Member() != "preconditionViolation" || !strings.Contains(ref.Description, tc.wantErr) {
					t.Fatalf("err %v, want a preconditionViolation refusal mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !tc.check(out.Result) {
				t.Fatalf("out %+v err %v", out, err)
			}
		})
	}
}

func TestAsyncRefundAndDone(t *testing.T) {
	c, h := newCtx(t)
	out, err := asyncRefund(c, refundIn(otpc.CodeStatePaid, 1e8, 0))
	if err != nil || out.Result.Acknowledged == nil {
		t.Fatalf("%+v %v", out, err)
	}
	if string(h.KV["refund/ref-1"]) != "100000000" {
		t.Fatalf("pending refund not recorded: %q", h.KV)
	}
	done, err := refundDone(c, &otpc.RefundDoneInput{RefundRequestID: "ref-1", Success: true})
	if err != nil || done.Result.Success == nil {
		t.Fatalf("%+v %v", done, err)
	}
	if _, err := refundDone(c, &otpc.RefundDoneInput{RefundRequestID: "ref-1", Success: true}); err == nil {
		t.Fatal("second completion of the same refund accepted")
	}
}

func TestPaid(t *testing.T) {
	base := func(mut func(*otpc.PaidInput)) *otpc.PaidInput {
		in := &otpc.PaidInput{Code: code(otpc.CodeStateIssued), Amount: otpc.Amount{AmountMicros: 1e9, CurrencyCode: "JPY"},
			PaidAt: otpc.Timestamp{EpochMillis: now.UnixMilli()}, StoreID: "store-7"}
		if mut != nil {
			mut(in)
		}
		return in
	}
	tests := []struct {
		name   string
		in     *otpc.PaidInput
		reason string // "" = accepted
	}{
		{"ok", base(nil), ""},
		{"amount", base(func(p *otpc.PaidInput) { p.Amount.AmountMicros = 999_000_000 }), "amount differs"},
		{"currency", base(func(p *otpc.PaidInput) { p.Amount.CurrencyCode = "USD" }), "amount differs"},
		{"expired", base(func(p *otpc.PaidInput) { p.PaidAt.EpochMillis = now.Add(73 * time.Hour).UnixMilli() }), "expired"},
		{"cancelled", base(func(p *otpc.PaidInput) { p.Code.State = otpc.CodeStateCancelled }), "cancelled"},
		{"paid twice", base(func(p *otpc.PaidInput) { p.Code.State = otpc.CodeStatePaid }), "already paid"},
		{"bad check digit", base(func(p *otpc.PaidInput) { p.Code.PrintableString = "81000000100010" }), "check digit"},
	}
	for _, tc := range tests {
		c, _ := newCtx(t)
		out, err := paid(c, tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if tc.reason == "" {
			if !out.Accepted || !strings.HasSuffix(out.PaymentIntegratorTransactionID, "-store-7") {
				t.Errorf("%s: %+v", tc.name, out)
			}
		} else if out.Accepted || !strings.Contains(out.DeclineReason, tc.reason) {
			t.Errorf("%s: %+v, want decline %q", tc.name, out, tc.reason)
		}
	}
}

func TestAssociateAndAuthenticate(t *testing.T) {
	c, h := newCtx(t)
	assoc := func(acct string) otpc.AssociateAccountResult {
		out, err := associate(c, &otpc.AssociateInput{AccountID: acct, Request: otpc.AssociateAccountRequest{ProvideUserInformation: true}})
		if err != nil {
			t.Fatal(err)
		}
		return out.Result
	}
	if r := assoc("acct-1"); r.Success == nil || r.Success.UserInformation.Name != "Taro Yamada" {
		t.Errorf("acct-1: %+v", r)
	}
	if r := assoc("nobody"); r.UserAuthenticationFailed == nil {
		t.Errorf("unknown: %+v", r)
	}
	if r := assoc("acct-closed"); r.AccountClosed == nil {
		t.Errorf("closed: %+v", r)
	}
	if r := assoc("acct-ineligible"); r.AccountNotEligible == nil {
		t.Errorf("ineligible: %+v", r)
	}
	auth := func(acct, secret string) bool {
		out, err := authenticate(c, &otpc.AuthenticateInput{AccountID: acct, Secret: secret})
		if err != nil {
			t.Fatal(err)
		}
		return out.Authenticated
	}
	if !auth("acct-1", "test-only-secret") || auth("acct-1", "wrong") || auth("nobody", "test-only-secret") || auth("acct-closed", "") {
		t.Error("authentication rules broken")
	}
	for _, l := range h.Logs {
		if strings.Contains(l, "wrong") {
			t.Error("secret logged")
		}
	}
}

func TestConfigRefusals(t *testing.T) {
	for _, raw := range []string{
		`{`,
		`{"expiry":"-1h","codeLength":14,"prefix":"81","minAmountMicros":1,"maxAmountMicros":2,"currencies":["JPY"]}`,
		`{"expiry":"1h","codeLength":30,"prefix":"81","minAmountMicros":1,"maxAmountMicros":2,"currencies":["JPY"]}`,
		`{"expiry":"1h","codeLength":14,"prefix":"8a","minAmountMicros":1,"maxAmountMicros":2,"currencies":["JPY"]}`,
		`{"expiry":"1h","codeLength":10,"prefix":"812","minAmountMicros":1,"maxAmountMicros":2,"currencies":["JPY"]}`,
		`{"expiry":"1h","codeLength":14,"prefix":"81","minAmountMicros":3,"maxAmountMicros":2,"currencies":["JPY"]}`,
		`{"expiry":"1h","codeLength":14,"prefix":"81","minAmountMicros":1,"maxAmountMicros":2}`,
	} {
		if _, err := ParseConfig([]byte(raw)); err == nil {
			t.Errorf("accepted %s", raw)
		}
	}
}

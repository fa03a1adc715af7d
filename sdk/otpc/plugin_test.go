package otpc

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

func sampleCode() CodeInfo {
	return CodeInfo{GenerateRequestID: "gen-1", AccountID: "acct-9", Amount: Amount{AmountMicros: 728000000, CurrencyCode: "USD"},
		PrintableString: "1122334455", BarcodeContents: "bc", State: CodeStatePaid, PaidMicros: 728000000, RefundedMicros: 1000000,
		CreatedAt: &Timestamp{EpochMillis: 1}, ExpiresAt: &Timestamp{EpochMillis: 2}, PaidAt: &Timestamp{EpochMillis: 3}}
}

// TestPluginFramesRoundTrip encodes a fully populated value of every frame,
// decodes it with both our codec and encoding/json, and checks nothing is
// lost and both routes agree.
func TestPluginFramesRoundTrip(t *testing.T) {
	s := "1122334455"
	code := sampleCode()
	frames := []message{
		&GenerateInput{Request: validGenerate(), AccountID: "acct-9"},
		&GenerateOutput{Result: GenerateReferenceNumberResult{Success: &GenerateReferenceNumberSuccess{
			DisplayableReferenceNumber: DisplayableReferenceNumber{PrintableString: &s}}}, ExpiresAt: &Timestamp{EpochMillis: 99}},
		&CancelInput{Request: CancelReferenceNumberRequest{RequestHeader: validHeader(), GenerateReferenceNumberRequestID: "gen-1"}, Code: code},
		&CancelOutput{Result: CancelReferenceNumberResult{ReferenceNumberAlreadyPaid: &Empty{}}},
		&RefundInput{Request: RefundRequest{RequestHeader: validHeader(), TransactionID: "gen-1", RefundAmount: Amount{AmountMicros: 1, CurrencyCode: "USD"}}, Code: code},
		&RefundOutput{Result: RefundResult{AccountClosedFraud: &AccountClosedFraud{RawResult: &RawResult{Scope: "s", RawCode: "c"}}}},
		&AsyncRefundOutput{Result: AsynchronousRefundResult{Acknowledged: &Empty{}}},
		&AssociateInput{Request: AssociateAccountRequest{RequestHeader: validHeader(), GooglePaymentToken: GooglePaymentToken{IssuerID: IssuerID{Value: "i"}, Token: "t"},
			AuthenticationRequestID: "auth-1", AssociationID: "as-1", ProvideUserInformation: true}, AccountID: "acct-9"},
		&AssociateOutput{Result: AssociateAccountResult{Success: &AssociateAccountSuccess{UserInformation: &UserInformation{
			Name: "N", AddressLine: []string{"1", "2"}, LocalityName: "L", AdministrativeAreaName: "A", PostalCodeNumber: "P", CountryCode: "US"}}}},
		&RemittanceInput{Request: RemittanceStatementNotificationRequest{RequestHeader: validHeader(), RemittanceStatementSummary: RemittanceStatementSummary{
			StatementDate: Timestamp{EpochMillis: 1}, BillingPeriod: BillingPeriod{StartDate: Timestamp{EpochMillis: 1}, EndDate: Timestamp{EpochMillis: 2}},
			DateDue: Timestamp{EpochMillis: 3}, TotalDueByIntegrator: Amount{AmountMicros: -5, CurrencyCode: "INR"}, TotalEvents: 7,
			TotalTaxes: &Amount{AmountMicros: 1, CurrencyCode: "INR"}, RemittanceInstructions: &RemittanceInstructions{MemoLineID: "memo"}}}},
		&RemittanceOutput{PaymentIntegratorStatementID: "st-1", Result: RemittanceStatementNotificationResult{Accepted: &Empty{}}},
		&PaidInput{Code: code, Amount: Amount{AmountMicros: 728000000, CurrencyCode: "USD"}, PaidAt: Timestamp{EpochMillis: 5}, StoreID: "store", MerchantPaymentID: "mp"},
		&PaidOutput{Accepted: true, DeclineReason: "", PaymentIntegratorTransactionID: "pit"},
		&RefundDoneInput{RefundRequestID: "ref-1", Code: code, Amount: Amount{AmountMicros: 1, CurrencyCode: "USD"}, Success: true, Detail: "ok"},
		&RefundDoneOutput{Result: RefundResult{RefundWindowExceeded: &RefundWindowExceeded{}}},
		&AuthenticateInput{AccountID: "acct-9", Secret: "pw", AssociationID: "as-1"},
		&AuthenticateOutput{Authenticated: true, AccountID: "acct-9"},
	}
	for _, f := range frames {
		name := reflect.TypeOf(f).Elem().Name()
		t.Run(name, func(t *testing.T) {
			if err := f.Validate(); err != nil {
				t.Fatalf("sample invalid: %v", err)
			}
			out := f.AppendJSON(nil)
			back := newMessage(name)
			if back == nil {
				t.Fatalf("%s missing from the registry", name)
			}
			if err := back.UnmarshalJSON(out); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, f) {
				t.Fatalf("round trip lost data:\n got %+v\nwant %+v", back, f)
			}
			std := reflect.New(reflect.TypeOf(f).Elem()).Interface()
			if err := json.Unmarshal(out, std); err != nil || !reflect.DeepEqual(std, f) {
				t.Fatalf("encoding/json route differs: %v", err)
			}
			if b, _ := json.Marshal(f); !bytes.Equal(b, out) {
				t.Fatalf("json.Marshal differs:\n%s\n%s", b, out)
			}
		})
	}
}

func TestCodeInfoState(t *testing.T) {
	c := sampleCode()
	c.State = "lost"
	fe := fieldErr(t, c.Validate())
	if len(fe.Invalid) != 1 || fe.Invalid[0] != "state: unknown code state" {
		t.Fatalf("Invalid = %q", fe.Invalid)
	}
}

func TestOp(t *testing.T) {
	// Wire numbers are ABI: pin them.
	want := map[Op]string{0: "warmup", 1: "generate", 2: "cancel", 3: "refund", 4: "asyncRefund", 5: "associate",
		6: "remittance", 7: "paid", 8: "refundDone", 9: "authenticate"}
	for op, name := range want {
		if op.String() != name || !op.Valid() {
			t.Errorf("Op(%d) = %q valid=%v", op, op.String(), op.Valid())
		}
	}
	if Op(10).Valid() || Op(10).String() != "op(10)" {
		t.Errorf("Op(10) = %q", Op(10).String())
	}
}

func TestMethodNames(t *testing.T) {
	if len(IntegratorMethods()) != 7 || len(GoogleMethods()) != 6 {
		t.Fatal("method lists changed")
	}
	seen := map[string]bool{}
	for _, m := range append(IntegratorMethods(), GoogleMethods()[1:]...) {
		if seen[m] || m == "" {
			t.Errorf("duplicate or empty method %q", m)
		}
		seen[m] = true
	}
}

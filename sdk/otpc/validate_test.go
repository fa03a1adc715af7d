package otpc

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func validHeader() RequestHeader {
	return RequestHeader{RequestID: "req-1", RequestTimestamp: Timestamp{EpochMillis: 1481899949606},
		ProtocolVersion: Version{Major: 2}, PaymentIntegratorAccountID: "InvisiCashUSA_USD"}
}

func validGenerate() GenerateReferenceNumberRequest {
	return GenerateReferenceNumberRequest{RequestHeader: validHeader(),
		GooglePaymentToken:     GooglePaymentToken{IssuerID: IssuerID{Value: "invisicash"}, Token: "tok"},
		TransactionDescription: "Google - Music", Amount: Amount{AmountMicros: 728000000, CurrencyCode: "USD"}}
}

func fieldErr(t *testing.T, err error) *FieldError {
	t.Helper()
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("want *FieldError, got %T %v", err, err)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("%v does not match ErrInvalid", err)
	}
	return fe
}

func TestValidateGenerateRequest(t *testing.T) {
	tests := []struct {
		name          string
		edit          func(*GenerateReferenceNumberRequest)
		missing       []string
		invalidPrefix []string
	}{
		{"valid", func(*GenerateReferenceNumberRequest) {}, nil, nil},
		{"everything missing", func(r *GenerateReferenceNumberRequest) { *r = GenerateReferenceNumberRequest{} },
			[]string{"requestHeader", "googlePaymentToken", "transactionDescription", "amount"}, nil},
		{"header fields missing", func(r *GenerateReferenceNumberRequest) {
			r.RequestHeader = RequestHeader{PaymentIntegratorAccountID: "P"}
		}, []string{"requestHeader.requestId", "requestHeader.requestTimestamp", "requestHeader.protocolVersion"}, nil},
		{"piaid missing", func(r *GenerateReferenceNumberRequest) { r.RequestHeader.PaymentIntegratorAccountID = "" },
			[]string{"requestHeader.paymentIntegratorAccountId"}, nil},
		{"bad request id", func(r *GenerateReferenceNumberRequest) { r.RequestHeader.RequestID = "a b" },
			nil, []string{"requestHeader.requestId: "}},
		{"issuer missing", func(r *GenerateReferenceNumberRequest) { r.GooglePaymentToken.IssuerID.Value = "" },
			[]string{"googlePaymentToken.issuerId"}, nil},
		{"lower-case currency", func(r *GenerateReferenceNumberRequest) { r.Amount.CurrencyCode = "usd" },
			nil, []string{"amount.currencyCode: "}},
		{"long currency", func(r *GenerateReferenceNumberRequest) { r.Amount.CurrencyCode = "USDX" },
			nil, []string{"amount.currencyCode: "}},
		{"currency missing", func(r *GenerateReferenceNumberRequest) { r.Amount.CurrencyCode = "" },
			[]string{"amount.currencyCode"}, nil},
		{"zero amount", func(r *GenerateReferenceNumberRequest) { r.Amount.AmountMicros = 0 },
			[]string{"amount.amountMicros"}, nil},
		{"negative amount", func(r *GenerateReferenceNumberRequest) { r.Amount.AmountMicros = -1 },
			nil, []string{"amount.amountMicros: must be > 0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := validGenerate()
			tc.edit(&r)
			err := r.Validate()
			if tc.missing == nil && tc.invalidPrefix == nil {
				if err != nil {
					t.Fatalf("valid message rejected: %v", err)
				}
				return
			}
			fe := fieldErr(t, err)
			if !reflect.DeepEqual(fe.Missing, tc.missing) {
				t.Errorf("Missing = %q, want %q", fe.Missing, tc.missing)
			}
			if len(fe.Invalid) != len(tc.invalidPrefix) {
				t.Fatalf("Invalid = %q, want prefixes %q", fe.Invalid, tc.invalidPrefix)
			}
			for i, p := range tc.invalidPrefix {
				if !strings.HasPrefix(fe.Invalid[i], p) {
					t.Errorf("Invalid[%d] = %q, want prefix %q", i, fe.Invalid[i], p)
				}
			}
			if !strings.Contains(err.Error(), "invalid message") {
				t.Errorf("Error() = %q", err.Error())
			}
		})
	}
}

func TestRequestIDRules(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{"a", true},
		{"G1MQ0YERJ0Q7LPM", true},
		{"0123434-statement-abc", true},
		{"statement_detail_request_139932019", true},
		{"a:b-c_D9", true},
		{strings.Repeat("x", 100), true},
		{strings.Repeat("x", 101), false},
		{"", false},
		{"bnAxdWTydDX==", false},
		{"has space", false},
		{"slash/", false},
		{"dot.", false},
		{"é", false},
		{"nul\x00", false},
	}
	for _, tc := range tests {
		if got := ValidRequestID(tc.id); got != tc.ok {
			t.Errorf("ValidRequestID(%q) = %v", tc.id, got)
		}
		h := validHeader()
		h.RequestID = tc.id
		err := h.Validate()
		if tc.ok != (err == nil) {
			t.Errorf("header with requestId %q: Validate = %v", tc.id, err)
		}
	}
}

func TestCurrencyCode(t *testing.T) {
	for code, ok := range map[string]bool{"USD": true, "INR": true, "JPY": true, "usd": false, "US": false, "USDD": false, "U$D": false, "": false} {
		if ValidCurrencyCode(code) != ok {
			t.Errorf("ValidCurrencyCode(%q) != %v", code, ok)
		}
	}
}

func TestUnionValidation(t *testing.T) {
	s := "1122334455"
	empty := ""
	dn := DisplayableReferenceNumber{PrintableString: &s}
	tests := []struct {
		name    string
		msg     message
		missing []string
		invalid []string
	}{
		{"one member", &GenerateReferenceNumberResult{Success: &GenerateReferenceNumberSuccess{DisplayableReferenceNumber: dn}}, nil, nil},
		{"no member", &GenerateReferenceNumberResult{}, nil,
			[]string{"(message): exactly one member must be set, none is (or only unknown ones)"}},
		{"two members", &GenerateReferenceNumberResult{AccountClosed: &AccountClosed{}, GooglePaymentTokenInvalidatedByUser: &GooglePaymentTokenInvalidatedByUser{}},
			nil, []string{"(message): exactly one member must be set, 2 are"}},
		{"nested union empty", &GenerateReferenceNumberResult{Success: &GenerateReferenceNumberSuccess{}},
			[]string{"success.displayableReferenceNumber"}, nil},
		{"nested union two", &GenerateReferenceNumberResult{Success: &GenerateReferenceNumberSuccess{
			DisplayableReferenceNumber: DisplayableReferenceNumber{PrintableString: &s, BarcodeContents: &s}}},
			nil, []string{"success.displayableReferenceNumber: exactly one member must be set, 2 are"}},
		{"empty printable string", &DisplayableReferenceNumber{PrintableString: &empty}, nil,
			[]string{"printableString: must not be empty"}},
		{"response result missing", &RefundResponse{ResponseHeader: ResponseHeader{ResponseTimestamp: Timestamp{EpochMillis: 1}}},
			[]string{"result"}, nil},
		{"response two results", &RefundResponse{ResponseHeader: ResponseHeader{ResponseTimestamp: Timestamp{EpochMillis: 1}},
			Result: RefundResult{Success: &Empty{}, AccountOnHold: &AccountOnHold{}}}, nil,
			[]string{"result: exactly one member must be set, 2 are"}},
		{"raw result needs code", &RefundOutput{Result: RefundResult{AccountOnHold: &AccountOnHold{RawResult: &RawResult{Scope: "x"}}}},
			[]string{"result.accountOnHold.rawResult.rawCode"}, nil},
		{"error response union", &ErrorResponse{ResponseHeader: ResponseHeader{ResponseTimestamp: Timestamp{EpochMillis: 1}},
			ErrorResponseResult: &ErrorResponseResult{}}, nil,
			[]string{"errorResponseResult: exactly one member must be set, none is (or only unknown ones)"}},
		{"modification none", &AcceptRemittanceStatementWithModificationsRequest{RequestHeader: validHeader(), StatementID: "s"}, nil,
			[]string{"modification: exactly one of"}},
		{"modification one", &AcceptRemittanceStatementWithModificationsRequest{RequestHeader: validHeader(), StatementID: "s",
			FeeToVatModification: &FeeToVatModification{VatToFeeRatioInMicros: 150000}}, nil, nil},
		{"auth result", &AuthenticationResponse{RequestID: "r", AuthenticationResult: &AuthenticationResult{Success: &Empty{}, FatalError: &Empty{}}},
			nil, []string{"authenticationResult: exactly one member must be set, 2 are"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.msg.Validate()
			if tc.missing == nil && tc.invalid == nil {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			fe := fieldErr(t, err)
			if !reflect.DeepEqual(fe.Missing, tc.missing) {
				t.Errorf("Missing = %q, want %q", fe.Missing, tc.missing)
			}
			if len(fe.Invalid) != len(tc.invalid) {
				t.Fatalf("Invalid = %q, want %q", fe.Invalid, tc.invalid)
			}
			for i := range tc.invalid {
				if !strings.HasPrefix(fe.Invalid[i], tc.invalid[i]) {
					t.Errorf("Invalid[%d] = %q, want prefix %q", i, fe.Invalid[i], tc.invalid[i])
				}
			}
		})
	}
}

func TestValidateListsAndLimits(t *testing.T) {
	r := RemittanceStatementDetailsRequest{RequestHeader: validHeader(), StatementID: "s", NumberOfEvents: 1001, EventOffset: -1}
	fe := fieldErr(t, r.Validate())
	want := []string{"numberOfEvents: must be at most 1000", "eventOffset: must be >= 0"}
	if !reflect.DeepEqual(fe.Invalid, want) {
		t.Errorf("Invalid = %q, want %q", fe.Invalid, want)
	}
	if got := fe.InvalidPaths(); !reflect.DeepEqual(got, []string{"numberOfEvents", "eventOffset"}) {
		t.Errorf("InvalidPaths = %q", got)
	}
	resp := RemittanceStatementDetailsResponse{
		CaptureEvents: []Event{{EventRequestID: "a"}, {EventRequestID: "b", EventFee: &Amount{AmountMicros: 1, CurrencyCode: "xx"}}},
	}
	fe = fieldErr(t, resp.Validate())
	if len(fe.Invalid) != 1 || fe.Invalid[0] != "captureEvents[1].eventFee.currencyCode: "+reasonCurrency {
		t.Errorf("Invalid = %q", fe.Invalid)
	}
	if !reflect.DeepEqual(fe.Missing, []string{"responseHeader", "remittanceStatementSummary"}) {
		t.Errorf("Missing = %q", fe.Missing)
	}
}

func TestValidateDoesNotAllocateWhenValid(t *testing.T) {
	r := validGenerate()
	if n := testing.AllocsPerRun(100, func() {
		if r.Validate() != nil {
			t.Fatal("invalid")
		}
	}); n != 0 {
		t.Errorf("Validate of a valid message allocates %v times", n)
	}
}

func TestErrorResponseHTTPStatus(t *testing.T) {
	tests := []struct {
		r    *ErrorResponseResult
		want int
	}{
		{&ErrorResponseResult{InvalidAPIVersion: &InvalidAPIVersion{}}, 400},
		{&ErrorResponseResult{InvalidPayloadSignature: &Empty{}}, 401},
		{&ErrorResponseResult{InvalidPayloadEncryption: &Empty{}}, 400},
		{&ErrorResponseResult{InvalidIdentifier: &InvalidIdentifier{}}, 404},
		{&ErrorResponseResult{IdempotencyViolation: &Empty{}}, 412},
		{&ErrorResponseResult{MissingRequiredField: &MissingRequiredField{}}, 400},
		{&ErrorResponseResult{UserActionInProgress: &Empty{}}, 423},
		{&ErrorResponseResult{Forbidden: &Empty{}}, 403},
		{&ErrorResponseResult{InvalidDecryptedRequest: &Empty{}}, 400},
		{&ErrorResponseResult{}, 0},
		{&ErrorResponseResult{Forbidden: &Empty{}, InvalidPayloadSignature: &Empty{}}, 0},
		{nil, 0},
	}
	for i, tc := range tests {
		if got := tc.r.HTTPStatus(); got != tc.want {
			t.Errorf("%d: HTTPStatus = %d, want %d", i, got, tc.want)
		}
	}
}

func TestFieldErrorResult(t *testing.T) {
	r := validGenerate()
	r.Amount.CurrencyCode = "usd"
	res := fieldErr(t, r.Validate()).ErrorResult()
	if res.InvalidFieldValue == nil || res.InvalidFieldValue.InvalidFieldName != "amount.currencyCode" || res.HTTPStatus() != 400 {
		t.Fatalf("got %+v", res)
	}
	r.TransactionDescription = ""
	res = fieldErr(t, r.Validate()).ErrorResult()
	if res.MissingRequiredField == nil || !reflect.DeepEqual(res.MissingRequiredField.MissingFieldNames, []string{"transactionDescription"}) {
		t.Fatalf("got %+v", res)
	}
	if err := res.Validate(); err != nil {
		t.Fatalf("mapped result invalid: %v", err)
	}
}

package otpc_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// The oracle: every OTPC v2 message as plain Go structs with encoding/json
// tags, written from the spec (§3: int64 as JSON strings, int32 as numbers,
// union members and optional messages omitted when absent, Empty as {}).
// They share nothing with the generated codec — not its types, not its
// (un)marshalers — so encoding/json on these structs is an independent
// reading of the wire format. Field names match the codec's types only so
// the comparison below can pair fields by name.

type oTimestamp struct {
	EpochMillis int64 `json:"epochMillis,string"`
}
type oVersion struct {
	Major int32 `json:"major"`
}
type oAmount struct {
	AmountMicros int64  `json:"amountMicros,string"`
	CurrencyCode string `json:"currencyCode"`
}
type oRequestHeader struct {
	RequestID                  string     `json:"requestId"`
	RequestTimestamp           oTimestamp `json:"requestTimestamp"`
	ProtocolVersion            oVersion   `json:"protocolVersion"`
	PaymentIntegratorAccountID string     `json:"paymentIntegratorAccountId"`
}
type oResponseHeader struct {
	ResponseTimestamp oTimestamp `json:"responseTimestamp"`
}
type oIssuerID struct {
	Value string `json:"value"`
}
type oGooglePaymentToken struct {
	IssuerID oIssuerID `json:"issuerId"`
	Token    string    `json:"token"`
}
type oRawResult struct {
	Scope   string `json:"scope,omitempty"`
	RawCode string `json:"rawCode"`
}

// oRaw is every union member that carries only an optional rawResult.
type oRaw struct {
	RawResult *oRawResult `json:"rawResult,omitempty"`
}
type oEmpty struct{}

type oEchoRequest struct {
	RequestHeader oRequestHeader `json:"requestHeader"`
	ClientMessage string         `json:"clientMessage"`
}
type oEchoResponse struct {
	ResponseHeader oResponseHeader `json:"responseHeader"`
	ClientMessage  string          `json:"clientMessage"`
	ServerMessage  string          `json:"serverMessage,omitempty"`
}

type oUserInformation struct {
	Name                   string   `json:"name,omitempty"`
	AddressLine            []string `json:"addressLine,omitempty"`
	LocalityName           string   `json:"localityName,omitempty"`
	AdministrativeAreaName string   `json:"administrativeAreaName,omitempty"`
	PostalCodeNumber       string   `json:"postalCodeNumber,omitempty"`
	CountryCode            string   `json:"countryCode,omitempty"`
}
type oAssociateAccountRequest struct {
	RequestHeader           oRequestHeader      `json:"requestHeader"`
	GooglePaymentToken      oGooglePaymentToken `json:"googlePaymentToken"`
	AuthenticationRequestID string              `json:"authenticationRequestId"`
	AssociationID           string              `json:"associationId"`
	ProvideUserInformation  bool                `json:"provideUserInformation,omitempty"`
}
type oAssociateAccountResponse struct {
	ResponseHeader oResponseHeader `json:"responseHeader"`
	Result         struct {
		Success *struct {
			UserInformation *oUserInformation `json:"userInformation,omitempty"`
		} `json:"success,omitempty"`
		UserAuthenticationFailed *oRaw `json:"userAuthenticationFailed,omitempty"`
		AccountNotEligible       *oRaw `json:"accountNotEligible,omitempty"`
		AccountClosed            *oRaw `json:"accountClosed,omitempty"`
	} `json:"result"`
}

type oGenerateReferenceNumberRequest struct {
	RequestHeader          oRequestHeader      `json:"requestHeader"`
	GooglePaymentToken     oGooglePaymentToken `json:"googlePaymentToken"`
	TransactionDescription string              `json:"transactionDescription"`
	Amount                 oAmount             `json:"amount"`
}
type oBarcode struct {
	PrintableString string `json:"printableString"`
	BarcodeContents string `json:"barcodeContents"`
}
type oGenerateReferenceNumberResponse struct {
	ResponseHeader oResponseHeader `json:"responseHeader"`
	Result         struct {
		Success *struct {
			DisplayableReferenceNumber struct {
				PrintableString            *string   `json:"printableString,omitempty"`
				BarcodeContents            *string   `json:"barcodeContents,omitempty"`
				BarcodeWithPrintableString *oBarcode `json:"barcodeWithPrintableString,omitempty"`
			} `json:"displayableReferenceNumber"`
		} `json:"success,omitempty"`
		GooglePaymentTokenInvalidatedByUser *oRaw `json:"googlePaymentTokenInvalidatedByUser,omitempty"`
		AccountClosed                       *oRaw `json:"accountClosed,omitempty"`
	} `json:"result"`
}

type oCancelReferenceNumberRequest struct {
	RequestHeader                    oRequestHeader `json:"requestHeader"`
	GenerateReferenceNumberRequestID string         `json:"generateReferenceNumberRequestId"`
}
type oCancelReferenceNumberResponse struct {
	ResponseHeader oResponseHeader `json:"responseHeader"`
	Result         struct {
		Success                    *oEmpty `json:"success,omitempty"`
		ReferenceNumberAlreadyPaid *oEmpty `json:"referenceNumberAlreadyPaid,omitempty"`
	} `json:"result"`
}

type oRefundRequest struct {
	RequestHeader oRequestHeader `json:"requestHeader"`
	TransactionID string         `json:"transactionId"`
	RefundAmount  oAmount        `json:"refundAmount"`
}
type oRefundResult struct {
	Success                       *oEmpty `json:"success,omitempty"`
	AccountClosed                 *oRaw   `json:"accountClosed,omitempty"`
	AccountClosedAccountTakenOver *oRaw   `json:"accountClosedAccountTakenOver,omitempty"`
	AccountClosedFraud            *oRaw   `json:"accountClosedFraud,omitempty"`
	AccountOnHold                 *oRaw   `json:"accountOnHold,omitempty"`
	RefundExceedsMaximumBalance   *oRaw   `json:"refundExceedsMaximumBalance,omitempty"`
	RefundWindowExceeded          *oRaw   `json:"refundWindowExceeded,omitempty"`
}
type oRefundResponse struct {
	ResponseHeader oResponseHeader `json:"responseHeader"`
	Result         oRefundResult   `json:"result"`
}
type oAsynchronousRefundResponse struct {
	ResponseHeader oResponseHeader `json:"responseHeader"`
	Result         struct {
		Acknowledged                  *oEmpty `json:"acknowledged,omitempty"`
		AccountClosed                 *oRaw   `json:"accountClosed,omitempty"`
		AccountClosedAccountTakenOver *oRaw   `json:"accountClosedAccountTakenOver,omitempty"`
		AccountClosedFraud            *oRaw   `json:"accountClosedFraud,omitempty"`
		AccountOnHold                 *oRaw   `json:"accountOnHold,omitempty"`
		RefundExceedsMaximumBalance   *oRaw   `json:"refundExceedsMaximumBalance,omitempty"`
		RefundWindowExceeded          *oRaw   `json:"refundWindowExceeded,omitempty"`
	} `json:"result"`
}

type oSummary struct {
	StatementDate oTimestamp `json:"statementDate"`
	BillingPeriod struct {
		StartDate oTimestamp `json:"startDate"`
		EndDate   oTimestamp `json:"endDate"`
	} `json:"billingPeriod"`
	DateDue                oTimestamp `json:"dateDue"`
	TotalDueByIntegrator   oAmount    `json:"totalDueByIntegrator"`
	TotalProcessedAmount   *oAmount   `json:"totalProcessedAmount,omitempty"`
	TotalFeesAmount        *oAmount   `json:"totalFeesAmount,omitempty"`
	TotalEvents            int64      `json:"totalEvents,string,omitempty"`
	TotalTaxes             *oAmount   `json:"totalTaxes,omitempty"`
	RemittanceInstructions *struct {
		MemoLineID string `json:"memoLineId,omitempty"`
	} `json:"remittanceInstructions,omitempty"`
}
type oRemittanceStatementNotificationRequest struct {
	RequestHeader              oRequestHeader `json:"requestHeader"`
	RemittanceStatementSummary oSummary       `json:"remittanceStatementSummary"`
}
type oRemittanceStatementNotificationResponse struct {
	ResponseHeader               oResponseHeader `json:"responseHeader"`
	PaymentIntegratorStatementID string          `json:"paymentIntegratorStatementId"`
	Result                       struct {
		Accepted *oEmpty `json:"accepted,omitempty"`
	} `json:"result"`
}

type oErrorResponse struct {
	ResponseHeader                   oResponseHeader `json:"responseHeader"`
	ErrorDescription                 string          `json:"errorDescription,omitempty"`
	PaymentIntegratorErrorIdentifier string          `json:"paymentIntegratorErrorIdentifier,omitempty"`
	ErrorResponseResult              *struct {
		InvalidAPIVersion *struct {
			RequestVersion  oVersion `json:"requestVersion"`
			ExpectedVersion oVersion `json:"expectedVersion"`
		} `json:"invalidApiVersion,omitempty"`
		InvalidPayloadSignature    *oEmpty `json:"invalidPayloadSignature,omitempty"`
		InvalidPayloadEncryption   *oEmpty `json:"invalidPayloadEncryption,omitempty"`
		RequestTimestampOutOfRange *struct {
			RequestTimestamp *oTimestamp `json:"requestTimestamp,omitempty"`
			ServerTimestamp  *oTimestamp `json:"serverTimestamp,omitempty"`
		} `json:"requestTimestampOutOfRange,omitempty"`
		InvalidIdentifier *struct {
			InvalidIdentifierType string `json:"invalidIdentifierType,omitempty"`
		} `json:"invalidIdentifier,omitempty"`
		IdempotencyViolation *oEmpty `json:"idempotencyViolation,omitempty"`
		InvalidFieldValue    *struct {
			InvalidFieldName string `json:"invalidFieldName,omitempty"`
		} `json:"invalidFieldValue,omitempty"`
		MissingRequiredField *struct {
			MissingFieldNames []string `json:"missingFieldNames,omitempty"`
		} `json:"missingRequiredField,omitempty"`
		PreconditionViolation   *oEmpty `json:"preconditionViolation,omitempty"`
		UserActionInProgress    *oEmpty `json:"userActionInProgress,omitempty"`
		InvalidDecryptedRequest *oEmpty `json:"invalidDecryptedRequest,omitempty"`
		Forbidden               *oEmpty `json:"forbidden,omitempty"`
	} `json:"errorResponseResult,omitempty"`
}

// Google-hosted methods.

type oSuccessResult struct {
	Success *oEmpty `json:"success,omitempty"`
}
type oReferenceNumberPaidNotificationRequest struct {
	RequestHeader                    oRequestHeader `json:"requestHeader"`
	PaymentIntegratorTransactionID   string         `json:"paymentIntegratorTransactionId"`
	GenerateReferenceNumberRequestID string         `json:"generateReferenceNumberRequestId"`
	PaymentTimestamp                 oTimestamp     `json:"paymentTimestamp"`
}
type oSuccessResponse struct {
	ResponseHeader oResponseHeader `json:"responseHeader"`
	Result         oSuccessResult  `json:"result"`
}
type oRefundResultNotificationRequest struct {
	RequestHeader   oRequestHeader `json:"requestHeader"`
	RefundRequestID string         `json:"refundRequestId"`
	Result          oRefundResult  `json:"result"`
}
type oRemittanceStatementDetailsRequest struct {
	RequestHeader  oRequestHeader `json:"requestHeader"`
	StatementID    string         `json:"statementId"`
	NumberOfEvents int32          `json:"numberOfEvents,omitempty"`
	EventOffset    int32          `json:"eventOffset,omitempty"`
}
type oEvent struct {
	EventRequestID           string   `json:"eventRequestId,omitempty"`
	PaymentIntegratorEventID string   `json:"paymentIntegratorEventId,omitempty"`
	EventCharge              *oAmount `json:"eventCharge,omitempty"`
	EventFee                 *oAmount `json:"eventFee,omitempty"`
}
type oRemittanceStatementDetailsResponse struct {
	ResponseHeader             oResponseHeader `json:"responseHeader"`
	RemittanceStatementSummary oSummary        `json:"remittanceStatementSummary"`
	EventOffset                int32           `json:"eventOffset,omitempty"`
	NextEventOffset            int32           `json:"nextEventOffset,omitempty"`
	TotalEvents                int32           `json:"totalEvents,omitempty"`
	CaptureEvents              []oEvent        `json:"captureEvents,omitempty"`
	RefundEvents               []oEvent        `json:"refundEvents,omitempty"`
	ReverseRefundEvents        []oEvent        `json:"reverseRefundEvents,omitempty"`
	ChargebackEvents           []oEvent        `json:"chargebackEvents,omitempty"`
	ReverseChargebackEvents    []oEvent        `json:"reverseChargebackEvents,omitempty"`
	AdjustmentEvents           []oEvent        `json:"adjustmentEvents,omitempty"`
}
type oAcceptRemittanceStatementRequest struct {
	RequestHeader oRequestHeader `json:"requestHeader"`
	StatementID   string         `json:"statementId"`
}
type oAcceptRemittanceStatementWithModificationsRequest struct {
	RequestHeader        oRequestHeader `json:"requestHeader"`
	StatementID          string         `json:"statementId"`
	FeeToVatModification *struct {
		VatToFeeRatioInMicros int64 `json:"vatToFeeRatioInMicros,string"`
	} `json:"feeToVatModification,omitempty"`
	SettlementExchangeRateModification *struct {
		ExchangeRateInMicros int64 `json:"exchangeRateInMicros,string"`
	} `json:"settlementExchangeRateModification,omitempty"`
	FeeToVatAndSettlementExchangeRateModification *struct {
		VatToFeeRatioInMicros int64 `json:"vatToFeeRatioInMicros,string"`
		ExchangeRateInMicros  int64 `json:"exchangeRateInMicros,string"`
	} `json:"feeToVatAndSettlementExchangeRateModification,omitempty"`
}
type oAcceptRemittanceStatementWithModificationsResponse struct {
	ResponseHeader               oResponseHeader `json:"responseHeader"`
	Result                       oSuccessResult  `json:"result"`
	ModifiedTotalDueByIntegrator *oAmount        `json:"modifiedTotalDueByIntegrator,omitempty"`
}

// Web authentication (spec §8).

type oAuthenticationRequest struct {
	RequestID                  string `json:"requestId"`
	AssociationID              string `json:"associationId,omitempty"`
	PaymentIntegratorAccountID string `json:"paymentIntegratorAccountId,omitempty"`
}
type oAuthenticationResponse struct {
	AssociationID        string `json:"associationId,omitempty"`
	RequestID            string `json:"requestId"`
	AuthenticationResult *struct {
		Success    *oEmpty `json:"success,omitempty"`
		Cancelled  *oEmpty `json:"cancelled,omitempty"`
		FatalError *oEmpty `json:"fatalError,omitempty"`
	} `json:"authenticationResult,omitempty"`
}

// codecMessage is what the codec's message types implement.
type codecMessage interface {
	AppendJSON([]byte) []byte
	UnmarshalJSON([]byte) error
}

// oracleTypes pairs each codec type with its oracle type, by the type name
// the spec examples in testdata/spec are named after.
var oracleTypes = map[string]struct {
	ours   func() codecMessage
	oracle func() any
}{
	"EchoRequest":                             {func() codecMessage { return new(otpc.EchoRequest) }, func() any { return new(oEchoRequest) }},
	"EchoResponse":                            {func() codecMessage { return new(otpc.EchoResponse) }, func() any { return new(oEchoResponse) }},
	"AssociateAccountRequest":                 {func() codecMessage { return new(otpc.AssociateAccountRequest) }, func() any { return new(oAssociateAccountRequest) }},
	"AssociateAccountResponse":                {func() codecMessage { return new(otpc.AssociateAccountResponse) }, func() any { return new(oAssociateAccountResponse) }},
	"GenerateReferenceNumberRequest":          {func() codecMessage { return new(otpc.GenerateReferenceNumberRequest) }, func() any { return new(oGenerateReferenceNumberRequest) }},
	"GenerateReferenceNumberResponse":         {func() codecMessage { return new(otpc.GenerateReferenceNumberResponse) }, func() any { return new(oGenerateReferenceNumberResponse) }},
	"CancelReferenceNumberRequest":            {func() codecMessage { return new(otpc.CancelReferenceNumberRequest) }, func() any { return new(oCancelReferenceNumberRequest) }},
	"CancelReferenceNumberResponse":           {func() codecMessage { return new(otpc.CancelReferenceNumberResponse) }, func() any { return new(oCancelReferenceNumberResponse) }},
	"RefundRequest":                           {func() codecMessage { return new(otpc.RefundRequest) }, func() any { return new(oRefundRequest) }},
	"RefundResponse":                          {func() codecMessage { return new(otpc.RefundResponse) }, func() any { return new(oRefundResponse) }},
	"AsynchronousRefundResponse":              {func() codecMessage { return new(otpc.AsynchronousRefundResponse) }, func() any { return new(oAsynchronousRefundResponse) }},
	"RemittanceStatementNotificationRequest":  {func() codecMessage { return new(otpc.RemittanceStatementNotificationRequest) }, func() any { return new(oRemittanceStatementNotificationRequest) }},
	"RemittanceStatementNotificationResponse": {func() codecMessage { return new(otpc.RemittanceStatementNotificationResponse) }, func() any { return new(oRemittanceStatementNotificationResponse) }},
	"ErrorResponse":                           {func() codecMessage { return new(otpc.ErrorResponse) }, func() any { return new(oErrorResponse) }},

	"ReferenceNumberPaidNotificationRequest":             {func() codecMessage { return new(otpc.ReferenceNumberPaidNotificationRequest) }, func() any { return new(oReferenceNumberPaidNotificationRequest) }},
	"ReferenceNumberPaidNotificationResponse":            {func() codecMessage { return new(otpc.ReferenceNumberPaidNotificationResponse) }, func() any { return new(oSuccessResponse) }},
	"RefundResultNotificationRequest":                    {func() codecMessage { return new(otpc.RefundResultNotificationRequest) }, func() any { return new(oRefundResultNotificationRequest) }},
	"RefundResultNotificationResponse":                   {func() codecMessage { return new(otpc.RefundResultNotificationResponse) }, func() any { return new(oSuccessResponse) }},
	"RemittanceStatementDetailsRequest":                  {func() codecMessage { return new(otpc.RemittanceStatementDetailsRequest) }, func() any { return new(oRemittanceStatementDetailsRequest) }},
	"RemittanceStatementDetailsResponse":                 {func() codecMessage { return new(otpc.RemittanceStatementDetailsResponse) }, func() any { return new(oRemittanceStatementDetailsResponse) }},
	"AcceptRemittanceStatementRequest":                   {func() codecMessage { return new(otpc.AcceptRemittanceStatementRequest) }, func() any { return new(oAcceptRemittanceStatementRequest) }},
	"AcceptRemittanceStatementResponse":                  {func() codecMessage { return new(otpc.AcceptRemittanceStatementResponse) }, func() any { return new(oSuccessResponse) }},
	"AcceptRemittanceStatementWithModificationsRequest":  {func() codecMessage { return new(otpc.AcceptRemittanceStatementWithModificationsRequest) }, func() any { return new(oAcceptRemittanceStatementWithModificationsRequest) }},
	"AcceptRemittanceStatementWithModificationsResponse": {func() codecMessage { return new(otpc.AcceptRemittanceStatementWithModificationsResponse) }, func() any { return new(oAcceptRemittanceStatementWithModificationsResponse) }},
	"AuthenticationRequest":                              {func() codecMessage { return new(otpc.AuthenticationRequest) }, func() any { return new(oAuthenticationRequest) }},
	"AuthenticationResponse":                             {func() codecMessage { return new(otpc.AuthenticationResponse) }, func() any { return new(oAuthenticationResponse) }},
}

// sameFields compares a decoded codec value with an oracle value field by
// field, pairing fields by name. Every exported field of either side must
// have a partner, so a field the codec's type has and the oracle lacks (or
// the reverse) fails rather than going unchecked.
func sameFields(path string, ours, oracle reflect.Value) []string {
	if ours.Kind() == reflect.Pointer || oracle.Kind() == reflect.Pointer {
		if ours.Kind() != reflect.Pointer || oracle.Kind() != reflect.Pointer {
			return []string{fmt.Sprintf("%s: pointer on one side only (%s vs %s)", path, ours.Type(), oracle.Type())}
		}
		if ours.IsNil() != oracle.IsNil() {
			return []string{fmt.Sprintf("%s: codec present=%v, encoding/json present=%v", path, !ours.IsNil(), !oracle.IsNil())}
		}
		if ours.IsNil() {
			return nil
		}
		return sameFields(path, ours.Elem(), oracle.Elem())
	}
	if ours.Kind() != oracle.Kind() {
		return []string{fmt.Sprintf("%s: kind %s vs %s", path, ours.Kind(), oracle.Kind())}
	}
	switch ours.Kind() {
	case reflect.Struct:
		var diffs []string
		ot, rt := ours.Type(), oracle.Type()
		for i := range ot.NumField() {
			f := ot.Field(i)
			if !f.IsExported() {
				continue
			}
			of, ok := rt.FieldByName(f.Name)
			if !ok {
				diffs = append(diffs, fmt.Sprintf("%s.%s: the oracle has no such field", path, f.Name))
				continue
			}
			diffs = append(diffs, sameFields(path+"."+f.Name, ours.Field(i), oracle.FieldByIndex(of.Index))...)
		}
		for i := range rt.NumField() {
			if _, ok := ot.FieldByName(rt.Field(i).Name); !ok {
				diffs = append(diffs, fmt.Sprintf("%s.%s: the codec's type has no such field", path, rt.Field(i).Name))
			}
		}
		return diffs
	case reflect.Slice:
		if ours.Len() != oracle.Len() {
			return []string{fmt.Sprintf("%s: %d elements vs %d", path, ours.Len(), oracle.Len())}
		}
		var diffs []string
		for i := range ours.Len() {
			diffs = append(diffs, sameFields(fmt.Sprintf("%s[%d]", path, i), ours.Index(i), oracle.Index(i))...)
		}
		return diffs
	case reflect.String:
		if ours.String() != oracle.String() {
			return []string{fmt.Sprintf("%s: %q vs %q", path, ours.String(), oracle.String())}
		}
	case reflect.Int32, reflect.Int64:
		if ours.Int() != oracle.Int() {
			return []string{fmt.Sprintf("%s: %d vs %d", path, ours.Int(), oracle.Int())}
		}
	case reflect.Bool:
		if ours.Bool() != oracle.Bool() {
			return []string{fmt.Sprintf("%s: %v vs %v", path, ours.Bool(), oracle.Bool())}
		}
	default:
		return []string{fmt.Sprintf("%s: kind %s not compared", path, ours.Kind())}
	}
	return nil
}

// decodeStrict decodes with encoding/json, refusing keys the oracle does
// not declare (so the codec cannot emit a misnamed key unnoticed).
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data")
	}
	return nil
}

// checkBothWays: the codec reads what encoding/json writes from the oracle
// value, field by field; encoding/json reads what the codec writes back
// into an equal oracle value.
func checkBothWays(t *testing.T, name string, oracle any) {
	t.Helper()
	pair, ok := oracleTypes[name]
	if !ok {
		t.Fatalf("no oracle for %s", name)
	}
	std, err := json.Marshal(oracle)
	if err != nil {
		t.Fatal(err)
	}
	ours := pair.ours()
	if err := ours.UnmarshalJSON(std); err != nil {
		t.Fatalf("codec rejects encoding/json's %s: %v", std, err)
	}
	for _, d := range sameFields(name, reflect.ValueOf(ours), reflect.ValueOf(oracle)) {
		t.Errorf("codec decoding of encoding/json's output: %s", d)
	}
	out := ours.AppendJSON(nil)
	back := pair.oracle()
	if err := decodeStrict(out, back); err != nil {
		t.Fatalf("encoding/json rejects the codec's %s: %v", out, err)
	}
	if !reflect.DeepEqual(back, oracle) {
		t.Errorf("encoding/json reads the codec's output differently:\n codec wrote %s\nencoding/json wrote %s", out, std)
	}
}

// TestOracleSpecExamples (a): every example message of the spec
// (testdata/spec) decoded by encoding/json into the oracle and by the codec
// gives the same message, field by field, and the codec's re-encoding
// reads back into the same oracle value.
func TestOracleSpecExamples(t *testing.T) {
	files, err := filepath.Glob("testdata/spec/*.json")
	if err != nil || len(files) < 20 {
		t.Fatalf("spec examples missing: %v %d", err, len(files))
	}
	for _, file := range files {
		base := filepath.Base(file)
		name := base[:strings.IndexByte(base, '.')]
		t.Run(strings.TrimSuffix(base, ".json"), func(t *testing.T) {
			in, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			pair, ok := oracleTypes[name]
			if !ok {
				t.Fatalf("no oracle for %s", name)
			}
			oracle := pair.oracle()
			if err := decodeStrict(in, oracle); err != nil {
				t.Fatalf("encoding/json: %v", err)
			}
			ours := pair.ours()
			if err := ours.UnmarshalJSON(in); err != nil {
				t.Fatalf("codec: %v", err)
			}
			for _, d := range sameFields(name, reflect.ValueOf(ours), reflect.ValueOf(oracle)) {
				t.Error(d)
			}
			checkBothWays(t, name, oracle)
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestOracleEveryMessage (b): every message type, each union member at
// least once, every field set (with escapes, non-ASCII text and int64
// values beyond 2^53), through encoding/json and the codec both ways.
func TestOracleEveryMessage(t *testing.T) {
	const text = "Tōkyō \"quoted\" \\ back/slash\n\ttab \u2028 <b>&amp; \U0001F600"
	hdr := oRequestHeader{RequestID: "req-1:A_b", RequestTimestamp: oTimestamp{EpochMillis: 1_481_899_949_606},
		ProtocolVersion: oVersion{Major: 2}, PaymentIntegratorAccountID: "InvisiCash_JPY"}
	rhdr := oResponseHeader{ResponseTimestamp: oTimestamp{EpochMillis: 9_007_199_254_740_993}} // 2^53+1
	gpt := oGooglePaymentToken{IssuerID: oIssuerID{Value: "issuer-" + text}, Token: "tok+/=" + text}
	amt := oAmount{AmountMicros: 9_223_372_036_854_775_807, CurrencyCode: "JPY"}
	raw := &oRaw{RawResult: &oRawResult{Scope: "scope", RawCode: "CODE_" + text}}
	summary := func() oSummary {
		s := oSummary{StatementDate: oTimestamp{EpochMillis: 1_502_521_200_000}, DateDue: oTimestamp{EpochMillis: -1},
			TotalDueByIntegrator: oAmount{AmountMicros: -1_076_000_000, CurrencyCode: "INR"},
			TotalProcessedAmount: &oAmount{AmountMicros: 1_669_000_000, CurrencyCode: "INR"},
			TotalFeesAmount:      &oAmount{AmountMicros: 100_000_000, CurrencyCode: "INR"},
			TotalEvents:          1 << 40,
			TotalTaxes:           &oAmount{AmountMicros: 1, CurrencyCode: "INR"},
		}
		s.BillingPeriod.StartDate, s.BillingPeriod.EndDate = oTimestamp{EpochMillis: 1}, oTimestamp{EpochMillis: 2}
		s.RemittanceInstructions = &struct {
			MemoLineID string `json:"memoLineId,omitempty"`
		}{MemoLineID: "memo " + text}
		return s
	}
	type tc struct {
		name   string // codec type name
		label  string
		oracle any
	}
	var cases []tc
	add := func(name, label string, v any) { cases = append(cases, tc{name, label, v}) }

	add("EchoRequest", "", &oEchoRequest{RequestHeader: hdr, ClientMessage: text})
	add("EchoResponse", "", &oEchoResponse{ResponseHeader: rhdr, ClientMessage: text, ServerMessage: "srv " + text})
	add("AssociateAccountRequest", "", &oAssociateAccountRequest{RequestHeader: hdr, GooglePaymentToken: gpt,
		AuthenticationRequestID: "auth-1", AssociationID: "assoc-" + text, ProvideUserInformation: true})
	for _, member := range []string{"success", "successWithUser", "userAuthenticationFailed", "accountNotEligible", "accountClosed"} {
		r := &oAssociateAccountResponse{ResponseHeader: rhdr}
		switch member {
		case "success":
			r.Result.Success = &struct {
				UserInformation *oUserInformation `json:"userInformation,omitempty"`
			}{}
		case "successWithUser":
			r.Result.Success = &struct {
				UserInformation *oUserInformation `json:"userInformation,omitempty"`
			}{UserInformation: &oUserInformation{Name: "山田 " + text, AddressLine: []string{"1-2-3", text},
				LocalityName: "Shibuya", AdministrativeAreaName: "Tokyo", PostalCodeNumber: "150-0002", CountryCode: "JP"}}
		case "userAuthenticationFailed":
			r.Result.UserAuthenticationFailed = raw
		case "accountNotEligible":
			r.Result.AccountNotEligible = &oRaw{}
		case "accountClosed":
			r.Result.AccountClosed = raw
		}
		add("AssociateAccountResponse", member, r)
	}
	add("GenerateReferenceNumberRequest", "", &oGenerateReferenceNumberRequest{RequestHeader: hdr, GooglePaymentToken: gpt,
		TransactionDescription: text, Amount: amt})
	for _, member := range []string{"printableString", "barcodeContents", "barcodeWithPrintableString", "googlePaymentTokenInvalidatedByUser", "accountClosed"} {
		r := &oGenerateReferenceNumberResponse{ResponseHeader: rhdr}
		type success = struct {
			DisplayableReferenceNumber struct {
				PrintableString            *string   `json:"printableString,omitempty"`
				BarcodeContents            *string   `json:"barcodeContents,omitempty"`
				BarcodeWithPrintableString *oBarcode `json:"barcodeWithPrintableString,omitempty"`
			} `json:"displayableReferenceNumber"`
		}
		switch member {
		case "printableString":
			r.Result.Success = &success{}
			r.Result.Success.DisplayableReferenceNumber.PrintableString = ptr("8100 " + text)
		case "barcodeContents":
			r.Result.Success = &success{}
			r.Result.Success.DisplayableReferenceNumber.BarcodeContents = ptr("91810000")
		case "barcodeWithPrintableString":
			r.Result.Success = &success{}
			r.Result.Success.DisplayableReferenceNumber.BarcodeWithPrintableString = &oBarcode{PrintableString: "81", BarcodeContents: "9181 " + text}
		case "googlePaymentTokenInvalidatedByUser":
			r.Result.GooglePaymentTokenInvalidatedByUser = raw
		case "accountClosed":
			r.Result.AccountClosed = &oRaw{}
		}
		add("GenerateReferenceNumberResponse", member, r)
	}
	add("CancelReferenceNumberRequest", "", &oCancelReferenceNumberRequest{RequestHeader: hdr, GenerateReferenceNumberRequestID: "gen-" + text})
	for _, member := range []string{"success", "referenceNumberAlreadyPaid"} {
		r := &oCancelReferenceNumberResponse{ResponseHeader: rhdr}
		if member == "success" {
			r.Result.Success = &oEmpty{}
		} else {
			r.Result.ReferenceNumberAlreadyPaid = &oEmpty{}
		}
		add("CancelReferenceNumberResponse", member, r)
	}
	add("RefundRequest", "", &oRefundRequest{RequestHeader: hdr, TransactionID: "tx-" + text, RefundAmount: amt})
	refundResults := map[string]oRefundResult{
		"success":                       {Success: &oEmpty{}},
		"accountClosed":                 {AccountClosed: raw},
		"accountClosedAccountTakenOver": {AccountClosedAccountTakenOver: &oRaw{}},
		"accountClosedFraud":            {AccountClosedFraud: raw},
		"accountOnHold":                 {AccountOnHold: raw},
		"refundExceedsMaximumBalance":   {RefundExceedsMaximumBalance: raw},
		"refundWindowExceeded":          {RefundWindowExceeded: raw},
	}
	for member, res := range refundResults {
		add("RefundResponse", member, &oRefundResponse{ResponseHeader: rhdr, Result: res})
		add("RefundResultNotificationRequest", member, &oRefundResultNotificationRequest{RequestHeader: hdr, RefundRequestID: "ref-1", Result: res})
		a := &oAsynchronousRefundResponse{ResponseHeader: rhdr}
		a.Result.Acknowledged = res.Success // success is acknowledged here
		a.Result.AccountClosed, a.Result.AccountClosedAccountTakenOver, a.Result.AccountClosedFraud = res.AccountClosed, res.AccountClosedAccountTakenOver, res.AccountClosedFraud
		a.Result.AccountOnHold, a.Result.RefundExceedsMaximumBalance, a.Result.RefundWindowExceeded = res.AccountOnHold, res.RefundExceedsMaximumBalance, res.RefundWindowExceeded
		add("AsynchronousRefundResponse", member, a)
	}
	add("RemittanceStatementNotificationRequest", "", &oRemittanceStatementNotificationRequest{RequestHeader: hdr, RemittanceStatementSummary: summary()})
	rsn := &oRemittanceStatementNotificationResponse{ResponseHeader: rhdr, PaymentIntegratorStatementID: "st-" + text}
	rsn.Result.Accepted = &oEmpty{}
	add("RemittanceStatementNotificationResponse", "", rsn)

	for _, member := range []string{"invalidApiVersion", "invalidPayloadSignature", "invalidPayloadEncryption", "requestTimestampOutOfRange",
		"invalidIdentifier", "idempotencyViolation", "invalidFieldValue", "missingRequiredField", "preconditionViolation",
		"userActionInProgress", "invalidDecryptedRequest", "forbidden", "none"} {
		r := &oErrorResponse{ResponseHeader: rhdr, ErrorDescription: "desc " + text, PaymentIntegratorErrorIdentifier: "err-1"}
		if member != "none" {
			// Fill the one member through encoding/json itself, so this
			// table needs no copy of the anonymous types.
			if err := json.Unmarshal([]byte(map[string]string{
				"invalidApiVersion":          `{"invalidApiVersion":{"requestVersion":{"major":1},"expectedVersion":{"major":2}}}`,
				"invalidPayloadSignature":    `{"invalidPayloadSignature":{}}`,
				"invalidPayloadEncryption":   `{"invalidPayloadEncryption":{}}`,
				"requestTimestampOutOfRange": `{"requestTimestampOutOfRange":{"requestTimestamp":{"epochMillis":"1"},"serverTimestamp":{"epochMillis":"120001"}}}`,
				"invalidIdentifier":          `{"invalidIdentifier":{"invalidIdentifierType":"paymentIntegratorAccountId"}}`,
				"idempotencyViolation":       `{"idempotencyViolation":{}}`,
				"invalidFieldValue":          `{"invalidFieldValue":{"invalidFieldName":"amount.currencyCode"}}`,
				"missingRequiredField":       `{"missingRequiredField":{"missingFieldNames":["requestHeader.requestId","amount"]}}`,
				"preconditionViolation":      `{"preconditionViolation":{}}`,
				"userActionInProgress":       `{"userActionInProgress":{}}`,
				"invalidDecryptedRequest":    `{"invalidDecryptedRequest":{}}`,
				"forbidden":                  `{"forbidden":{}}`,
			}[member]), &r.ErrorResponseResult); err != nil {
				t.Fatal(err)
			}
		}
		add("ErrorResponse", member, r)
	}

	add("ReferenceNumberPaidNotificationRequest", "", &oReferenceNumberPaidNotificationRequest{RequestHeader: hdr,
		PaymentIntegratorTransactionID: "KNB-" + text, GenerateReferenceNumberRequestID: "gen-1", PaymentTimestamp: oTimestamp{EpochMillis: 1 << 60}})
	for _, name := range []string{"ReferenceNumberPaidNotificationResponse", "RefundResultNotificationResponse", "AcceptRemittanceStatementResponse"} {
		add(name, "", &oSuccessResponse{ResponseHeader: rhdr, Result: oSuccessResult{Success: &oEmpty{}}})
	}
	add("RemittanceStatementDetailsRequest", "", &oRemittanceStatementDetailsRequest{RequestHeader: hdr, StatementID: "st-1", NumberOfEvents: 1000, EventOffset: 2_000_000_000})
	ev := func(i int) oEvent {
		return oEvent{EventRequestID: fmt.Sprintf("ev-%d", i), PaymentIntegratorEventID: "pi-" + text,
			EventCharge: &oAmount{AmountMicros: int64(i) * 1_000_000, CurrencyCode: "JPY"}, EventFee: &oAmount{AmountMicros: -int64(i), CurrencyCode: "JPY"}}
	}
	add("RemittanceStatementDetailsResponse", "", &oRemittanceStatementDetailsResponse{ResponseHeader: rhdr, RemittanceStatementSummary: summary(),
		EventOffset: 5, NextEventOffset: 10, TotalEvents: 15,
		CaptureEvents: []oEvent{ev(1), ev(2)}, RefundEvents: []oEvent{ev(3)}, ReverseRefundEvents: []oEvent{ev(4)},
		ChargebackEvents: []oEvent{ev(5)}, ReverseChargebackEvents: []oEvent{ev(6)}, AdjustmentEvents: []oEvent{{EventRequestID: "bare"}}})
	add("AcceptRemittanceStatementRequest", "", &oAcceptRemittanceStatementRequest{RequestHeader: hdr, StatementID: "st-" + text})
	for _, member := range []string{"feeToVatModification", "settlementExchangeRateModification", "feeToVatAndSettlementExchangeRateModification"} {
		r := &oAcceptRemittanceStatementWithModificationsRequest{RequestHeader: hdr, StatementID: "st-1"}
		if err := json.Unmarshal([]byte(map[string]string{
			"feeToVatModification":                          `{"feeToVatModification":{"vatToFeeRatioInMicros":"180000"}}`,
			"settlementExchangeRateModification":            `{"settlementExchangeRateModification":{"exchangeRateInMicros":"9007199254740993"}}`,
			"feeToVatAndSettlementExchangeRateModification": `{"feeToVatAndSettlementExchangeRateModification":{"vatToFeeRatioInMicros":"1","exchangeRateInMicros":"2"}}`,
		}[member]), r); err != nil {
			t.Fatal(err)
		}
		add("AcceptRemittanceStatementWithModificationsRequest", member, r)
	}
	add("AcceptRemittanceStatementWithModificationsResponse", "", &oAcceptRemittanceStatementWithModificationsResponse{ResponseHeader: rhdr,
		Result: oSuccessResult{Success: &oEmpty{}}, ModifiedTotalDueByIntegrator: &amt})
	add("AuthenticationRequest", "", &oAuthenticationRequest{RequestID: "auth-1", AssociationID: "assoc-" + text, PaymentIntegratorAccountID: "P"})
	for _, member := range []string{"success", "cancelled", "fatalError", "none"} {
		r := &oAuthenticationResponse{AssociationID: "assoc-1", RequestID: "auth-1"}
		if member != "none" {
			if err := json.Unmarshal([]byte(`{"authenticationResult":{"`+member+`":{}}}`), r); err != nil {
				t.Fatal(err)
			}
		}
		add("AuthenticationResponse", member, r)
	}

	covered := map[string]bool{}
	for _, c := range cases {
		covered[c.name] = true
		t.Run(strings.TrimSuffix(c.name+"/"+c.label, "/"), func(t *testing.T) { checkBothWays(t, c.name, c.oracle) })
	}
	for name := range oracleTypes {
		if !covered[name] {
			t.Errorf("no case for %s", name)
		}
	}
	// Every integrator-hosted request and response type has an oracle.
	for _, m := range []string{otpc.MethodEcho, otpc.MethodAssociateAccount, otpc.MethodGenerateReferenceNumber,
		otpc.MethodCancelReferenceNumber, otpc.MethodRefund, otpc.MethodAsynchronousRefund, otpc.MethodRemittanceStatementNotification} {
		for _, v := range []any{otpc.NewIntegratorRequest(m), otpc.NewIntegratorResponse(m)} {
			name := reflect.TypeOf(v).Elem().Name()
			if !covered[name] {
				t.Errorf("%s: %s has no oracle case", m, name)
			}
		}
	}
}

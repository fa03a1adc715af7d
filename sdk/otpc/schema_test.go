package otpc_test

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
)

// schemaField is one field or union member of testdata/otpc-v2-schemas.json,
// a copy of the project's machine-readable summary of the spec.
type schemaField struct {
	Name   string `json:"name"`
	Source string `json:"source"`
}

type schemaFile struct {
	Types map[string]struct {
		Fields  []schemaField `json:"fields"`
		Members []schemaField `json:"members"`
	} `json:"types"`
	Methods []struct {
		Name        string        `json:"name"`
		Direction   string        `json:"direction"`
		Request     []schemaField `json:"request"`
		Response    []schemaField `json:"response"`
		ResultUnion *struct {
			Members []schemaField `json:"members"`
		} `json:"resultUnion"`
	} `json:"methods"`
}

// jsonField returns the type of t's field whose JSON key is key.
func jsonField(t reflect.Type, key string) (reflect.Type, bool) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil, false
	}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name == key {
			return t.Field(i).Type, true
		}
	}
	return nil, false
}

// at walks a path of JSON keys from t.
func at(t reflect.Type, path ...string) reflect.Type {
	for _, k := range path {
		next, ok := jsonField(t, k)
		if !ok {
			panic("oracle has no " + strings.Join(path, "."))
		}
		t = next
	}
	return t
}

func typeOf[T any]() reflect.Type { return reflect.TypeFor[T]() }

// TestOracleMatchesSpecSchema checks the oracle itself against the spec's
// schema summary, so the oracle is not merely a second transcription of
// the codec: every field and union member the schema lists as verified (or
// read on a sibling API) is a JSON key of the oracle at the same place.
// Fields the schema marks unverified are logged when absent, not failed:
// their names or places are the schema's guesses (e.g. the
// remittanceStatementDetails "events" array, which the codec splits by
// event kind).
func TestOracleMatchesSpecSchema(t *testing.T) {
	raw, err := os.ReadFile("testdata/otpc-v2-schemas.json")
	if err != nil {
		t.Fatal(err)
	}
	var s schemaFile
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	gen := typeOf[oGenerateReferenceNumberResponse]()
	types := map[string]reflect.Type{
		"RequestHeader": typeOf[oRequestHeader](), "ResponseHeader": typeOf[oResponseHeader](),
		"Timestamp": typeOf[oTimestamp](), "Version": typeOf[oVersion](), "Amount": typeOf[oAmount](),
		"IssuerId": typeOf[oIssuerID](), "GooglePaymentToken": typeOf[oGooglePaymentToken](),
		"RawResult": typeOf[oRawResult](), "AccountClosed": typeOf[oRaw](),
		"GooglePaymentTokenInvalidatedByUser": typeOf[oRaw](), "AccountClosedAccountTakenOver": typeOf[oRaw](),
		"AccountClosedFraud": typeOf[oRaw](), "AccountOnHold": typeOf[oRaw](),
		"RefundExceedsMaximumBalance": typeOf[oRaw](), "RefundWindowExceeded": typeOf[oRaw](),
		"Empty": typeOf[oEmpty](), "BarcodeWithPrintableString": typeOf[oBarcode](),
		"DisplayableReferenceNumber": at(gen, "result", "success", "displayableReferenceNumber"),
		"UserInformation":            typeOf[oUserInformation](),
		"BillingPeriod":              at(typeOf[oSummary](), "billingPeriod"),
		"RemittanceStatementSummary": typeOf[oSummary](),
		"ErrorResponse":              typeOf[oErrorResponse](),
		"ErrorResponseResult":        at(typeOf[oErrorResponse](), "errorResponseResult"),
		"AuthenticationRequest":      typeOf[oAuthenticationRequest](),
		"AuthenticationResponse":     typeOf[oAuthenticationResponse](),
		"AuthenticationResult":       at(typeOf[oAuthenticationResponse](), "authenticationResult"),
	}
	type pair struct{ req, resp reflect.Type }
	methods := map[string]pair{
		"google-to-integrator/echo":                            {typeOf[oEchoRequest](), typeOf[oEchoResponse]()},
		"google-to-integrator/associateAccount":                {typeOf[oAssociateAccountRequest](), typeOf[oAssociateAccountResponse]()},
		"google-to-integrator/generateReferenceNumber":         {typeOf[oGenerateReferenceNumberRequest](), gen},
		"google-to-integrator/cancelReferenceNumber":           {typeOf[oCancelReferenceNumberRequest](), typeOf[oCancelReferenceNumberResponse]()},
		"google-to-integrator/refund":                          {typeOf[oRefundRequest](), typeOf[oRefundResponse]()},
		"google-to-integrator/asynchronousRefund":              {typeOf[oRefundRequest](), typeOf[oAsynchronousRefundResponse]()},
		"google-to-integrator/remittanceStatementNotification": {typeOf[oRemittanceStatementNotificationRequest](), typeOf[oRemittanceStatementNotificationResponse]()},
		"integrator-to-google/echo":                            {typeOf[oEchoRequest](), typeOf[oEchoResponse]()},
		"integrator-to-google/referenceNumberPaidNotification": {typeOf[oReferenceNumberPaidNotificationRequest](), typeOf[oSuccessResponse]()},
		"integrator-to-google/refundResultNotification":        {typeOf[oRefundResultNotificationRequest](), typeOf[oSuccessResponse]()},
		"integrator-to-google/remittanceStatementDetails":      {typeOf[oRemittanceStatementDetailsRequest](), typeOf[oRemittanceStatementDetailsResponse]()},
		"integrator-to-google/acceptRemittanceStatement":       {typeOf[oAcceptRemittanceStatementRequest](), typeOf[oSuccessResponse]()},
		"integrator-to-google/acceptRemittanceStatementWithModifications": {typeOf[oAcceptRemittanceStatementWithModificationsRequest](),
			typeOf[oAcceptRemittanceStatementWithModificationsResponse]()},
	}
	// Where the schema itself leaves the place open, the oracle's place.
	elsewhere := map[string][]string{
		// Schema note: "location (top-level vs inside success) unverified".
		"associateAccount response.userInformation": {"result", "success", "userInformation"},
	}
	checked := 0
	check := func(where string, t0 reflect.Type, fields []schemaField) {
		for _, f := range fields {
			if _, ok := jsonField(t0, f.Name); ok {
				checked++
				continue
			}
			if path, ok := elsewhere[where+"."+f.Name]; ok {
				at(t0, path...) // panics if the oracle lacks it there too
				checked++
				continue
			}
			if f.Source == "unverified" {
				t.Logf("%s.%s (unverified in the schema) is not in the oracle", where, f.Name)
				continue
			}
			t.Errorf("%s.%s (%s in the schema) is not in the oracle", where, f.Name, f.Source)
		}
	}
	for name, st := range s.Types {
		ot, ok := types[name]
		if !ok {
			t.Errorf("schema type %s has no oracle", name)
			continue
		}
		check(name, ot, append(st.Fields, st.Members...))
	}
	for _, m := range s.Methods {
		p, ok := methods[m.Direction+"/"+m.Name]
		if !ok {
			t.Errorf("schema method %s/%s has no oracle", m.Direction, m.Name)
			continue
		}
		check(m.Name+" request", p.req, m.Request)
		check(m.Name+" response", p.resp, m.Response)
		if m.ResultUnion != nil {
			check(m.Name+" response.result", at(p.resp, "result"), m.ResultUnion.Members)
		}
	}
	if checked < 100 {
		t.Fatalf("only %d schema fields matched: the schema was not understood", checked)
	}
	t.Logf("%d schema fields and members found in the oracle", checked)
}

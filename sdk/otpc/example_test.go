package otpc_test

import (
	"errors"
	"fmt"

	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// A host decodes the decrypted body, validates it, and maps each failure to
// the spec's error result.
func Example() {
	body := []byte(`{"requestHeader":{"requestId":"cmVxdWVzdDE","requestTimestamp":{"epochMillis":"1481899949606"},
		"protocolVersion":{"major":2},"paymentIntegratorAccountId":"InvisiCashUSA_USD"},
		"googlePaymentToken":{"issuerId":{"value":"invisicash"},"token":"tok"},
		"amount":{"amountMicros":"728000000","currencyCode":"USD"}}`)

	var req otpc.GenerateReferenceNumberRequest
	if err := req.UnmarshalJSON(body); err != nil {
		// errors.Is(err, otpc.ErrMalformed): answer invalidDecryptedRequest.
		fmt.Println("malformed:", err)
		return
	}
	var fe *otpc.FieldError
	if err := req.Validate(); errors.As(err, &fe) {
		res := fe.ErrorResult()
		fmt.Println(res.HTTPStatus(), res.MissingRequiredField.MissingFieldNames)
	}
	// Output: 400 [transactionDescription]
}

// A plugin builds its output frame; the host adds the response header.
func ExampleGenerateOutput() {
	code := "1122334455"
	out := otpc.GenerateOutput{
		Result: otpc.GenerateReferenceNumberResult{Success: &otpc.GenerateReferenceNumberSuccess{
			DisplayableReferenceNumber: otpc.DisplayableReferenceNumber{PrintableString: &code},
		}},
		ExpiresAt: &otpc.Timestamp{EpochMillis: 1481907920760},
	}
	if err := out.Validate(); err != nil {
		panic(err)
	}
	fmt.Println(string(out.AppendJSON(nil)))
	// Output: {"result":{"success":{"displayableReferenceNumber":{"printableString":"1122334455"}}},"expiresAt":{"epochMillis":"1481907920760"}}
}

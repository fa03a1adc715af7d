package runtime_test

import (
	"strings"

	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// benchInput is a GenerateInput whose JSON is about descLen+250 bytes.
func benchInput(descLen int) []byte {
	in := otpc.GenerateInput{
		Request: otpc.GenerateReferenceNumberRequest{
			RequestHeader: otpc.RequestHeader{
				RequestID:                  "cmVxdWVzdDE-0001",
				RequestTimestamp:           otpc.Timestamp{EpochMillis: 1481899949606},
				ProtocolVersion:            otpc.Version{Major: 2},
				PaymentIntegratorAccountID: "InvisiCashUSA_USD",
			},
			GooglePaymentToken: otpc.GooglePaymentToken{
				IssuerID: otpc.IssuerID{Value: "invisicash"},
				Token:    "ZXhhbXBsZSB1bmlxdWUgcGF5bWVudCB0b2tlbiB2YWx1ZQ",
			},
			TransactionDescription: strings.Repeat("Google - Music ", descLen/15+1)[:descLen],
			Amount:                 otpc.Amount{AmountMicros: 728000000, CurrencyCode: "USD"},
		},
		AccountID: "acct-42",
	}
	return in.AppendJSON(nil)
}

package plugincall

import (
	"time"

	"github.com/otpcgate/otpcgate/host/ledger"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// CodeInfo is what a plugin is told about a reference number.
func CodeInfo(code ledger.Code) otpc.CodeInfo {
	return otpc.CodeInfo{
		GenerateRequestID: code.TransactionID,
		AccountID:         code.AccountID,
		Amount:            otpc.Amount{AmountMicros: code.AmountMicros, CurrencyCode: code.Currency},
		PrintableString:   code.Printable,
		BarcodeContents:   code.Barcode,
		State:             pluginState(code.State),
		PaidMicros:        code.PaidMicros,
		RefundedMicros:    code.RefundedMicros,
		CreatedAt:         timestamp(code.Created),
		ExpiresAt:         timestamp(code.ExpiresAt),
		PaidAt:            timestamp(code.PaidAt),
	}
}

func timestamp(t time.Time) *otpc.Timestamp {
	if t.IsZero() {
		return nil
	}
	ts := otpc.TimestampOf(t)
	return &ts
}

// pluginState maps the ledger's code states to the sdk's: a partially
// refunded code is still "paid" to a plugin (RefundedMicros says how much
// went back), so plugins need not know the ledger's finer state.
func pluginState(s ledger.CodeState) string {
	if s == ledger.CodePartiallyRefunded {
		return otpc.CodeStatePaid
	}
	return string(s)
}

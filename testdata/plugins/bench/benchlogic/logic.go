// Package benchlogic is the logic of the benchmark plugin, kept outside the
// main package so the same code runs natively as the baseline of the wasm
// benchmark.
package benchlogic

import (
	"strconv"
	"time"

	"github.com/otpcgate/otpcgate/sdk"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// Plugin answers generate with a code whose barcode echoes the transaction
// description, so a 1 KiB request yields a ~1 KiB response.
var Plugin = sdk.Plugin{Generate: Generate}

// Generate derives a printable code from the request id and returns the
// description as barcode contents.
func Generate(c *sdk.Context, in *otpc.GenerateInput) (*otpc.GenerateOutput, error) {
	h := uint64(14695981039346656037)
	for i := 0; i < len(in.Request.RequestHeader.RequestID); i++ {
		h = (h ^ uint64(in.Request.RequestHeader.RequestID[i])) * 1099511628211
	}
	code := strconv.FormatUint(h%1e12, 10)
	exp := otpc.Timestamp{EpochMillis: c.Now().Add(72 * time.Hour).UnixMilli()}
	return &otpc.GenerateOutput{
		Result: otpc.GenerateReferenceNumberResult{Success: &otpc.GenerateReferenceNumberSuccess{
			DisplayableReferenceNumber: otpc.DisplayableReferenceNumber{
				BarcodeWithPrintableString: &otpc.BarcodeWithPrintableString{
					PrintableString: code,
					BarcodeContents: in.Request.TransactionDescription,
				},
			},
		}},
		ExpiresAt: &exp,
	}, nil
}

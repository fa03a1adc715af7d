// Command benchjson is the baseline of BenchmarkCall1KiB: the bench
// plugin's generate logic with encoding/json (reflection) instead of the
// sdk/otpc codec, behind raw ABI exports, as measured before the codec
// existed.
package main

import (
	"encoding/json"
	"strconv"
	"unsafe"
)

type amount struct {
	AmountMicros int64  `json:"amountMicros,string"`
	CurrencyCode string `json:"currencyCode"`
}

type generateInput struct {
	Request struct {
		RequestHeader struct {
			RequestID        string `json:"requestId"`
			RequestTimestamp struct {
				EpochMillis int64 `json:"epochMillis,string"`
			} `json:"requestTimestamp"`
			ProtocolVersion struct {
				Major int32 `json:"major"`
			} `json:"protocolVersion"`
			PaymentIntegratorAccountID string `json:"paymentIntegratorAccountId"`
		} `json:"requestHeader"`
		GooglePaymentToken struct {
			IssuerID struct {
				Value string `json:"value"`
			} `json:"issuerId"`
			Token string `json:"token"`
		} `json:"googlePaymentToken"`
		TransactionDescription string `json:"transactionDescription"`
		Amount                 amount `json:"amount"`
	} `json:"request"`
	AccountID string `json:"accountId"`
}

type barcode struct {
	PrintableString string `json:"printableString"`
	BarcodeContents string `json:"barcodeContents"`
}

type generateOutput struct {
	Result struct {
		Success struct {
			DisplayableReferenceNumber struct {
				BarcodeWithPrintableString barcode `json:"barcodeWithPrintableString"`
			} `json:"displayableReferenceNumber"`
		} `json:"success"`
	} `json:"result"`
	ExpiresAt struct {
		EpochMillis int64 `json:"epochMillis,string"`
	} `json:"expiresAt"`
}

//go:wasmimport otpc now
func now() int64

var in, out []byte

//go:wasmexport otpc_abi_version
func abiVersion() int32 { return 1 }

//go:wasmexport otpc_alloc
func alloc(size int32) uint32 {
	if int(size) > cap(in) {
		in = make([]byte, size)
	}
	in = in[:size]
	if size == 0 {
		return 0
	}
	return uint32(uintptr(unsafe.Pointer(&in[0])))
}

//go:wasmexport otpc_handle
func handle(op uint32, _ uint32, n uint32) uint64 {
	out = append(out[:0], 0)
	if op != 0 {
		var req generateInput
		if err := json.Unmarshal(in[:n], &req); err != nil {
			out = append(out[:0], 2)
			out = append(out, err.Error()...)
		} else {
			h := uint64(14695981039346656037)
			id := req.Request.RequestHeader.RequestID
			for i := 0; i < len(id); i++ {
				h = (h ^ uint64(id[i])) * 1099511628211
			}
			var res generateOutput
			res.Result.Success.DisplayableReferenceNumber.BarcodeWithPrintableString = barcode{
				PrintableString: strconv.FormatUint(h%1e12, 10),
				BarcodeContents: req.Request.TransactionDescription,
			}
			res.ExpiresAt.EpochMillis = now() + 72*3600*1000
			b, _ := json.Marshal(&res)
			out = append(out, b...)
		}
	}
	return uint64(uintptr(unsafe.Pointer(&out[0])))<<32 | uint64(len(out))
}

func main() {}

// Command konbini is an example otpcgate plugin for convenience-store
// payment codes: the user gets a numeric code (Luhn check digit) and a
// barcode, pays cash at a store before the code expires, and the merchant
// reports the payment. See codes.go for the code and barcode formats and
// config.go for the configuration.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o konbini.wasm .
package main

import "github.com/otpcgate/otpcgate/sdk"

func init() { sdk.Register(Plugin()) }

func main() {}

// Command banktransfer is an example otpcgate plugin for bank-transfer
// payments: the user gets a structured creditor reference (ISO 11649 "RF"
// reference, mod-97 checked like an IBAN) to quote in a transfer to the
// merchant's account. Rules differ from the konbini plugin: overpayments
// are accepted, underpayments declined, late transfers accepted within a
// grace period, synchronous refunds only for small amounts. Account
// association is not supported (those ops report "unsupported").
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o banktransfer.wasm .
package main

import "github.com/otpcgate/otpcgate/sdk"

func init() { sdk.Register(Plugin()) }

func main() {}

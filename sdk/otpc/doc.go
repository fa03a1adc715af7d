// Package otpc holds the message types of Google Standard Payments'
// Refundable One Time Payment Code API, version 2 (OTPC v2), together with
// the plugin call frames exchanged between the otpcgate host and merchant
// WebAssembly plugins.
//
// The package is shared by the host (native Go) and by plugins
// (GOOS=wasip1 GOARCH=wasm), so it depends on the standard library only and
// does not use encoding/json or reflect: every type carries a generated,
// allocation-light JSON codec (AppendJSON, MarshalJSON, UnmarshalJSON) built
// on the strict scanner in internal/jsonx. Host code that uses encoding/json
// gets the same bytes, because MarshalJSON and UnmarshalJSON are the codec.
//
// JSON conventions (spec §3):
//   - int64 values are emitted as JSON strings; on input a JSON number is
//     accepted too. Smaller integers are JSON numbers (a string is accepted).
//   - Absent optional fields are omitted. As in proto3, a required scalar that
//     holds its zero value ("" or 0) counts as missing in Validate.
//   - Unions are structs of pointer members and encode as
//     {"member":{...}}; Empty members encode as {}. Decoding never fails
//     because a union has zero or several members: Validate reports that.
//   - Unknown fields are skipped (forward compatibility within major 2);
//     duplicate keys, malformed JSON and int64 overflow are decode errors
//     (*SyntaxError or *TypeError, both matching ErrMalformed). A JSON
//     null member counts as absent, but a whole message must be an object:
//     UnmarshalJSON rejects a top-level null (unlike the encoding/json
//     convention), so embed these types as pointers in your own JSON
//     structs if null must be accepted there.
//
// Decoding and validation are separate steps: UnmarshalJSON checks only the
// JSON, Validate checks required fields, formats and unions and returns a
// *FieldError whose Missing and Invalid lists map onto the spec's
// missingRequiredField and invalidFieldValue errors.
//
// Message, Request and Response are the common interfaces;
// NewIntegratorRequest and friends map a method name to a fresh value.
// Plugin call frames (Op, GenerateInput, ...) are in plugin.go.
//
// The codecs are generated: after changing a type, run
// `go generate ./sdk/otpc` (internal/gen reads the struct tags).
//
// Confidence tags in the documentation follow the spec: [V] verified on an
// OTPC v2 page, [S] taken from a sibling Standard Payments API, [U]
// unverified (a plausible choice to confirm with Google).
package otpc

//go:generate go run ./internal/gen -dir . -out codec_gen.go

// ProtocolMajor is the major protocol version of OTPC v2. Requests whose
// requestHeader.protocolVersion.major differs are answered with
// invalidApiVersion.
const ProtocolMajor = 2

// Integrator-hosted methods (Google calls otpcgate), spec §5. The path is
// {base}/refundable-one-time-payment-code-v2/{method}.
const (
	MethodEcho                            = "echo"
	MethodAssociateAccount                = "associateAccount"
	MethodGenerateReferenceNumber         = "generateReferenceNumber"
	MethodCancelReferenceNumber           = "cancelReferenceNumber"
	MethodRefund                          = "refund"
	MethodAsynchronousRefund              = "asynchronousRefund"
	MethodRemittanceStatementNotification = "remittanceStatementNotification"
)

// Google-hosted methods (otpcgate calls Google), spec §6. The path is
// {endpoint}/refundable-one-time-payment-code-v2/{method}/{PIAID}. Echo is
// also Google-hosted and uses MethodEcho.
const (
	MethodReferenceNumberPaidNotification            = "referenceNumberPaidNotification"
	MethodRefundResultNotification                   = "refundResultNotification"
	MethodRemittanceStatementDetails                 = "remittanceStatementDetails"
	MethodAcceptRemittanceStatement                  = "acceptRemittanceStatement"
	MethodAcceptRemittanceStatementWithModifications = "acceptRemittanceStatementWithModifications"
)

// PathPrefix is the path segment that precedes the method name on both sides.
const PathPrefix = "/refundable-one-time-payment-code-v2/"

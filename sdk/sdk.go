// Package sdk is what a merchant plugin imports. A plugin is a main package
// that registers typed handlers from init:
//
//	func init() {
//		sdk.Register(&sdk.Plugin{
//			Generate: generate,
//			Cancel:   cancel,
//		})
//	}
//
//	func main() {}
//
// and is built as a wasip1 reactor:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o plugin.wasm .
//
// Under GOOS=wasip1 the sdk provides the ABI exports (otpc_abi_version,
// otpc_alloc, otpc_handle; see package sdk/abi) and reaches the host through
// its imports. Natively (any other GOOS) the same handlers can be called
// directly or through Handle with a MemHost, so plugin logic is unit-tested
// with plain go test.
//
// Frames are decoded and encoded with the reflection-free codec of sdk/otpc,
// never encoding/json, which keeps a warm 1 KiB call in the tens of
// microseconds inside wasm.
//
// A panic in a handler is not recovered: the host discards that instance
// and reports a trap, so a plugin never keeps running on broken state.
//
// # What a handler returns, and what the caller receives
//
// A handler has four ways to answer:
//
//   - success: the op's output with the success member of its result union;
//   - a business decline: the output with another member of the union (e.g.
//     accountClosed). Both are HTTP 200, stored and replayed to Google's
//     retries with the same requestId;
//   - a refusal: return an *otpc.Refusal (otpc.RefuseInvalidField,
//     RefusePrecondition, RefuseInvalidIdentifier, RefuseMissingField,
//     RefuseUserActionInProgress, RefuseForbidden), also wrapped. Google gets
//     the member's 4xx with an ErrorResponse, sealed; nothing of the call is
//     committed (no ledger entry, no KV write) and Google's retry is decided
//     afresh (spec §7.4);
//   - a failure: any other error, a panic, running past the time limit, a
//     broken limit, an output that does not validate, or a refusal with a
//     member only the host may answer with (invalidApiVersion,
//     invalidPayloadSignature, invalidPayloadEncryption,
//     requestTimestampOutOfRange, idempotencyViolation,
//     invalidDecryptedRequest; see otpc.PluginMayRefuseWith). Google gets 503
//     with Retry-After and retries; nothing is committed.
//
// Before any handler runs the host itself refuses what it knows: unknown
// identifiers, a zero or negative amount, an amount or currency outside
// what the operator declared for the PIAID (invalidFieldValue), a refund of
// an unpaid code or above what is left of the paid amount
// (preconditionViolation). A handler never sees those requests.
//
//	handler (who asks)             success            business decline (result member)       refusal          failure
//	Generate                       200 success        200 accountClosed,                     member's 4xx     503 + Retry-After
//	  Google: generateReferenceNumber                     googlePaymentTokenInvalidatedByUser
//	Cancel                         200 success        200 referenceNumberAlreadyPaid         member's 4xx     503 + Retry-After
//	  Google: cancelReferenceNumber
//	Refund                         200 success        200 accountClosed, accountOnHold,      member's 4xx     503 + Retry-After
//	  Google: refund                                  accountClosedAccountTakenOver,
//	                                                  accountClosedFraud, refundWindowExceeded,
//	                                                  refundExceedsMaximumBalance
//	AsyncRefund                    200 acknowledged   200 as Refund                          member's 4xx     503 + Retry-After
//	  Google: asynchronousRefund
//	Associate                      200 success        200 userAuthenticationFailed,          member's 4xx     503 + Retry-After
//	  Google: associateAccount                        accountNotEligible, accountClosed
//	Remittance                     200 accepted       (the union has no other member)        member's 4xx     503 + Retry-After
//	  Google: remittanceStatementNotification
//	Paid                           200 accepted=true, 200 accepted=false, declineReason      member's status  503
//	  merchant API: POST .../payments  Google notified
//	RefundDone                     200, Google gets   (the result follows the merchant's     member's status  503
//	  merchant API: POST .../refund-results  the result  report)
//	Authenticate                   back to Google     401, the form again                    member's status, 503, the form
//	  the login page               with success       (Authenticated false)                  the form: "cannot  again
//	                                                                                          be linked here"
//	Warmup (at load)               version goes live  -                                      load fails       load fails
//
// "member's 4xx" is sealed in an ErrorResponse with the refusal's
// description as errorDescription: the member a plugin may choose and its
// status are invalidFieldValue 400 (RefuseInvalidField, with the field's
// path), missingRequiredField 400 (RefuseMissingField),
// preconditionViolation 400 (RefusePrecondition), forbidden 403
// (RefuseForbidden), invalidIdentifier 404 (RefuseInvalidIdentifier),
// userActionInProgress 423 (RefuseUserActionInProgress).
package sdk

import (
	"time"

	"github.com/otpcgate/otpcgate/sdk/abi"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// Plugin is the set of handlers of a plugin. A nil handler makes its op
// unsupported (the host reports a plugin error), except Warmup, which
// defaults to doing nothing.
type Plugin struct {
	Warmup       func(c *Context) error
	Generate     func(c *Context, in *otpc.GenerateInput) (*otpc.GenerateOutput, error)
	Cancel       func(c *Context, in *otpc.CancelInput) (*otpc.CancelOutput, error)
	Refund       func(c *Context, in *otpc.RefundInput) (*otpc.RefundOutput, error)
	AsyncRefund  func(c *Context, in *otpc.RefundInput) (*otpc.AsyncRefundOutput, error)
	Associate    func(c *Context, in *otpc.AssociateInput) (*otpc.AssociateOutput, error)
	Remittance   func(c *Context, in *otpc.RemittanceInput) (*otpc.RemittanceOutput, error)
	Paid         func(c *Context, in *otpc.PaidInput) (*otpc.PaidOutput, error)
	RefundDone   func(c *Context, in *otpc.RefundDoneInput) (*otpc.RefundDoneOutput, error)
	Authenticate func(c *Context, in *otpc.AuthenticateInput) (*otpc.AuthenticateOutput, error)
}

// Level is a log level.
type Level int32

// Log levels, equal to the abi.Log* values.
const (
	LevelDebug Level = Level(abi.LogDebug)
	LevelInfo  Level = Level(abi.LogInfo)
	LevelWarn  Level = Level(abi.LogWarn)
	LevelError Level = Level(abi.LogError)
)

// Host is the set of services a Context reaches. Inside wasm it is the
// host's import module; natively it is whatever the test supplies (MemHost).
type Host interface {
	Log(level Level, msg string)
	// KVGet returns the value of key in the merchant's namespace,
	// including this call's own writes.
	KVGet(key string) ([]byte, bool)
	KVPut(key string, value []byte)
	KVDelete(key string)
	// Random fills b with cryptographic randomness.
	Random(b []byte)
	// NowMillis is the request's time in Unix milliseconds.
	NowMillis() int64
	// Config is the plugin's configuration JSON.
	Config() []byte
}

// Context is the per-call handle a handler receives.
type Context struct {
	host Host
	op   otpc.Op
	st   *pluginState
}

// NewContext returns a Context over h, for calling handlers natively in
// tests.
func NewContext(h Host) *Context { return &Context{host: h, st: &pluginState{}} }

// Op is the operation being handled.
func (c *Context) Op() otpc.Op { return c.op }

// Log writes a line to the host's log for this plugin. Never log secrets or
// whole requests; the host limits log bytes per call.
func (c *Context) Log(level Level, msg string) { c.host.Log(level, msg) }

// KV is the merchant's key-value store. Writes become visible to the same
// call at once and are committed by the host together with the request.
func (c *Context) KV() KV { return KV{h: c.host} }

// Random fills b with cryptographic randomness.
func (c *Context) Random(b []byte) { c.host.Random(b) }

// Now is the request's time (not the wall clock: a replay sees the same).
func (c *Context) Now() time.Time { return time.UnixMilli(c.host.NowMillis()).UTC() }

// Config is the plugin's configuration JSON as set by the operator.
func (c *Context) Config() []byte { return c.host.Config() }

// KV reads and writes the merchant's namespace. By default the host allows
// keys of up to 512 bytes, values of up to 64 KiB, 256 operations and 1 MiB
// of keys and values put per call, and a merchant's whole store is bounded
// by its quota (100,000 keys, 64 MiB unless the operator set others);
// exceeding a limit fails the call and nothing of it is committed.
type KV struct{ h Host }

// Get returns key's value and whether it exists.
func (k KV) Get(key string) ([]byte, bool) { return k.h.KVGet(key) }

// Put sets key to value.
func (k KV) Put(key string, value []byte) { k.h.KVPut(key, value) }

// Delete removes key.
func (k KV) Delete(key string) { k.h.KVDelete(key) }

// pluginState is what a plugin instance keeps between calls (parsed
// configuration).
type pluginState struct {
	cfgRaw []byte
	cfgVal any
}

// ParsedConfig returns the plugin's configuration parsed by parse, parsing
// only when the raw JSON differs from the last call's, so a warm instance
// pays for it once.
func ParsedConfig[T any](c *Context, parse func([]byte) (T, error)) (T, error) {
	raw := c.Config()
	if c.st.cfgVal != nil && string(raw) == string(c.st.cfgRaw) {
		return c.st.cfgVal.(T), nil
	}
	v, err := parse(raw)
	if err != nil {
		var zero T
		return zero, err
	}
	c.st.cfgRaw = append(c.st.cfgRaw[:0], raw...)
	c.st.cfgVal = v
	return v, nil
}

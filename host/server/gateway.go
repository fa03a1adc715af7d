package server

import (
	"context"
	"time"

	"github.com/otpcgate/otpcgate/internal/basepath"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// Gateway is what the request pipeline implements: it receives one
// authenticated-transport request for a merchant's OTPC v2 method and
// returns the HTTP answer. It never sees Echo or net/http types.
//
// Serve must not retain r.Body after it returns. A nil Response is answered
// with 500. ctx ends when the client goes away, at HandlerTimeout, or when
// a graceful shutdown gives up waiting.
type Gateway interface {
	Serve(ctx context.Context, r *Request) *Response
}

// GatewayFunc adapts a function to Gateway.
type GatewayFunc func(ctx context.Context, r *Request) *Response

// Serve calls f.
func (f GatewayFunc) Serve(ctx context.Context, r *Request) *Response { return f(ctx, r) }

// Request is one Google-facing call after transport checks: the merchant
// was found by base path, the method is one of the spec's methods, the
// content type is one of the two envelopes and the body is within limits.
type Request struct {
	// MerchantID is the merchant whose base path the URL carried.
	MerchantID string
	// Method is the OTPC v2 method name from the URL, e.g. "echo".
	Method string
	// ContentType is the lower-case media type without parameters:
	// MediaTypePGP or MediaTypeJOSE. Which one a merchant uses is the
	// pipeline's check.
	ContentType string
	// Body is the raw request body (base64url PGP text or JWE compact).
	Body []byte
	// RemoteAddr is the peer's "ip:port".
	RemoteAddr string
	// Received is when the server started handling the request.
	Received time.Time
	// RequestID is the id the access log and X-Request-Id header carry.
	RequestID string
}

// Response is the HTTP answer to a Request.
type Response struct {
	// Status is the HTTP status; 0 means 200.
	Status int
	// ContentType of Body; if empty and Body is not, the request's media
	// type with "; charset=utf-8" is used, as spec §2.4 pairs them.
	ContentType string
	// Body is sent as is; it may be empty (e.g. 404 or 503 without an
	// ErrorResponse).
	Body []byte
	// RetryAfter, when positive, is sent as a Retry-After header in whole
	// seconds (rounded up); meant for 503.
	RetryAfter time.Duration
}

// Media types of the two envelopes (spec §2.4).
const (
	MediaTypePGP  = "application/octet-stream"
	MediaTypeJOSE = "application/jose"
)

// Route maps a base path to a merchant. One host serves several merchants
// (or one merchant's sandbox and production integrations) by giving each a
// base path: Google calls {BasePath}/refundable-one-time-payment-code-v2/{method}.
type Route struct {
	// BasePath is "" (the host root) or a path like "/acme/sandbox": a
	// leading slash, no trailing slash, segments of [A-Za-z0-9._~-].
	BasePath string
	// MerchantID is passed to the Gateway as Request.MerchantID.
	MerchantID string
}

// ReadyFunc reports whether the gateway can serve (database reachable,
// keys loaded, plugins warm); a non-nil error makes /readyz answer 503.
type ReadyFunc func(ctx context.Context) error

// APIPathSegment is the fixed path segment between a base path and the
// method name.
const APIPathSegment = basepath.APIPathSegment

// DefaultMethods returns the integrator-hosted methods of spec §5, from
// the method table in sdk/otpc.
func DefaultMethods() []string { return otpc.IntegratorMethods() }

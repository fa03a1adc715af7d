package google

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Sentinel errors. Every error the Client returns for a call is a
// *CallError, which matches exactly one of ErrRetryable and ErrPermanent
// with errors.Is, and may also match ErrBadResponse or ErrInvalidRequest.
var (
	// ErrRetryable: sending the same request again (same requestId, fresh
	// requestTimestamp) may succeed.
	ErrRetryable = errors.New("google: retryable failure")
	// ErrPermanent: Google refused the request in a way a retry of the same
	// request cannot change; an operator must look at it.
	ErrPermanent = errors.New("google: permanent failure")
	// ErrBadResponse: Google answered 200 but the body failed our checks
	// (not openable, no valid signature, responseTimestamp outside ±60 s,
	// invalid message or result union). Retryable: Google processed the
	// request idempotently, so the retry gets the same answer re-sealed.
	ErrBadResponse = errors.New("google: response failed checks")
	// ErrInvalidRequest: the request cannot be sent as it is (unknown
	// method, undecodable payload, fails validation). Permanent.
	ErrInvalidRequest = errors.New("google: invalid request")
)

// BodyKind says what came back in the HTTP body of a failed call.
type BodyKind string

// Body kinds of a CallError.
const (
	// BodyNone: no HTTP answer at all (network error, timeout).
	BodyNone BodyKind = "none"
	// BodyEmpty: an answer with an empty body (Google's 404 for an unknown
	// PIAID or key, older wording of spec §6).
	BodyEmpty BodyKind = "empty"
	// BodyPlain: a body that did not open as a protected message, e.g.
	// "There was an error. Please try again later." (spec §6).
	BodyPlain BodyKind = "plain"
	// BodyErrorResponse: an opened, signed ErrorResponse.
	BodyErrorResponse BodyKind = "errorResponse"
	// BodySealed: a 200 body (opened or not); see ErrBadResponse.
	BodySealed BodyKind = "sealed"
)

// CallError describes a failed call to a Google-hosted method. It carries
// no payload: only the status, the kind of body, Google's error member and
// description and, for a plain-text body, a short printable excerpt, so it
// is safe to log and to store as an outbox item's last error.
type CallError struct {
	// Method is the Google-hosted method called.
	Method string
	// RequestID is the requestId sent (stable across retries).
	RequestID string
	// Status is the HTTP status, 0 when no answer arrived.
	Status int
	// Body says what the body held.
	Body BodyKind
	// Member is the errorResponseResult member of an opened ErrorResponse
	// (e.g. "invalidIdentifier"), or "".
	Member string
	// Description is the opened ErrorResponse's errorDescription, bounded.
	Description string
	// Excerpt is the start of a plain-text body, printable characters only.
	Excerpt string
	// RetryAfter is the server's Retry-After delay, if it sent one.
	RetryAfter time.Duration
	// Retryable is the classification (see Classify).
	Retryable bool
	// Err is the underlying cause (network error, envelope error,
	// ErrBadResponse, ErrInvalidRequest...), if any.
	Err error
}

// Error renders the failure without any payload.
func (e *CallError) Error() string {
	var b strings.Builder
	b.WriteString("google: ")
	b.WriteString(e.Method)
	if e.Status != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.Status)
	}
	switch e.Body {
	case BodyEmpty:
		b.WriteString(", empty body")
	case BodyPlain:
		fmt.Fprintf(&b, ", plain body %q", e.Excerpt)
	case BodyErrorResponse:
		if e.Member != "" {
			b.WriteString(" " + e.Member)
		} else {
			b.WriteString(" ErrorResponse")
		}
		if e.Description != "" {
			fmt.Fprintf(&b, " %q", e.Description)
		}
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if e.Retryable {
		b.WriteString(" (retryable)")
	} else {
		b.WriteString(" (permanent)")
	}
	return b.String()
}

// Is makes errors.Is match ErrRetryable or ErrPermanent per Retryable.
func (e *CallError) Is(target error) bool {
	switch target {
	case ErrRetryable:
		return e.Retryable
	case ErrPermanent:
		return !e.Retryable
	}
	return false
}

// Unwrap returns the underlying cause.
func (e *CallError) Unwrap() error { return e.Err }

// IsRetryable reports whether err is worth retrying with the same
// requestId. Errors that are not *CallError (e.g. a failing Resolver) are
// retryable unless they match ErrPermanent or ErrInvalidRequest.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	var ce *CallError
	if errors.As(err, &ce) {
		return ce.Retryable
	}
	return !errors.Is(err, ErrPermanent) && !errors.Is(err, ErrInvalidRequest)
}

// Classify is the retry rule for a non-200 answer, given the HTTP status
// and the errorResponseResult member of the opened ErrorResponse ("" when
// the body was empty, plain text or did not open):
//
//   - 408, 409, 423, 425, 429 and every 5xx: retryable (timeouts,
//     concurrency aborts, locks, rate limits, outages; spec §7.2, 503 is
//     "retry later").
//   - 4xx with an opened ErrorResponse: permanent (invalidIdentifier,
//     preconditionViolation, idempotencyViolation, invalidFieldValue,
//     missingRequiredField, invalidApiVersion, forbidden...), except the
//     members a retry can cure: requestTimestampOutOfRange (the retry
//     carries a fresh timestamp), userActionInProgress (a lock that ends),
//     invalidPayloadSignature and invalidPayloadEncryption (a key rotation
//     not yet active on Google's side).
//   - 4xx without an opened ErrorResponse (plain text such as "There was an
//     error. Please try again later.", or 404 with an empty body): Google
//     uses this form when our signing key, its encryption key or the PIAID
//     does not match (spec §6), typically while keys are being exchanged,
//     so it is retryable unless genericPermanent is set; the attempt limit
//     still dead-letters it.
//   - anything else (1xx, 3xx: redirects are not followed): permanent, the
//     endpoint is misconfigured.
func Classify(status int, member string, genericPermanent bool) bool {
	switch {
	case status == 408 || status == 409 || status == 423 || status == 425 || status == 429:
		return true
	case status >= 500 && status <= 599:
		return true
	case status >= 400 && status <= 499:
		if member == "" {
			return !genericPermanent
		}
		switch member {
		case "requestTimestampOutOfRange", "userActionInProgress", "invalidPayloadSignature", "invalidPayloadEncryption":
			return true
		}
		return false
	}
	return false
}

// excerpt returns up to max printable characters of b, for error texts.
func excerpt(b []byte, max int) string {
	var s strings.Builder
	for len(b) > 0 && s.Len() < max {
		r, n := utf8.DecodeRune(b)
		b = b[n:]
		switch {
		case r == utf8.RuneError:
			s.WriteByte('?')
		case r == '\n' || r == '\r' || r == '\t':
			s.WriteByte(' ')
		case r < 0x20 || r == 0x7f:
			s.WriteByte('?')
		default:
			s.WriteRune(r)
		}
	}
	if len(b) > 0 {
		s.WriteString("…")
	}
	return s.String()
}

package protocol

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// Error is a request the pipeline refuses: an ErrorResponseResult member with
// its HTTP status, or a retryable failure (Result nil, Status 5xx).
type Error struct {
	// Status is the HTTP status of the answer.
	Status int
	// Result is the spec's error member; nil for 5xx answers, which carry an
	// ErrorResponse without errorResponseResult.
	Result *otpc.ErrorResponseResult
	// Description is safe to send to Google and to log: never payload
	// values, tokens or keys (spec §4.11 errorDescription).
	Description string
	// Err is the cause, for logs only.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("protocol: %d %s: %v", e.Status, e.Description, e.Err)
	}
	return fmt.Sprintf("protocol: %d %s", e.Status, e.Description)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Member names the errorResponseResult member, or "" for 5xx answers.
func (e *Error) Member() string { return e.Result.Member() }

func refuse(r *otpc.ErrorResponseResult, desc string, cause error) *Error {
	return &Error{Status: r.HTTPStatus(), Result: r, Description: desc, Err: cause}
}

func errEncryption(cause error) *Error {
	return refuse(&otpc.ErrorResponseResult{InvalidPayloadEncryption: &otpc.Empty{}},
		"payload could not be decrypted with an active key", cause)
}

func errSignature(cause error) *Error {
	return refuse(&otpc.ErrorResponseResult{InvalidPayloadSignature: &otpc.Empty{}},
		"payload is not signed by an active key", cause)
}

func errDecrypted(cause error) *Error {
	return refuse(&otpc.ErrorResponseResult{InvalidDecryptedRequest: &otpc.Empty{}},
		"decrypted payload is not a valid request", cause)
}

func errVersion(got otpc.Version) *Error {
	return refuse(&otpc.ErrorResponseResult{InvalidAPIVersion: &otpc.InvalidAPIVersion{
		RequestVersion: got, ExpectedVersion: otpc.Version{Major: otpc.ProtocolMajor},
	}}, fmt.Sprintf("protocol version %d is not supported", got.Major), nil)
}

func errTimestamp(req, now otpc.Timestamp) *Error {
	return refuse(&otpc.ErrorResponseResult{RequestTimestampOutOfRange: &otpc.RequestTimestampOutOfRange{
		RequestTimestamp: &req, ServerTimestamp: &now,
	}}, "requestTimestamp is not within the allowed window of the server clock", nil)
}

func errIdentifier(kind, desc string, cause error) *Error {
	return refuse(&otpc.ErrorResponseResult{InvalidIdentifier: &otpc.InvalidIdentifier{InvalidIdentifierType: kind}}, desc, cause)
}

func errIdempotency(cause error) *Error {
	return refuse(&otpc.ErrorResponseResult{IdempotencyViolation: &otpc.Empty{}},
		"requestId was used before with different content", cause)
}

func errPrecondition(desc string, cause error) *Error {
	return refuse(&otpc.ErrorResponseResult{PreconditionViolation: &otpc.Empty{}}, desc, cause)
}

func errInvalidField(path, desc string, cause error) *Error {
	return refuse(&otpc.ErrorResponseResult{InvalidFieldValue: &otpc.InvalidFieldValue{InvalidFieldName: path}}, desc, cause)
}

func errForbidden(desc string) *Error {
	return refuse(&otpc.ErrorResponseResult{Forbidden: &otpc.Empty{}}, desc, nil)
}

// errFields turns a validation failure into missingRequiredField or
// invalidFieldValue; missing fields win, as the spec lists them first.
func errFields(err error) *Error {
	var fe *otpc.FieldError
	if !errors.As(err, &fe) {
		return errDecrypted(err)
	}
	if len(fe.Missing) > 0 {
		return refuse(&otpc.ErrorResponseResult{MissingRequiredField: &otpc.MissingRequiredField{
			MissingFieldNames: fe.Missing,
		}}, "required fields are missing", err)
	}
	paths := fe.InvalidPaths()
	name := ""
	if len(paths) > 0 {
		name = paths[0]
	}
	return errInvalidField(name, "field value is not supported: "+name, err)
}

// errUnavailable is the retryable answer (spec §7.4: non-200 is re-evaluated
// on retry) for overload, plugin failures and storage trouble.
func errUnavailable(desc string, cause error) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Description: desc, Err: cause}
}

func errInternal(desc string, cause error) *Error {
	return &Error{Status: http.StatusInternalServerError, Description: desc, Err: cause}
}

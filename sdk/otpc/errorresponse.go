package otpc

// ErrorResponse is the body of a non-200 answer (spec §4.11) [V].
type ErrorResponse struct {
	// ResponseHeader is the common response header.
	ResponseHeader ResponseHeader `json:"responseHeader" otpc:"req"`
	// ErrorDescription is free text for support staff; never shown to users
	// and must not contain sensitive data.
	ErrorDescription string `json:"errorDescription"`
	// PaymentIntegratorErrorIdentifier is our id of this call, for debugging.
	PaymentIntegratorErrorIdentifier string `json:"paymentIntegratorErrorIdentifier"`
	// ErrorResponseResult says which kind of error occurred; optional.
	ErrorResponseResult *ErrorResponseResult `json:"errorResponseResult"`
}

// ErrorResponseResult is the union of error kinds (spec §4.11): exactly one
// member must be set. Member names [V]; the advised HTTP status of each
// member is in its godoc and returned by HTTPStatus.
//
//otpc:union
type ErrorResponseResult struct {
	// InvalidAPIVersion: the request's version is not supported (400).
	InvalidAPIVersion *InvalidAPIVersion `json:"invalidApiVersion"`
	// InvalidPayloadSignature: signed with an unknown or inactive key (401).
	InvalidPayloadSignature *Empty `json:"invalidPayloadSignature"`
	// InvalidPayloadEncryption: encrypted to an unknown or inactive key (400).
	InvalidPayloadEncryption *Empty `json:"invalidPayloadEncryption"`
	// RequestTimestampOutOfRange: requestTimestamp not within ±60 s (400).
	RequestTimestampOutOfRange *RequestTimestampOutOfRange `json:"requestTimestampOutOfRange"`
	// InvalidIdentifier: an identifier in the request is invalid or unknown (404).
	InvalidIdentifier *InvalidIdentifier `json:"invalidIdentifier"`
	// IdempotencyViolation: same requestId with different content (412).
	IdempotencyViolation *Empty `json:"idempotencyViolation"`
	// InvalidFieldValue: a field value is outside the supported set (400).
	InvalidFieldValue *InvalidFieldValue `json:"invalidFieldValue"`
	// MissingRequiredField: a required field is absent (400).
	MissingRequiredField *MissingRequiredField `json:"missingRequiredField"`
	// PreconditionViolation: a constraint on the operation is violated,
	// e.g. refund above the remaining amount (400).
	PreconditionViolation *Empty `json:"preconditionViolation"`
	// UserActionInProgress: an in-flight user action locks the resource
	// (423; older docs 400). Never for internal concurrency problems.
	UserActionInProgress *Empty `json:"userActionInProgress"`
	// InvalidDecryptedRequest: decrypted but could not be parsed (400).
	InvalidDecryptedRequest *Empty `json:"invalidDecryptedRequest"`
	// Forbidden: the caller may not perform the operation (403).
	Forbidden *Empty `json:"forbidden"`
}

// Member returns the JSON name of the set member (e.g.
// "invalidPayloadSignature"), or "" when none or several are set.
func (r *ErrorResponseResult) Member() string {
	if r == nil || r.memberCount() != 1 {
		return ""
	}
	switch {
	case r.InvalidAPIVersion != nil:
		return "invalidApiVersion"
	case r.InvalidPayloadSignature != nil:
		return "invalidPayloadSignature"
	case r.InvalidPayloadEncryption != nil:
		return "invalidPayloadEncryption"
	case r.RequestTimestampOutOfRange != nil:
		return "requestTimestampOutOfRange"
	case r.InvalidIdentifier != nil:
		return "invalidIdentifier"
	case r.IdempotencyViolation != nil:
		return "idempotencyViolation"
	case r.InvalidFieldValue != nil:
		return "invalidFieldValue"
	case r.MissingRequiredField != nil:
		return "missingRequiredField"
	case r.PreconditionViolation != nil:
		return "preconditionViolation"
	case r.UserActionInProgress != nil:
		return "userActionInProgress"
	case r.InvalidDecryptedRequest != nil:
		return "invalidDecryptedRequest"
	default:
		return "forbidden"
	}
}

// HTTPStatus returns the HTTP status the spec advises for the set member
// (spec §4.11, §7.2), or 0 if no member or several members are set.
func (r *ErrorResponseResult) HTTPStatus() int {
	if r == nil || r.memberCount() != 1 {
		return 0
	}
	switch {
	case r.InvalidPayloadSignature != nil:
		return 401
	case r.InvalidIdentifier != nil:
		return 404
	case r.IdempotencyViolation != nil:
		return 412
	case r.UserActionInProgress != nil:
		return 423
	case r.Forbidden != nil:
		return 403
	default:
		return 400
	}
}

// InvalidAPIVersion reports the version mismatch (spec §4.11) [V summary].
type InvalidAPIVersion struct {
	// RequestVersion is the version the request carried.
	RequestVersion Version `json:"requestVersion"`
	// ExpectedVersion is the version we support ({"major": 2}).
	ExpectedVersion Version `json:"expectedVersion"`
}

// RequestTimestampOutOfRange reports a request timestamp outside ±60 s.
// The source lists fields but their names were not readable; both fields
// here are our plausible choice [U] and are optional.
type RequestTimestampOutOfRange struct {
	// RequestTimestamp echoes the rejected requestTimestamp [U].
	RequestTimestamp *Timestamp `json:"requestTimestamp"`
	// ServerTimestamp is our clock when the request was received [U].
	ServerTimestamp *Timestamp `json:"serverTimestamp"`
}

// InvalidIdentifier names the kind of identifier that was invalid or unknown
// (PIAID, GPT, request id, ...) (spec §4.11) [S summary].
type InvalidIdentifier struct {
	// InvalidIdentifierType is e.g. "paymentIntegratorAccountId" [S; string
	// rather than enum is U].
	InvalidIdentifierType string `json:"invalidIdentifierType"`
}

// InvalidFieldValue names the field whose value is not supported.
// Field name taken from sibling APIs (redirect-fop-v1) [S/U].
type InvalidFieldValue struct {
	// InvalidFieldName is the dotted JSON path of the field [S/U].
	InvalidFieldName string `json:"invalidFieldName"`
}

// MissingRequiredField lists the absent required fields (spec §4.11)
// [S summary; array type U].
type MissingRequiredField struct {
	// MissingFieldNames are dotted JSON paths, e.g. "requestHeader.requestId".
	MissingFieldNames []string `json:"missingFieldNames"`
}

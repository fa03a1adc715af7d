package otpc

// Refusal is a plugin's definitive protocol refusal: an ErrorResponse member
// the merchant may choose, answered to Google with the member's 4xx status
// (HTTPStatus). It is an error so that any handler can return it:
//
//	if in.Request.Amount.AmountMicros < minMicros {
//		return nil, otpc.RefuseInvalidField("amount.amountMicros", "below the store minimum")
//	}
//
// A refusal is not a business decline (accountClosed, a declined refund:
// those are results, HTTP 200, and replayed as the transaction's outcome)
// and not a failure (any other error: HTTP 503 and Google retries). Per the
// spec (§7.4) Google's retry of a refused request is decided afresh, and
// nothing of the refused call (ledger entry, KV write) is committed.
//
// Only members for which PluginMayRefuseWith is true are accepted; a
// refusal with a member reserved to the host (payload signature or
// encryption, timestamp, API version, idempotency, undecodable request) is
// treated by the host as a plugin failure.
type Refusal struct {
	// Result holds exactly one member.
	Result ErrorResponseResult
	// Description is sent to Google as errorDescription: free text for
	// support staff, never payload values, tokens or secrets.
	Description string
}

// Error describes the refusal.
func (r *Refusal) Error() string {
	return "otpc: refused with " + r.Result.Member() + ": " + r.Description
}

// Member names the refusal's errorResponseResult member ("" if not exactly
// one is set).
func (r *Refusal) Member() string { return r.Result.Member() }

// Refuse returns a refusal with member r. Prefer the Refuse* helpers,
// which only build members a plugin may choose.
func Refuse(r ErrorResponseResult, description string) *Refusal {
	return &Refusal{Result: r, Description: description}
}

// RefuseInvalidField refuses a field value outside what the merchant
// supports (invalidFieldValue, 400): an amount below the minimum, a
// currency the merchant does not take. path is the field's dotted JSON path
// in the request, e.g. "amount.currencyCode".
func RefuseInvalidField(path, description string) *Refusal {
	return Refuse(ErrorResponseResult{InvalidFieldValue: &InvalidFieldValue{InvalidFieldName: path}}, description)
}

// RefusePrecondition refuses an operation whose precondition does not hold
// and will not until something changes (preconditionViolation, 400), e.g.
// a refund the merchant's books cannot cover.
func RefusePrecondition(description string) *Refusal {
	return Refuse(ErrorResponseResult{PreconditionViolation: &Empty{}}, description)
}

// RefuseInvalidIdentifier refuses an identifier the merchant does not know
// (invalidIdentifier, 404); kind names it, e.g. "googlePaymentToken".
func RefuseInvalidIdentifier(kind, description string) *Refusal {
	return Refuse(ErrorResponseResult{InvalidIdentifier: &InvalidIdentifier{InvalidIdentifierType: kind}}, description)
}

// RefuseMissingField refuses a request that lacks fields the merchant
// requires although the spec makes them optional (missingRequiredField, 400).
func RefuseMissingField(description string, paths ...string) *Refusal {
	return Refuse(ErrorResponseResult{MissingRequiredField: &MissingRequiredField{MissingFieldNames: paths}}, description)
}

// RefuseUserActionInProgress refuses while an in-flight user action locks
// the resource (userActionInProgress, 423), e.g. the user is paying the code
// at a till right now. Never for the plugin's own concurrency problems.
func RefuseUserActionInProgress(description string) *Refusal {
	return Refuse(ErrorResponseResult{UserActionInProgress: &Empty{}}, description)
}

// RefuseForbidden refuses an operation the caller may not perform on this
// merchant's resource (forbidden, 403).
func RefuseForbidden(description string) *Refusal {
	return Refuse(ErrorResponseResult{Forbidden: &Empty{}}, description)
}

// PluginMayRefuseWith reports whether a plugin may refuse with the
// errorResponseResult member named member. The others are decided by the
// host alone, before a plugin is asked: invalidApiVersion,
// invalidPayloadSignature, invalidPayloadEncryption,
// requestTimestampOutOfRange, idempotencyViolation, invalidDecryptedRequest.
func PluginMayRefuseWith(member string) bool {
	switch member {
	case "invalidIdentifier", "invalidFieldValue", "missingRequiredField",
		"preconditionViolation", "userActionInProgress", "forbidden":
		return true
	}
	return false
}

// AppendFrame appends the refusal's frame body (the JSON of an
// ErrorResponse carrying Description and Result; see sdk/abi StatusRefusal).
func (r *Refusal) AppendFrame(b []byte) []byte {
	er := ErrorResponse{ErrorDescription: r.Description, ErrorResponseResult: &r.Result}
	return er.AppendJSON(b)
}

// ParseRefusalFrame decodes a refusal frame body. It does not check which
// member is set; see PluginMayRefuseWith.
func ParseRefusalFrame(body []byte) (*Refusal, error) {
	var er ErrorResponse
	if err := er.UnmarshalJSON(body); err != nil {
		return nil, err
	}
	r := &Refusal{Description: er.ErrorDescription}
	if er.ErrorResponseResult != nil {
		r.Result = *er.ErrorResponseResult
	}
	return r, nil
}

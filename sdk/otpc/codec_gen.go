package otpc

// Temporary: replaced by the generator output.

func (r *ErrorResponseResult) memberCount() int {
	n := 0
	for _, set := range []bool{r.InvalidAPIVersion != nil, r.InvalidPayloadSignature != nil, r.InvalidPayloadEncryption != nil,
		r.RequestTimestampOutOfRange != nil, r.InvalidIdentifier != nil, r.IdempotencyViolation != nil, r.InvalidFieldValue != nil,
		r.MissingRequiredField != nil, r.PreconditionViolation != nil, r.UserActionInProgress != nil, r.InvalidDecryptedRequest != nil, r.Forbidden != nil} {
		if set {
			n++
		}
	}
	return n
}

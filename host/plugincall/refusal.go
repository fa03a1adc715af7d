package plugincall

import "github.com/otpcgate/otpcgate/sdk/otpc"

// Refusal is a plugin's definitive answer with an ErrorResponse member the
// merchant may choose (invalidFieldValue, preconditionViolation,
// invalidIdentifier, …). The host answers it with the member's 4xx and
// commits nothing of the call.
type Refusal struct {
	// Result is the errorResponseResult member; exactly one is set.
	Result *otpc.ErrorResponseResult
	// Description is the plugin's errorDescription.
	Description string
}

// Error describes the refusal.
func (r *Refusal) Error() string {
	return "plugincall: plugin refused with " + r.Result.Member() + ": " + r.Description
}

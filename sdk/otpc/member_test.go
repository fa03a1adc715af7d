package otpc

import (
	"encoding/json"
	"testing"
)

// TestErrorResultMember: Member names exactly the JSON key the union
// encodes, for every member, and "" for none or two.
func TestErrorResultMember(t *testing.T) {
	e := &Empty{}
	for _, r := range []*ErrorResponseResult{
		{InvalidAPIVersion: &InvalidAPIVersion{}}, {InvalidPayloadSignature: e}, {InvalidPayloadEncryption: e},
		{RequestTimestampOutOfRange: &RequestTimestampOutOfRange{}}, {InvalidIdentifier: &InvalidIdentifier{}},
		{IdempotencyViolation: e}, {InvalidFieldValue: &InvalidFieldValue{}}, {MissingRequiredField: &MissingRequiredField{}},
		{PreconditionViolation: e}, {UserActionInProgress: e}, {InvalidDecryptedRequest: e}, {Forbidden: e},
	} {
		var keys map[string]json.RawMessage
		if err := json.Unmarshal(r.AppendJSON(nil), &keys); err != nil || len(keys) != 1 {
			t.Fatalf("%s: %v %v", r.AppendJSON(nil), keys, err)
		}
		for k := range keys {
			if got := r.Member(); got != k {
				t.Errorf("Member() = %q, JSON key %q", got, k)
			}
		}
	}
	if m := (&ErrorResponseResult{}).Member(); m != "" {
		t.Errorf("no member: %q", m)
	}
	if m := (&ErrorResponseResult{Forbidden: e, IdempotencyViolation: e}).Member(); m != "" {
		t.Errorf("two members: %q", m)
	}
	if m := (*ErrorResponseResult)(nil).Member(); m != "" {
		t.Errorf("nil: %q", m)
	}
}

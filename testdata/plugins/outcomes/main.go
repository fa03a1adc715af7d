// Command outcomes is a test plugin that answers every op with the outcome
// its caller asks for, so a test can drive each op × outcome through the
// real gateway. The outcome is the prefix (up to the first "-") of a string
// the caller controls:
//
//	generate, cancel, refund, asynchronousRefund, associate, remittance:
//	          the request's requestId
//	paid:     the payment key (merchantPaymentId)
//	refund done: the outcome's detail
//	authenticate: the account id
//
// Outcomes: "success", "decline" (the op's business decline), "refuse" (a
// refusal a plugin may make, the op's usual one), "refuse_MEMBER" (a refusal
// with that member, e.g. "refuse_forbidden"), "reserved" (a refusal with idempotencyViolation,
// reserved to the host), "fail" (an error), "trap" (a panic), "timeout"
// (spins until the host's call timeout). Any other prefix is success.
//
// Every call first writes its outcome to KV key "last", so a test can see
// that a refused or failed call committed nothing.
package main

import (
	"encoding/hex"
	"errors"
	"strings"

	"github.com/otpcgate/otpcgate/sdk"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

func init() {
	sdk.Register(&sdk.Plugin{
		Generate:     generate,
		Cancel:       cancel,
		Refund:       refund,
		AsyncRefund:  asyncRefund,
		Associate:    associate,
		Remittance:   remittance,
		Paid:         paid,
		RefundDone:   refundDone,
		Authenticate: authenticate,
	})
}

func main() {}

// decide runs the outcomes every op shares; it returns the outcome for
// "success" and "decline", which the op answers itself.
func decide(c *sdk.Context, key string, refusal *otpc.Refusal) (string, error) {
	outcome, _, _ := strings.Cut(key, "-")
	c.KV().Put("last", []byte(outcome))
	c.Log(sdk.LevelInfo, "outcome "+outcome) // for the merchant's own plugin logs
	if kind, ok := strings.CutPrefix(outcome, "refuse_"); ok {
		return "", refusalOf(kind)
	}
	switch outcome {
	case "decline":
		return outcome, nil
	case "refuse":
		return "", refusal
	case "reserved":
		return "", otpc.Refuse(otpc.ErrorResponseResult{IdempotencyViolation: &otpc.Empty{}}, "a plugin may not say this")
	case "fail":
		return "", errors.New("merchant backend unavailable")
	case "trap":
		panic("outcomes: trap requested")
	case "timeout":
		for n := 0; ; n++ {
			if n < 0 {
				return "", nil // never: keeps the loop from being optimised away
			}
		}
	}
	return "success", nil
}

func generate(c *sdk.Context, in *otpc.GenerateInput) (*otpc.GenerateOutput, error) {
	o, err := decide(c, in.Request.RequestHeader.RequestID, otpc.RefuseInvalidField("amount.amountMicros", "below the merchant's minimum"))
	if err != nil {
		return nil, err
	}
	if o == "decline" {
		return &otpc.GenerateOutput{Result: otpc.GenerateReferenceNumberResult{AccountClosed: &otpc.AccountClosed{}}}, nil
	}
	b := make([]byte, 8)
	c.Random(b)
	s := hex.EncodeToString(b)
	return &otpc.GenerateOutput{Result: otpc.GenerateReferenceNumberResult{Success: &otpc.GenerateReferenceNumberSuccess{
		DisplayableReferenceNumber: otpc.DisplayableReferenceNumber{PrintableString: &s}}}}, nil
}

func cancel(c *sdk.Context, in *otpc.CancelInput) (*otpc.CancelOutput, error) {
	o, err := decide(c, in.Request.RequestHeader.RequestID, otpc.RefusePrecondition("the store is printing this code"))
	if err != nil {
		return nil, err
	}
	if o == "decline" {
		return &otpc.CancelOutput{Result: otpc.CancelReferenceNumberResult{ReferenceNumberAlreadyPaid: &otpc.Empty{}}}, nil
	}
	return &otpc.CancelOutput{Result: otpc.CancelReferenceNumberResult{Success: &otpc.Empty{}}}, nil
}

func refund(c *sdk.Context, in *otpc.RefundInput) (*otpc.RefundOutput, error) {
	o, err := decide(c, in.Request.RequestHeader.RequestID, otpc.RefusePrecondition("the merchant's books cannot cover this refund"))
	if err != nil {
		return nil, err
	}
	if o == "decline" {
		return &otpc.RefundOutput{Result: otpc.RefundResult{AccountOnHold: &otpc.AccountOnHold{}}}, nil
	}
	return &otpc.RefundOutput{Result: otpc.RefundResult{Success: &otpc.Empty{}}}, nil
}

func asyncRefund(c *sdk.Context, in *otpc.RefundInput) (*otpc.AsyncRefundOutput, error) {
	o, err := decide(c, in.Request.RequestHeader.RequestID, otpc.RefusePrecondition("the merchant's books cannot cover this refund"))
	if err != nil {
		return nil, err
	}
	if o == "decline" {
		return &otpc.AsyncRefundOutput{Result: otpc.AsynchronousRefundResult{AccountOnHold: &otpc.AccountOnHold{}}}, nil
	}
	return &otpc.AsyncRefundOutput{Result: otpc.AsynchronousRefundResult{Acknowledged: &otpc.Empty{}}}, nil
}

func associate(c *sdk.Context, in *otpc.AssociateInput) (*otpc.AssociateOutput, error) {
	o, err := decide(c, in.Request.RequestHeader.RequestID, otpc.RefuseInvalidIdentifier("associationId", "the merchant does not know this association"))
	if err != nil {
		return nil, err
	}
	if o == "decline" {
		return &otpc.AssociateOutput{Result: otpc.AssociateAccountResult{AccountClosed: &otpc.AccountClosed{}}}, nil
	}
	s := &otpc.AssociateAccountSuccess{}
	if in.Request.ProvideUserInformation {
		s.UserInformation = &otpc.UserInformation{}
	}
	return &otpc.AssociateOutput{Result: otpc.AssociateAccountResult{Success: s}}, nil
}

func remittance(c *sdk.Context, in *otpc.RemittanceInput) (*otpc.RemittanceOutput, error) {
	// A statement has no business decline: "decline" is accepted too.
	if _, err := decide(c, in.Request.RequestHeader.RequestID, otpc.RefuseInvalidField("remittanceStatementSummary.totalDueByIntegrator", "does not match the merchant's books")); err != nil {
		return nil, err
	}
	return &otpc.RemittanceOutput{Result: otpc.RemittanceStatementNotificationResult{Accepted: &otpc.Empty{}}}, nil
}

func paid(c *sdk.Context, in *otpc.PaidInput) (*otpc.PaidOutput, error) {
	o, err := decide(c, in.MerchantPaymentID, otpc.RefuseInvalidField("amount.amountMicros", "below the code's amount"))
	if err != nil {
		return nil, err
	}
	if o == "decline" {
		return &otpc.PaidOutput{DeclineReason: "declined"}, nil
	}
	return &otpc.PaidOutput{Accepted: true}, nil
}

func refundDone(c *sdk.Context, in *otpc.RefundDoneInput) (*otpc.RefundDoneOutput, error) {
	if _, err := decide(c, in.Detail, otpc.RefusePrecondition("the merchant has no record of this refund")); err != nil {
		return nil, err
	}
	if in.Success {
		return &otpc.RefundDoneOutput{Result: otpc.RefundResult{Success: &otpc.Empty{}}}, nil
	}
	return &otpc.RefundDoneOutput{Result: otpc.RefundResult{AccountOnHold: &otpc.AccountOnHold{}}}, nil
}

func authenticate(c *sdk.Context, in *otpc.AuthenticateInput) (*otpc.AuthenticateOutput, error) {
	o, err := decide(c, in.AccountID, otpc.RefuseForbidden("this account may not be linked"))
	if err != nil {
		return nil, err
	}
	if o == "decline" {
		return &otpc.AuthenticateOutput{}, nil
	}
	return &otpc.AuthenticateOutput{Authenticated: true, AccountID: in.AccountID}, nil
}

// refusalOf builds a refusal with the member named kind.
func refusalOf(kind string) *otpc.Refusal {
	switch kind {
	case "invalidFieldValue":
		return otpc.RefuseInvalidField("amount.amountMicros", "outcomes: "+kind)
	case "missingRequiredField":
		return otpc.RefuseMissingField("outcomes: "+kind, "userInformation")
	case "preconditionViolation":
		return otpc.RefusePrecondition("outcomes: " + kind)
	case "invalidIdentifier":
		return otpc.RefuseInvalidIdentifier("googlePaymentToken", "outcomes: "+kind)
	case "userActionInProgress":
		return otpc.RefuseUserActionInProgress("outcomes: " + kind)
	case "forbidden":
		return otpc.RefuseForbidden("outcomes: " + kind)
	}
	return otpc.Refuse(otpc.ErrorResponseResult{}, "outcomes: unknown kind "+kind)
}

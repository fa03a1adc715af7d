package sim

import (
	"context"
	"fmt"
	"net/http"

	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// RefusalsSuite checks that what a merchant says no to reaches Google as a
// definitive answer (4xx with its errorResponseResult member), never as a
// 503 Google would retry: an amount far outside any merchant's range, a
// currency no merchant takes, a refund above what is left of the paid
// amount (synchronous and asynchronous), an unknown payment token. It runs
// on every merchant, so on both envelopes in dev.
//
// An amount is refused by the host from the PIAID's declared rules or by the
// merchant's plugin from its own; a merchant that takes any amount answers
// 200, and that step is skipped saying so.
func RefusalsSuite() Scenario {
	return Scenario{Name: "refusals", Run: func(ctx context.Context, env *Env) error {
		for _, m := range env.Merchants {
			refusals(ctx, env, m)
		}
		return nil
	}}
}

func refusals(ctx context.Context, env *Env, m *Merchant) {
	c, tg := env.Client, m.Target
	amount := func(name string, micros int64, currency, field string) {
		env.Check(ctx, m, fmt.Sprintf("%s: 400 invalidFieldValue %s", name, field), func(ctx context.Context) (string, error) {
			r := generateRequest(c, m, micros, "Google - Sim refusals")
			r.Amount.CurrencyCode = currency
			res, err := c.Call(ctx, tg, otpc.MethodGenerateReferenceNumber, r, nil)
			if err == nil && res.Status == http.StatusOK {
				return "", Skipped("the merchant takes it (no rule declared for this PIAID)")
			}
			if err := wantError(res, err, http.StatusBadRequest, "invalidFieldValue"); err != nil {
				return "", err
			}
			if got := res.Error.ErrorResponseResult.InvalidFieldValue.InvalidFieldName; got != field {
				return "", fmt.Errorf("invalidFieldName %q, want %q", got, field)
			}
			if res.RetryAfter != "" {
				return "", fmt.Errorf("a definitive refusal carries Retry-After %s", res.RetryAfter)
			}
			return "", nil
		})
	}
	amount("amount of one micro", 1, "JPY", "amount.amountMicros")
	amount("amount of a billion units", 1e15, "JPY", "amount.amountMicros")
	// XXX is ISO 4217's "no currency": well formed, taken by no merchant.
	amount("currency XXX", 100_000000, "XXX", "amount.currencyCode")

	env.Check(ctx, m, "unknown payment token: 404 invalidIdentifier", func(ctx context.Context) (string, error) {
		r := generateRequest(c, m, 100_000000, "Google - Sim refusals")
		r.GooglePaymentToken.Token = "never-associated-" + NewRequestID()
		res, err := c.Call(ctx, tg, otpc.MethodGenerateReferenceNumber, r, nil)
		return "", wantError(res, err, http.StatusNotFound, "invalidIdentifier")
	})

	for _, method := range []string{otpc.MethodRefund, otpc.MethodAsynchronousRefund} {
		env.Check(ctx, m, method+" above the remaining amount: 400 preconditionViolation", func(ctx context.Context) (string, error) {
			if env.Events == nil {
				return "", Skipped("no paid code (" + env.eventsMissing() + ")")
			}
			const paid = 300_000000
			txID, _, err := generateAndPay(ctx, env, m, paid)
			if err != nil {
				return "", err
			}
			refund := func(micros int64) (*Result, error) {
				return c.Call(ctx, tg, method, &otpc.RefundRequest{RequestHeader: c.Header(tg), TransactionID: txID,
					RefundAmount: otpc.Amount{AmountMicros: micros, CurrencyCode: "JPY"}}, nil)
			}
			if err := wantUnion(refund(paid / 2)); err != nil {
				return "", fmt.Errorf("first half: %w", err)
			}
			res, err := refund(paid/2 + 1)
			return "", wantError(res, err, http.StatusBadRequest, "preconditionViolation")
		})
	}
}

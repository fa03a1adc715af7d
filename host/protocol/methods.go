package protocol

import (
	"context"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/otpcgate/otpcgate/host/ledger"
	"github.com/otpcgate/otpcgate/host/plugincall"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// handler decides one method: it reads the ledger, asks the plugin and
// returns the response (header unset) and the ledger change to commit with
// the idempotency record.
type handler func(ctx context.Context, p *Pipeline, c *call) (otpc.Response, func(*ledger.Tx) error, error)

// handlers decide the integrator-hosted methods, by the plugin op the
// method table (otpc.Methods) gives each; echo is answered by the pipeline.
var handlers = map[otpc.Op]handler{
	otpc.OpGenerate:    generate,
	otpc.OpCancel:      cancel,
	otpc.OpRefund:      refund,
	otpc.OpAsyncRefund: asyncRefund,
	otpc.OpAssociate:   associate,
	otpc.OpRemittance:  remittance,
}

// errRaced marks a commit refused because the state moved after the
// handler read it; the pipeline decides the request again.
var errRaced = errors.New("protocol: state changed during the request")

// invoke runs op on the merchant's plugin and decodes its output frame into
// out. A refusal the plugin may make is answered with its member's 4xx; any
// other plugin failure is retryable (503). Either way nothing is committed,
// so Google's retry is decided afresh (spec §7.4).
func (p *Pipeline) invoke(ctx context.Context, c *call, op otpc.Op, in, out otpc.Message) (plugincall.Changes, error) {
	cs, err := p.plugins.Call(ctx, plugincall.Target{Merchant: c.m.ID, Plugin: c.m.PluginID}, op, c.received, in, out)
	var ref *otpc.Refusal
	switch {
	case err == nil:
		return cs, nil
	case errors.As(err, &ref):
		result := ref.Result
		return cs, refuse(&result, clip(ref.Description, maxDescription), err)
	}
	return cs, errUnavailable("merchant plugin failed", err)
}

// maxDescription bounds the errorDescription a plugin sends Google.
const maxDescription = 256

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// lookupCode reads the code a request refers to.
func (p *Pipeline) lookupCode(ctx context.Context, piaid, txID, field string) (ledger.Code, error) {
	code, err := p.ledger.Code(ctx, piaid, txID)
	if errors.Is(err, ledger.ErrUnknownTransaction) || errors.Is(err, ledger.ErrNotFound) {
		return code, errIdentifier(field, "unknown "+field, err)
	}
	if err != nil {
		return code, errUnavailable("ledger unavailable", err)
	}
	return code, nil
}

func generate(ctx context.Context, p *Pipeline, c *call) (otpc.Response, func(*ledger.Tx) error, error) {
	req := c.req.(*otpc.GenerateReferenceNumberRequest)
	piaid := req.RequestHeader.PaymentIntegratorAccountID
	if field, ok := c.m.Rules[piaid].Takes(req.Amount.AmountMicros, req.Amount.CurrencyCode); !ok {
		// The merchant declared it: no plugin call is spent on it.
		return nil, nil, errInvalidField(field, "amount or currency is not taken for this paymentIntegratorAccountId", nil)
	}
	assoc, err := p.ledger.AccountByGPT(ctx, piaid, req.GooglePaymentToken.Token)
	if errors.Is(err, ledger.ErrNotFound) {
		return nil, nil, errIdentifier("googlePaymentToken", "unknown googlePaymentToken", err)
	}
	if err != nil {
		return nil, nil, errUnavailable("ledger unavailable", err)
	}
	var out otpc.GenerateOutput
	cs, err := p.invoke(ctx, c, otpc.OpGenerate, &otpc.GenerateInput{Request: *req, AccountID: assoc.AccountID}, &out)
	if err != nil {
		return nil, nil, err
	}
	resp := &otpc.GenerateReferenceNumberResponse{Result: out.Result}
	apply := func(tx *ledger.Tx) error {
		if s := out.Result.Success; s != nil {
			code := ledger.Code{
				PIAID: piaid, TransactionID: req.RequestHeader.RequestID,
				AccountID: assoc.AccountID, GPTHash: assoc.GPTHash,
				AmountMicros: req.Amount.AmountMicros, Currency: req.Amount.CurrencyCode,
			}
			code.Printable, code.Barcode = displayable(s.DisplayableReferenceNumber)
			if out.ExpiresAt != nil {
				code.ExpiresAt = out.ExpiresAt.Time()
			}
			if err := tx.CreateCode(code); errors.Is(err, ledger.ErrPrintableInUse) {
				// A concurrent request drew the same printable string:
				// ask the plugin again for a fresh one.
				return fmt.Errorf("%w: %w", errRaced, err)
			} else if err != nil {
				return err
			}
		}
		return cs.Apply(tx)
	}
	return resp, apply, nil
}

func displayable(d otpc.DisplayableReferenceNumber) (printable, barcode string) {
	switch {
	case d.BarcodeWithPrintableString != nil:
		return d.BarcodeWithPrintableString.PrintableString, d.BarcodeWithPrintableString.BarcodeContents
	case d.PrintableString != nil:
		return *d.PrintableString, ""
	case d.BarcodeContents != nil:
		return "", *d.BarcodeContents
	}
	return "", ""
}

func cancel(ctx context.Context, p *Pipeline, c *call) (otpc.Response, func(*ledger.Tx) error, error) {
	req := c.req.(*otpc.CancelReferenceNumberRequest)
	piaid := req.RequestHeader.PaymentIntegratorAccountID
	code, err := p.lookupCode(ctx, piaid, req.GenerateReferenceNumberRequestID, "generateReferenceNumberRequestId")
	if err != nil {
		return nil, nil, err
	}
	resp := &otpc.CancelReferenceNumberResponse{}
	switch code.State {
	case ledger.CodeIssued:
	case ledger.CodeCancelled, ledger.CodeExpired:
		// Already unpayable: cancelling again is a success with no change.
		resp.Result.Success = &otpc.Empty{}
		return resp, nil, nil
	default:
		// Paid (and possibly refunded): the host's rule, whatever the
		// plugin would say. Google expects the paid notification.
		resp.Result.ReferenceNumberAlreadyPaid = &otpc.Empty{}
		return resp, nil, nil
	}
	var out otpc.CancelOutput
	cs, err := p.invoke(ctx, c, otpc.OpCancel, &otpc.CancelInput{Request: *req, Code: plugincall.CodeInfo(code)}, &out)
	if err != nil {
		return nil, nil, err
	}
	resp.Result = out.Result
	apply := func(tx *ledger.Tx) error {
		if out.Result.Success != nil {
			if _, err := tx.Cancel(piaid, code.TransactionID); err != nil {
				return raced(err)
			}
		}
		return cs.Apply(tx)
	}
	return resp, apply, nil
}

// raced marks state errors met at commit time as races to decide again.
func raced(err error) error {
	var se *ledger.StateError
	if errors.As(err, &se) {
		return fmt.Errorf("%w: %w", errRaced, err)
	}
	return err
}

// checkRefund applies the host's refund rules before the plugin is asked.
func checkRefund(code ledger.Code, remaining int64, req *otpc.RefundRequest) error {
	if !code.State.Refundable() {
		return errPrecondition("transaction is not paid", ledger.ErrNotPaid)
	}
	if req.RefundAmount.CurrencyCode != code.Currency {
		return errInvalidField("refundAmount.currencyCode", "refund currency differs from the transaction's", ledger.ErrCurrencyMismatch)
	}
	if req.RefundAmount.AmountMicros > remaining {
		return errPrecondition("refund exceeds the remaining refundable amount", ledger.ErrRefundExceedsRemaining)
	}
	return nil
}

func refund(ctx context.Context, p *Pipeline, c *call) (otpc.Response, func(*ledger.Tx) error, error) {
	var out otpc.RefundOutput
	resp := &otpc.RefundResponse{}
	return refunds(ctx, p, c, otpc.OpRefund, &out, resp, func() (ledger.RefundKind, ledger.RefundState, []byte) {
		resp.Result = out.Result
		if out.Result.Success != nil {
			return ledger.RefundSync, ledger.RefundSucceeded, out.Result.AppendJSON(nil)
		}
		return ledger.RefundSync, ledger.RefundDeclined, out.Result.AppendJSON(nil)
	})
}

func asyncRefund(ctx context.Context, p *Pipeline, c *call) (otpc.Response, func(*ledger.Tx) error, error) {
	var out otpc.AsyncRefundOutput
	resp := &otpc.AsynchronousRefundResponse{}
	return refunds(ctx, p, c, otpc.OpAsyncRefund, &out, resp, func() (ledger.RefundKind, ledger.RefundState, []byte) {
		resp.Result = out.Result
		if out.Result.Acknowledged != nil {
			return ledger.RefundAsync, ledger.RefundAcknowledged, out.Result.AppendJSON(nil)
		}
		return ledger.RefundAsync, ledger.RefundDeclined, out.Result.AppendJSON(nil)
	})
}

// refunds is the shared part of refund and asynchronousRefund: the host's
// rules, the plugin's decision (decoded into out), and the ledger entry
// whose kind and state outcome derives from the decision.
func refunds(ctx context.Context, p *Pipeline, c *call, op otpc.Op, out otpc.Message, resp otpc.Response,
	outcome func() (ledger.RefundKind, ledger.RefundState, []byte)) (otpc.Response, func(*ledger.Tx) error, error) {
	req := c.req.(*otpc.RefundRequest)
	piaid := req.RequestHeader.PaymentIntegratorAccountID
	code, err := p.lookupCode(ctx, piaid, req.TransactionID, "transactionId")
	if err != nil {
		return nil, nil, err
	}
	remaining := int64(0)
	if code.State.Refundable() {
		if remaining, err = p.ledger.RemainingMicros(ctx, piaid, req.TransactionID); err != nil {
			return nil, nil, errUnavailable("ledger unavailable", err)
		}
	}
	if err := checkRefund(code, remaining, req); err != nil {
		return nil, nil, err
	}
	cs, err := p.invoke(ctx, c, op, &otpc.RefundInput{Request: *req, Code: plugincall.CodeInfo(code)}, out)
	if err != nil {
		return nil, nil, err
	}
	kind, state, result := outcome()
	apply := func(tx *ledger.Tx) error {
		if err := tx.AddRefund(ledger.Refund{
			PIAID: piaid, RefundID: req.RequestHeader.RequestID, TransactionID: req.TransactionID,
			AmountMicros: req.RefundAmount.AmountMicros, Currency: req.RefundAmount.CurrencyCode,
			Kind: kind, State: state, Result: result,
		}); err != nil {
			return err
		}
		return cs.Apply(tx)
	}
	return resp, apply, nil
}

func associate(ctx context.Context, p *Pipeline, c *call) (otpc.Response, func(*ledger.Tx) error, error) {
	req := c.req.(*otpc.AssociateAccountRequest)
	piaid := req.RequestHeader.PaymentIntegratorAccountID
	sess, err := p.ledger.AuthSession(ctx, req.AuthenticationRequestID)
	if errors.Is(err, ledger.ErrNotFound) || (err == nil && (sess.PIAID != piaid || sess.Result != AuthSuccess)) {
		return nil, nil, errIdentifier("authenticationRequestId", "no successful authentication with this authenticationRequestId", err)
	}
	if err != nil {
		return nil, nil, errUnavailable("ledger unavailable", err)
	}
	if !sess.Consumed.IsZero() {
		return nil, nil, errPrecondition("authentication was already used for an association", ledger.ErrAuthSessionConsumed)
	}
	if p.cfg.Now().Sub(sess.Created) > p.cfg.authMaxAge() {
		return nil, nil, errPrecondition("authentication is too old", nil)
	}
	var out otpc.AssociateOutput
	cs, err := p.invoke(ctx, c, otpc.OpAssociate, &otpc.AssociateInput{Request: *req, AccountID: sess.AccountID}, &out)
	if err != nil {
		return nil, nil, err
	}
	if s := out.Result.Success; s != nil && req.ProvideUserInformation && s.UserInformation == nil {
		return nil, nil, errUnavailable("merchant plugin omitted the requested userInformation", nil)
	}
	resp := &otpc.AssociateAccountResponse{Result: out.Result}
	apply := func(tx *ledger.Tx) error {
		if out.Result.Success != nil {
			if _, err := tx.ConsumeAuthSession(piaid, req.AuthenticationRequestID); err != nil {
				return err
			}
			if err := tx.Associate(ledger.Association{
				PIAID: piaid, AssociationID: req.AssociationID, RequestID: req.RequestHeader.RequestID,
				IssuerID: req.GooglePaymentToken.IssuerID.Value, GPTHash: ledger.GPTHash(req.GooglePaymentToken.Token),
				AccountID: sess.AccountID, AuthRequestID: req.AuthenticationRequestID,
			}); err != nil {
				return err
			}
		}
		return cs.Apply(tx)
	}
	return resp, apply, nil
}

func remittance(ctx context.Context, p *Pipeline, c *call) (otpc.Response, func(*ledger.Tx) error, error) {
	req := c.req.(*otpc.RemittanceStatementNotificationRequest)
	var out otpc.RemittanceOutput
	cs, err := p.invoke(ctx, c, otpc.OpRemittance, &otpc.RemittanceInput{Request: *req}, &out)
	if err != nil {
		return nil, nil, err
	}
	stmtID := out.PaymentIntegratorStatementID
	if stmtID == "" {
		stmtID = req.RequestHeader.RequestID
	}
	resp := &otpc.RemittanceStatementNotificationResponse{PaymentIntegratorStatementID: stmtID, Result: out.Result}
	summary := req.RemittanceStatementSummary.AppendJSON(nil)
	apply := func(tx *ledger.Tx) error {
		if err := tx.SaveStatement(ledger.Statement{
			PIAID: req.RequestHeader.PaymentIntegratorAccountID, StatementID: req.RequestHeader.RequestID,
			Summary: summary, State: ledger.StatementNotified,
		}); err != nil {
			return err
		}
		return cs.Apply(tx)
	}
	return resp, apply, nil
}

// ledgerError maps what the ledger refused to the spec's answers.
func ledgerError(err error) error {
	var pe *Error
	if errors.As(err, &pe) {
		return pe
	}
	switch {
	case errors.Is(err, ledger.ErrIdempotencyViolation):
		return errIdempotency(err)
	case errors.Is(err, ledger.ErrRefundExceedsRemaining):
		return errPrecondition("refund exceeds the remaining refundable amount", err)
	case errors.Is(err, ledger.ErrNotPaid):
		return errPrecondition("transaction is not paid", err)
	case errors.Is(err, ledger.ErrCurrencyMismatch):
		return errInvalidField("refundAmount.currencyCode", "refund currency differs from the transaction's", err)
	case errors.Is(err, ledger.ErrInvalidAmount):
		return errInvalidField("amount", "amount is not valid", err)
	case errors.Is(err, ledger.ErrUnknownTransaction):
		return errIdentifier("transactionId", "unknown transaction", err)
	case errors.Is(err, ledger.ErrUnknownPIAID):
		return errIdentifier("paymentIntegratorAccountId", "unknown paymentIntegratorAccountId", err)
	case errors.Is(err, ledger.ErrMerchantDisabled):
		return errForbidden("merchant is disabled")
	case errors.Is(err, ledger.ErrAssociationConflict):
		return errPrecondition("associationId or googlePaymentToken already bound by another association", err)
	case errors.Is(err, ledger.ErrAuthSessionConsumed):
		return errPrecondition("authentication was already used for an association", err)
	case errors.Is(err, ledger.ErrDuplicate):
		return errPrecondition("the object already exists", err)
	case errors.Is(err, ledger.ErrKVQuota):
		// The merchant's plugin data is full: nothing of this request was
		// kept; it may pass once the plugin frees space or the quota grows.
		return errUnavailable("merchant plugin storage quota exceeded", err)
	case errors.Is(err, errRaced):
		return errUnavailable("conflicting concurrent change, retry", err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return errUnavailable("request timed out", err)
	}
	return errUnavailable("ledger unavailable", err)
}

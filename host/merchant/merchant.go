// Package merchant handles the events that start on the merchant's side of
// the protocol: a code paid at a store, the final result of an asynchronous
// refund, and remittance statements to fetch and accept. Each event is
// checked by the merchant's plugin and the ledger's rules, and the
// notification to Google is written to the outbox in the same transaction
// as the change that causes it; the outbox worker delivers it.
//
// Every event is idempotent on a key the merchant supplies: the same key
// with the same content returns the first answer, with other content it is
// refused.
package merchant

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/otpcgate/otpcgate/host/directory"
	"github.com/otpcgate/otpcgate/host/google"
	"github.com/otpcgate/otpcgate/host/ledger"
	"github.com/otpcgate/otpcgate/host/plugincall"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// Errors of the service; the HTTP layer maps them to statuses.
var (
	// ErrInvalid: the event is malformed (400).
	ErrInvalid = errors.New("merchant: invalid event")
	// ErrNotFound: the code, refund or statement is unknown to this
	// merchant (404). Another merchant's objects are never revealed.
	ErrNotFound = errors.New("merchant: not found")
	// ErrConflict: the event contradicts the ledger (already paid,
	// cancelled, a refund result already reported differently, the key
	// reused with other content) (409).
	ErrConflict = errors.New("merchant: conflicts with the recorded state")
	// ErrUnavailable: the plugin or the database failed; retry (503).
	ErrUnavailable = errors.New("merchant: temporarily unavailable")
)

// MaxPaidAtSkew is how far in the future a reported payment time may be
// (store clocks drift); later times are refused, since Google is told the
// payment time as paymentTimestamp.
const MaxPaidAtSkew = 5 * time.Minute

// Merchants resolves a merchant and its PIAIDs (the directory's published
// snapshot does).
type Merchants interface {
	Merchant(id string) (*directory.Merchant, bool)
}

// Plugins calls a merchant's plugin (*plugincall.Service does, and
// *plugincall.Admitted behind the admission limiter).
type Plugins interface {
	Call(ctx context.Context, t plugincall.Target, op otpc.Op, now time.Time, in, out otpc.Message) (plugincall.Changes, error)
}

// Config tunes a Service; the zero value is ready to use (without
// statement details).
type Config struct {
	// Google fetches statement details synchronously; Resolver says where.
	Google   *google.Client
	Resolver google.Resolver
	// Notify wakes the outbox worker after a notification was committed.
	Notify func()
	Now    func() time.Time
	Logger *slog.Logger
}

// Service handles merchant events.
type Service struct {
	cfg       Config
	ledger    *ledger.Ledger
	plugins   Plugins
	merchants Merchants
	log       *slog.Logger
}

// New returns a Service that records events in l, asks the merchant's
// plugin through plugins and finds merchants in merchants.
func New(cfg Config, l *ledger.Ledger, plugins Plugins, merchants Merchants) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Notify == nil {
		cfg.Notify = func() {}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, ledger: l, plugins: plugins, merchants: merchants, log: log}
}

// Payment is a code paid at a store, as the merchant's systems report it.
type Payment struct {
	// Key is the merchant's idempotency key for this report.
	Key string `json:"key"`
	// Printable is the code the user showed at the store; or give PIAID
	// and TransactionID (the generateReferenceNumber requestId).
	Printable     string `json:"printable,omitempty"`
	PIAID         string `json:"piaid,omitempty"`
	TransactionID string `json:"transactionId,omitempty"`
	// Amount is what the store collected.
	Amount otpc.Amount `json:"amount"`
	// PaidAt is when the user paid; zero means now.
	PaidAt time.Time `json:"paidAt"`
	// StoreID identifies the store or kiosk.
	StoreID string `json:"storeId,omitempty"`
}

// PaymentResult is the answer to a payment report.
type PaymentResult struct {
	Accepted                       bool   `json:"accepted"`
	DeclineReason                  string `json:"declineReason,omitempty"`
	PIAID                          string `json:"piaid"`
	TransactionID                  string `json:"transactionId"`
	PaymentIntegratorTransactionID string `json:"paymentIntegratorTransactionId,omitempty"`
	// NotificationRequestID is the requestId of the
	// referenceNumberPaidNotification queued for Google.
	NotificationRequestID string `json:"notificationRequestId,omitempty"`
}

// ReportPayment records a payment at the store: the plugin validates it
// (amount, expiry, store), the code becomes paid and the paid notification
// is queued for Google, all in one transaction.
func (s *Service) ReportPayment(ctx context.Context, merchantID string, p Payment) (PaymentResult, error) {
	var res PaymentResult
	reported := p // what the idempotency key stands for, before defaults
	m, err := s.merchant(merchantID)
	if err != nil {
		return res, err
	}
	if !otpc.ValidRequestID(p.Key) {
		return res, fmt.Errorf("%w: key must be 1-100 characters of a-z A-Z 0-9 : - _", ErrInvalid)
	}
	if p.Amount.AmountMicros <= 0 || !otpc.ValidCurrencyCode(p.Amount.CurrencyCode) {
		return res, fmt.Errorf("%w: amount needs positive amountMicros and an ISO 4217 currencyCode", ErrInvalid)
	}
	now := s.cfg.Now()
	if p.PaidAt.IsZero() {
		p.PaidAt = now
	}
	if p.PaidAt.After(now.Add(MaxPaidAtSkew)) {
		return res, fmt.Errorf("%w: paidAt is in the future", ErrInvalid)
	}
	code, err := s.findCode(ctx, m, p)
	if err != nil {
		return res, err
	}
	body, err := s.once(ctx, m.ID, "paid", p.Key, reported, func(ctx context.Context) (ledger.Outcome, error) {
		if code.State != ledger.CodeIssued {
			return ledger.Outcome{}, fmt.Errorf("%w: reference number is %s", ErrConflict, code.State)
		}
		var out otpc.PaidOutput
		cs, err := s.plugins.Call(ctx, plugincall.Target{Merchant: m.ID, Plugin: m.ID}, otpc.OpPaid, s.cfg.Now(),
			&otpc.PaidInput{Code: plugincall.CodeInfo(code), Amount: p.Amount, PaidAt: otpc.TimestampOf(p.PaidAt),
				StoreID: p.StoreID, MerchantPaymentID: p.Key}, &out)
		if err != nil {
			return ledger.Outcome{}, pluginError(err)
		}
		r := PaymentResult{Accepted: out.Accepted, DeclineReason: out.DeclineReason, PIAID: code.PIAID,
			TransactionID: code.TransactionID, PaymentIntegratorTransactionID: out.PaymentIntegratorTransactionID}
		if !out.Accepted {
			b, err := json.Marshal(r)
			return ledger.Outcome{Body: b, Apply: func(tx *ledger.Tx) error { return cs.Apply(tx) }}, err
		}
		if r.PaymentIntegratorTransactionID == "" {
			r.PaymentIntegratorTransactionID = "pay-" + p.Key
		}
		notif := &otpc.ReferenceNumberPaidNotificationRequest{
			RequestHeader:                    otpc.RequestHeader{RequestID: google.NewRequestID()},
			PaymentIntegratorTransactionID:   r.PaymentIntegratorTransactionID,
			GenerateReferenceNumberRequestID: code.TransactionID,
			PaymentTimestamp:                 otpc.TimestampOf(p.PaidAt),
		}
		r.NotificationRequestID = notif.RequestHeader.RequestID
		item, err := google.OutboxItem(google.Notification{MerchantID: m.ID, PIAID: code.PIAID,
			Method: otpc.MethodReferenceNumberPaidNotification, RequestID: notif.RequestHeader.RequestID,
			OrderingKey: code.TransactionID, Request: notif})
		if err != nil {
			return ledger.Outcome{}, err
		}
		b, err := json.Marshal(r)
		if err != nil {
			return ledger.Outcome{}, err
		}
		// A plugin may accept an over-payment (the merchant returns the
		// difference out of band); for Google and for refunds the code is
		// paid at its own amount. An accepted under-payment is refused by
		// the ledger.
		paidMicros := min(p.Amount.AmountMicros, code.AmountMicros)
		return ledger.Outcome{Body: b, Apply: func(tx *ledger.Tx) error {
			if _, err := tx.MarkPaid(code.PIAID, code.TransactionID, ledger.Payment{
				IntegratorTransactionID: r.PaymentIntegratorTransactionID, PaidAt: p.PaidAt, PaidMicros: paidMicros,
				Currency: p.Amount.CurrencyCode,
			}); err != nil {
				return err
			}
			if _, err := tx.Enqueue(item); err != nil {
				return err
			}
			return cs.Apply(tx)
		}}, nil
	})
	if err != nil {
		return res, err
	}
	return res, json.Unmarshal(body, &res)
}

// pluginError classifies a failed plugin call: a refusal the plugin may
// make stays an *otpc.Refusal (the HTTP layer answers its member's 4xx);
// anything else is ErrUnavailable. Either way nothing was recorded.
func pluginError(err error) error {
	if errors.As(err, new(*otpc.Refusal)) {
		return fmt.Errorf("merchant: plugin refused: %w", err)
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// findCode resolves the code a payment names, within the merchant only.
func (s *Service) findCode(ctx context.Context, m *directory.Merchant, p Payment) (ledger.Code, error) {
	var code ledger.Code
	var err error
	switch {
	case p.Printable != "":
		code, err = s.ledger.CodeByPrintable(ctx, m.ID, p.Printable)
	case p.PIAID != "" && p.TransactionID != "":
		if !m.HasPIAID(p.PIAID) {
			return code, fmt.Errorf("%w: reference number", ErrNotFound)
		}
		code, err = s.ledger.Code(ctx, p.PIAID, p.TransactionID)
	default:
		return code, fmt.Errorf("%w: give printable, or piaid and transactionId", ErrInvalid)
	}
	if errors.Is(err, ledger.ErrNotFound) || errors.Is(err, ledger.ErrUnknownTransaction) || (err == nil && code.MerchantID != m.ID) {
		return ledger.Code{}, fmt.Errorf("%w: reference number", ErrNotFound)
	}
	if err != nil {
		return code, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return code, nil
}

// RefundOutcome is the final result of an asynchronous refund.
type RefundOutcome struct {
	PIAID string `json:"piaid"`
	// RefundRequestID is the asynchronousRefund requestId.
	RefundRequestID string `json:"refundRequestId"`
	Success         bool   `json:"success"`
	// Detail is the merchant's reason for a failure (not sent to Google).
	Detail string `json:"detail,omitempty"`
}

// RefundOutcomeResult is the answer to a refund outcome report.
type RefundOutcomeResult struct {
	RefundRequestID       string             `json:"refundRequestId"`
	State                 ledger.RefundState `json:"state"`
	NotificationRequestID string             `json:"notificationRequestId"`
}

// ReportRefundResult resolves an acknowledged asynchronous refund and
// queues refundResultNotification. The result of a refund never changes:
// the same report again returns the first answer, a different one is
// ErrConflict.
func (s *Service) ReportRefundResult(ctx context.Context, merchantID string, o RefundOutcome) (RefundOutcomeResult, error) {
	var res RefundOutcomeResult
	m, err := s.merchant(merchantID)
	if err != nil {
		return res, err
	}
	if !m.HasPIAID(o.PIAID) || o.RefundRequestID == "" {
		return res, fmt.Errorf("%w: refund", ErrNotFound)
	}
	refund, err := s.ledger.Refund(ctx, o.PIAID, o.RefundRequestID)
	if errors.Is(err, ledger.ErrNotFound) {
		return res, fmt.Errorf("%w: refund", ErrNotFound)
	}
	if err != nil {
		return res, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if refund.Kind != ledger.RefundAsync {
		return res, fmt.Errorf("%w: refund %s is synchronous; its result was final when Google called", ErrConflict, o.RefundRequestID)
	}
	body, err := s.once(ctx, m.ID, "refund-result", o.PIAID+":"+o.RefundRequestID, o, func(ctx context.Context) (ledger.Outcome, error) {
		if refund.State != ledger.RefundAcknowledged {
			return ledger.Outcome{}, fmt.Errorf("%w: refund is %s", ErrConflict, refund.State)
		}
		code, err := s.ledger.Code(ctx, o.PIAID, refund.TransactionID)
		if err != nil {
			return ledger.Outcome{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		var out otpc.RefundDoneOutput
		cs, err := s.plugins.Call(ctx, plugincall.Target{Merchant: m.ID, Plugin: m.ID}, otpc.OpRefundDone, s.cfg.Now(),
			&otpc.RefundDoneInput{RefundRequestID: o.RefundRequestID, Code: plugincall.CodeInfo(code),
				Amount:  otpc.Amount{AmountMicros: refund.AmountMicros, CurrencyCode: refund.Currency},
				Success: o.Success, Detail: o.Detail}, &out)
		if err != nil {
			return ledger.Outcome{}, pluginError(err)
		}
		if (out.Result.Success != nil) != o.Success {
			return ledger.Outcome{}, fmt.Errorf("%w: plugin answered a result that contradicts success=%v", ErrUnavailable, o.Success)
		}
		notif := &otpc.RefundResultNotificationRequest{
			RequestHeader:   otpc.RequestHeader{RequestID: google.NewRequestID()},
			RefundRequestID: o.RefundRequestID,
			Result:          out.Result,
		}
		item, err := google.OutboxItem(google.Notification{MerchantID: m.ID, PIAID: o.PIAID,
			Method: otpc.MethodRefundResultNotification, RequestID: notif.RequestHeader.RequestID,
			OrderingKey: refund.TransactionID, Request: notif})
		if err != nil {
			return ledger.Outcome{}, err
		}
		state := ledger.RefundFailed
		if o.Success {
			state = ledger.RefundSucceeded
		}
		b, err := json.Marshal(RefundOutcomeResult{RefundRequestID: o.RefundRequestID, State: state,
			NotificationRequestID: notif.RequestHeader.RequestID})
		if err != nil {
			return ledger.Outcome{}, err
		}
		result := out.Result.AppendJSON(nil)
		return ledger.Outcome{Body: b, Apply: func(tx *ledger.Tx) error {
			if _, err := tx.ResolveRefund(o.PIAID, o.RefundRequestID, o.Success, result); err != nil {
				return err
			}
			if _, err := tx.Enqueue(item); err != nil {
				return err
			}
			return cs.Apply(tx)
		}}, nil
	})
	if err != nil {
		return res, err
	}
	return res, json.Unmarshal(body, &res)
}

// Acceptance accepts a remittance statement, optionally with a modification
// (exactly one of the modification members of
// otpc.AcceptRemittanceStatementWithModificationsRequest).
type Acceptance struct {
	PIAID       string `json:"piaid"`
	StatementID string `json:"statementId"`
	// Modification, when set, sends acceptRemittanceStatementWithModifications.
	Modification *otpc.AcceptRemittanceStatementWithModificationsRequest `json:"modification,omitempty"`
}

// AcceptanceResult is the answer to an acceptance.
type AcceptanceResult struct {
	StatementID           string                `json:"statementId"`
	State                 ledger.StatementState `json:"state"`
	NotificationRequestID string                `json:"notificationRequestId"`
}

// AcceptStatement records that the merchant will pay (or accepts) a
// statement and queues the acceptance for Google.
func (s *Service) AcceptStatement(ctx context.Context, merchantID string, a Acceptance) (AcceptanceResult, error) {
	var res AcceptanceResult
	m, err := s.merchant(merchantID)
	if err != nil {
		return res, err
	}
	if !m.HasPIAID(a.PIAID) {
		return res, fmt.Errorf("%w: statement", ErrNotFound)
	}
	st, err := s.ledger.Statement(ctx, a.PIAID, a.StatementID)
	if errors.Is(err, ledger.ErrNotFound) {
		return res, fmt.Errorf("%w: statement", ErrNotFound)
	}
	if err != nil {
		return res, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	body, err := s.once(ctx, m.ID, "accept", a.PIAID+":"+a.StatementID, a, func(ctx context.Context) (ledger.Outcome, error) {
		if st.State != ledger.StatementNotified {
			return ledger.Outcome{}, fmt.Errorf("%w: statement is %s", ErrConflict, st.State)
		}
		id := google.NewRequestID()
		n := google.Notification{MerchantID: m.ID, PIAID: a.PIAID, RequestID: id, OrderingKey: "statement:" + a.StatementID}
		to := ledger.StatementAccepted
		if mod := a.Modification; mod != nil {
			req := *mod
			req.RequestHeader = otpc.RequestHeader{RequestID: id}
			req.StatementID = a.StatementID
			n.Method, n.Request, to = otpc.MethodAcceptRemittanceStatementWithModifications, &req, ledger.StatementAcceptedWithModifications
		} else {
			n.Method = otpc.MethodAcceptRemittanceStatement
			n.Request = &otpc.AcceptRemittanceStatementRequest{RequestHeader: otpc.RequestHeader{RequestID: id}, StatementID: a.StatementID}
		}
		item, err := google.OutboxItem(n)
		if err != nil {
			return ledger.Outcome{}, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		b, err := json.Marshal(AcceptanceResult{StatementID: a.StatementID, State: to, NotificationRequestID: id})
		if err != nil {
			return ledger.Outcome{}, err
		}
		return ledger.Outcome{Body: b, Apply: func(tx *ledger.Tx) error {
			if err := tx.AcceptStatement(a.PIAID, a.StatementID, to); err != nil {
				return err
			}
			_, err := tx.Enqueue(item)
			return err
		}}, nil
	})
	if err != nil {
		return res, err
	}
	return res, json.Unmarshal(body, &res)
}

// StatementDetails fetches one page of a statement's events from Google.
func (s *Service) StatementDetails(ctx context.Context, merchantID, piaid, statementID string, offset, count int32) (*otpc.RemittanceStatementDetailsResponse, error) {
	m, err := s.merchant(merchantID)
	if err != nil {
		return nil, err
	}
	if !m.HasPIAID(piaid) {
		return nil, fmt.Errorf("%w: statement", ErrNotFound)
	}
	if s.cfg.Google == nil || s.cfg.Resolver == nil {
		return nil, fmt.Errorf("%w: no Google client configured", ErrUnavailable)
	}
	rt, err := s.cfg.Resolver.Resolve(ctx, m.ID, piaid)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	resp, err := s.cfg.Google.RemittanceStatementDetails(ctx, rt, &otpc.RemittanceStatementDetailsRequest{
		StatementID: statementID, EventOffset: offset, NumberOfEvents: count,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return resp, nil
}

func (s *Service) merchant(id string) (*directory.Merchant, error) {
	m, ok := s.merchants.Merchant(id)
	if !ok {
		return nil, fmt.Errorf("%w: merchant", ErrNotFound)
	}
	return m, nil
}

// once runs process exactly once per (merchant, kind, key): the ledger's
// idempotency records hold the answer under a namespace Google's PIAIDs
// cannot reach ("merchant:<id>"), and the hash of the event's content
// detects a key reused for something else.
func (s *Service) once(ctx context.Context, merchantID, kind, key string, event any, process func(context.Context) (ledger.Outcome, error)) ([]byte, error) {
	content, err := json.Marshal(event)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(content)
	rec, replayed, err := s.ledger.Do(ctx, ledger.Request{
		PIAID: "merchant:" + merchantID, RequestID: kind + ":" + key, Method: "merchant." + kind, Hash: sum[:],
	}, process)
	switch {
	case err == nil:
		if !replayed {
			s.cfg.Notify()
		}
		return rec.Body, nil
	case errors.Is(err, ledger.ErrIdempotencyViolation):
		return nil, fmt.Errorf("%w: key %q was used for a different event", ErrConflict, key)
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrNotFound), errors.Is(err, ErrConflict), errors.Is(err, ErrUnavailable),
		errors.As(err, new(*otpc.Refusal)):
		return nil, err
	case errors.Is(err, ledger.ErrCodeExpired), errors.Is(err, ledger.ErrInvalidTransition), errors.Is(err, ledger.ErrAlreadyPaid):
		return nil, fmt.Errorf("%w: %w", ErrConflict, err)
	case errors.Is(err, ledger.ErrInvalidAmount), errors.Is(err, ledger.ErrCurrencyMismatch):
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
}

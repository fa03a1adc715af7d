package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// RefundKind tells a synchronous refund from an asynchronousRefund.
type RefundKind string

// Refund kinds.
const (
	RefundSync  RefundKind = "sync"
	RefundAsync RefundKind = "async"
)

// RefundState is the state of one refund.
//
//	sync:  succeeded | declined            (final at creation)
//	async: acknowledged ─▶ succeeded | failed, or declined at creation
type RefundState string

// Refund states.
const (
	RefundSucceeded    RefundState = "succeeded"
	RefundDeclined     RefundState = "declined"
	RefundAcknowledged RefundState = "acknowledged"
	RefundFailed       RefundState = "failed"
)

// Refund is one refund of a paid code. (PIAID, RefundID) is its key;
// RefundID is the refund request's requestId.
type Refund struct {
	PIAID         string
	RefundID      string
	TransactionID string
	AmountMicros  int64
	Currency      string
	Kind          RefundKind
	State         RefundState
	// Result is the JSON of the RefundResult reported to Google (e.g. for a
	// later refundResultNotification, whose result cannot change).
	Result  []byte
	Created time.Time
	Updated time.Time
}

const refundCols = `piaid, refund_id, transaction_id, amount_micros, currency, kind, state, result, created_ms, updated_ms`

func scanRefund(s rowScanner) (Refund, error) {
	var r Refund
	var kind, state string
	var created, updated int64
	if err := s.Scan(&r.PIAID, &r.RefundID, &r.TransactionID, &r.AmountMicros, &r.Currency,
		&kind, &state, &r.Result, &created, &updated); err != nil {
		return Refund{}, notFound(err)
	}
	r.Kind, r.State = RefundKind(kind), RefundState(state)
	r.Created, r.Updated = time.UnixMilli(created), time.UnixMilli(updated)
	return r, nil
}

const sqlGetRefund = `SELECT ` + refundCols + ` FROM refunds WHERE piaid = ? AND refund_id = ?`

// Refund returns a committed refund or ErrNotFound.
func (l *Ledger) Refund(ctx context.Context, piaid, refundID string) (Refund, error) {
	return scanRefund(l.readRow(ctx, sqlGetRefund, piaid, refundID))
}

// Refunds lists a transaction's refunds, oldest first.
func (l *Ledger) Refunds(ctx context.Context, piaid, transactionID string) ([]Refund, error) {
	rows, err := l.readRows(ctx, `SELECT `+refundCols+` FROM refunds WHERE piaid = ? AND transaction_id = ?
		ORDER BY created_ms, refund_id`, piaid, transactionID)
	if err != nil {
		return nil, fmt.Errorf("ledger: list refunds: %w", err)
	}
	defer rows.Close()
	var out []Refund
	for rows.Next() {
		r, err := scanRefund(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Refund re-reads a refund inside the transaction.
func (tx *Tx) Refund(piaid, refundID string) (Refund, error) {
	if err := tx.check(); err != nil {
		return Refund{}, err
	}
	return scanRefund(tx.w.queryRow(sqlGetRefund, piaid, refundID))
}

// RemainingMicros re-reads, inside the transaction, how much of a paid code
// can still be refunded: paid minus succeeded minus in-flight refunds.
func (tx *Tx) RemainingMicros(piaid, transactionID string) (int64, error) {
	c, err := tx.Code(piaid, transactionID)
	if err != nil {
		return 0, err
	}
	used, err := tx.refundedOrInFlight(piaid, transactionID)
	if err != nil {
		return 0, err
	}
	return c.PaidMicros - used, nil
}

func (tx *Tx) refundedOrInFlight(piaid, transactionID string) (int64, error) {
	var used int64
	if err := tx.w.queryRow(`SELECT COALESCE(SUM(amount_micros), 0) FROM refunds
		WHERE piaid = ? AND transaction_id = ? AND state IN ('succeeded','acknowledged')`,
		piaid, transactionID).Scan(&used); err != nil {
		return 0, fmt.Errorf("ledger: sum refunds: %w", err)
	}
	return used, nil
}

// AddRefund records a refund. Invariants, checked on state re-read in this
// transaction: the code exists (ErrUnknownTransaction) and is paid
// (ErrNotPaid), the currency matches (ErrCurrencyMismatch), the amount is
// positive and succeeded + in-flight refunds including this one never exceed
// the paid amount (ErrRefundExceedsRemaining). A sync refund is created
// succeeded or declined, an async one acknowledged or declined. A succeeded
// refund moves the code to partially_refunded or refunded.
func (tx *Tx) AddRefund(r Refund) error {
	if err := tx.check(); err != nil {
		return err
	}
	if r.PIAID == "" || r.RefundID == "" || r.TransactionID == "" {
		return errors.New("ledger: refund needs PIAID, refund id and transaction id")
	}
	switch {
	case r.Kind == RefundSync && (r.State == RefundSucceeded || r.State == RefundDeclined):
	case r.Kind == RefundAsync && (r.State == RefundAcknowledged || r.State == RefundDeclined):
	default:
		return fmt.Errorf("%w: new %s refund cannot be %s", ErrInvalidTransition, r.Kind, r.State)
	}
	if r.AmountMicros <= 0 {
		return fmt.Errorf("%w: refund of %d micros", ErrInvalidAmount, r.AmountMicros)
	}
	c, err := tx.Code(r.PIAID, r.TransactionID)
	if err != nil {
		return err
	}
	if !c.State.Refundable() {
		sentinel := ErrNotPaid
		if c.State == CodeRefunded {
			sentinel = ErrRefundExceedsRemaining
		}
		return &StateError{Kind: "code", ID: r.TransactionID, From: string(c.State), Op: "refund", Err: sentinel}
	}
	if r.Currency != c.Currency {
		return fmt.Errorf("%w: refund in %s, transaction in %s", ErrCurrencyMismatch, r.Currency, c.Currency)
	}
	used, err := tx.refundedOrInFlight(r.PIAID, r.TransactionID)
	if err != nil {
		return err
	}
	// Checked for declines too: exceeding the remaining amount is a
	// precondition violation, not a business decline.
	if used+r.AmountMicros > c.PaidMicros {
		return fmt.Errorf("%w: %d + %d > %d micros paid", ErrRefundExceedsRemaining, used, r.AmountMicros, c.PaidMicros)
	}
	res, err := tx.w.exec(`INSERT INTO refunds(`+refundCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (piaid, refund_id) DO NOTHING`,
		r.PIAID, r.RefundID, r.TransactionID, r.AmountMicros, r.Currency, string(r.Kind), string(r.State),
		r.Result, tx.now, tx.now)
	if err != nil {
		return fmt.Errorf("ledger: add refund: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: refund %s", ErrDuplicate, r.RefundID)
	}
	if r.State == RefundSucceeded {
		return tx.addRefunded(c, r.AmountMicros)
	}
	return nil
}

// addRefunded books a succeeded refund on its code.
func (tx *Tx) addRefunded(c Code, amount int64) error {
	refunded := c.RefundedMicros + amount
	state := CodePartiallyRefunded
	if refunded == c.PaidMicros {
		state = CodeRefunded
	}
	return tx.exec1("book refund", `UPDATE codes SET refunded_micros = ?, state = ?, updated_ms = ?
		WHERE piaid = ? AND transaction_id = ?`, refunded, string(state), tx.now, c.PIAID, c.TransactionID)
}

// ResolveRefund gives an acknowledged asynchronous refund its final state,
// succeeded or failed, with the RefundResult JSON to report. Any other
// current state is a *StateError (ErrInvalidTransition): a reported result
// never changes.
func (tx *Tx) ResolveRefund(piaid, refundID string, succeeded bool, result []byte) (Refund, error) {
	r, err := tx.Refund(piaid, refundID)
	if err != nil {
		return Refund{}, fmt.Errorf("ledger: resolve refund %s: %w", refundID, err)
	}
	if r.State != RefundAcknowledged {
		return Refund{}, &StateError{Kind: "refund", ID: refundID, From: string(r.State), Op: "resolve", Err: ErrInvalidTransition}
	}
	to := RefundFailed
	if succeeded {
		to = RefundSucceeded
	}
	if err := tx.exec1("resolve refund", `UPDATE refunds SET state = ?, result = ?, updated_ms = ?
		WHERE piaid = ? AND refund_id = ? AND state = 'acknowledged'`,
		string(to), result, tx.now, piaid, refundID); err != nil {
		return Refund{}, err
	}
	if succeeded {
		c, err := tx.Code(piaid, r.TransactionID)
		if err != nil {
			return Refund{}, err
		}
		if err := tx.addRefunded(c, r.AmountMicros); err != nil {
			return Refund{}, err
		}
	}
	r.State, r.Result, r.Updated = to, result, time.UnixMilli(tx.now)
	return r, nil
}

package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// CodeState is the state of a reference number.
//
//	issued ─▶ paid ─▶ partially_refunded ─▶ refunded
//	   │        └──────────────────────────────▲
//	   ├─▶ cancelled
//	   └─▶ expired
type CodeState string

// Code states.
const (
	CodeIssued            CodeState = "issued"
	CodePaid              CodeState = "paid"
	CodePartiallyRefunded CodeState = "partially_refunded"
	CodeRefunded          CodeState = "refunded"
	CodeCancelled         CodeState = "cancelled"
	CodeExpired           CodeState = "expired"
)

// Refundable reports whether refunds may be added in state s.
func (s CodeState) Refundable() bool { return s == CodePaid || s == CodePartiallyRefunded }

// Code is a reference number (payable code). (PIAID, TransactionID) is its
// key; TransactionID is the generateReferenceNumber requestId.
type Code struct {
	PIAID         string
	TransactionID string
	MerchantID    string // derived from PIAID by CreateCode
	AccountID     string
	GPTHash       []byte // see GPTHash
	AmountMicros  int64
	Currency      string
	Printable     string // printable string shown to the user, may be empty
	Barcode       string // barcode contents, may be empty
	State         CodeState
	ExpiresAt     time.Time // zero: never expires
	PaidAt        time.Time
	PaidMicros    int64
	// IntegratorTransactionID is the integrator's id of the payment
	// (paymentIntegratorTransactionId in the paid notification).
	IntegratorTransactionID string
	// RefundedMicros sums succeeded refunds; in-flight (acknowledged)
	// asynchronous refunds are not included.
	RefundedMicros int64
	Created        time.Time
	Updated        time.Time
}

const codeCols = `piaid, transaction_id, merchant_id, account_id, gpt_hash, amount_micros, currency,
	printable, barcode, state, expires_ms, paid_ms, paid_micros, integrator_tx_id, refunded_micros,
	created_ms, updated_ms`

func scanCode(s rowScanner) (Code, error) {
	var c Code
	var printable, barcode, itx sql.NullString
	var state string
	var expires, paid sql.NullInt64
	var created, updated int64
	if err := s.Scan(&c.PIAID, &c.TransactionID, &c.MerchantID, &c.AccountID, &c.GPTHash,
		&c.AmountMicros, &c.Currency, &printable, &barcode, &state, &expires, &paid,
		&c.PaidMicros, &itx, &c.RefundedMicros, &created, &updated); err != nil {
		return Code{}, err
	}
	c.Printable, c.Barcode, c.IntegratorTransactionID = printable.String, barcode.String, itx.String
	c.State = CodeState(state)
	c.ExpiresAt, c.PaidAt = fromMS(expires), fromMS(paid)
	c.Created, c.Updated = time.UnixMilli(created), time.UnixMilli(updated)
	return c, nil
}

// scanCodeOr maps a missing code to ErrUnknownTransaction.
func scanCodeOr(s rowScanner, txID string) (Code, error) {
	c, err := scanCode(s)
	if errors.Is(err, sql.ErrNoRows) {
		return Code{}, fmt.Errorf("%w: %s", ErrUnknownTransaction, txID)
	}
	if err != nil {
		return Code{}, fmt.Errorf("ledger: read code: %w", err)
	}
	return c, nil
}

const sqlGetCode = `SELECT ` + codeCols + ` FROM codes WHERE piaid = ? AND transaction_id = ?`

// Code returns the committed code, or ErrUnknownTransaction.
func (l *Ledger) Code(ctx context.Context, piaid, transactionID string) (Code, error) {
	return scanCodeOr(l.readRow(ctx, sqlGetCode, piaid, transactionID), transactionID)
}

// CodeByPrintable finds a merchant's code by its printable string (what a
// store clerk types), preferring the live one.
func (l *Ledger) CodeByPrintable(ctx context.Context, merchantID, printable string) (Code, error) {
	return scanCodeOr(l.readRow(ctx, `SELECT `+codeCols+` FROM codes
		WHERE merchant_id = ? AND printable = ?
		ORDER BY state = 'issued' DESC, created_ms DESC LIMIT 1`, merchantID, printable), printable)
}

// Code re-reads a code inside the transaction.
func (tx *Tx) Code(piaid, transactionID string) (Code, error) {
	if err := tx.check(); err != nil {
		return Code{}, err
	}
	return scanCodeOr(tx.w.queryRow(sqlGetCode, piaid, transactionID), transactionID)
}

// CreateCode stores a new code in state issued. The merchant is looked up
// from the PIAID (ErrUnknownPIAID, ErrMerchantDisabled). A duplicate key is
// ErrDuplicate; a printable string shown by another live code of the same
// merchant is ErrPrintableInUse.
func (tx *Tx) CreateCode(c Code) error {
	if err := tx.check(); err != nil {
		return err
	}
	if c.PIAID == "" || c.TransactionID == "" || c.AccountID == "" || len(c.GPTHash) == 0 || c.Currency == "" {
		return errors.New("ledger: code needs PIAID, transaction id, account id, GPT hash and currency")
	}
	if c.AmountMicros <= 0 {
		return fmt.Errorf("%w: %d micros", ErrInvalidAmount, c.AmountMicros)
	}
	var merchantID, status string
	if err := tx.w.queryRow(`SELECT m.id, m.status FROM piaids p JOIN merchants m ON m.id = p.merchant_id
		WHERE p.piaid = ?`, c.PIAID).Scan(&merchantID, &status); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: %s", ErrUnknownPIAID, c.PIAID)
		}
		return fmt.Errorf("ledger: create code: %w", err)
	}
	if MerchantStatus(status) != MerchantActive {
		return fmt.Errorf("%w: %s", ErrMerchantDisabled, merchantID)
	}
	var one int
	switch err := tx.w.queryRow(`SELECT 1 FROM codes WHERE piaid = ? AND transaction_id = ?`,
		c.PIAID, c.TransactionID).Scan(&one); {
	case err == nil:
		return fmt.Errorf("%w: code %s", ErrDuplicate, c.TransactionID)
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("ledger: create code: %w", err)
	}
	if c.Printable != "" {
		err := tx.w.queryRow(`SELECT 1 FROM codes WHERE merchant_id = ? AND printable = ? AND state = 'issued'`,
			merchantID, c.Printable).Scan(&one)
		if err == nil {
			return ErrPrintableInUse
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("ledger: create code: %w", err)
		}
	}
	_, err := tx.w.exec(`INSERT INTO codes(piaid, transaction_id, merchant_id, account_id, gpt_hash,
		amount_micros, currency, printable, barcode, state, expires_ms, created_ms, updated_ms)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'issued', ?, ?, ?)`,
		c.PIAID, c.TransactionID, merchantID, c.AccountID, c.GPTHash, c.AmountMicros, c.Currency,
		nullStr(c.Printable), nullStr(c.Barcode), msOrNil(c.ExpiresAt), tx.now, tx.now)
	if err != nil {
		return fmt.Errorf("ledger: create code: %w", err)
	}
	return nil
}

// Payment describes a payment at the store.
type Payment struct {
	IntegratorTransactionID string
	PaidAt                  time.Time
	// PaidMicros must be the code's amount; zero means the code's amount.
	PaidMicros int64
	// Currency, when set, must be the code's currency.
	Currency string
}

// PaymentClockSkew is how much earlier than the code's creation a payment
// may be dated (store clocks lag).
const PaymentClockSkew = 5 * time.Minute

// MarkPaid moves an issued code to paid. A payment after ExpiresAt is
// ErrCodeExpired; any other state is a *StateError (ErrInvalidTransition).
// A payment dated before the code existed is ErrInvalidTransition too; a
// different currency is ErrCurrencyMismatch, a different amount
// ErrInvalidAmount.
func (tx *Tx) MarkPaid(piaid, transactionID string, p Payment) (Code, error) {
	c, err := tx.Code(piaid, transactionID)
	if err != nil {
		return Code{}, err
	}
	if c.State != CodeIssued {
		return Code{}, &StateError{Kind: "code", ID: transactionID, From: string(c.State), Op: "mark paid", Err: ErrInvalidTransition}
	}
	if p.PaidAt.IsZero() || p.IntegratorTransactionID == "" {
		return Code{}, errors.New("ledger: payment needs a time and the integrator transaction id")
	}
	if !c.ExpiresAt.IsZero() && p.PaidAt.After(c.ExpiresAt) {
		return Code{}, &StateError{Kind: "code", ID: transactionID, From: string(c.State), Op: "mark paid", Err: ErrCodeExpired}
	}
	// A store's clock may lag ours a little; a payment dated well before
	// the code existed is a mistake or a backdating.
	if p.PaidAt.Before(c.Created.Add(-PaymentClockSkew)) {
		return Code{}, &StateError{Kind: "code", ID: transactionID, From: string(c.State), Op: "mark paid before the code existed", Err: ErrInvalidTransition}
	}
	if p.Currency != "" && p.Currency != c.Currency {
		return Code{}, fmt.Errorf("%w: paid in %s, code is %s", ErrCurrencyMismatch, p.Currency, c.Currency)
	}
	if p.PaidMicros == 0 {
		p.PaidMicros = c.AmountMicros
	}
	if p.PaidMicros != c.AmountMicros {
		return Code{}, fmt.Errorf("%w: paid %d, code is %d", ErrInvalidAmount, p.PaidMicros, c.AmountMicros)
	}
	if err := tx.exec1("mark paid", `UPDATE codes SET state = 'paid', paid_ms = ?, paid_micros = ?,
		integrator_tx_id = ?, updated_ms = ? WHERE piaid = ? AND transaction_id = ? AND state = 'issued'`,
		p.PaidAt.UnixMilli(), p.PaidMicros, p.IntegratorTransactionID, tx.now, piaid, transactionID); err != nil {
		return Code{}, err
	}
	return tx.Code(piaid, transactionID)
}

// Cancel moves an issued code to cancelled. A paid (or refunded) code gives
// a *StateError wrapping ErrAlreadyPaid; cancelled or expired ones
// ErrInvalidTransition.
func (tx *Tx) Cancel(piaid, transactionID string) (Code, error) {
	return tx.endIssued(piaid, transactionID, CodeCancelled, "cancel")
}

// Expire moves an issued code to expired.
func (tx *Tx) Expire(piaid, transactionID string) (Code, error) {
	return tx.endIssued(piaid, transactionID, CodeExpired, "expire")
}

func (tx *Tx) endIssued(piaid, transactionID string, to CodeState, op string) (Code, error) {
	c, err := tx.Code(piaid, transactionID)
	if err != nil {
		return Code{}, err
	}
	if c.State != CodeIssued {
		sentinel := ErrInvalidTransition
		if c.State == CodePaid || c.State == CodePartiallyRefunded || c.State == CodeRefunded {
			sentinel = ErrAlreadyPaid
		}
		return Code{}, &StateError{Kind: "code", ID: transactionID, From: string(c.State), Op: op, Err: sentinel}
	}
	if err := tx.exec1(op, `UPDATE codes SET state = ?, updated_ms = ? WHERE piaid = ? AND transaction_id = ? AND state = 'issued'`,
		string(to), tx.now, piaid, transactionID); err != nil {
		return Code{}, err
	}
	c.State, c.Updated = to, time.UnixMilli(tx.now)
	return c, nil
}

// ExpireDue expires up to limit issued codes whose ExpiresAt is at or before
// now and returns them (e.g. for an audit entry or a plugin hook).
func (l *Ledger) ExpireDue(ctx context.Context, now time.Time, limit int) ([]Code, error) {
	var out []Code
	err := l.Apply(ctx, func(tx *Tx) error {
		out = out[:0]
		rows, err := tx.w.query(`SELECT `+codeCols+` FROM codes WHERE state = 'issued' AND expires_ms <= ?
			ORDER BY expires_ms LIMIT ?`, now.UnixMilli(), limit)
		if err != nil {
			return err
		}
		for rows.Next() {
			c, err := scanCode(rows)
			if err != nil {
				rows.Close()
				return err
			}
			out = append(out, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for i := range out {
			c, err := tx.Expire(out[i].PIAID, out[i].TransactionID)
			if err != nil {
				return err
			}
			out[i] = c
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: expire codes: %w", err)
	}
	return out, nil
}

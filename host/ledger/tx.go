package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Tx is one Apply closure's view of the write transaction. Its reads see
// the transaction's own writes; its methods enforce the ledger invariants on
// re-read state, never on what the caller read earlier. Methods take no
// context: they run on the writer, whose statements must not be interrupted
// (see Apply).
type Tx struct {
	l    *Ledger
	w    *writer
	now  int64 // Unix ms when the closure started
	done bool
}

func (tx *Tx) check() error {
	if tx.done {
		return ErrTxDone
	}
	return nil
}

// Now is the time the closure started, used for created/updated columns.
func (tx *Tx) Now() time.Time { return time.UnixMilli(tx.now) }

// exec1 runs a statement that must change exactly one row.
func (tx *Tx) exec1(what, q string, args ...any) error {
	res, err := tx.w.exec(q, args...)
	if err != nil {
		return fmt.Errorf("ledger: %s: %w", what, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("ledger: %s: %d rows changed (%v)", what, n, err)
	}
	return nil
}

// msOrNil stores a zero time as NULL.
func msOrNil(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

func fromMS(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMilli(v.Int64)
}

func nullStr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// MerchantStatus is active or disabled.
type MerchantStatus string

// Merchant statuses.
const (
	MerchantActive   MerchantStatus = "active"
	MerchantDisabled MerchantStatus = "disabled"
)

// Merchant is one tenant of the gateway.
type Merchant struct {
	ID      string
	Name    string
	Status  MerchantStatus
	Created time.Time
}

// CreateMerchant adds a merchant (ErrDuplicate if the id exists).
func (tx *Tx) CreateMerchant(m Merchant) error {
	if err := tx.check(); err != nil {
		return err
	}
	if m.Status == "" {
		m.Status = MerchantActive
	}
	if m.ID == "" || (m.Status != MerchantActive && m.Status != MerchantDisabled) {
		return fmt.Errorf("ledger: merchant needs an id and status active|disabled")
	}
	res, err := tx.w.exec(`INSERT INTO merchants(id, name, status, created_ms) VALUES (?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`, m.ID, m.Name, string(m.Status), tx.now)
	if err != nil {
		return fmt.Errorf("ledger: create merchant: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: merchant %s", ErrDuplicate, m.ID)
	}
	return nil
}

// SetMerchantStatus enables or disables a merchant.
func (tx *Tx) SetMerchantStatus(id string, s MerchantStatus) error {
	if err := tx.check(); err != nil {
		return err
	}
	if s != MerchantActive && s != MerchantDisabled {
		return fmt.Errorf("ledger: bad merchant status %q", s)
	}
	res, err := tx.w.exec(`UPDATE merchants SET status = ? WHERE id = ?`, string(s), id)
	if err != nil {
		return fmt.Errorf("ledger: set merchant status: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: merchant %s", ErrNotFound, id)
	}
	return nil
}

// AddPIAID registers a payment integrator account id to a merchant. A PIAID
// belongs to exactly one merchant (ErrDuplicate otherwise).
func (tx *Tx) AddPIAID(piaid, merchantID string) error {
	if err := tx.check(); err != nil {
		return err
	}
	var one int
	if err := tx.w.queryRow(`SELECT 1 FROM merchants WHERE id = ?`, merchantID).Scan(&one); err != nil {
		return fmt.Errorf("ledger: add PIAID: merchant %s: %w", merchantID, notFound(err))
	}
	res, err := tx.w.exec(`INSERT INTO piaids(piaid, merchant_id, created_ms) VALUES (?, ?, ?)
		ON CONFLICT (piaid) DO NOTHING`, piaid, merchantID, tx.now)
	if err != nil {
		return fmt.Errorf("ledger: add PIAID: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: PIAID %s", ErrDuplicate, piaid)
	}
	return nil
}

const sqlMerchantByPIAID = `SELECT m.id, m.name, m.status, m.created_ms FROM piaids p
	JOIN merchants m ON m.id = p.merchant_id WHERE p.piaid = ?`

func scanMerchant(s rowScanner) (Merchant, error) {
	var m Merchant
	var st string
	var created int64
	if err := s.Scan(&m.ID, &m.Name, &st, &created); err != nil {
		return Merchant{}, notFound(err)
	}
	m.Status, m.Created = MerchantStatus(st), time.UnixMilli(created)
	return m, nil
}

// MerchantByPIAID returns the merchant owning piaid, or ErrUnknownPIAID.
func (l *Ledger) MerchantByPIAID(ctx context.Context, piaid string) (Merchant, error) {
	m, err := scanMerchant(l.readRow(ctx, sqlMerchantByPIAID, piaid))
	if err == ErrNotFound {
		return Merchant{}, fmt.Errorf("%w: %s", ErrUnknownPIAID, piaid)
	}
	return m, err
}

// Merchant returns one merchant by id.
func (l *Ledger) Merchant(ctx context.Context, id string) (Merchant, error) {
	return scanMerchant(l.readRow(ctx, `SELECT id, name, status, created_ms FROM merchants WHERE id = ?`, id))
}

// MerchantIDs lists every merchant's id, sorted.
func (l *Ledger) MerchantIDs(ctx context.Context) ([]string, error) {
	rows, err := l.readRows(ctx, `SELECT id FROM merchants ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("ledger: list merchants: %w", err)
	}
	return scanStrings(rows)
}

// PIAIDs lists the PIAIDs of a merchant.
func (l *Ledger) PIAIDs(ctx context.Context, merchantID string) ([]string, error) {
	rows, err := l.readRows(ctx, sqlPIAIDsOf, merchantID)
	if err != nil {
		return nil, fmt.Errorf("ledger: list PIAIDs: %w", err)
	}
	return scanStrings(rows)
}

const sqlPIAIDsOf = `SELECT piaid FROM piaids WHERE merchant_id = ? ORDER BY piaid`

// scanStrings reads a one-column result and closes rows.
func scanStrings(rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

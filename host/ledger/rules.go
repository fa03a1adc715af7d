package ledger

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrInvalidRules marks amount rules that could never be met or stored.
var ErrInvalidRules = errors.New("ledger: invalid amount rules")

// AmountRules are what one PIAID takes in generateReferenceNumber: the
// host refuses anything else with invalidFieldValue before the merchant's
// plugin is woken. The zero value takes any currency and any positive
// amount.
type AmountRules struct {
	// Currencies are the ISO 4217 codes taken; empty takes any.
	Currencies []string `json:"currencies,omitempty"`
	// MinMicros is the smallest amount taken; 0 means no minimum.
	MinMicros int64 `json:"minAmountMicros,omitempty"`
	// MaxMicros is the largest amount taken; 0 means no maximum.
	MaxMicros int64 `json:"maxAmountMicros,omitempty"`
}

// IsZero reports whether r restricts nothing.
func (r AmountRules) IsZero() bool {
	return len(r.Currencies) == 0 && r.MinMicros == 0 && r.MaxMicros == 0
}

// Valid reports a rule that could never be met or stored.
func (r AmountRules) Valid() error {
	switch {
	case r.MinMicros < 0 || r.MaxMicros < 0:
		return fmt.Errorf("%w: amount bounds must not be negative", ErrInvalidRules)
	case r.MaxMicros != 0 && r.MinMicros > r.MaxMicros:
		return fmt.Errorf("%w: minimum %d above maximum %d micros", ErrInvalidRules, r.MinMicros, r.MaxMicros)
	}
	for _, c := range r.Currencies {
		if len(c) != 3 || strings.ToUpper(c) != c || strings.ContainsAny(c, ",0123456789") {
			return fmt.Errorf("%w: %q is not an ISO 4217 currency code", ErrInvalidRules, c)
		}
	}
	return nil
}

// Takes reports whether an amount fits the rules; field names what does
// not ("amount.currencyCode" or "amount.amountMicros").
func (r AmountRules) Takes(micros int64, currency string) (field string, ok bool) {
	if len(r.Currencies) > 0 && !slices.Contains(r.Currencies, currency) {
		return "amount.currencyCode", false
	}
	if micros < r.MinMicros || (r.MaxMicros != 0 && micros > r.MaxMicros) {
		return "amount.amountMicros", false
	}
	return "", true
}

// SetAmountRules sets (or, with the zero value, clears) a PIAID's rules.
func (tx *Tx) SetAmountRules(piaid string, r AmountRules) error {
	if err := tx.check(); err != nil {
		return err
	}
	if err := r.Valid(); err != nil {
		return err
	}
	var one int
	if err := tx.w.queryRow(`SELECT 1 FROM piaids WHERE piaid = ?`, piaid).Scan(&one); err != nil {
		return fmt.Errorf("%w: %s", ErrUnknownPIAID, piaid)
	}
	if r.IsZero() {
		if _, err := tx.w.exec(`DELETE FROM piaid_rules WHERE piaid = ?`, piaid); err != nil {
			return fmt.Errorf("ledger: clear amount rules: %w", err)
		}
		return nil
	}
	if _, err := tx.w.exec(`INSERT INTO piaid_rules(piaid, currencies, min_micros, max_micros, updated_ms)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (piaid) DO UPDATE SET currencies = excluded.currencies, min_micros = excluded.min_micros,
			max_micros = excluded.max_micros, updated_ms = excluded.updated_ms`,
		piaid, strings.Join(r.Currencies, ","), r.MinMicros, r.MaxMicros, tx.now); err != nil {
		return fmt.Errorf("ledger: set amount rules: %w", err)
	}
	return nil
}

// AmountRules returns the rules of a merchant's PIAIDs that have any.
func (l *Ledger) AmountRules(ctx context.Context, merchantID string) (map[string]AmountRules, error) {
	rows, err := l.readRows(ctx, `SELECT r.piaid, r.currencies, r.min_micros, r.max_micros FROM piaid_rules r
		JOIN piaids p ON p.piaid = r.piaid WHERE p.merchant_id = ?`, merchantID)
	if err != nil {
		return nil, fmt.Errorf("ledger: amount rules: %w", err)
	}
	defer rows.Close()
	out := map[string]AmountRules{}
	for rows.Next() {
		var piaid, cur string
		var r AmountRules
		if err := rows.Scan(&piaid, &cur, &r.MinMicros, &r.MaxMicros); err != nil {
			return nil, err
		}
		if cur != "" {
			r.Currencies = strings.Split(cur, ",")
		}
		out[piaid] = r
	}
	return out, rows.Err()
}

// RemainingMicros is how much of a paid code can still be refunded: paid
// minus succeeded and in-flight (acknowledged) refunds, as committed now.
// AddRefund checks it again inside its transaction.
func (l *Ledger) RemainingMicros(ctx context.Context, piaid, transactionID string) (int64, error) {
	var remaining int64
	err := l.readRow(ctx, `SELECT c.paid_micros - COALESCE((SELECT SUM(r.amount_micros) FROM refunds r
		WHERE r.piaid = c.piaid AND r.transaction_id = c.transaction_id AND r.state IN ('succeeded','acknowledged')), 0)
		FROM codes c WHERE c.piaid = ? AND c.transaction_id = ?`, piaid, transactionID).Scan(&remaining)
	if err != nil {
		return 0, fmt.Errorf("ledger: remaining amount: %w", notFound(err))
	}
	return remaining, nil
}

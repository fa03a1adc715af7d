package ledger

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// InUseError says which records keep a merchant or PIAID from being deleted
// or released. Records are keyed by PIAID (a Google replay of an old
// requestId finds its answer by PIAID), so a PIAID that holds any stays with
// its merchant for good: handing it to another merchant would show that
// merchant the old one's answers and codes.
type InUseError struct {
	// Subject is "merchant ID" or "PIAID X".
	Subject string
	// Records counts rows per table.
	Records map[string]int64
}

func (e *InUseError) Error() string {
	parts := make([]string, 0, len(e.Records))
	for _, t := range slices.Sorted(maps.Keys(e.Records)) {
		parts = append(parts, fmt.Sprintf("%d %s", e.Records[t], t))
	}
	return fmt.Sprintf("%s holds records (%s)", e.Subject, strings.Join(parts, ", "))
}

func (e *InUseError) Unwrap() error { return ErrInUse }

// piaidTables are the tables whose rows belong to a PIAID.
var piaidTables = []string{"idempotency", "codes", "refunds", "associations", "auth_sessions", "statements", "outbox"}

// records counts the rows of the given PIAIDs and, if merchantID is set, of
// the merchant's KV namespace.
func (tx *Tx) records(merchantID string, piaids []string) (map[string]int64, error) {
	out := map[string]int64{}
	add := func(table, q string, args ...any) error {
		var n int64
		if err := tx.w.queryRow(q, args...).Scan(&n); err != nil {
			return fmt.Errorf("ledger: count %s: %w", table, err)
		}
		if n > 0 {
			out[table] += n
		}
		return nil
	}
	for _, p := range piaids {
		for _, t := range piaidTables {
			if err := add(t, `SELECT COUNT(*) FROM `+t+` WHERE piaid = ?`, p); err != nil {
				return nil, err
			}
		}
	}
	if merchantID != "" {
		if err := add("kv", `SELECT COUNT(*) FROM kv WHERE namespace = ?`, merchantID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// disabledMerchant returns the merchant, refusing an unknown or active one.
func (tx *Tx) disabledMerchant(id string) (Merchant, error) {
	m, err := scanMerchant(tx.w.queryRow(`SELECT id, name, status, created_ms FROM merchants WHERE id = ?`, id))
	if err != nil {
		return Merchant{}, fmt.Errorf("ledger: merchant %s: %w", id, err)
	}
	if m.Status != MerchantDisabled {
		return Merchant{}, fmt.Errorf("%w: merchant %s (disable it first)", ErrMerchantActive, id)
	}
	return m, nil
}

func (tx *Tx) piaidsOf(merchantID string) ([]string, error) {
	rows, err := tx.w.query(sqlPIAIDsOf, merchantID)
	if err != nil {
		return nil, fmt.Errorf("ledger: list PIAIDs: %w", err)
	}
	return scanStrings(rows)
}

// DeleteMerchant removes a disabled merchant that never held a record: its
// PIAIDs, their amount rules and the merchant. Refused with
// ErrMerchantActive (disable first), ErrNotFound, or an *InUseError. The
// audit log keeps its entries; the caller audits the deletion.
func (tx *Tx) DeleteMerchant(id string) error {
	if err := tx.check(); err != nil {
		return err
	}
	if _, err := tx.disabledMerchant(id); err != nil {
		return err
	}
	piaids, err := tx.piaidsOf(id)
	if err != nil {
		return err
	}
	recs, err := tx.records(id, piaids)
	if err != nil {
		return err
	}
	if len(recs) > 0 {
		return &InUseError{Subject: "merchant " + id, Records: recs}
	}
	for _, q := range []string{
		`DELETE FROM piaid_rules WHERE piaid IN (SELECT piaid FROM piaids WHERE merchant_id = ?)`,
		`DELETE FROM piaids WHERE merchant_id = ?`,
		`DELETE FROM kv_usage WHERE namespace = ?`,
		`DELETE FROM merchant_quotas WHERE merchant_id = ?`,
	} {
		if _, err := tx.w.exec(q, id); err != nil {
			return fmt.Errorf("ledger: delete merchant %s: %w", id, err)
		}
	}
	return tx.exec1("delete merchant", `DELETE FROM merchants WHERE id = ?`, id)
}

// ReleasePIAID takes a PIAID that never held a record away from its
// disabled merchant, so that another merchant can be given it (a PIAID
// configured on the wrong merchant). Refused with ErrMerchantActive,
// ErrUnknownPIAID (not this merchant's), or an *InUseError.
func (tx *Tx) ReleasePIAID(merchantID, piaid string) error {
	if err := tx.check(); err != nil {
		return err
	}
	if _, err := tx.disabledMerchant(merchantID); err != nil {
		return err
	}
	var owner string
	if err := tx.w.queryRow(`SELECT merchant_id FROM piaids WHERE piaid = ?`, piaid).Scan(&owner); err != nil || owner != merchantID {
		return fmt.Errorf("%w: %s is not a PIAID of merchant %s", ErrUnknownPIAID, piaid, merchantID)
	}
	recs, err := tx.records("", []string{piaid})
	if err != nil {
		return err
	}
	if len(recs) > 0 {
		return &InUseError{Subject: "PIAID " + piaid, Records: recs}
	}
	if _, err := tx.w.exec(`DELETE FROM piaid_rules WHERE piaid = ?`, piaid); err != nil {
		return fmt.Errorf("ledger: release PIAID %s: %w", piaid, err)
	}
	return tx.exec1("release PIAID", `DELETE FROM piaids WHERE piaid = ?`, piaid)
}

// Exec runs a statement of another component in this write transaction, for
// tables that live in the ledger's database and must change atomically with
// the ledger's rows (a deleted merchant's integration, plugin versions and
// tokens). It returns the number of rows changed.
func (tx *Tx) Exec(q string, args ...any) (int64, error) {
	if err := tx.check(); err != nil {
		return 0, err
	}
	res, err := tx.w.exec(q, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

package keystore

// This file holds the read side of key metadata: listings, expiry, events.

import (
	"context"
	"fmt"
	"time"
)

// Event is one entry of the audit trail.
type Event struct {
	Seq      int64
	At       time.Time
	Actor    string
	KeysetID string
	KeyID    string
	From, To State
	Note     string
}

const keyInfoCols = `keyset_id, id, kind, owner, state, algorithm, user_id, can_encrypt, can_sign,
	private_sealed IS NOT NULL, created_ns, expires_ns, added_ns`

type rowScanner interface{ Scan(dest ...any) error }

func scanKeyInfo(r rowScanner) (KeyInfo, error) {
	var (
		k                       KeyInfo
		created, expires, added int64
	)
	err := r.Scan(&k.KeysetID, &k.ID, &k.Kind, &k.Owner, &k.State, &k.Algorithm, &k.UserID, &k.CanEncrypt, &k.CanSign,
		&k.HasPrivate, &created, &expires, &added)
	k.Created, k.Expires, k.Added = fromNS(created), fromNS(expires), fromNS(added)
	return k, err
}

func (s *Store) queryKeyInfos(ctx context.Context, q string, args ...any) ([]KeyInfo, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+keyInfoCols+` FROM keystore_keys `+q, args...)
	if err != nil {
		return nil, fmt.Errorf("keystore: list keys: %w", err)
	}
	defer rows.Close()
	var out []KeyInfo
	for rows.Next() {
		k, err := scanKeyInfo(rows)
		if err != nil {
			return nil, fmt.Errorf("keystore: list keys: %w", err)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// List returns the keys of a keyset, oldest first.
func (s *Store) List(ctx context.Context, keysetID string) ([]KeyInfo, error) {
	if _, err := keysetInfo(ctx, s.db, keysetID); err != nil {
		return nil, err
	}
	return s.queryKeyInfos(ctx, `WHERE keyset_id = ? ORDER BY created_ns, id`, keysetID)
}

// ExpiringWithin lists keys of every keyset that are still in service
// (pending, active, primary or retiring) and expire before now + days
// days, including those already expired; soonest first. The host warns at
// 30 and 7 days.
func (s *Store) ExpiringWithin(ctx context.Context, days int, now time.Time) ([]KeyInfo, error) {
	limit := now.Add(time.Duration(days) * 24 * time.Hour)
	return s.queryKeyInfos(ctx, `WHERE expires_ns > 0 AND expires_ns < ?
		AND state IN ('pending', 'active', 'primary', 'retiring') ORDER BY expires_ns, keyset_id, id`, limit.UnixNano())
}

// Events returns the audit trail of a keyset in order; keysetID "" returns
// every keyset's events and store-wide ones (KEK rotation).
func (s *Store) Events(ctx context.Context, keysetID string) ([]Event, error) {
	q := `SELECT seq, at_ns, actor, keyset_id, key_id, from_state, to_state, note FROM keystore_events`
	var args []any
	if keysetID != "" {
		q += ` WHERE keyset_id = ?`
		args = append(args, keysetID)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY seq`, args...)
	if err != nil {
		return nil, fmt.Errorf("keystore: events: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var (
			e  Event
			at int64
		)
		if err := rows.Scan(&e.Seq, &at, &e.Actor, &e.KeysetID, &e.KeyID, &e.From, &e.To, &e.Note); err != nil {
			return nil, fmt.Errorf("keystore: events: %w", err)
		}
		e.At = fromNS(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

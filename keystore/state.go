package keystore

import (
	"github.com/otpcgate/otpcgate/internal/db"

	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"
)

// transitions is the key state machine. Promotion to primary happens only
// from active; the key it replaces is demoted to active in the same
// transaction (never by a direct SetState), so there is never a moment
// without a primary during a rotation. primary→disabled is the one way to
// drop a primary without a successor: the emergency exit for a compromised
// key. destroyed is final.
var transitions = map[State][]State{
	StatePending:   {StateActive, StateDisabled},
	StateActive:    {StatePrimary, StateRetiring, StateDisabled},
	StatePrimary:   {StateDisabled},
	StateRetiring:  {StateActive, StateDisabled},
	StateDisabled:  {StateActive, StateDestroyed},
	StateDestroyed: nil,
}

// CanTransition reports whether SetState allows from → to.
func CanTransition(from, to State) bool {
	return slices.Contains(transitions[from], to)
}

// validState reports whether s is one of the six states.
func validState(s State) bool {
	_, ok := transitions[s]
	return ok
}

// holdsPrivateInMemory reports whether snapshots carry the decrypted private
// half of a self key in state s. Disabled keys are kept at rest only, so a
// key taken out of service also leaves process memory.
func holdsPrivateInMemory(s State) bool {
	switch s {
	case StatePending, StateActive, StatePrimary, StateRetiring:
		return true
	}
	return false
}

// SetState moves a key through the state machine (see CanTransition),
// recording who did it. Promoting a key to primary demotes the owner's
// previous primary to active in the same transaction; a primary key can
// otherwise only be disabled. Refused, with the listed sentinel: an illegal
// transition (ErrIllegalTransition); activating or promoting an expired key
// (ErrExpired); promoting a peer key that cannot be encrypted to
// (ErrNoEncryptionKey) or a self key without private material or signing
// capability (ErrNoPrivateKey, ErrCannotSign). Moving to destroyed erases the
// private material: the row is cleared with secure_delete on and the WAL is
// checkpointed, so the wrapped key leaves the database files too.
func (s *Store) SetState(ctx context.Context, actor, keysetID, keyID string, newState State) error {
	if !validState(newState) {
		return fmt.Errorf("%w: unknown state %q", ErrIllegalTransition, newState)
	}
	err := s.write(ctx, keysetID, func(tx *sql.Tx) error {
		k, err := scanKeyInfo(tx.QueryRowContext(ctx, `SELECT `+keyInfoCols+` FROM keystore_keys WHERE keyset_id = ? AND id = ?`, keysetID, keyID))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: key %s in keyset %s", ErrNotFound, keyID, keysetID)
		}
		if err != nil {
			return fmt.Errorf("keystore: read key %s: %w", keyID, err)
		}
		if !CanTransition(k.State, newState) {
			return fmt.Errorf("%w: %s → %s for key %s", ErrIllegalTransition, k.State, newState, keyID)
		}
		now := s.now().UTC()
		if (newState == StateActive || newState == StatePrimary) && !k.Expires.IsZero() && !now.Before(k.Expires) {
			return fmt.Errorf("%w: key %s expired on %s", ErrExpired, keyID, k.Expires.Format(time.DateOnly))
		}
		if newState == StatePrimary {
			switch {
			case k.Owner == OwnerPeer && !k.CanEncrypt:
				return fmt.Errorf("%w: peer key %s cannot be primary", ErrNoEncryptionKey, keyID)
			case k.Owner == OwnerSelf && !k.HasPrivate:
				return fmt.Errorf("%w: self key %s cannot be primary", ErrNoPrivateKey, keyID)
			case k.Owner == OwnerSelf && !k.CanSign:
				return fmt.Errorf("%w: self key %s cannot be primary", ErrCannotSign, keyID)
			}
			var prev string
			err := tx.QueryRowContext(ctx, `SELECT id FROM keystore_keys WHERE keyset_id = ? AND owner = ? AND state = 'primary'`,
				keysetID, string(k.Owner)).Scan(&prev)
			switch {
			case errors.Is(err, sql.ErrNoRows):
			case err != nil:
				return fmt.Errorf("keystore: find primary: %w", err)
			default:
				if _, err := tx.ExecContext(ctx, `UPDATE keystore_keys SET state = 'active', updated_ns = ? WHERE keyset_id = ? AND id = ?`,
					now.UnixNano(), keysetID, prev); err != nil {
					return fmt.Errorf("keystore: demote %s: %w", prev, err)
				}
				if err := addEvent(ctx, tx, now, actor, keysetID, prev, StatePrimary, StateActive, "replaced as primary by "+keyID); err != nil {
					return err
				}
			}
		}
		q := `UPDATE keystore_keys SET state = ?, updated_ns = ? WHERE keyset_id = ? AND id = ?`
		note := ""
		if newState == StateDestroyed {
			q = `UPDATE keystore_keys SET state = ?, updated_ns = ?, private_sealed = NULL WHERE keyset_id = ? AND id = ?`
			if k.HasPrivate {
				note = "private material erased"
			}
		}
		if _, err := tx.ExecContext(ctx, q, string(newState), now.UnixNano(), keysetID, keyID); err != nil {
			return fmt.Errorf("keystore: set state of %s: %w", keyID, err)
		}
		return addEvent(ctx, tx, now, actor, keysetID, keyID, k.State, newState, note)
	})
	if err != nil {
		return err
	}
	if newState == StateDestroyed {
		// Best effort: a reader holding an old snapshot can keep the
		// checkpoint (or the vacuum) from finishing; the next one completes
		// it. On PostgreSQL the old row version stays in the table's free
		// space until overwritten and in WAL archives until they expire —
		// sealed under the KEK either way (docs/operations.md).
		q := `PRAGMA wal_checkpoint(TRUNCATE)`
		if db.EngineOf(s.db) == db.Postgres {
			q = `VACUUM keys`
		}
		if _, err := s.db.ExecContext(ctx, q); err != nil {
			s.log.Warn("keystore: cleanup after destroy failed", "err", err)
		}
	}
	s.log.Info("key state changed", "keyset", keysetID, "key", keyID, "to", newState, "actor", actor)
	return nil
}

package keystore

// This file holds key import: gpg exports (armored or binary) and JWK/JWKS.

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"time"
)

// ImportOptions tunes Import.
type ImportOptions struct {
	// Passphrase decrypts passphrase-protected OpenPGP secret keys; the key
	// is stored re-wrapped by the KEK, never with the passphrase.
	Passphrase []byte
	// AllowExpired imports expired keys in state disabled (kept for the
	// record or to decrypt old data offline, never for traffic) instead of
	// refusing them with ErrExpired.
	AllowExpired bool
	// Expires sets the expiry of imported JWKs, which carry none of their
	// own; zero means no recorded expiry. Ignored for OpenPGP keys.
	Expires time.Time
}

// Import adds the keys found in data to the keyset, all or nothing, in state
// pending (or disabled, see ImportOptions.AllowExpired).
//
// PGP keysets take armored or binary OpenPGP public keys (owner peer) or
// secret keys (owner self), several per input, as written by gpg --export
// [--armor] and gpg --export-secret-keys [--armor]. JWK keysets take a JWK or
// a JWKS, public (peer) or private (self). Refused with a wrapped sentinel:
// RSA under 2048 bits (ErrWeakKey), kty oct (ErrSymmetricKey), expired
// (ErrExpired), revoked (ErrRevoked), OpenPGP keys without an
// encryption-capable (sub)key (ErrNoEncryptionKey), private material for a
// peer (ErrUnexpectedPrivate), public-only material for self
// (ErrNoPrivateKey), a key already in the keyset (ErrDuplicateKey).
func (s *Store) Import(ctx context.Context, actor, keysetID string, owner Owner, data []byte, opts ImportOptions) ([]KeyInfo, error) {
	if owner != OwnerSelf && owner != OwnerPeer {
		return nil, fmt.Errorf("keystore: unknown owner %q", owner)
	}
	info, err := keysetInfo(ctx, s.db, keysetID)
	if err != nil {
		return nil, err
	}
	ms, err := parseImport(info, keysetID, owner, data, opts, s.now())
	if err != nil {
		return nil, err
	}
	return s.insert(ctx, actor, keysetID, info.Kind, owner, ms, StatePending, "imported")
}

// parseImport turns untrusted import data into checked materials. A panic
// in a parser is reported as ErrMalformed rather than taking the host down.
func parseImport(info KeysetInfo, keysetID string, owner Owner, data []byte, opts ImportOptions, now time.Time) (ms []*material, err error) {
	defer func() {
		if r := recover(); r != nil {
			ms, err = nil, fmt.Errorf("%w: parser panic: %v", ErrMalformed, r)
		}
	}()
	switch info.Kind {
	case KindPGP:
		if looksJSON(data) {
			return nil, fmt.Errorf("%w: JWK data for PGP keyset %s", ErrKindMismatch, keysetID)
		}
		el, err := readPGP(data)
		if err != nil {
			return nil, err
		}
		for _, e := range el {
			m, err := pgpMaterial(e, owner, opts.Passphrase, now, opts.AllowExpired)
			if err != nil {
				return nil, err
			}
			ms = append(ms, m)
		}
	case KindJWK:
		if !looksJSON(data) {
			return nil, fmt.Errorf("%w: non-JSON data for JWK keyset %s", ErrKindMismatch, keysetID)
		}
		raws, err := splitJWKs(data)
		if err != nil {
			return nil, err
		}
		for _, raw := range raws {
			m, err := jwkMaterial(raw, owner, now)
			if err != nil {
				return nil, err
			}
			m.expires = opts.Expires.UTC()
			if !m.expires.IsZero() && !now.Before(m.expires) && !opts.AllowExpired {
				return nil, fmt.Errorf("JWK %q: %w", m.id, ErrExpired)
			}
			ms = append(ms, m)
		}
	}
	return ms, nil
}

func looksJSON(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && b[0] == '{'
}

// insert stores new keys; expired ones go in disabled.
func (s *Store) insert(ctx context.Context, actor, keysetID string, kind Kind, owner Owner, ms []*material, state State, how string) ([]KeyInfo, error) {
	var out []KeyInfo
	err := s.write(ctx, keysetID, func(tx *sql.Tx) error {
		now := s.now().UTC()
		seen := map[string]bool{}
		for _, m := range ms {
			if seen[m.id] {
				return fmt.Errorf("%w: %s appears twice in the input", ErrDuplicateKey, m.id)
			}
			seen[m.id] = true
			var exists int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM keystore_keys WHERE keyset_id = ? AND id = ?`, keysetID, m.id).Scan(&exists); err != nil {
				return fmt.Errorf("keystore: %w", err)
			}
			if exists > 0 {
				return fmt.Errorf("%w: %s in keyset %s", ErrDuplicateKey, m.id, keysetID)
			}
			st, note := state, how
			if !m.expires.IsZero() && !now.Before(m.expires) {
				st, note = StateDisabled, how+" expired (AllowExpired)"
			}
			var sealed []byte
			if m.private != nil {
				var err error
				if sealed, err = s.kek.seal(m.private, recordAAD(keysetID, m.id)); err != nil {
					return err
				}
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO keystore_keys(keyset_id, id, kind, owner, state, algorithm, user_id,
				can_encrypt, can_sign, created_ns, expires_ns, added_ns, updated_ns, public_material, private_sealed)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				keysetID, m.id, string(kind), string(owner), string(st), m.algorithm, m.userID,
				m.canEncrypt, m.canSign, toNS(m.created), toNS(m.expires), now.UnixNano(), now.UnixNano(), m.public, sealed); err != nil {
				return fmt.Errorf("keystore: store key %s: %w", m.id, err)
			}
			if err := addEvent(ctx, tx, now, actor, keysetID, m.id, "", st, fmt.Sprintf("%s %s %s key", note, m.algorithm, owner)); err != nil {
				return err
			}
			out = append(out, KeyInfo{KeysetID: keysetID, ID: m.id, Kind: kind, Owner: owner, State: st,
				Algorithm: m.algorithm, UserID: m.userID, CanEncrypt: m.canEncrypt, CanSign: m.canSign,
				HasPrivate: sealed != nil, Created: m.created, Expires: m.expires, Added: now})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("keys added", "keyset", keysetID, "count", len(out), "how", how, "actor", actor)
	return out, nil
}

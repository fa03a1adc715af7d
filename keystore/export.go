package keystore

// This file holds the export of public keys (armored PGP, JWKS).

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	jose "github.com/go-jose/go-jose/v4"
)

// ExportPublic returns the public halves of keys of the keyset: an armored
// OpenPGP public key block (PGP keysets; gpg --import reads it) or a JWKS
// (JWK keysets; public members only). With no keyIDs it exports our own
// keys that are pending, active, primary or retiring: what to send Google.
func (s *Store) ExportPublic(ctx context.Context, keysetID string, keyIDs ...string) ([]byte, error) {
	info, err := keysetInfo(ctx, s.db, keysetID)
	if err != nil {
		return nil, err
	}
	var publics [][]byte
	if len(keyIDs) == 0 {
		rows, err := s.db.QueryContext(ctx, `SELECT public_material FROM keystore_keys WHERE keyset_id = ? AND owner = 'self'
			AND state IN ('pending', 'active', 'primary', 'retiring') ORDER BY created_ns, id`, keysetID)
		if err != nil {
			return nil, fmt.Errorf("keystore: export: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var p []byte
			if err := rows.Scan(&p); err != nil {
				return nil, fmt.Errorf("keystore: export: %w", err)
			}
			publics = append(publics, p)
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("keystore: export: %w", err)
		}
	}
	for _, id := range keyIDs {
		var p []byte
		err := s.db.QueryRowContext(ctx, `SELECT public_material FROM keystore_keys WHERE keyset_id = ? AND id = ?`, keysetID, id).Scan(&p)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("%w: key %s in keyset %s", ErrNotFound, id, keysetID)
		}
		if err != nil {
			return nil, fmt.Errorf("keystore: export: %w", err)
		}
		publics = append(publics, p)
	}
	if len(publics) == 0 {
		return nil, fmt.Errorf("%w: keyset %s has no key to export", ErrNotFound, keysetID)
	}
	switch info.Kind {
	case KindPGP:
		var buf bytes.Buffer
		w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
		if err != nil {
			return nil, fmt.Errorf("keystore: export: %w", err)
		}
		for _, p := range publics {
			if _, err := w.Write(p); err != nil {
				return nil, fmt.Errorf("keystore: export: %w", err)
			}
		}
		if err := w.Close(); err != nil {
			return nil, fmt.Errorf("keystore: export: %w", err)
		}
		buf.WriteByte('\n')
		return buf.Bytes(), nil
	default:
		// The stored material is already the public JWK; re-parse and
		// re-marshal through Public() anyway, so no private member can
		// ever leave through this path.
		set := struct {
			Keys []json.RawMessage `json:"keys"`
		}{}
		for _, p := range publics {
			var j jose.JSONWebKey
			if err := j.UnmarshalJSON(p); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrCorruptRecord, err)
			}
			pub := j.Public()
			b, err := pub.MarshalJSON()
			if err != nil {
				return nil, fmt.Errorf("keystore: export: %w", err)
			}
			set.Keys = append(set.Keys, b)
		}
		return json.MarshalIndent(set, "", "  ")
	}
}

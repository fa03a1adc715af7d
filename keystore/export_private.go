package keystore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
)

// ExportPrivate returns the private half of one self key, unencrypted:
// armored OpenPGP secret keys as gpg --export-secret-keys --armor writes
// them, or a private JWK set. It exists for development installations and
// the Google simulator, whose "Google" keys must reach external test
// clients; production keys should never leave the store, so every call is
// logged as a warning.
func (s *Store) ExportPrivate(ctx context.Context, keysetID, keyID string) ([]byte, error) {
	ks, err := s.Keyset(ctx, keysetID)
	if err != nil {
		return nil, err
	}
	k := ks.Key(keyID)
	if k == nil || k.Owner != OwnerSelf {
		return nil, fmt.Errorf("%w: self key %s in keyset %s", ErrNotFound, keyID, keysetID)
	}
	s.log.WarnContext(ctx, "private key exported", "keyset", keysetID, "key", keyID)
	switch ks.Kind {
	case KindPGP:
		if k.PGP == nil || k.PGP.PrivateKey == nil {
			return nil, fmt.Errorf("%w: key %s", ErrNoPrivateKey, keyID)
		}
		var buf bytes.Buffer
		w, err := armor.Encode(&buf, openpgp.PrivateKeyType, nil)
		if err != nil {
			return nil, fmt.Errorf("keystore: export private: %w", err)
		}
		if err := k.PGP.SerializePrivateWithoutSigning(w, nil); err != nil {
			return nil, fmt.Errorf("keystore: export private: %w", err)
		}
		if err := w.Close(); err != nil {
			return nil, fmt.Errorf("keystore: export private: %w", err)
		}
		buf.WriteByte('\n')
		return buf.Bytes(), nil
	default:
		if k.JWK == nil || k.JWK.IsPublic() {
			return nil, fmt.Errorf("%w: key %s", ErrNoPrivateKey, keyID)
		}
		b, err := json.Marshal(struct {
			Keys []any `json:"keys"`
		}{[]any{k.JWK}})
		if err != nil {
			return nil, fmt.Errorf("keystore: export private: %w", err)
		}
		return b, nil
	}
}

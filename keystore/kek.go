package keystore

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// Environment variables that carry the key-encryption key (KEK). OTPCGATE_KEK
// wins when both are set.
const (
	// EnvKEK holds the KEK itself, 32 bytes in standard or URL-safe base64
	// (padded or not).
	EnvKEK = "OTPCGATE_KEK"
	// EnvKEKFile names a file holding the KEK in base64 (as written by
	// WriteKEKFile) or as 32 raw bytes.
	EnvKEKFile = "OTPCGATE_KEK_FILE"
)

// KEKSize is the length of a key-encryption key: an AES-256 key.
const KEKSize = 32

// KEK is the key-encryption key that wraps every private key at rest with
// AES-256-GCM. The zero value is not usable; build one with GenerateKEK,
// ParseKEK, ReadKEKFile or LoadKEK.
type KEK struct {
	aead cipher.AEAD
	raw  [KEKSize]byte
}

// NewKEK wraps 32 bytes of key material.
func NewKEK(raw []byte) (*KEK, error) {
	if len(raw) != KEKSize {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrBadKEK, len(raw), KEKSize)
	}
	k := &KEK{}
	copy(k.raw[:], raw)
	block, err := aes.NewCipher(k.raw[:])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKEK, err)
	}
	if k.aead, err = cipher.NewGCM(block); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKEK, err)
	}
	return k, nil
}

// GenerateKEK returns a fresh random KEK.
func GenerateKEK() (*KEK, error) {
	raw := make([]byte, KEKSize)
	if _, err := io.ReadFull(rand.Reader, raw); err != nil {
		return nil, fmt.Errorf("keystore: generate KEK: %w", err)
	}
	return NewKEK(raw)
}

// ParseKEK decodes a base64 (standard or URL alphabet, padding optional)
// KEK, surrounding white space ignored.
func ParseKEK(s string) (*KEK, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimRight(s, "=")
	s = strings.NewReplacer("+", "-", "/", "_").Replace(s)
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: not base64", ErrBadKEK)
	}
	return NewKEK(raw)
}

// Base64 returns the KEK as standard base64, the form WriteKEKFile writes and
// OTPCGATE_KEK accepts. Never log it.
func (k *KEK) Base64() string { return base64.StdEncoding.EncodeToString(k.raw[:]) }

// String is redacted so a KEK printed or logged by mistake leaks nothing.
func (k *KEK) String() string { return "keystore.KEK(redacted)" }

// GoString is redacted too (%#v).
func (k *KEK) GoString() string { return k.String() }

// LogValue keeps the KEK out of slog output.
func (k *KEK) LogValue() slog.Value { return slog.StringValue(k.String()) }

// WriteKEKFile writes k in base64 to a new file at path with mode 0600. It
// refuses to overwrite an existing file, so a KEK is never lost by accident.
func WriteKEKFile(path string, k *KEK) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("keystore: write KEK file: %w", err)
	}
	if _, err := f.WriteString(k.Base64() + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("keystore: write KEK file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("keystore: write KEK file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("keystore: write KEK file: %w", err)
	}
	return nil
}

// ReadKEKFile reads a KEK file: base64 text or exactly 32 raw bytes.
//
// A file that group or others may read is refused: the KEK unlocks every
// private key, so it must be readable by the gateway's user alone.
func ReadKEKFile(path string) (*KEK, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("keystore: read KEK file: %w", err)
	}
	if mode := st.Mode().Perm(); mode&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o; run: chmod 600 %s", ErrKEKFileMode, path, mode, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keystore: read KEK file: %w", err)
	}
	if len(b) == KEKSize && !isBase64Text(b) {
		return NewKEK(b)
	}
	return ParseKEK(string(b))
}

func isBase64Text(b []byte) bool {
	for _, c := range bytes.TrimSpace(b) {
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9',
			c == '+', c == '/', c == '-', c == '_', c == '=':
		default:
			return false
		}
	}
	return true
}

// LoadKEK reads the KEK from the environment through getenv (os.Getenv in
// production; a map lookup in tests): OTPCGATE_KEK, else the file named by
// OTPCGATE_KEK_FILE. Neither set is ErrNoKEK; there is no plaintext fallback.
func LoadKEK(getenv func(string) string) (*KEK, error) {
	if v := getenv(EnvKEK); v != "" {
		k, err := ParseKEK(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvKEK, err)
		}
		return k, nil
	}
	if p := getenv(EnvKEKFile); p != "" {
		k, err := ReadKEKFile(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvKEKFile, err)
		}
		return k, nil
	}
	return nil, ErrNoKEK
}

// seal encrypts plaintext with a fresh random nonce; the output is
// nonce || ciphertext || tag. aad binds the record to its row.
func (k *KEK) seal(plaintext, aad []byte) ([]byte, error) {
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
		return nil, fmt.Errorf("keystore: nonce: %w", err)
	}
	return k.aead.Seal(nonce, nonce, plaintext, aad), nil
}

// open reverses seal. Any failure is reported as errAuth; the caller decides
// whether that means the wrong KEK or a tampered record.
func (k *KEK) open(blob, aad []byte) ([]byte, error) {
	ns := k.aead.NonceSize()
	if len(blob) < ns+k.aead.Overhead() {
		return nil, errAuth
	}
	pt, err := k.aead.Open(nil, blob[:ns], blob[ns:], aad)
	if err != nil {
		return nil, errAuth
	}
	return pt, nil
}

var errAuth = fmt.Errorf("aes-gcm authentication failed")

// The KEK check value is a fixed plaintext sealed under the KEK when the
// database is first opened; opening it again at Open proves the configured
// KEK is the one the private keys were wrapped with, before any traffic.
var (
	kekCheckPlain = []byte("otpcgate keystore KEK check v1")
	kekCheckAAD   = []byte("otpcgate/keystore/kek-check")
)

// recordAAD binds a wrapped private key to its keyset and key id.
func recordAAD(keysetID, keyID string) []byte {
	return []byte("otpcgate/keystore/key\x00" + keysetID + "\x00" + keyID)
}

// Derive returns a 32-byte key for another purpose (HMAC-SHA256 of label
// under the KEK), so components such as the plugin cache get their own
// secret without a second key to manage. Different labels give independent
// keys; the KEK cannot be recovered from them.
func (k *KEK) Derive(label string) []byte {
	m := hmac.New(sha256.New, k.raw[:])
	m.Write([]byte("otpcgate/kek-derive\x00" + label))
	return m.Sum(nil)
}

// RotateKEK re-wraps every private key and the KEK check value under next in
// one transaction, then switches the Store to it. Other processes sharing
// the database must be restarted with the new KEK (their old one now fails
// with ErrWrongKEK at Open).
func (s *Store) RotateKEK(ctx context.Context, actor string, next *KEK) error {
	if next == nil {
		return ErrNoKEK
	}
	var n int
	err := s.writeThen(ctx, "", func(tx *sql.Tx) error {
		type rec struct {
			ks, id string
			blob   []byte
		}
		rows, err := tx.QueryContext(ctx, `SELECT keyset_id, id, private_sealed FROM keystore_keys WHERE private_sealed IS NOT NULL`)
		if err != nil {
			return fmt.Errorf("keystore: rotate KEK: %w", err)
		}
		var recs []rec
		for rows.Next() {
			var r rec
			if err := rows.Scan(&r.ks, &r.id, &r.blob); err != nil {
				rows.Close()
				return fmt.Errorf("keystore: rotate KEK: %w", err)
			}
			recs = append(recs, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("keystore: rotate KEK: %w", err)
		}
		for _, r := range recs {
			aad := recordAAD(r.ks, r.id)
			pt, err := s.kek.open(r.blob, aad)
			if err != nil {
				return fmt.Errorf("%w: keyset %s key %s", ErrCorruptRecord, r.ks, r.id)
			}
			sealed, err := next.seal(pt, aad)
			clear(pt)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE keystore_keys SET private_sealed = ? WHERE keyset_id = ? AND id = ?`, sealed, r.ks, r.id); err != nil {
				return fmt.Errorf("keystore: rotate KEK: %w", err)
			}
		}
		check, err := next.seal(kekCheckPlain, kekCheckAAD)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE keystore_meta SET value = ? WHERE name = 'kek_check'`, check); err != nil {
			return fmt.Errorf("keystore: rotate KEK: %w", err)
		}
		n = len(recs)
		return addEvent(ctx, tx, s.now().UTC(), actor, "", "", "", "", fmt.Sprintf("KEK rotated, %d private keys re-wrapped", n))
	}, func() { s.kek = next })
	if err != nil {
		return err
	}
	s.log.Info("KEK rotated", "keys", n, "actor", actor)
	return nil
}

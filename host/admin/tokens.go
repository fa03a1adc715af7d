package admin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/otpcgate/otpcgate/internal/db"
)

// Scope is what a token may do.
type Scope string

// Token scopes.
const (
	// ScopeOperator may call every endpoint.
	ScopeOperator Scope = "operator"
	// ScopeMerchant may read its own merchant, plugins, public keys,
	// events and metrics, and upload/activate its own plugins.
	ScopeMerchant Scope = "merchant"
)

// tokenPrefix marks otpcgate admin tokens so secret scanners can find them.
const tokenPrefix = "otpca_"

var tokenMigrations = []db.Migration{{Version: 1, SQL: `
CREATE TABLE admin_tokens (
	id          TEXT PRIMARY KEY,
	secret_hash BLOB NOT NULL,
	scope       TEXT NOT NULL CHECK (scope IN ('operator', 'merchant')),
	merchant_id TEXT NOT NULL DEFAULT '',
	name        TEXT NOT NULL DEFAULT '',
	created_ms  INTEGER NOT NULL,
	revoked_ms  INTEGER NOT NULL DEFAULT 0
);`}}

// Token is a token's record; the secret is never stored, only its SHA-256.
type Token struct {
	ID         string    `json:"id"`
	Scope      Scope     `json:"scope"`
	MerchantID string    `json:"merchantId,omitempty"`
	Name       string    `json:"name,omitempty"`
	Created    time.Time `json:"created"`
	Revoked    time.Time `json:"revoked,omitzero"`
}

// Actor names the token in the audit log: its id and name, never the secret.
func (t Token) Actor() string {
	if t.Scope == ScopeMerchant {
		return "token:" + t.ID + " (merchant " + t.MerchantID + ")"
	}
	return "token:" + t.ID + " (operator)"
}

// Errors of the token store.
var (
	// ErrUnauthenticated: no token, a malformed, unknown or revoked token.
	ErrUnauthenticated = errors.New("admin: missing, unknown or revoked token")
	// ErrTokenExists: bootstrap found an operator token already.
	ErrTokenExists = errors.New("admin: an operator token exists already")
	// ErrNotFound: no such object.
	ErrNotFound = errors.New("admin: not found")
)

// Tokens stores admin tokens in the gateway's SQLite file.
type Tokens struct{ db *sql.DB }

// OpenTokens migrates the token table in d.
func OpenTokens(ctx context.Context, d *sql.DB) (*Tokens, error) {
	if err := db.Migrate(ctx, d, "admin", tokenMigrations); err != nil {
		return nil, err
	}
	return &Tokens{db: d}, nil
}

// Issue creates a token and returns its record and its secret form, which
// is shown once and never stored.
func (s *Tokens) Issue(ctx context.Context, scope Scope, merchantID, name string) (Token, string, error) {
	if scope != ScopeOperator && scope != ScopeMerchant {
		return Token{}, "", fmt.Errorf("admin: unknown scope %q", scope)
	}
	if (scope == ScopeMerchant) != (merchantID != "") {
		return Token{}, "", errors.New("admin: a merchant token names exactly one merchant; an operator token none")
	}
	if err := checkTokenName(name); err != nil {
		return Token{}, "", err
	}
	var idb [8]byte
	var secret [32]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return Token{}, "", err
	}
	if _, err := rand.Read(secret[:]); err != nil {
		return Token{}, "", err
	}
	t := Token{ID: hex.EncodeToString(idb[:]), Scope: scope, MerchantID: merchantID, Name: name, Created: time.Now().UTC()}
	sum := sha256.Sum256(secret[:])
	if _, err := s.db.ExecContext(ctx, `INSERT INTO admin_tokens (id, secret_hash, scope, merchant_id, name, created_ms)
		VALUES (?, ?, ?, ?, ?, ?)`, t.ID, sum[:], string(scope), merchantID, name, t.Created.UnixMilli()); err != nil {
		return Token{}, "", fmt.Errorf("admin: issue token: %w", err)
	}
	return t, tokenPrefix + t.ID + "_" + base64.RawURLEncoding.EncodeToString(secret[:]), nil
}

// MaxTokenNameBytes bounds a token's name: it is shown in lists and
// written into every audit entry the token makes.
const MaxTokenNameBytes = 100

// checkTokenName refuses names that are too long or carry control
// characters (which would forge lines in logs and tables).
func checkTokenName(name string) error {
	if len(name) > MaxTokenNameBytes {
		return fmt.Errorf("%w: token name of %d bytes, at most %d", ErrInvalid, len(name), MaxTokenNameBytes)
	}
	if !utf8.ValidString(name) || strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return fmt.Errorf("%w: token name must be printable UTF-8", ErrInvalid)
	}
	return nil
}

// Bootstrap issues the first operator token. It refuses with ErrTokenExists
// when an unrevoked operator token exists, so it cannot be used to mint
// tokens on a running installation without --force.
func (s *Tokens) Bootstrap(ctx context.Context, name string, force bool) (Token, string, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM admin_tokens WHERE scope = 'operator' AND revoked_ms = 0`).Scan(&n); err != nil {
		return Token{}, "", fmt.Errorf("admin: bootstrap: %w", err)
	}
	if n > 0 && !force {
		return Token{}, "", ErrTokenExists
	}
	return s.Issue(ctx, ScopeOperator, "", name)
}

// Authenticate resolves a presented secret to its token. The id part selects
// the row; the secret is compared as SHA-256 in constant time.
func (s *Tokens) Authenticate(ctx context.Context, presented string) (Token, error) {
	rest, ok := strings.CutPrefix(presented, tokenPrefix)
	if !ok {
		return Token{}, ErrUnauthenticated
	}
	id, sec, ok := strings.Cut(rest, "_")
	if !ok || len(id) != 16 {
		return Token{}, ErrUnauthenticated
	}
	secret, err := base64.RawURLEncoding.DecodeString(sec)
	if err != nil {
		return Token{}, ErrUnauthenticated
	}
	t, hash, err := s.get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Token{}, ErrUnauthenticated
	}
	if err != nil {
		return Token{}, err
	}
	sum := sha256.Sum256(secret)
	if subtle.ConstantTimeCompare(sum[:], hash) != 1 || !t.Revoked.IsZero() {
		return Token{}, ErrUnauthenticated
	}
	return t, nil
}

func (s *Tokens) get(ctx context.Context, id string) (Token, []byte, error) {
	var t Token
	var hash []byte
	var scope string
	var created, revoked int64
	err := s.db.QueryRowContext(ctx, `SELECT id, secret_hash, scope, merchant_id, name, created_ms, revoked_ms
		FROM admin_tokens WHERE id = ?`, id).Scan(&t.ID, &hash, &scope, &t.MerchantID, &t.Name, &created, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return t, nil, fmt.Errorf("%w: token %s", ErrNotFound, id)
	}
	if err != nil {
		return t, nil, fmt.Errorf("admin: token %s: %w", id, err)
	}
	t.Scope, t.Created = Scope(scope), time.UnixMilli(created).UTC()
	if revoked != 0 {
		t.Revoked = time.UnixMilli(revoked).UTC()
	}
	return t, hash, nil
}

// Get returns one token's record.
func (s *Tokens) Get(ctx context.Context, id string) (Token, error) {
	t, _, err := s.get(ctx, id)
	return t, err
}

// List returns every token record, oldest first.
func (s *Tokens) List(ctx context.Context) ([]Token, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, scope, merchant_id, name, created_ms, revoked_ms FROM admin_tokens ORDER BY created_ms, id`)
	if err != nil {
		return nil, fmt.Errorf("admin: list tokens: %w", err)
	}
	defer rows.Close()
	var out []Token
	for rows.Next() {
		var t Token
		var scope string
		var created, revoked int64
		if err := rows.Scan(&t.ID, &scope, &t.MerchantID, &t.Name, &created, &revoked); err != nil {
			return nil, fmt.Errorf("admin: list tokens: %w", err)
		}
		t.Scope, t.Created = Scope(scope), time.UnixMilli(created).UTC()
		if revoked != 0 {
			t.Revoked = time.UnixMilli(revoked).UTC()
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// RevokeMerchant revokes every token of a merchant through exec, inside
// the transaction that deletes the merchant, so that a merchant created
// later with the same id never inherits them.
func RevokeMerchant(exec Exec, merchantID string, now time.Time) error {
	_, err := exec(`UPDATE admin_tokens SET revoked_ms = ? WHERE merchant_id = ? AND scope = 'merchant' AND revoked_ms = 0`,
		now.UnixMilli(), merchantID)
	if err != nil {
		return fmt.Errorf("admin: revoke tokens of merchant %s: %w", merchantID, err)
	}
	return nil
}

// Revoke marks a token revoked; it is refused from then on.
func (s *Tokens) Revoke(ctx context.Context, id string) (Token, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE admin_tokens SET revoked_ms = ? WHERE id = ? AND revoked_ms = 0`, time.Now().UnixMilli(), id)
	if err != nil {
		return Token{}, fmt.Errorf("admin: revoke token %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := s.Get(ctx, id); err != nil {
			return Token{}, err
		}
	}
	return s.Get(ctx, id)
}

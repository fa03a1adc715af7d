package keystore

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/otpcgate/otpcgate/internal/db"
)

// Store persists keysets in SQLite with private keys wrapped by the KEK, and
// serves immutable Keyset snapshots from an in-memory cache. Use counters
// (Counters) are in memory only; they are for metrics, not persisted.
//
// The request path calls Keyset, which costs one atomic load and a map
// lookup once the keyset is cached. Every change made through the Store
// rebuilds the affected snapshot and publishes a new cache map (copy on
// write); snapshots already handed out stay valid and unchanged. Hosts that
// share the database with other processes call Sync (or run Watch) to notice
// changes made elsewhere.
type Store struct {
	db  *sql.DB
	log *slog.Logger
	now func() time.Time

	// mu serialises writers, cache fills and every use of kek, so a snapshot
	// built from older rows can never overwrite a newer one.
	mu  sync.Mutex
	kek *KEK

	cache atomic.Pointer[snapshotCache]
}

// snapshotCache is replaced, never modified, once published.
type snapshotCache struct {
	version int64
	sets    map[string]*Keyset
}

// KeysetInfo describes a keyset without its keys.
type KeysetInfo struct {
	ID string
	// Name is an opaque reference chosen by the operator (merchant,
	// integration); unique per environment.
	Name    string
	Kind    Kind
	Env     Env
	Created time.Time
}

// KeyInfo is a key's metadata, without material: what List, Generate and
// Import return and what operators see.
type KeyInfo struct {
	KeysetID string
	ID       string
	Kind     Kind
	Owner    Owner
	State    State
	// Algorithm is e.g. "RSA-2048" or "EC-P-256".
	Algorithm string
	// UserID is the PGP primary user id; empty for JWK.
	UserID     string
	CanEncrypt bool
	CanSign    bool
	// HasPrivate is true while the database holds wrapped private material.
	HasPrivate bool
	Created    time.Time
	// Expires is the zero time for keys that never expire.
	Expires time.Time
	// Added is when the key entered the store.
	Added time.Time
}

// DaysToExpiry returns whole days until the key expires at now (negative once
// expired) and false if it never expires.
func (k KeyInfo) DaysToExpiry(now time.Time) (int, bool) {
	return daysToExpiry(k.Expires, now)
}

func daysToExpiry(expires, now time.Time) (int, bool) {
	if expires.IsZero() {
		return 0, false
	}
	d := expires.Sub(now)
	days := int(d / (24 * time.Hour))
	if d < 0 && d%(24*time.Hour) != 0 {
		days-- // floor, so a key expired an hour ago reports -1
	}
	return days, true
}

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

// Open migrates the keystore schema in d and checks kek against the
// database's KEK check value (writing one on first use). A nil kek is
// ErrNoKEK; a KEK that does not match is ErrWrongKEK, so a misconfigured
// host fails at start, before any traffic.
func Open(ctx context.Context, d *sql.DB, kek *KEK) (*Store, error) {
	if kek == nil {
		return nil, ErrNoKEK
	}
	if err := db.Migrate(ctx, d, "keystore", migrations); err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	s := &Store{db: d, kek: kek, now: time.Now, log: slog.Default().With("component", "keystore")}
	check, err := kek.seal(kekCheckPlain, kekCheckAAD)
	if err != nil {
		return nil, err
	}
	// INSERT OR IGNORE: when two processes open a fresh database at once
	// the first check value wins and the other is verified against it.
	if _, err := d.ExecContext(ctx, `INSERT OR IGNORE INTO keystore_meta(name, value) VALUES ('kek_check', ?)`, check); err != nil {
		return nil, fmt.Errorf("keystore: write KEK check: %w", err)
	}
	var stored []byte
	if err := d.QueryRowContext(ctx, `SELECT value FROM keystore_meta WHERE name = 'kek_check'`).Scan(&stored); err != nil {
		return nil, fmt.Errorf("keystore: read KEK check: %w", err)
	}
	if pt, err := kek.open(stored, kekCheckAAD); err != nil || !bytes.Equal(pt, kekCheckPlain) {
		return nil, ErrWrongKEK
	}
	v, err := readVersion(ctx, d)
	if err != nil {
		return nil, err
	}
	s.cache.Store(&snapshotCache{version: v, sets: map[string]*Keyset{}})
	return s, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func readVersion(ctx context.Context, q querier) (int64, error) {
	var v int64
	if err := q.QueryRowContext(ctx, `SELECT value FROM keystore_meta WHERE name = 'version'`).Scan(&v); err != nil {
		return 0, fmt.Errorf("keystore: read version: %w", err)
	}
	return v, nil
}

// SetLogger replaces the logger (slog.Default by default). Call it before
// the Store is shared between goroutines.
func (s *Store) SetLogger(l *slog.Logger) { s.log = l.With("component", "keystore") }

// Version returns the change counter of the cached state; it grows by one
// with every committed change.
func (s *Store) Version() int64 { return s.cache.Load().version }

// Sync drops cached snapshots if another process changed the keystore since
// they were built. It reports whether it did.
func (s *Store) Sync(ctx context.Context) (bool, error) {
	v, err := readVersion(ctx, s.db)
	if err != nil {
		return false, err
	}
	if v == s.cache.Load().version {
		return false, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v != s.cache.Load().version {
		s.cache.Store(&snapshotCache{version: v, sets: map[string]*Keyset{}})
		return true, nil
	}
	return false, nil
}

// Watch calls Sync every interval until ctx ends, for hosts that share the
// database with an admin process. Errors are logged and retried.
func (s *Store) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := s.Sync(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("keystore sync failed", "err", err)
			}
		}
	}
}

// Keyset returns the immutable snapshot of keyset id, building it on the
// first call. Do not modify it.
func (s *Store) Keyset(ctx context.Context, id string) (*Keyset, error) {
	if ks, ok := s.cache.Load().sets[id]; ok {
		return ks, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.cache.Load()
	if ks, ok := c.sets[id]; ok {
		return ks, nil
	}
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	defer tx.Rollback()
	v, err := readVersion(ctx, tx)
	if err != nil {
		return nil, err
	}
	ks, err := s.buildKeyset(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	s.publish(c, v, "", ks)
	return ks, nil
}

// publish installs ks (may be nil) into a copy of the cache at version v,
// without the entry drop. Entries of another version are dropped: they may
// be stale. Callers hold s.mu.
func (s *Store) publish(old *snapshotCache, v int64, drop string, ks *Keyset) {
	next := &snapshotCache{version: v, sets: make(map[string]*Keyset, len(old.sets)+1)}
	if v == old.version {
		for k, x := range old.sets {
			if k != drop {
				next.sets[k] = x
			}
		}
	}
	if ks != nil {
		next.sets[ks.ID] = ks
	}
	s.cache.Store(next)
}

// buildKeyset reads a keyset's rows and parses them into a snapshot,
// unwrapping the private halves of self keys that may serve traffic.
func (s *Store) buildKeyset(ctx context.Context, tx *sql.Tx, id string) (*Keyset, error) {
	info, err := keysetInfo(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, owner, state, created_ns, expires_ns, public_material, private_sealed
		FROM keystore_keys WHERE keyset_id = ?`, id)
	if err != nil {
		return nil, fmt.Errorf("keystore: read keys of %s: %w", id, err)
	}
	defer rows.Close()
	var keys []*Key
	for rows.Next() {
		var (
			k                  Key
			created, expires   int64
			public, privSealed []byte
		)
		if err := rows.Scan(&k.ID, &k.Owner, &k.State, &created, &expires, &public, &privSealed); err != nil {
			return nil, fmt.Errorf("keystore: read keys of %s: %w", id, err)
		}
		k.Kind = info.Kind
		k.Created = fromNS(created)
		k.Expires = fromNS(expires)
		material := public
		if privSealed != nil && holdsPrivateInMemory(k.State) {
			material, err = s.kek.open(privSealed, recordAAD(id, k.ID))
			if err != nil {
				return nil, fmt.Errorf("%w: keyset %s key %s", ErrCorruptRecord, id, k.ID)
			}
		}
		switch info.Kind {
		case KindPGP:
			if k.PGP, err = readPGPEntity(material); err != nil {
				return nil, fmt.Errorf("%w: keyset %s key %s: %v", ErrCorruptRecord, id, k.ID, err)
			}
		case KindJWK:
			var j jose.JSONWebKey
			if err = j.UnmarshalJSON(material); err != nil {
				return nil, fmt.Errorf("%w: keyset %s key %s: %v", ErrCorruptRecord, id, k.ID, err)
			}
			k.JWK = &j
		}
		keys = append(keys, &k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("keystore: read keys of %s: %w", id, err)
	}
	return NewKeyset(id, info.Kind, info.Env, keys)
}

func toNS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNS(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

func keysetInfo(ctx context.Context, q querier, id string) (KeysetInfo, error) {
	var (
		ki      KeysetInfo
		created int64
	)
	err := q.QueryRowContext(ctx, `SELECT id, name, kind, env, created_ns FROM keystore_keysets WHERE id = ?`, id).
		Scan(&ki.ID, &ki.Name, &ki.Kind, &ki.Env, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return ki, fmt.Errorf("%w: keyset %s", ErrNotFound, id)
	}
	if err != nil {
		return ki, fmt.Errorf("keystore: read keyset %s: %w", id, err)
	}
	ki.Created = fromNS(created)
	return ki, nil
}

// write runs fn in one write transaction, bumps the version counter, and
// after commit republishes the snapshot of keysetID ("" = none). The
// connection has secure_delete on, so SQLite zeroes the pages of erased
// private material instead of leaving it in free pages.
func (s *Store) write(ctx context.Context, keysetID string, fn func(tx *sql.Tx) error) error {
	return s.writeThen(ctx, keysetID, fn, nil)
}

// writeThen is write with committed, when not nil, run under s.mu right
// after the commit, before any snapshot is rebuilt.
func (s *Store) writeThen(ctx context.Context, keysetID string, fn func(tx *sql.Tx) error, committed func()) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("keystore: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA secure_delete = ON`); err != nil {
		return fmt.Errorf("keystore: %w", err)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("keystore: %w", err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE keystore_meta SET value = value + 1 WHERE name = 'version'`); err != nil {
		return fmt.Errorf("keystore: bump version: %w", err)
	}
	v, err := readVersion(ctx, tx)
	if err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("keystore: commit: %w", err)
	}
	if committed != nil {
		committed()
	}
	old := s.cache.Load()
	if v == old.version+1 {
		// Only our change happened since the cache was built: keep the
		// other keysets' snapshots.
		old = &snapshotCache{version: v, sets: old.sets}
	}
	s.publish(old, v, keysetID, nil)
	if keysetID == "" {
		return nil
	}
	// Rebuild now so the next request does not pay for unwrapping keys. A
	// failure here leaves the keyset uncached; Keyset reports the error.
	rtx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil
	}
	defer rtx.Rollback()
	if rv, err := readVersion(ctx, rtx); err != nil || rv != v {
		return nil
	}
	if ks, err := s.buildKeyset(ctx, rtx, keysetID); err == nil {
		s.publish(s.cache.Load(), v, "", ks)
	} else {
		s.log.Warn("keystore: snapshot rebuild failed", "keyset", keysetID, "err", err)
	}
	return nil
}

func addEvent(ctx context.Context, tx *sql.Tx, at time.Time, actor, keysetID, keyID string, from, to State, note string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO keystore_events(at_ns, actor, keyset_id, key_id, from_state, to_state, note)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, at.UnixNano(), actor, keysetID, keyID, string(from), string(to), note)
	if err != nil {
		return fmt.Errorf("keystore: audit: %w", err)
	}
	return nil
}

func newID(prefix string) (string, error) {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("keystore: id: %w", err)
	}
	return prefix + hex.EncodeToString(b), nil
}

// CreateKeyset creates an empty keyset. name is an opaque operator reference
// (merchant, integration), unique per env.
func (s *Store) CreateKeyset(ctx context.Context, actor, name string, kind Kind, env Env) (KeysetInfo, error) {
	if kind != KindPGP && kind != KindJWK {
		return KeysetInfo{}, fmt.Errorf("keystore: unknown keyset kind %q", kind)
	}
	if env != EnvSandbox && env != EnvProduction {
		return KeysetInfo{}, fmt.Errorf("keystore: unknown environment %q", env)
	}
	id, err := newID("ks_")
	if err != nil {
		return KeysetInfo{}, err
	}
	now := s.now().UTC()
	ki := KeysetInfo{ID: id, Name: name, Kind: kind, Env: env, Created: now}
	err = s.write(ctx, "", func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM keystore_keysets WHERE name = ? AND env = ?`, name, string(env)).Scan(&n); err != nil {
			return fmt.Errorf("keystore: create keyset: %w", err)
		}
		if n > 0 {
			return fmt.Errorf("%w: %q in %s", ErrKeysetExists, name, env)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO keystore_keysets(id, name, kind, env, created_ns) VALUES (?, ?, ?, ?, ?)`,
			id, name, string(kind), string(env), now.UnixNano()); err != nil {
			return fmt.Errorf("keystore: create keyset %q/%s: %w", name, env, err)
		}
		return addEvent(ctx, tx, now, actor, id, "", "", "", fmt.Sprintf("keyset created: name=%q kind=%s env=%s", name, kind, env))
	})
	return ki, err
}

// FindKeyset returns the keyset called name in env, or ErrNotFound.
func (s *Store) FindKeyset(ctx context.Context, name string, env Env) (KeysetInfo, error) {
	var id string
	err := s.db.QueryRowContext(ctx, `SELECT id FROM keystore_keysets WHERE name = ? AND env = ?`, name, string(env)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return KeysetInfo{}, fmt.Errorf("%w: keyset %q in %s", ErrNotFound, name, env)
	}
	if err != nil {
		return KeysetInfo{}, fmt.Errorf("keystore: find keyset: %w", err)
	}
	return keysetInfo(ctx, s.db, id)
}

// Keysets lists every keyset.
func (s *Store) Keysets(ctx context.Context) ([]KeysetInfo, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, name, kind, env, created_ns FROM keystore_keysets ORDER BY created_ns, id`)
	if err != nil {
		return nil, fmt.Errorf("keystore: list keysets: %w", err)
	}
	defer rows.Close()
	var out []KeysetInfo
	for rows.Next() {
		var (
			ki KeysetInfo
			c  int64
		)
		if err := rows.Scan(&ki.ID, &ki.Name, &ki.Kind, &ki.Env, &c); err != nil {
			return nil, fmt.Errorf("keystore: list keysets: %w", err)
		}
		ki.Created = fromNS(c)
		out = append(out, ki)
	}
	return out, rows.Err()
}

// Generate creates a new self key in the keyset, in state pending: an
// OpenPGP key for PGP keysets, a private JWK for JWK keysets (see
// GenerateOptions). Key generation runs before any lock is taken.
func (s *Store) Generate(ctx context.Context, actor, keysetID string, opts GenerateOptions) (KeyInfo, error) {
	if err := opts.normalize(); err != nil {
		return KeyInfo{}, err
	}
	info, err := keysetInfo(ctx, s.db, keysetID)
	if err != nil {
		return KeyInfo{}, err
	}
	var m *material
	switch info.Kind {
	case KindPGP:
		m, err = generatePGP(opts)
	case KindJWK:
		m, err = generateJWK(opts)
	}
	if err != nil {
		return KeyInfo{}, err
	}
	out, err := s.insert(ctx, actor, keysetID, info.Kind, OwnerSelf, []*material{m}, StatePending, "generated")
	if err != nil {
		return KeyInfo{}, err
	}
	return out[0], nil
}

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
		// checkpoint from finishing; the next checkpoint completes it.
		if _, err := s.db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			s.log.Warn("keystore: checkpoint after destroy failed", "err", err)
		}
	}
	s.log.Info("key state changed", "keyset", keysetID, "key", keyID, "to", newState, "actor", actor)
	return nil
}

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

package keystore

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

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

// Migrate brings the keystore's tables in d to this build's schema version
// without opening the store (see otpcgate db migrate).
func Migrate(ctx context.Context, d *sql.DB) error {
	if err := db.Migrate(ctx, d, "keystore", migrations); err != nil {
		return fmt.Errorf("keystore: %w", err)
	}
	return nil
}

// Open migrates the keystore schema in d and checks kek against the
// database's KEK check value (writing one on first use). A nil kek is
// ErrNoKEK; a KEK that does not match is ErrWrongKEK, so a misconfigured
// host fails at start, before any traffic.
func Open(ctx context.Context, d *sql.DB, kek *KEK) (*Store, error) {
	if kek == nil {
		return nil, ErrNoKEK
	}
	if err := Migrate(ctx, d); err != nil {
		return nil, err
	}
	s := &Store{db: d, kek: kek, now: time.Now, log: slog.Default().With("component", "keystore")}
	check, err := kek.seal(kekCheckPlain, kekCheckAAD)
	if err != nil {
		return nil, err
	}
	// DO NOTHING: when two processes open a fresh database at once the
	// first check value wins and the other is verified against it.
	if _, err := d.ExecContext(ctx, `INSERT INTO keystore_meta(name, value) VALUES ('kek_check', ?) ON CONFLICT DO NOTHING`, check); err != nil {
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
	if err := q.QueryRowContext(ctx, `SELECT version FROM keystore_version WHERE id = 1`).Scan(&v); err != nil {
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
	if db.EngineOf(s.db) == db.SQLite {
		// Overwrite deleted content (a destroyed key's sealed material)
		// instead of leaving it in free pages.
		if _, err := conn.ExecContext(ctx, `PRAGMA secure_delete = ON`); err != nil {
			return fmt.Errorf("keystore: %w", err)
		}
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("keystore: %w", err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE keystore_version SET version = version + 1 WHERE id = 1`); err != nil {
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

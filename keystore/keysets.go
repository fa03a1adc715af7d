package keystore

// This file holds keyset creation and lookup.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

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

// RenameKeyset gives a keyset another name (unique per env), e.g. when the
// merchant it was made for is deleted and its name is to be free again.
func (s *Store) RenameKeyset(ctx context.Context, actor, id, name string) error {
	now := s.now().UTC()
	return s.write(ctx, id, func(tx *sql.Tx) error {
		ki, err := keysetInfo(ctx, tx, id)
		if err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM keystore_keysets WHERE name = ? AND env = ? AND id <> ?`,
			name, string(ki.Env), id).Scan(&n); err != nil {
			return fmt.Errorf("keystore: rename keyset: %w", err)
		}
		if n > 0 {
			return fmt.Errorf("%w: %q in %s", ErrKeysetExists, name, ki.Env)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE keystore_keysets SET name = ? WHERE id = ?`, name, id); err != nil {
			return fmt.Errorf("keystore: rename keyset %s: %w", id, err)
		}
		return addEvent(ctx, tx, now, actor, id, "", "", "", fmt.Sprintf("keyset renamed: %q → %q", ki.Name, name))
	})
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

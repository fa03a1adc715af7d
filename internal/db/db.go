// Package db is the gateway's storage seam: it opens the database — the
// embedded SQLite file, or a PostgreSQL server shared by several hosts —
// and applies the versioned schema migrations of each component (keystore,
// ledger, ...).
//
// Every component keeps its own migration list under its own name, so the
// keystore does not need to know the ledger's schema and vice versa. The
// components write one SQL dialect (SQLite's DML with ? placeholders, which
// PostgreSQL also runs once placeholders are rebound); what differs between
// the engines lives here: the driver, schema types (Engine.TranslateDDL),
// how a write transaction starts (Engine.WriteBegin) and the write lock.
package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // the pure-Go "sqlite" driver
)

// Open opens the database named by target: a postgres:// (or
// postgresql://) URL opens a PostgreSQL server (see openPostgres); anything
// else is the path of a SQLite file.
//
// SQLite is opened (created if needed) in WAL mode with synchronous=FULL,
// so a committed transaction survives a power cut, foreign keys on, and
// BEGIN IMMEDIATE for every transaction, so writers queue on the busy
// timeout instead of failing with SQLITE_BUSY on upgrade.
//
// On PostgreSQL every read-write transaction first takes one
// database-wide advisory lock: writes from all hosts run one at a time, as
// they do in SQLite, so the invariants the components check inside their
// write transactions hold across hosts at the default isolation level.
func Open(ctx context.Context, target string) (*sql.DB, error) {
	if IsURL(target) {
		d, err := openPostgres(ctx, target)
		if err != nil {
			return nil, err
		}
		if err := createMigrations(ctx, d, Postgres); err != nil {
			d.Close()
			return nil, err
		}
		return d, nil
	}
	return openSQLite(ctx, target)
}

func openSQLite(ctx context.Context, path string) (*sql.DB, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("db: %w", err)
	}
	if err := prepareFiles(abs); err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	dsn := "file:" + abs + "?" + q.Encode()
	d, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("db: open %s: %w", path, err)
	}
	// SQLite has one writer at a time; a handful of connections lets
	// readers proceed in WAL mode while one writes.
	d.SetMaxOpenConns(8)
	d.SetMaxIdleConns(8)
	if err := d.PingContext(ctx); err != nil {
		d.Close()
		return nil, fmt.Errorf("db: open %s: %w", path, err)
	}
	if err := createMigrations(ctx, d, SQLite); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// createMigrations creates the version table if it is missing. It runs in
// a write transaction: on PostgreSQL two hosts starting at once would
// otherwise race in CREATE TABLE IF NOT EXISTS and one would fail on the
// catalog's unique index.
func createMigrations(ctx context.Context, d *sql.DB, e Engine) error {
	tx, err := d.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("db: create schema_migrations: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, e.TranslateDDL(`CREATE TABLE IF NOT EXISTS schema_migrations (
		component TEXT NOT NULL,
		version   INTEGER NOT NULL,
		applied_at INTEGER NOT NULL,
		PRIMARY KEY (component, version))`)); err != nil {
		return fmt.Errorf("db: create schema_migrations: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("db: create schema_migrations: %w", err)
	}
	return nil
}

// prepareFiles creates the database's directory (0700) if it is missing
// and the database file (0600) if it does not exist yet, so that SQLite,
// which gives its -wal and -shm files the database file's mode, never
// creates any of them group- or world-readable. Existing files readable by
// group or others are narrowed to 0600: they hold the whole ledger.
func prepareFiles(abs string) error {
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return fmt.Errorf("db: create the data directory: %w", err)
	}
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		return f.Close()
	case !errors.Is(err, fs.ErrExist):
		return fmt.Errorf("db: create %s: %w", abs, err)
	}
	for _, p := range []string{abs, abs + "-wal", abs + "-shm"} {
		st, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("db: %w", err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(p, 0o600); err != nil {
				return fmt.Errorf("db: narrow %s to 0600: %w", p, err)
			}
		}
	}
	return nil
}

// Migration is one schema step of a component. Version numbers start at 1
// and never change once released; both engines number them the same.
type Migration struct {
	Version int
	// SQL is the step in SQLite's dialect; on PostgreSQL it runs through
	// Engine.TranslateDDL.
	SQL string
	// Postgres, if set, replaces SQL on PostgreSQL, for what the
	// translation does not cover (triggers).
	Postgres string
}

// For returns the step's SQL for engine e.
func (m Migration) For(e Engine) string {
	if e == Postgres {
		if m.Postgres != "" {
			return m.Postgres
		}
		return e.TranslateDDL(m.SQL)
	}
	return m.SQL
}

// ErrFutureSchema is returned when the database was migrated by a newer
// build than this one.
var ErrFutureSchema = errors.New("db: database schema is newer than this binary")

// Migrate applies component's migrations that the database has not seen, each
// in its own transaction, in version order. The version is read again
// inside each step's write transaction, so hosts starting together against
// one PostgreSQL server apply every step exactly once.
func Migrate(ctx context.Context, d *sql.DB, component string, migrations []Migration) error {
	latest := 0
	for i, m := range migrations {
		if m.Version != i+1 {
			return fmt.Errorf("db: %s migration %d has version %d", component, i+1, m.Version)
		}
		latest = m.Version
	}
	e := EngineOf(d)
	for _, m := range migrations {
		if err := migrateStep(ctx, d, e, component, m, latest); err != nil {
			return err
		}
	}
	if latest == 0 {
		// Still refuse a database a newer build migrated.
		return migrateStep(ctx, d, e, component, Migration{}, 0)
	}
	return nil
}

func migrateStep(ctx context.Context, d *sql.DB, e Engine, component string, m Migration, latest int) error {
	tx, err := d.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("db: migrate %s to %d: %w", component, m.Version, err)
	}
	defer tx.Rollback()
	var current int
	if err := tx.QueryRowContext(ctx,
		`SELECT COALESCE(MAX(version), 0) FROM schema_migrations WHERE component = ?`, component).Scan(&current); err != nil {
		return fmt.Errorf("db: read %s schema version: %w", component, err)
	}
	if current > latest {
		return fmt.Errorf("%w: %s at version %d, this build knows %d", ErrFutureSchema, component, current, latest)
	}
	if m.Version == 0 || current >= m.Version {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.For(e)); err != nil {
		return fmt.Errorf("db: migrate %s to %d: %w", component, m.Version, err)
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO schema_migrations(component, version, applied_at) VALUES (?, ?, ?)`,
		component, m.Version, time.Now().Unix()); err != nil {
		return fmt.Errorf("db: migrate %s to %d: %w", component, m.Version, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("db: migrate %s to %d: %w", component, m.Version, err)
	}
	return nil
}

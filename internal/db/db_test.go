package db

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
)

func TestMigrate(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "t.db")
	d, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	v1 := []Migration{{Version: 1, SQL: `CREATE TABLE a (x INTEGER)`}}
	if err := Migrate(ctx, d, "comp", v1); err != nil {
		t.Fatal(err)
	}
	// Running again is a no-op.
	if err := Migrate(ctx, d, "comp", v1); err != nil {
		t.Fatal(err)
	}
	v2 := append(v1, Migration{Version: 2, SQL: `ALTER TABLE a ADD COLUMN y TEXT`})
	if err := Migrate(ctx, d, "comp", v2); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ExecContext(ctx, `INSERT INTO a(x, y) VALUES (1, 'z')`); err != nil {
		t.Fatalf("migration 2 not applied: %v", err)
	}
	d.Close()

	// A binary that only knows v1 refuses a database at v2.
	d, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := Migrate(ctx, d, "comp", v1); !errors.Is(err, ErrFutureSchema) {
		t.Fatalf("got %v, want ErrFutureSchema", err)
	}
	// A failing migration leaves the version where it was.
	bad := append(v2, Migration{Version: 3, SQL: `THIS IS NOT SQL`})
	if err := Migrate(ctx, d, "comp", bad); err == nil {
		t.Fatal("bad migration applied")
	}
	var v int
	d.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations WHERE component='comp'`).Scan(&v)
	if v != 2 {
		t.Fatalf("version %d after failed migration, want 2", v)
	}
	var mode string
	d.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode)
	if mode != "wal" {
		t.Fatalf("journal_mode %q, want wal", mode)
	}
}

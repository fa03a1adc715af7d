package gateway

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/otpcgate/otpcgate/host/admin"
	"github.com/otpcgate/otpcgate/host/directory"
	"github.com/otpcgate/otpcgate/host/ledger"
	"github.com/otpcgate/otpcgate/internal/db"
	"github.com/otpcgate/otpcgate/keystore"
)

// MigrateSchema brings the tables of every component a gateway keeps in d
// (keystore, ledger, merchant directory, admin tokens) to this build's schema
// versions, without starting anything.
func MigrateSchema(ctx context.Context, d *sql.DB) error {
	if err := keystore.Migrate(ctx, d); err != nil {
		return err
	}
	if err := ledger.Migrate(ctx, d); err != nil {
		return err
	}
	if _, err := directory.Open(ctx, d); err != nil {
		return err
	}
	if _, err := admin.OpenTokens(ctx, d); err != nil {
		return err
	}
	return nil
}

// CopyToPostgres moves the gateway installation in the SQLite database
// src into the empty PostgreSQL database dst: it refuses a dst that holds
// anything (so it runs once), migrates both to this build's schema, and
// copies every table in one transaction, comparing row counts and digests
// before COMMIT (see db.Copy). src's write lock is held throughout, so a
// gateway still running on src cannot commit anything the copy would miss.
func CopyToPostgres(ctx context.Context, src, dst *sql.DB) ([]db.TableCopy, error) {
	if db.EngineOf(src) != db.SQLite || db.EngineOf(dst) != db.Postgres {
		return nil, fmt.Errorf("gateway: copy from SQLite to PostgreSQL only")
	}
	if err := db.CheckEmpty(ctx, dst); err != nil {
		return nil, err
	}
	if err := MigrateSchema(ctx, src); err != nil {
		return nil, fmt.Errorf("migrate the source: %w", err)
	}
	if err := MigrateSchema(ctx, dst); err != nil {
		return nil, fmt.Errorf("migrate the target: %w", err)
	}
	conn, err := src.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		return nil, fmt.Errorf("gateway: lock the source for the copy: %w", err)
	}
	defer conn.ExecContext(context.Background(), `ROLLBACK`)
	return db.Copy(ctx, src, dst)
}

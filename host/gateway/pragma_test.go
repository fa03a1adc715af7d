package gateway

import (
	"context"
	"database/sql"
	"testing"

	"github.com/otpcgate/otpcgate/internal/pgtest"
)

// TestGatewayConnectionsAreDurable: the running gateway's ledger, registry
// and keystore share one pool (gateway.Open hands g.DB to each), and every
// connection of it, held at once so each is distinct, runs with
// synchronous FULL or EXTRA in WAL mode, foreign keys on and a busy
// timeout. The ledger's pinned writer connection is checked in
// host/ledger (TestLedgerConnectionsAreDurable).
func TestGatewayConnectionsAreDurable(t *testing.T) {
	pgtest.SkipOnPostgres(t, "SQLite's per-connection pragmas")
	e := newEnv(t)
	ctx := context.Background()
	if e.g.Ledger.DB() != e.g.DB {
		t.Fatal("the ledger does not use the gateway's pool")
	}
	st := e.g.DB.Stats()
	free := st.MaxOpenConnections - st.InUse
	if free < 2 {
		t.Fatalf("only %d free connections (max %d, in use %d)", free, st.MaxOpenConnections, st.InUse)
	}
	conns := make([]*sql.Conn, 0, free)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range free {
		c, err := e.g.DB.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for i, c := range conns {
		var mode string
		var syncLevel, fk, busy int
		for _, q := range []struct {
			sql string
			dst any
		}{{`PRAGMA journal_mode`, &mode}, {`PRAGMA synchronous`, &syncLevel}, {`PRAGMA foreign_keys`, &fk}, {`PRAGMA busy_timeout`, &busy}} {
			if err := c.QueryRowContext(ctx, q.sql).Scan(q.dst); err != nil {
				t.Fatal(err)
			}
		}
		if mode != "wal" || syncLevel < 2 || fk != 1 || busy < 1000 {
			t.Errorf("connection %d: journal_mode=%s synchronous=%d foreign_keys=%d busy_timeout=%d", i, mode, syncLevel, fk, busy)
		}
	}
}

package ledger

import (
	"context"
	"database/sql"
	"testing"

	"github.com/otpcgate/otpcgate/internal/pgtest"
)

// pragmas are the settings of one SQLite connection that durability and
// integrity depend on.
type pragmas struct {
	JournalMode string
	Synchronous int // 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA
	ForeignKeys int
	BusyTimeout int // milliseconds
}

var pragmaQueries = []string{`PRAGMA journal_mode`, `PRAGMA synchronous`, `PRAGMA foreign_keys`, `PRAGMA busy_timeout`}

func (p *pragmas) dests() []any {
	return []any{&p.JournalMode, &p.Synchronous, &p.ForeignKeys, &p.BusyTimeout}
}

func (p pragmas) ok() bool {
	return p.JournalMode == "wal" && p.Synchronous >= 2 && p.ForeignKeys == 1 && p.BusyTimeout >= 1000
}

// TestLedgerConnectionsAreDurable reads the settings of every connection
// the ledger uses: the writer's own pinned connection (where every commit
// happens, read from inside Apply) and every connection of the read pool,
// all held at once so each is distinct. synchronous must be FULL or EXTRA:
// with OFF a commit is acknowledged before the WAL reaches the disk, which
// a SIGKILL crash test cannot notice.
func TestLedgerConnectionsAreDurable(t *testing.T) {
	pgtest.SkipOnPostgres(t, "SQLite's per-connection pragmas")
	ctx := context.Background()
	l, _ := openTest(t, Options{})
	var w pragmas
	mustApply(t, l, func(tx *Tx) error {
		d := w.dests()
		for i, q := range pragmaQueries {
			if err := tx.w.queryRow(q).Scan(d[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if !w.ok() {
		t.Errorf("writer connection: %+v, want journal_mode=wal, synchronous>=FULL(2), foreign_keys=1, busy_timeout>=1000", w)
	}

	d := l.DB()
	free := d.Stats().MaxOpenConnections - d.Stats().InUse
	if free < 1 {
		t.Fatalf("no free read connection (max %d, in use %d)", d.Stats().MaxOpenConnections, d.Stats().InUse)
	}
	conns := make([]*sql.Conn, 0, free)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range free {
		c, err := d.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for i, c := range conns {
		var p pragmas
		dst := p.dests()
		for j, q := range pragmaQueries {
			if err := c.QueryRowContext(ctx, q).Scan(dst[j]); err != nil {
				t.Fatal(err)
			}
		}
		if !p.ok() {
			t.Errorf("read connection %d: %+v", i, p)
		}
	}
}

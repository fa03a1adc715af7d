package db

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
)

// connPragmas are the settings every connection must run with: a commit
// reported to a caller must survive a power cut (synchronous FULL or
// EXTRA in WAL mode syncs the WAL on every COMMIT), references must hold,
// and a writer must wait for the lock instead of failing.
type connPragmas struct {
	JournalMode string
	Synchronous int // 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA
	ForeignKeys int
	BusyTimeout int // milliseconds
}

func readPragmas(ctx context.Context, c *sql.Conn) (connPragmas, error) {
	var p connPragmas
	for _, q := range []struct {
		sql string
		dst any
	}{
		{`PRAGMA journal_mode`, &p.JournalMode},
		{`PRAGMA synchronous`, &p.Synchronous},
		{`PRAGMA foreign_keys`, &p.ForeignKeys},
		{`PRAGMA busy_timeout`, &p.BusyTimeout},
	} {
		if err := c.QueryRowContext(ctx, q.sql).Scan(q.dst); err != nil {
			return p, err
		}
	}
	return p, nil
}

func (p connPragmas) durable() bool {
	return p.JournalMode == "wal" && p.Synchronous >= 2 && p.ForeignKeys == 1 && p.BusyTimeout >= 1000
}

// TestEveryConnectionIsDurable holds every connection the pool may open at
// once — so each is a distinct SQLite connection, not one reused — and
// reads its settings: the DSN's pragmas must apply to each new connection,
// not only to the first. A crash test cannot see synchronous=OFF (SIGKILL
// keeps the page cache); this can.
func TestEveryConnectionIsDurable(t *testing.T) {
	ctx := context.Background()
	d, err := Open(ctx, filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	n := d.Stats().MaxOpenConnections
	if n < 2 {
		t.Fatalf("pool of %d connections: nothing to check concurrently", n)
	}
	// Two rounds: the second reopens connections after the first ones were
	// closed for good (not returned to the pool).
	for round := range 2 {
		conns := make([]*sql.Conn, 0, n)
		for range n {
			c, err := d.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
		if got := d.Stats().InUse; got != n {
			t.Fatalf("round %d: %d connections in use, want %d distinct", round, got, n)
		}
		for i, c := range conns {
			p, err := readPragmas(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			if !p.durable() {
				t.Errorf("round %d, connection %d: %+v, want journal_mode=wal, synchronous>=FULL(2), foreign_keys=1, busy_timeout>=1000", round, i, p)
			}
		}
		for _, c := range conns {
			c.Close()
		}
		d.SetMaxIdleConns(0) // close them for good, so round 2 opens new ones
		d.SetMaxIdleConns(n)
		if round == 0 && d.Stats().OpenConnections != 0 {
			t.Fatalf("%d connections still open after dropping the idle ones", d.Stats().OpenConnections)
		}
	}
}

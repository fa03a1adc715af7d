package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// writeLockKey is the PostgreSQL advisory lock every read-write transaction
// takes first (see pgConn.BeginTx). Any constant works as long as every host
// uses the same one; this one spells "otpc".
const writeLockKey = 0x6f747063

// DefaultLockTimeout bounds how long a PostgreSQL transaction waits for the
// write lock or a row lock, as SQLite's busy timeout does.
const DefaultLockTimeout = 10 * time.Second

// openPostgres opens a pool of PostgreSQL connections through pgx's
// database/sql driver, wrapped so that the components' SQL (written with ?
// placeholders, as SQLite takes them) runs unchanged and every read-write
// transaction holds the database's one write lock.
func openPostgres(ctx context.Context, url string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("db: postgres url: %w", err)
	}
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	if _, ok := cfg.RuntimeParams["lock_timeout"]; !ok {
		cfg.RuntimeParams["lock_timeout"] = strconv.Itoa(int(DefaultLockTimeout.Milliseconds()))
	}
	// Times are Unix milliseconds computed in Go; UTC keeps anything the
	// server formats (logs, now()) unambiguous.
	cfg.RuntimeParams["timezone"] = "UTC"
	d := sql.OpenDB(pgConnector{inner: stdlib.GetConnector(*cfg)})
	d.SetMaxOpenConns(16)
	d.SetMaxIdleConns(16)
	d.SetConnMaxIdleTime(5 * time.Minute)
	if err := d.PingContext(ctx); err != nil {
		d.Close()
		return nil, fmt.Errorf("db: open postgres %s: %w", redactURL(url), err)
	}
	return d, nil
}

// redactURL drops a password from a connection URL before it is printed.
func redactURL(url string) string {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return "(unparsable url)"
	}
	return fmt.Sprintf("postgres://%s@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, cfg.Database)
}

// pgConnector wraps pgx's connector; pgDriver lets EngineOf recognise the
// pool.
type pgConnector struct{ inner driver.Connector }

// Connect implements driver.Connector.
func (c pgConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &pgConn{inner: conn.(*stdlib.Conn)}, nil
}

// Driver implements driver.Connector.
func (c pgConnector) Driver() driver.Driver { return pgDriver{} }

type pgDriver struct{}

func (pgDriver) Open(string) (driver.Conn, error) {
	return nil, fmt.Errorf("db: the postgres driver is opened through db.Open only")
}

// pgConn is pgx's connection with ? placeholders rewritten to $n and the
// write lock taken at the start of every read-write transaction, so the
// gateway's components keep SQLite's guarantee that write transactions run
// one at a time across every host sharing the database.
type pgConn struct{ inner *stdlib.Conn }

var (
	_ driver.Conn               = (*pgConn)(nil)
	_ driver.ConnPrepareContext = (*pgConn)(nil)
	_ driver.ConnBeginTx        = (*pgConn)(nil)
	_ driver.ExecerContext      = (*pgConn)(nil)
	_ driver.QueryerContext     = (*pgConn)(nil)
	_ driver.Pinger             = (*pgConn)(nil)
	_ driver.SessionResetter    = (*pgConn)(nil)
	_ driver.NamedValueChecker  = (*pgConn)(nil)
)

func (c *pgConn) Prepare(q string) (driver.Stmt, error) {
	return c.inner.PrepareContext(context.Background(), rebind(q))
}

func (c *pgConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	return c.inner.PrepareContext(ctx, rebind(q))
}

func (c *pgConn) Close() error { return c.inner.Close() }

func (c *pgConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *pgConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	tx, err := c.inner.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	if !opts.ReadOnly {
		if _, err := c.inner.ExecContext(ctx, sqlWriteLock, nil); err != nil {
			tx.Rollback()
			return nil, fmt.Errorf("db: take the write lock: %w", err)
		}
	}
	return tx, nil
}

func (c *pgConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	return c.inner.ExecContext(ctx, rebind(q), args)
}

func (c *pgConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	return c.inner.QueryContext(ctx, rebind(q), args)
}

func (c *pgConn) Ping(ctx context.Context) error { return c.inner.Ping(ctx) }

func (c *pgConn) ResetSession(ctx context.Context) error { return c.inner.ResetSession(ctx) }

// CheckNamedValue stores a Go bool as the integer 0 or 1, as SQLite does:
// the schema's flags are INTEGER columns on both engines.
func (c *pgConn) CheckNamedValue(v *driver.NamedValue) error {
	if b, ok := v.Value.(bool); ok {
		v.Value = int64(0)
		if b {
			v.Value = int64(1)
		}
		return nil
	}
	return c.inner.CheckNamedValue(v)
}

// sqlWriteLock is what "BEGIN IMMEDIATE" means on PostgreSQL here: wait for
// the database's one writer slot, released at COMMIT or ROLLBACK.
var sqlWriteLock = fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", writeLockKey)

// rebinds caches rebind's results: the components' statements are
// constants, so the map stays as small as the set of statements; a
// statement built at run time (a list of placeholders of varying length)
// is cached only while the cache holds fewer than maxRebinds.
var (
	rebinds     sync.Map
	rebindCount atomic.Int64
)

const maxRebinds = 4096

// rebind rewrites the ? placeholders of q to PostgreSQL's $1, $2, ...,
// leaving string literals, quoted identifiers and comments alone. (Dollar-
// quoted bodies are not recognised: no component writes a ? in one.)
func rebind(q string) string {
	if !strings.Contains(q, "?") {
		return q
	}
	if v, ok := rebinds.Load(q); ok {
		return v.(string)
	}
	var b strings.Builder
	b.Grow(len(q) + 8)
	n := 0
	for i := 0; i < len(q); i++ {
		ch := q[i]
		switch {
		case ch == '\'' || ch == '"':
			j := i + 1
			for j < len(q) && q[j] != ch {
				j++
			}
			b.WriteString(q[i:min(j+1, len(q))])
			i = j
		case ch == '-' && i+1 < len(q) && q[i+1] == '-':
			j := strings.IndexByte(q[i:], '\n')
			if j < 0 {
				j = len(q) - i
			}
			b.WriteString(q[i : i+j])
			i += j - 1
		case ch == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(ch)
		}
	}
	s := b.String()
	if rebindCount.Add(1) <= maxRebinds {
		rebinds.Store(q, s)
	}
	return s
}

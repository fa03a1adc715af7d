// Package ledger keeps all of the gateway's business state in SQLite:
// merchants and their PIAIDs, idempotency records, reference numbers (codes),
// refunds, associations, authentication sessions, remittance statements,
// plugin key-value data, the outbox of notifications to Google and the audit
// log.
//
// The merchant plugin decides business outcomes; the ledger enforces the
// protocol's invariants (state machine of codes, never refunding more than
// was paid, one association per id and token) inside the write transaction,
// so a stale read by the caller can never break them.
//
// Every write goes through [Ledger.Apply]. One writer goroutine gathers the
// closures that are waiting, runs them in a single BEGIN IMMEDIATE … COMMIT
// with a SAVEPOINT per closure (a failing closure rolls back only itself) and
// reports each result only after COMMIT returned, i.e. after the fsync: group
// commit. Nothing is reported committed before it is durable.
//
// # Request pipeline
//
// The pipeline answers a Google request with [Ledger.Do]: it looks up the
// idempotency record of (PIAID, requestId), replays it or reports
// ErrIdempotencyViolation, or runs the request (plugin call) and commits the
// record together with Outcome.Apply (ledger mutation, KV change set, outbox
// entries) before the 200 is sent. An error from Outcome.Apply means the
// state changed since the pipeline's reads (e.g. the code was paid while a
// cancel was being decided): nothing is stored, and the pipeline may simply
// run Do again to re-evaluate on fresh state.
//
// Error mapping for the pipeline: ErrIdempotencyViolation → 412;
// ErrUnknownTransaction, ErrUnknownPIAID → 404 invalidIdentifier;
// ErrNotPaid, ErrRefundExceedsRemaining, ErrCurrencyMismatch,
// ErrInvalidAmount, ErrInvalidTransition → 400 preconditionViolation /
// invalidFieldValue; ErrAssociationConflict → 400; ErrAlreadyPaid → 200
// with the "already paid" result (re-evaluate); ErrCommitFailed and other
// errors → 503 so Google retries.
package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/otpcgate/otpcgate/internal/db"
)

// DefaultRetention is how long idempotency records are kept at least. The
// spec does not say how long Google may retry ([U] in spec §7.4); 400 days
// covers a year of retries plus a margin.
const DefaultRetention = 400 * 24 * time.Hour

// DefaultMaxBatch is the largest number of commit closures run in one
// SQLite transaction.
const DefaultMaxBatch = 128

// DefaultClaimLease is how long an outbox item claimed by a delivery worker
// stays invisible to other claims before it is offered again.
const DefaultClaimLease = 30 * time.Second

// Options tune a Ledger. The zero value is valid.
type Options struct {
	// MaxBatch bounds how many Apply closures share one transaction (and one
	// fsync). 1 disables group commit. Zero means DefaultMaxBatch.
	MaxBatch int
	// GroupWindow, if positive, lets the writer wait up to this long for
	// the commits of requests that are being prepared (Do calls whose
	// process is running), so that they share the batch's transaction and
	// fsync. It waits only while such a request exists and stops as soon
	// as the last one is queued or gives up, so a lone commit is never
	// delayed. Zero (the default) batches only what is already waiting.
	GroupWindow time.Duration
	// Retention is the minimum age of idempotency records before
	// PurgeRecords deletes them. Zero means DefaultRetention.
	Retention time.Duration
	// ClaimLease: see DefaultClaimLease. Zero means the default.
	ClaimLease time.Duration
	// KVQuota bounds each namespace's (merchant's) plugin KV data; zero
	// fields mean DefaultKVQuota's.
	KVQuota KVQuota
	// Now is the clock used for created/updated times. Nil means time.Now.
	Now func() time.Time
	// Logger receives operational messages (never payloads). Nil means
	// slog.Default().
	Logger *slog.Logger
}

// Ledger is the gateway's business state. It is safe for concurrent use.
type Ledger struct {
	db   *sql.DB
	opts Options
	log  *slog.Logger

	reqs chan *commitReq
	// preparing counts Do calls whose process is running: commits that
	// are on their way. prepared wakes a writer waiting for them when
	// one of them ends without committing.
	preparing atomic.Int64
	prepared  chan struct{}
	stop      chan struct{}
	stopped   chan struct{}
	closeMu   sync.RWMutex // guards closed against Apply racing Close
	closed    bool
	closeOnce sync.Once
	w         *writer
	locks     keyedLocks
	stats     stats
	read      readStmts
	assocs    assocCache
	ownsDB    bool
	closeErr  error
}

// Open opens (creating if needed) the SQLite file at path, applies the
// ledger's migrations and starts the writer.
func Open(ctx context.Context, path string, opts Options) (*Ledger, error) {
	d, err := db.Open(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	l, err := New(ctx, d, opts)
	if err != nil {
		d.Close()
		return nil, err
	}
	l.ownsDB = true
	return l, nil
}

// Migrate brings the ledger's tables in d to this build's schema version
// without starting a writer (see otpcgate db migrate).
func Migrate(ctx context.Context, d *sql.DB) error {
	if err := db.Migrate(ctx, d, Component, migrations); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	return nil
}

// New runs the ledger's migrations on an already opened database (see
// internal/db.Open) and starts the writer. Close does not close d.
func New(ctx context.Context, d *sql.DB, opts Options) (*Ledger, error) {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	if opts.Retention <= 0 {
		opts.Retention = DefaultRetention
	}
	if opts.ClaimLease <= 0 {
		opts.ClaimLease = DefaultClaimLease
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.KVQuota = opts.KVQuota.Or(DefaultKVQuota)
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if err := Migrate(ctx, d); err != nil {
		return nil, err
	}
	conn, err := d.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("ledger: writer connection: %w", err)
	}
	l := &Ledger{
		db:       d,
		opts:     opts,
		log:      opts.Logger,
		reqs:     make(chan *commitReq, 4*opts.MaxBatch),
		prepared: make(chan struct{}, 1),
		stop:     make(chan struct{}),
		stopped:  make(chan struct{}),
		w:        newWriter(conn, db.EngineOf(d)),
	}
	l.locks.m = make(map[lockKey]*lockEntry)
	if err := l.read.prepare(ctx, d); err != nil {
		conn.Close()
		return nil, err
	}
	go l.run()
	return l, nil
}

// Close stops the writer after the commits already queued have finished,
// and closes the database if Open opened it. Apply calls after Close return
// ErrClosed.
func (l *Ledger) Close() error {
	l.closeOnce.Do(func() {
		l.closeMu.Lock()
		l.closed = true
		close(l.stop)
		l.closeMu.Unlock()
		<-l.stopped
		err := l.w.close()
		l.read.close()
		if l.ownsDB {
			err = errors.Join(err, l.db.Close())
		}
		l.closeErr = err
	})
	return l.closeErr
}

// DB returns the underlying database handle for components that share the
// file (e.g. the keystore). Do not write ledger tables through it.
func (l *Ledger) DB() *sql.DB { return l.db }

func (l *Ledger) nowMS() int64 { return l.opts.Now().UnixMilli() }

package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/otpcgate/otpcgate/internal/db"
)

// Stats counts the writer's work since Open.
type Stats struct {
	// Transactions is the number of SQLite transactions committed (one
	// fsync each).
	Transactions int64
	// Closures is the number of Apply closures that committed.
	Closures int64
	// Failed is the number of Apply closures that returned an error or were
	// rolled back with their batch.
	Failed int64
	// Busy is the time the writer spent running batches, from BEGIN to
	// COMMIT (fsync or the database's acknowledgement included): what the
	// single writer can give, so Busy/Closures bounds the write rate.
	Busy time.Duration
}

type stats struct{ tx, closures, failed, busyNS atomic.Int64 }

// Stats returns the writer's counters; Closures/Transactions is the mean
// group-commit batch size.
func (l *Ledger) Stats() Stats {
	return Stats{Transactions: l.stats.tx.Load(), Closures: l.stats.closures.Load(), Failed: l.stats.failed.Load(),
		Busy: time.Duration(l.stats.busyNS.Load())}
}

// commitReq is one Apply call waiting for the writer.
type commitReq struct {
	ctx  context.Context
	fn   func(*Tx) error
	done chan error // buffered: the writer never blocks on a caller
}

var reqPool = sync.Pool{New: func() any { return &commitReq{done: make(chan error, 1)} }}

// Apply runs fn inside a write transaction and returns after the
// transaction is durable (COMMIT returned, fsync done) or rolled back.
//
// If fn returns an error (or panics) everything fn did is rolled back and
// Apply returns that error; closures of other callers that share the same
// SQLite transaction are not affected. fn runs on the writer goroutine: it
// must be short, must not block on I/O other than through tx, and must not
// call Apply. tx is invalid after fn returns.
//
// ctx bounds the wait for the writer. Once fn has started it runs to the
// end and Apply reports the real outcome, so a committed change is never
// reported as cancelled.
func (l *Ledger) Apply(ctx context.Context, fn func(tx *Tx) error) error {
	return l.apply(ctx, nil, fn)
}

// apply is Apply; queued, if not nil, is called as soon as fn is in the
// writer's queue (Do takes itself off l.preparing there).
func (l *Ledger) apply(ctx context.Context, queued func(), fn func(tx *Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := reqPool.Get().(*commitReq)
	r.ctx, r.fn = ctx, fn
	l.closeMu.RLock()
	if l.closed {
		l.closeMu.RUnlock()
		reqPool.Put(r)
		return ErrClosed
	}
	select {
	case l.reqs <- r:
	case <-ctx.Done():
		l.closeMu.RUnlock()
		reqPool.Put(r)
		return ctx.Err()
	}
	l.closeMu.RUnlock()
	if queued != nil {
		queued()
	}
	err := <-r.done
	r.ctx, r.fn = nil, nil
	reqPool.Put(r)
	return err
}

// run is the writer goroutine. Batching is natural: while one batch is being
// committed (the fsync dominates), new requests queue up and form the next
// batch. With Options.GroupWindow set, the writer also waits, up to that
// window, for requests that Do is preparing right now (their plugin or
// seal is running): their commits are a few hundred microseconds away, and
// sharing this batch's fsync saves one of their own. Nothing else delays a
// commit, so a lone request is never kept waiting by a timer.
func (l *Ledger) run() {
	defer close(l.stopped)
	batch := make([]*commitReq, 0, l.opts.MaxBatch)
	results := make([]error, l.opts.MaxBatch)
	var timer *time.Timer
	for {
		var first *commitReq
		select {
		case first = <-l.reqs:
		case <-l.stop:
			// Close waited for every sender, so draining empties the queue.
			for {
				select {
				case r := <-l.reqs:
					batch = append(batch[:0], r)
					l.commitBatch(batch, results)
				default:
					return
				}
			}
		}
		batch = l.takeQueued(append(batch[:0], first))
		if win := l.opts.GroupWindow; win > 0 && l.preparing.Load() > 0 {
			if timer == nil {
				timer = time.NewTimer(win)
			} else {
				timer.Reset(win)
			}
		wait:
			for len(batch) < l.opts.MaxBatch && l.preparing.Load() > 0 {
				select {
				case r := <-l.reqs:
					batch = append(batch, r)
				case <-l.prepared:
				case <-timer.C:
					break wait
				}
			}
			timer.Stop()
			batch = l.takeQueued(batch)
		}
		l.commitBatch(batch, results)
	}
}

// takeQueued adds the commits already queued to batch, up to MaxBatch,
// without waiting.
func (l *Ledger) takeQueued(batch []*commitReq) []*commitReq {
	for len(batch) < l.opts.MaxBatch {
		select {
		case r := <-l.reqs:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// prepareDone takes one caller off l.preparing (its closure is queued, or
// it will not commit) and wakes a writer waiting for it.
func (l *Ledger) prepareDone() {
	l.preparing.Add(-1)
	select {
	case l.prepared <- struct{}{}:
	default:
	}
}

// commitBatch runs batch in one transaction and answers every caller.
func (l *Ledger) commitBatch(batch []*commitReq, results []error) {
	results = results[:len(batch)]
	start := time.Now()
	defer func() {
		l.stats.busyNS.Add(int64(time.Since(start)))
		for i, r := range batch {
			if results[i] != nil {
				l.stats.failed.Add(1)
			}
			r.done <- results[i]
			results[i] = nil
		}
	}()
	w := l.w
	for i, q := range w.begin {
		if _, err := w.exec(q); err != nil {
			if i > 0 {
				w.exec(sqlRollback)
			}
			l.failAll(results, fmt.Errorf("ledger: begin: %w", err))
			return
		}
	}
	// With one closure a savepoint buys nothing: its failure rolls back the
	// whole transaction, which is the single-commit baseline.
	useSP := len(batch) > 1
	committed := 0
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			results[i] = err
			continue
		}
		if useSP {
			if _, err := w.exec(sqlSavepoint); err != nil {
				l.abort(results, fmt.Errorf("ledger: savepoint: %w", err))
				return
			}
		}
		err := l.runClosure(r.fn)
		if err == nil {
			if useSP {
				if _, rerr := w.exec(sqlRelease); rerr != nil {
					l.abort(results, fmt.Errorf("ledger: release: %w", rerr))
					return
				}
			}
			committed++
			continue
		}
		results[i] = err
		if useSP {
			// If SQLite already rolled back the whole transaction (some I/O
			// errors do), ROLLBACK TO fails and the batch cannot commit.
			if _, rerr := w.exec(sqlRollbackTo); rerr != nil {
				l.abort(results, fmt.Errorf("ledger: rollback to savepoint: %w", rerr))
				return
			}
			if _, rerr := w.exec(sqlRelease); rerr != nil {
				l.abort(results, fmt.Errorf("ledger: release: %w", rerr))
				return
			}
		}
	}
	if committed == 0 {
		if _, err := w.exec(sqlRollback); err != nil {
			l.log.Warn("ledger: rollback of failed batch", "err", err)
		}
		return
	}
	if _, err := w.exec(sqlCommit); err != nil {
		l.abort(results, fmt.Errorf("%w: %w", ErrCommitFailed, err))
		return
	}
	l.stats.tx.Add(1)
	l.stats.closures.Add(int64(committed))
}

// failAll gives every caller err.
func (l *Ledger) failAll(results []error, err error) {
	for i := range results {
		results[i] = err
	}
}

// abort rolls the whole transaction back: closures that had succeeded get
// err, those that failed keep their own error.
func (l *Ledger) abort(results []error, err error) {
	if _, rerr := l.w.exec(sqlRollback); rerr != nil {
		// Already rolled back by SQLite; nothing is left open.
		l.log.Debug("ledger: rollback after abort", "err", rerr)
	}
	for i := range results {
		if results[i] == nil {
			results[i] = err
		}
	}
	l.log.Error("ledger: batch aborted", "closures", len(results), "err", err)
}

// runClosure calls fn with a fresh Tx, turning a panic into ErrPanic so a
// bug in one caller's closure cannot kill the writer.
func (l *Ledger) runClosure(fn func(*Tx) error) (err error) {
	tx := &Tx{l: l, w: l.w, now: l.nowMS()}
	defer func() {
		tx.done = true
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", ErrPanic, p)
		}
	}()
	return fn(tx)
}

const (
	sqlCommit     = `COMMIT`
	sqlRollback   = `ROLLBACK`
	sqlSavepoint  = `SAVEPOINT c`
	sqlRelease    = `RELEASE c`
	sqlRollbackTo = `ROLLBACK TO c`
)

// writer owns the one connection all writes use, with its statements
// prepared once. Only the writer goroutine touches it.
type writer struct {
	conn  *sql.Conn
	stmts map[string]*sql.Stmt
	// begin starts a write transaction on this engine (db.Engine.WriteBegin).
	begin []string
}

func newWriter(conn *sql.Conn, e db.Engine) *writer {
	return &writer{conn: conn, stmts: make(map[string]*sql.Stmt), begin: e.WriteBegin()}
}

// Statements run with a background context on purpose: cancelling one
// caller's context would interrupt SQLite mid-statement, and an interrupted
// write rolls back the whole shared transaction.
func (w *writer) stmt(q string) (*sql.Stmt, error) {
	if s, ok := w.stmts[q]; ok {
		return s, nil
	}
	s, err := w.conn.PrepareContext(context.Background(), q)
	if err != nil {
		return nil, err
	}
	w.stmts[q] = s
	return s, nil
}

func (w *writer) exec(q string, args ...any) (sql.Result, error) {
	s, err := w.stmt(q)
	if err != nil {
		return nil, err
	}
	return s.ExecContext(context.Background(), args...)
}

func (w *writer) queryRow(q string, args ...any) rowScanner {
	s, err := w.stmt(q)
	if err != nil {
		// Surface the prepare error through Scan. (Running q unprepared
		// instead would hide it on PostgreSQL, where the failed prepare has
		// already aborted the transaction.)
		return errRow{err}
	}
	return s.QueryRowContext(context.Background(), args...)
}

func (w *writer) query(q string, args ...any) (*sql.Rows, error) {
	s, err := w.stmt(q)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(context.Background(), args...)
}

func (w *writer) close() error {
	var errs []error
	for _, s := range w.stmts {
		errs = append(errs, s.Close())
	}
	errs = append(errs, w.conn.Close())
	return errors.Join(errs...)
}

// readStmts caches statements prepared on the pool for reads outside
// transactions; database/sql keeps one prepared copy per connection.
type readStmts struct {
	mu sync.RWMutex
	m  map[string]*sql.Stmt
	db *sql.DB
}

func (r *readStmts) prepare(_ context.Context, d *sql.DB) error {
	r.db = d
	r.m = make(map[string]*sql.Stmt)
	return nil
}

func (r *readStmts) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	r.mu.RLock()
	s, ok := r.m[q]
	r.mu.RUnlock()
	if ok {
		return s, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.m[q]; ok {
		return s, nil
	}
	s, err := r.db.PrepareContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("ledger: prepare: %w", err)
	}
	r.m[q] = s
	return s, nil
}

func (r *readStmts) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.m {
		s.Close()
	}
	r.m = nil
}

// rowScanner is what scan helpers need from *sql.Row and *sql.Rows.
type rowScanner interface{ Scan(dest ...any) error }

// errRow lets a prepare failure surface through Scan.
type errRow struct{ err error }

func (e errRow) Scan(...any) error { return e.err }

// readRow runs a single-row read on the pool.
func (l *Ledger) readRow(ctx context.Context, q string, args ...any) rowScanner {
	s, err := l.read.stmt(ctx, q)
	if err != nil {
		return errRow{err}
	}
	return s.QueryRowContext(ctx, args...)
}

// readRows runs a multi-row read on the pool.
func (l *Ledger) readRows(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	s, err := l.read.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(ctx, args...)
}

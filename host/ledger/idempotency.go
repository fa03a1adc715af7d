package ledger

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"
)

// StatusOK is the only HTTP status an idempotency record may hold: other
// outcomes are re-evaluated on retry (spec §7.4).
const StatusOK = 200

// Request identifies one Google request for idempotency purposes.
type Request struct {
	PIAID     string
	RequestID string
	Method    string
	// Hash is computed by the pipeline over the decrypted request without
	// requestHeader.requestTimestamp.
	Hash []byte
}

// Record is a stored answer to a request. Body is the response body
// WITHOUT its responseHeader, so a replay is re-sealed with a fresh
// responseTimestamp and is otherwise byte-identical.
type Record struct {
	PIAID     string
	RequestID string
	Method    string
	Hash      []byte
	Status    int
	Body      []byte
	Created   time.Time
}

// Outcome is what processing a request produced.
type Outcome struct {
	// Body is the response body without header (HTTP 200).
	Body []byte
	// Apply, if not nil, writes the request's ledger mutation, KV change set
	// and outbox entries. It runs in the same transaction as the record, so
	// either all of it is durable or none.
	Apply func(tx *Tx) error
}

// Do answers one request exactly once. Concurrent duplicates in this
// process wait for the first; the UNIQUE key on (PIAID, requestId) guards
// against other processes.
//
//   - A stored record with the same method and hash is returned with
//     replayed=true, without calling process.
//   - A stored record with a different method or hash gives
//     ErrIdempotencyViolation.
//   - Otherwise process runs. If it fails, its error is returned and nothing
//     is stored (a retry is re-evaluated). If it succeeds, the record and
//     Outcome.Apply commit together; an error from Apply (e.g.
//     ErrRefundExceedsRemaining) is returned and nothing is stored.
func (l *Ledger) Do(ctx context.Context, req Request, process func(ctx context.Context) (Outcome, error)) (rec Record, replayed bool, err error) {
	unlock, err := l.locks.lock(ctx, lockKey{req.PIAID, req.RequestID})
	if err != nil {
		return Record{}, false, err
	}
	defer unlock()

	stored, err := l.Record(ctx, req.PIAID, req.RequestID)
	switch {
	case err == nil:
		if err := sameRequest(stored, req); err != nil {
			return Record{}, false, err
		}
		return stored, true, nil
	case !errors.Is(err, ErrNotFound):
		return Record{}, false, err
	}

	// Count this request as a commit on its way, so the writer may wait
	// for it (Options.GroupWindow); taken off once its closure is queued,
	// or on any way out before that, a panic in process included.
	l.preparing.Add(1)
	counted := true
	uncount := func() {
		if counted {
			counted = false
			l.prepareDone()
		}
	}
	defer uncount()
	out, err := process(ctx)
	if err != nil {
		return Record{}, false, err
	}
	rec = Record{PIAID: req.PIAID, RequestID: req.RequestID, Method: req.Method,
		Hash: req.Hash, Status: StatusOK, Body: out.Body}
	err = l.apply(ctx, uncount, func(tx *Tx) error {
		if err := tx.PutRecord(rec); err != nil {
			return err
		}
		if out.Apply != nil {
			return out.Apply(tx)
		}
		return nil
	})
	var re *ReplayError
	if errors.As(err, &re) {
		// Another process committed the same request first: its answer
		// is the answer.
		return re.Record, true, nil
	}
	if err != nil {
		return Record{}, false, err
	}
	rec.Created = time.UnixMilli(l.nowMS())
	return rec, false, nil
}

func sameRequest(stored Record, req Request) error {
	if stored.Method != req.Method {
		return fmt.Errorf("%w: request %s was a %s, now %s", ErrIdempotencyViolation, req.RequestID, stored.Method, req.Method)
	}
	if !bytes.Equal(stored.Hash, req.Hash) {
		return fmt.Errorf("%w: request %s has different parameters", ErrIdempotencyViolation, req.RequestID)
	}
	return nil
}

const recordCols = `piaid, request_id, method, request_hash, status, body, created_ms`

func scanRecord(s rowScanner) (Record, error) {
	var r Record
	var created int64
	if err := s.Scan(&r.PIAID, &r.RequestID, &r.Method, &r.Hash, &r.Status, &r.Body, &created); err != nil {
		return Record{}, notFound(err)
	}
	r.Created = time.UnixMilli(created)
	return r, nil
}

const sqlGetRecord = `SELECT ` + recordCols + ` FROM idempotency WHERE piaid = ? AND request_id = ?`

// Record returns the committed record of (piaid, requestID) or ErrNotFound.
func (l *Ledger) Record(ctx context.Context, piaid, requestID string) (Record, error) {
	return scanRecord(l.readRow(ctx, sqlGetRecord, piaid, requestID))
}

// Record re-reads a record inside the transaction.
func (tx *Tx) Record(piaid, requestID string) (Record, error) {
	if err := tx.check(); err != nil {
		return Record{}, err
	}
	return scanRecord(tx.w.queryRow(sqlGetRecord, piaid, requestID))
}

// PutRecord stores the answer to a request. Only StatusOK is accepted (other
// outcomes must be re-evaluated, never replayed). If the key exists with the
// same method and hash it returns a *ReplayError holding the stored record
// (errors.Is ErrAlreadyProcessed); with a different one,
// ErrIdempotencyViolation. Either way the caller's closure should return
// the error so its mutation rolls back.
func (tx *Tx) PutRecord(r Record) error {
	if err := tx.check(); err != nil {
		return err
	}
	if r.Status != StatusOK {
		return fmt.Errorf("ledger: refusing to store status %d: only 200 is replayed", r.Status)
	}
	if r.PIAID == "" || r.RequestID == "" || r.Method == "" || len(r.Hash) == 0 || r.Body == nil {
		return errors.New("ledger: record needs PIAID, request id, method, hash and body")
	}
	res, err := tx.w.exec(`INSERT INTO idempotency(`+recordCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (piaid, request_id) DO NOTHING`,
		r.PIAID, r.RequestID, r.Method, r.Hash, r.Status, r.Body, tx.now)
	if err != nil {
		return fmt.Errorf("ledger: put record: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	stored, err := tx.Record(r.PIAID, r.RequestID)
	if err != nil {
		return fmt.Errorf("ledger: read conflicting record: %w", err)
	}
	if err := sameRequest(stored, Request{PIAID: r.PIAID, RequestID: r.RequestID, Method: r.Method, Hash: r.Hash}); err != nil {
		return err
	}
	return &ReplayError{Record: stored}
}

// PurgeRecords deletes idempotency records older than the retention period
// (Options.Retention, default 400 days) at now, in chunks so it never holds
// the write lock for long. It returns how many were deleted.
func (l *Ledger) PurgeRecords(ctx context.Context, now time.Time) (int64, error) {
	cutoff := now.Add(-l.opts.Retention).UnixMilli()
	var total int64
	for {
		var n int64
		err := l.Apply(ctx, func(tx *Tx) error {
			res, err := tx.w.exec(`DELETE FROM idempotency WHERE (piaid, request_id) IN
				(SELECT piaid, request_id FROM idempotency WHERE created_ms < ? LIMIT 500)`, cutoff)
			if err != nil {
				return err
			}
			n, _ = res.RowsAffected()
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("ledger: purge records: %w", err)
		}
		total += n
		if n < 500 {
			return total, nil
		}
	}
}

// notFound maps sql.ErrNoRows to ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

// keyedLocks serialises work per (PIAID, requestId) in this process.
type keyedLocks struct {
	mu sync.Mutex
	m  map[lockKey]*lockEntry
}

type lockKey struct{ piaid, requestID string }

type lockEntry struct {
	ch   chan struct{} // capacity 1: holding the token is holding the lock
	refs int
}

func (k *keyedLocks) lock(ctx context.Context, key lockKey) (func(), error) {
	k.mu.Lock()
	e := k.m[key]
	if e == nil {
		e = &lockEntry{ch: make(chan struct{}, 1)}
		k.m[key] = e
	}
	e.refs++
	k.mu.Unlock()
	select {
	case e.ch <- struct{}{}:
		return func() {
			<-e.ch
			k.release(key, e)
		}, nil
	case <-ctx.Done():
		k.release(key, e)
		return nil, ctx.Err()
	}
}

func (k *keyedLocks) release(key lockKey, e *lockEntry) {
	k.mu.Lock()
	e.refs--
	if e.refs == 0 {
		delete(k.m, key)
	}
	k.mu.Unlock()
}

package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// OutboxState is the delivery state of a notification to Google.
type OutboxState string

// Outbox states: pending ─▶ delivered | dead (dead ─▶ pending by Requeue).
const (
	OutboxPending   OutboxState = "pending"
	OutboxDelivered OutboxState = "delivered"
	OutboxDead      OutboxState = "dead"
)

// maxLastError bounds the stored delivery error text.
const maxLastError = 1024

// OutboxItem is one call to a Google-hosted method waiting to be delivered.
type OutboxItem struct {
	ID         int64
	MerchantID string
	PIAID      string
	Method     string
	// RequestID is the requestId sent to Google; stable across retries.
	RequestID string
	// Payload is the plaintext request body without the header timestamp;
	// the sender re-seals each attempt with a fresh requestTimestamp.
	Payload []byte
	// OrderingKey serialises delivery: only the oldest pending item of a key
	// is ever claimed (e.g. the transaction id, so a refund result never
	// overtakes the paid notification).
	OrderingKey   string
	State         OutboxState
	Attempts      int
	NextAttemptAt time.Time
	LastError     string
	Created       time.Time
	DeliveredAt   time.Time
}

const outboxCols = `id, merchant_id, piaid, method, request_id, payload, ordering_key, state, attempts,
	next_attempt_ms, last_error, created_ms, delivered_ms`

func scanOutbox(s rowScanner) (OutboxItem, error) {
	var o OutboxItem
	var state string
	var next, created int64
	var delivered sql.NullInt64
	if err := s.Scan(&o.ID, &o.MerchantID, &o.PIAID, &o.Method, &o.RequestID, &o.Payload, &o.OrderingKey,
		&state, &o.Attempts, &next, &o.LastError, &created, &delivered); err != nil {
		return OutboxItem{}, notFound(err)
	}
	o.State = OutboxState(state)
	o.NextAttemptAt, o.Created, o.DeliveredAt = time.UnixMilli(next), time.UnixMilli(created), fromMS(delivered)
	return o, nil
}

// Enqueue adds a pending notification in this transaction and returns its
// id. NextAttemptAt zero means now. (PIAID, RequestID) must be new
// (ErrDuplicate).
func (tx *Tx) Enqueue(o OutboxItem) (int64, error) {
	if err := tx.check(); err != nil {
		return 0, err
	}
	if o.MerchantID == "" || o.PIAID == "" || o.Method == "" || o.RequestID == "" || o.Payload == nil {
		return 0, errors.New("ledger: outbox item needs merchant, PIAID, method, request id and payload")
	}
	if o.OrderingKey == "" {
		o.OrderingKey = o.RequestID
	}
	next := tx.now
	if !o.NextAttemptAt.IsZero() {
		next = o.NextAttemptAt.UnixMilli()
	}
	// RETURNING rather than LastInsertId, which PostgreSQL's driver lacks;
	// no row back means the conflict clause skipped a duplicate.
	var id int64
	err := tx.w.queryRow(`INSERT INTO outbox(merchant_id, piaid, method, request_id, payload, ordering_key, state,
		next_attempt_ms, created_ms) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?)
		ON CONFLICT (piaid, request_id) DO NOTHING RETURNING id`,
		o.MerchantID, o.PIAID, o.Method, o.RequestID, o.Payload, o.OrderingKey, next, tx.now).Scan(&id)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, fmt.Errorf("%w: outbox request %s", ErrDuplicate, o.RequestID)
	case err != nil:
		return 0, fmt.Errorf("ledger: enqueue: %w", err)
	}
	return id, nil
}

// ClaimDue returns up to limit pending items due at now, only the oldest
// pending item of each ordering key, and leases them: each claimed item's
// attempt counter is incremented and it is hidden from other claims until
// now + Options.ClaimLease, after which a crashed worker's item is offered
// again. The worker must then call MarkDelivered, MarkFailed or MarkDead.
func (l *Ledger) ClaimDue(ctx context.Context, now time.Time, limit int) ([]OutboxItem, error) {
	if limit <= 0 {
		return nil, nil
	}
	var out []OutboxItem
	nowMS := now.UnixMilli()
	lease := now.Add(l.opts.ClaimLease).UnixMilli()
	err := l.Apply(ctx, func(tx *Tx) error {
		out = out[:0]
		rows, err := tx.w.query(`SELECT `+outboxCols+` FROM outbox o
			WHERE o.state = 'pending' AND o.next_attempt_ms <= ?
			AND NOT EXISTS (SELECT 1 FROM outbox p
				WHERE p.state = 'pending' AND p.ordering_key = o.ordering_key AND p.id < o.id)
			ORDER BY o.next_attempt_ms, o.id LIMIT ?`, nowMS, limit)
		if err != nil {
			return err
		}
		for rows.Next() {
			o, err := scanOutbox(rows)
			if err != nil {
				rows.Close()
				return err
			}
			out = append(out, o)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for i := range out {
			if err := tx.exec1("claim", `UPDATE outbox SET attempts = attempts + 1, next_attempt_ms = ? WHERE id = ?`,
				lease, out[i].ID); err != nil {
				return err
			}
			out[i].Attempts++
			out[i].NextAttemptAt = time.UnixMilli(lease)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: claim outbox: %w", err)
	}
	return out, nil
}

// MarkDelivered records that Google answered item id with HTTP 200.
func (l *Ledger) MarkDelivered(ctx context.Context, id int64, at time.Time) error {
	return l.outboxUpdate(ctx, id, "mark delivered",
		`UPDATE outbox SET state = 'delivered', delivered_ms = ?, last_error = '' WHERE id = ? AND state = 'pending'`,
		at.UnixMilli(), id)
}

// MarkFailed records a failed attempt and schedules the next at
// nextAttemptAt. Later items of the same ordering key keep waiting.
func (l *Ledger) MarkFailed(ctx context.Context, id int64, cause error, nextAttemptAt time.Time) error {
	return l.outboxUpdate(ctx, id, "mark failed",
		`UPDATE outbox SET last_error = ?, next_attempt_ms = ? WHERE id = ? AND state = 'pending'`,
		errText(cause), nextAttemptAt.UnixMilli(), id)
}

// MarkDead gives up on item id (e.g. too many attempts or a permanent
// error). It moves to the dead letters and stops blocking its ordering key.
func (l *Ledger) MarkDead(ctx context.Context, id int64, cause error) error {
	return l.outboxUpdate(ctx, id, "mark dead",
		`UPDATE outbox SET state = 'dead', last_error = ? WHERE id = ? AND state = 'pending'`, errText(cause), id)
}

// Requeue moves a dead item back to pending, due at now (operator action).
func (l *Ledger) Requeue(ctx context.Context, id int64, now time.Time) error {
	return l.outboxUpdate(ctx, id, "requeue",
		`UPDATE outbox SET state = 'pending', next_attempt_ms = ? WHERE id = ? AND state = 'dead'`, now.UnixMilli(), id)
}

func (l *Ledger) outboxUpdate(ctx context.Context, id int64, what, q string, args ...any) error {
	err := l.Apply(ctx, func(tx *Tx) error {
		res, err := tx.w.exec(q, args...)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: outbox item %d in the required state", ErrNotFound, id)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("ledger: %s: %w", what, err)
	}
	return nil
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	if len(s) > maxLastError {
		s = s[:maxLastError]
	}
	return s
}

// Depth returns the number of pending outbox items.
func (l *Ledger) Depth(ctx context.Context) (int64, error) {
	var n int64
	if err := l.readRow(ctx, `SELECT COUNT(*) FROM outbox WHERE state = 'pending'`).Scan(&n); err != nil {
		return 0, fmt.Errorf("ledger: outbox depth: %w", err)
	}
	return n, nil
}

// OutboxItem returns one outbox item by id.
func (l *Ledger) OutboxItem(ctx context.Context, id int64) (OutboxItem, error) {
	return scanOutbox(l.readRow(ctx, `SELECT `+outboxCols+` FROM outbox WHERE id = ?`, id))
}

// DeadLetters lists up to limit dead items, oldest first.
func (l *Ledger) DeadLetters(ctx context.Context, limit int) ([]OutboxItem, error) {
	rows, err := l.readRows(ctx, `SELECT `+outboxCols+` FROM outbox WHERE state = 'dead' ORDER BY id LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("ledger: dead letters: %w", err)
	}
	defer rows.Close()
	var out []OutboxItem
	for rows.Next() {
		o, err := scanOutbox(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

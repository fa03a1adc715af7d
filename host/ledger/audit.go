package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// AuditEntry is one line of the append-only audit log. Before and After are
// JSON snapshots of the subject (never secrets).
type AuditEntry struct {
	ID      int64
	At      time.Time // zero: the transaction's time
	Actor   string
	Action  string
	Subject string
	Before  []byte
	After   []byte
}

// AuditHead returns the id of the newest audit entry (0 for none). Every
// change made through the admin API is audited, so a host sharing the
// database with others notices their changes when the head moves.
func (l *Ledger) AuditHead(ctx context.Context) (int64, error) {
	var id int64
	if err := l.readRow(ctx, `SELECT COALESCE(MAX(id), 0) FROM audit`).Scan(&id); err != nil {
		return 0, fmt.Errorf("ledger: audit head: %w", err)
	}
	return id, nil
}

// Audit appends an entry in its own transaction.
func (l *Ledger) Audit(ctx context.Context, e AuditEntry) error {
	return l.Apply(ctx, func(tx *Tx) error { return tx.Audit(e) })
}

// Audit appends an entry in this transaction, so it commits with the change
// it describes.
func (tx *Tx) Audit(e AuditEntry) error {
	if err := tx.check(); err != nil {
		return err
	}
	if e.Actor == "" || e.Action == "" {
		return errors.New("ledger: audit entry needs an actor and an action")
	}
	at := tx.now
	if !e.At.IsZero() {
		at = e.At.UnixMilli()
	}
	if _, err := tx.w.exec(`INSERT INTO audit(at_ms, actor, action, subject, before, after) VALUES (?, ?, ?, ?, ?, ?)`,
		at, e.Actor, e.Action, e.Subject, e.Before, e.After); err != nil {
		return fmt.Errorf("ledger: audit: %w", err)
	}
	return nil
}

// AuditQuery selects audit entries: those after AfterID (for paging),
// optionally only for one Subject, at most Limit (default 100).
type AuditQuery struct {
	Subject string
	AfterID int64
	Limit   int
}

// AuditLog lists audit entries in append order.
func (l *Ledger) AuditLog(ctx context.Context, q AuditQuery) ([]AuditEntry, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	rows, err := l.readRows(ctx, `SELECT id, at_ms, actor, action, subject, before, after FROM audit
		WHERE id > ? AND (? = '' OR subject = ?) ORDER BY id LIMIT ?`, q.AfterID, q.Subject, q.Subject, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("ledger: audit log: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Subject, &e.Before, &e.After); err != nil {
			return nil, fmt.Errorf("ledger: audit log: %w", err)
		}
		e.At = time.UnixMilli(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

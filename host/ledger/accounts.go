package ledger

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"
)

// GPTHash is how the ledger identifies a Google payment token: its SHA-256.
// The raw token is never stored.
func GPTHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// Association binds an associationId and a Google payment token to a
// merchant account (associateAccount). RequestID is the association
// attempt's requestId.
type Association struct {
	PIAID         string
	AssociationID string
	RequestID     string
	IssuerID      string
	GPTHash       []byte // GPTHash(token)
	AccountID     string
	AuthRequestID string
	Created       time.Time
}

const assocCols = `piaid, association_id, request_id, issuer_id, gpt_hash, account_id, auth_request_id, created_ms`

func scanAssoc(s rowScanner) (Association, error) {
	var a Association
	var created int64
	if err := s.Scan(&a.PIAID, &a.AssociationID, &a.RequestID, &a.IssuerID, &a.GPTHash, &a.AccountID,
		&a.AuthRequestID, &created); err != nil {
		return Association{}, notFound(err)
	}
	a.Created = time.UnixMilli(created)
	return a, nil
}

// Associate stores an association. If its associationId or token was
// already bound by a different attempt (another RequestID) it returns
// ErrAssociationConflict; the same attempt again is a no-op.
func (tx *Tx) Associate(a Association) error {
	if err := tx.check(); err != nil {
		return err
	}
	if a.PIAID == "" || a.AssociationID == "" || a.RequestID == "" || len(a.GPTHash) == 0 || a.AccountID == "" {
		return errors.New("ledger: association needs PIAID, association id, request id, GPT hash and account")
	}
	rows, err := tx.w.query(`SELECT `+assocCols+` FROM associations
		WHERE piaid = ? AND (association_id = ? OR gpt_hash = ?)`, a.PIAID, a.AssociationID, a.GPTHash)
	if err != nil {
		return fmt.Errorf("ledger: associate: %w", err)
	}
	var existing []Association
	for rows.Next() {
		e, err := scanAssoc(rows)
		if err != nil {
			rows.Close()
			return fmt.Errorf("ledger: associate: %w", err)
		}
		existing = append(existing, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("ledger: associate: %w", err)
	}
	for _, e := range existing {
		if e.RequestID != a.RequestID {
			what := "association id"
			if bytes.Equal(e.GPTHash, a.GPTHash) {
				what = "payment token"
			}
			return fmt.Errorf("%w: %s already used by request %s", ErrAssociationConflict, what, e.RequestID)
		}
	}
	if len(existing) > 0 {
		return nil
	}
	return tx.exec1("associate", `INSERT INTO associations(`+assocCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		a.PIAID, a.AssociationID, a.RequestID, a.IssuerID, a.GPTHash, a.AccountID, a.AuthRequestID, tx.now)
}

// AccountByGPT returns the association of a payment token (the raw token is
// hashed here and not kept), or ErrNotFound.
//
// Found associations are cached: an association never changes and is
// never deleted (a PIAID or merchant holding one cannot be), so a cached
// one is right on every host; an unknown token is asked again each time,
// since it may be associated later.
func (l *Ledger) AccountByGPT(ctx context.Context, piaid, token string) (Association, error) {
	h := GPTHash(token)
	key := piaid + "\x00" + string(h)
	if a, ok := l.assocs.get(key); ok {
		return a, nil
	}
	a, err := scanAssoc(l.readRow(ctx, `SELECT `+assocCols+` FROM associations WHERE piaid = ? AND gpt_hash = ?`, piaid, h))
	if err == nil {
		l.assocs.put(key, a)
	}
	return a, err
}

// maxCachedAssocs bounds the association cache (a few hundred bytes each).
const maxCachedAssocs = 50_000

// assocCache holds found associations by PIAID and token hash. When full
// it starts again empty: bounded, and simple enough to be obviously right.
type assocCache struct {
	mu sync.RWMutex
	m  map[string]Association
}

func (c *assocCache) get(key string) (Association, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	a, ok := c.m[key]
	return a, ok
}

func (c *assocCache) put(key string, a Association) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedAssocs {
		c.m = make(map[string]Association)
	}
	c.m[key] = a
}

// Association returns an association by its id, or ErrNotFound.
func (l *Ledger) Association(ctx context.Context, piaid, associationID string) (Association, error) {
	return scanAssoc(l.readRow(ctx, `SELECT `+assocCols+` FROM associations WHERE piaid = ? AND association_id = ?`,
		piaid, associationID))
}

// AuthSession is the outcome of one web-redirect authentication (spec §8),
// later proven by associateAccount's authenticationRequestId.
type AuthSession struct {
	AuthRequestID string
	PIAID         string
	AccountID     string
	Result        string // e.g. "success", "declined"
	Created       time.Time
	Consumed      time.Time // zero until consumed
}

const authCols = `auth_request_id, piaid, account_id, result, created_ms, consumed_ms`

func scanAuth(s rowScanner) (AuthSession, error) {
	var a AuthSession
	var created int64
	var consumed sql.NullInt64
	if err := s.Scan(&a.AuthRequestID, &a.PIAID, &a.AccountID, &a.Result, &created, &consumed); err != nil {
		return AuthSession{}, notFound(err)
	}
	a.Created, a.Consumed = time.UnixMilli(created), fromMS(consumed)
	return a, nil
}

// SaveAuthSession stores a new authentication session (ErrDuplicate if the
// id exists).
func (tx *Tx) SaveAuthSession(s AuthSession) error {
	if err := tx.check(); err != nil {
		return err
	}
	res, err := tx.w.exec(`INSERT INTO auth_sessions(auth_request_id, piaid, account_id, result, created_ms)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (auth_request_id) DO NOTHING`,
		s.AuthRequestID, s.PIAID, s.AccountID, s.Result, tx.now)
	if err != nil {
		return fmt.Errorf("ledger: save auth session: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: auth session %s", ErrDuplicate, s.AuthRequestID)
	}
	return nil
}

// ConsumeAuthSession marks a session of piaid used and returns it:
// ErrNotFound if unknown (or another PIAID's), ErrAuthSessionConsumed if it
// was used before.
func (tx *Tx) ConsumeAuthSession(piaid, authRequestID string) (AuthSession, error) {
	if err := tx.check(); err != nil {
		return AuthSession{}, err
	}
	s, err := scanAuth(tx.w.queryRow(`SELECT `+authCols+` FROM auth_sessions WHERE auth_request_id = ? AND piaid = ?`,
		authRequestID, piaid))
	if err != nil {
		return AuthSession{}, fmt.Errorf("ledger: auth session %s: %w", authRequestID, err)
	}
	if !s.Consumed.IsZero() {
		return AuthSession{}, fmt.Errorf("%w: %s", ErrAuthSessionConsumed, authRequestID)
	}
	if err := tx.exec1("consume auth session", `UPDATE auth_sessions SET consumed_ms = ? WHERE auth_request_id = ?`,
		tx.now, authRequestID); err != nil {
		return AuthSession{}, err
	}
	s.Consumed = time.UnixMilli(tx.now)
	return s, nil
}

// AuthSession returns a committed authentication session or ErrNotFound.
func (l *Ledger) AuthSession(ctx context.Context, authRequestID string) (AuthSession, error) {
	return scanAuth(l.readRow(ctx, `SELECT `+authCols+` FROM auth_sessions WHERE auth_request_id = ?`, authRequestID))
}

// StatementState is the state of a remittance statement.
type StatementState string

// Statement states: notified ─▶ accepted | accepted_with_modifications.
const (
	StatementNotified                  StatementState = "notified"
	StatementAccepted                  StatementState = "accepted"
	StatementAcceptedWithModifications StatementState = "accepted_with_modifications"
)

// Statement is a remittance statement; StatementID is the
// remittanceStatementNotification requestId.
type Statement struct {
	PIAID       string
	StatementID string
	Summary     []byte // remittanceStatementSummary JSON
	State       StatementState
	Created     time.Time
	Updated     time.Time
}

const stmtCols = `piaid, statement_id, summary, state, created_ms, updated_ms`

func scanStatement(s rowScanner) (Statement, error) {
	var st Statement
	var state string
	var created, updated int64
	if err := s.Scan(&st.PIAID, &st.StatementID, &st.Summary, &state, &created, &updated); err != nil {
		return Statement{}, notFound(err)
	}
	st.State, st.Created, st.Updated = StatementState(state), time.UnixMilli(created), time.UnixMilli(updated)
	return st, nil
}

// SaveStatement stores a newly notified statement (ErrDuplicate if known).
func (tx *Tx) SaveStatement(s Statement) error {
	if err := tx.check(); err != nil {
		return err
	}
	if s.PIAID == "" || s.StatementID == "" || len(s.Summary) == 0 {
		return errors.New("ledger: statement needs PIAID, id and summary")
	}
	res, err := tx.w.exec(`INSERT INTO statements(`+stmtCols+`) VALUES (?, ?, ?, 'notified', ?, ?)
		ON CONFLICT (piaid, statement_id) DO NOTHING`, s.PIAID, s.StatementID, s.Summary, tx.now, tx.now)
	if err != nil {
		return fmt.Errorf("ledger: save statement: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: statement %s", ErrDuplicate, s.StatementID)
	}
	return nil
}

// AcceptStatement moves a notified statement to accepted or
// accepted_with_modifications; anything else is a *StateError.
func (tx *Tx) AcceptStatement(piaid, statementID string, to StatementState) error {
	if err := tx.check(); err != nil {
		return err
	}
	if to != StatementAccepted && to != StatementAcceptedWithModifications {
		return fmt.Errorf("%w: statement cannot move to %s", ErrInvalidTransition, to)
	}
	s, err := scanStatement(tx.w.queryRow(`SELECT `+stmtCols+` FROM statements WHERE piaid = ? AND statement_id = ?`,
		piaid, statementID))
	if err != nil {
		return fmt.Errorf("ledger: statement %s: %w", statementID, err)
	}
	if s.State != StatementNotified {
		return &StateError{Kind: "statement", ID: statementID, From: string(s.State), Op: "accept", Err: ErrInvalidTransition}
	}
	return tx.exec1("accept statement", `UPDATE statements SET state = ?, updated_ms = ? WHERE piaid = ? AND statement_id = ?`,
		string(to), tx.now, piaid, statementID)
}

// Statement returns a committed statement or ErrNotFound.
func (l *Ledger) Statement(ctx context.Context, piaid, statementID string) (Statement, error) {
	return scanStatement(l.readRow(ctx, `SELECT `+stmtCols+` FROM statements WHERE piaid = ? AND statement_id = ?`,
		piaid, statementID))
}

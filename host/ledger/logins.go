package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// LoginFailures are an account's failed sign-ins in its current window.
type LoginFailures struct {
	Failures int
	// Until ends the window (and a lockout).
	Until time.Time
}

// LoginFailures returns the failed sign-ins of account (an opaque key, e.g.
// a hash of the account name) at merchantID whose window is still open at
// now; the zero value if there are none.
func (l *Ledger) LoginFailures(ctx context.Context, merchantID, account string, now time.Time) (LoginFailures, error) {
	var n int
	var until int64
	err := notFound(l.readRow(ctx, `SELECT failures, until_ms FROM login_failures WHERE merchant_id = ? AND account = ?`,
		merchantID, account).Scan(&n, &until))
	switch {
	case errors.Is(err, ErrNotFound):
		return LoginFailures{}, nil
	case err != nil:
		return LoginFailures{}, fmt.Errorf("ledger: login failures: %w", err)
	case until <= now.UnixMilli():
		return LoginFailures{}, nil
	}
	return LoginFailures{Failures: n, Until: time.UnixMilli(until)}, nil
}

// AddLoginFailure counts one failed sign-in at now (the login page's
// clock): the first of a window opens it for window, later ones add to it.
// It returns the count so far. Expired windows of every account are removed
// on the way, so the table holds only open windows.
func (tx *Tx) AddLoginFailure(merchantID, account string, now time.Time, window time.Duration) (LoginFailures, error) {
	if err := tx.check(); err != nil {
		return LoginFailures{}, err
	}
	ms := now.UnixMilli()
	if _, err := tx.w.exec(`DELETE FROM login_failures WHERE until_ms <= ?`, ms); err != nil {
		return LoginFailures{}, fmt.Errorf("ledger: prune login failures: %w", err)
	}
	var f LoginFailures
	var until int64
	err := tx.w.queryRow(`INSERT INTO login_failures(merchant_id, account, failures, until_ms) VALUES (?, ?, 1, ?)
		ON CONFLICT (merchant_id, account) DO UPDATE SET failures = login_failures.failures + 1
		RETURNING failures, until_ms`, merchantID, account, ms+window.Milliseconds()).Scan(&f.Failures, &until)
	if err != nil {
		return LoginFailures{}, fmt.Errorf("ledger: add login failure: %w", err)
	}
	f.Until = time.UnixMilli(until)
	return f, nil
}

// CountInWindow counts one event of key in scope at now and returns the
// count of the key's current fixed window (opened by its first event, for
// window). It is the rate counter every host sharing the database sees:
// the login page's per-address limit and the admin API's limits use it. It
// is kept in the login_failures table, named for its first use; scope is
// stored as its merchant id, so scopes must not be merchant ids (use a
// prefix such as "admin-ip").
func (l *Ledger) CountInWindow(ctx context.Context, scope, key string, now time.Time, window time.Duration) (LoginFailures, error) {
	var got LoginFailures
	err := l.Apply(ctx, func(tx *Tx) (err error) {
		got, err = tx.AddLoginFailure(scope, key, now, window)
		return err
	})
	return got, err
}

// ClearLoginFailures forgets an account's failures (a successful sign-in).
func (tx *Tx) ClearLoginFailures(merchantID, account string) error {
	if err := tx.check(); err != nil {
		return err
	}
	if _, err := tx.w.exec(`DELETE FROM login_failures WHERE merchant_id = ? AND account = ?`, merchantID, account); err != nil {
		return fmt.Errorf("ledger: clear login failures: %w", err)
	}
	return nil
}

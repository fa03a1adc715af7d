package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestAssociations(t *testing.T) {
	ctx := context.Background()
	l, _ := openTest(t, Options{})
	base := Association{PIAID: testPIAID, AssociationID: "as1", RequestID: "req1", IssuerID: "iss",
		GPTHash: GPTHash("token-1"), AccountID: "acct-1", AuthRequestID: "auth1"}
	mustApply(t, l, func(tx *Tx) error { return tx.Associate(base) })
	with := func(f func(*Association)) Association { a := base; f(&a); return a }
	tests := []struct {
		name string
		a    Association
		want error
	}{
		{"same attempt again", base, nil},
		{"association id reused by another attempt", with(func(a *Association) {
			a.RequestID, a.GPTHash = "req2", GPTHash("token-2")
		}), ErrAssociationConflict},
		{"token reused by another attempt", with(func(a *Association) {
			a.RequestID, a.AssociationID = "req3", "as3"
		}), ErrAssociationConflict},
		{"new id and token", with(func(a *Association) {
			a.RequestID, a.AssociationID, a.GPTHash, a.AccountID = "req4", "as4", GPTHash("token-4"), "acct-4"
		}), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := l.Apply(ctx, func(tx *Tx) error { return tx.Associate(tc.a) }); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	got, err := l.AccountByGPT(ctx, testPIAID, "token-1")
	if err != nil || got.AccountID != "acct-1" || got.AssociationID != "as1" {
		t.Fatalf("AccountByGPT = %+v, %v", got, err)
	}
	if got, _ := l.AccountByGPT(ctx, testPIAID, "token-4"); got.AccountID != "acct-4" {
		t.Fatalf("AccountByGPT(token-4) = %+v", got)
	}
	if _, err := l.AccountByGPT(ctx, testPIAID, "token-2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("conflicting attempt stored: %v", err)
	}
	if a, err := l.Association(ctx, testPIAID, "as4"); err != nil || a.RequestID != "req4" {
		t.Fatalf("Association = %+v, %v", a, err)
	}
	// The raw token is never stored.
	var n int
	l.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM associations WHERE CAST(gpt_hash AS TEXT) LIKE '%token%'
		OR issuer_id LIKE '%token%'`).Scan(&n)
	if n != 0 || bytes.Contains(GPTHash("token-1"), []byte("token")) {
		t.Fatal("raw token stored")
	}
}

func TestAuthSessions(t *testing.T) {
	ctx := context.Background()
	l, _ := openTest(t, Options{})
	mustApply(t, l, func(tx *Tx) error {
		return tx.SaveAuthSession(AuthSession{AuthRequestID: "auth1", PIAID: testPIAID, AccountID: "acct-1", Result: "success"})
	})
	consume := func(piaid string) error {
		return l.Apply(ctx, func(tx *Tx) error { _, err := tx.ConsumeAuthSession(piaid, "auth1"); return err })
	}
	tests := []struct {
		name string
		do   func() error
		want error
	}{
		{"duplicate", func() error {
			return l.Apply(ctx, func(tx *Tx) error { return tx.SaveAuthSession(AuthSession{AuthRequestID: "auth1", PIAID: testPIAID}) })
		}, ErrDuplicate},
		{"other PIAID", func() error { return consume("PIAID_other") }, ErrNotFound},
		{"first use", func() error { return consume(testPIAID) }, nil},
		{"second use", func() error { return consume(testPIAID) }, ErrAuthSessionConsumed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.do(); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	s, err := l.AuthSession(ctx, "auth1")
	if err != nil || s.Consumed.IsZero() || s.AccountID != "acct-1" {
		t.Fatalf("AuthSession = %+v, %v", s, err)
	}
}

func TestStatements(t *testing.T) {
	ctx := context.Background()
	l, _ := openTest(t, Options{})
	summary := []byte(`{"totalDueByIntegrator":{"amountMicros":"1076000000","currencyCode":"INR"}}`)
	save := func(id string) error {
		return l.Apply(ctx, func(tx *Tx) error {
			return tx.SaveStatement(Statement{PIAID: testPIAID, StatementID: id, Summary: summary})
		})
	}
	accept := func(id string, to StatementState) error {
		return l.Apply(ctx, func(tx *Tx) error { return tx.AcceptStatement(testPIAID, id, to) })
	}
	tests := []struct {
		name string
		do   func() error
		want error
	}{
		{"notify", func() error { return save("st1") }, nil},
		{"notify again", func() error { return save("st1") }, ErrDuplicate},
		{"to notified", func() error { return accept("st1", StatementNotified) }, ErrInvalidTransition},
		{"accept", func() error { return accept("st1", StatementAccepted) }, nil},
		{"accept twice", func() error { return accept("st1", StatementAcceptedWithModifications) }, ErrInvalidTransition},
		{"accept unknown", func() error { return accept("nope", StatementAccepted) }, ErrNotFound},
		{"notify second", func() error { return save("st2") }, nil},
		{"accept with modifications", func() error { return accept("st2", StatementAcceptedWithModifications) }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.do(); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	s, err := l.Statement(ctx, testPIAID, "st1")
	if err != nil || s.State != StatementAccepted || !bytes.Equal(s.Summary, summary) {
		t.Fatalf("Statement = %+v, %v", s, err)
	}
	if s, _ := l.Statement(ctx, testPIAID, "st2"); s.State != StatementAcceptedWithModifications {
		t.Fatalf("st2 state %s", s.State)
	}
}

// TestAccountByGPTCache: a found association is served from the cache (the
// row could not change, so the test makes the database unreadable to
// prove it); an unknown token is not cached, so an association made after
// a miss is found; the cache stays within its bound.
func TestAccountByGPTCache(t *testing.T) {
	ctx := context.Background()
	l, _ := openTest(t, Options{})
	if _, err := l.AccountByGPT(ctx, testPIAID, "later"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown token: %v", err)
	}
	a := Association{PIAID: testPIAID, AssociationID: "as1", RequestID: "req1", IssuerID: "iss",
		GPTHash: GPTHash("later"), AccountID: "acct-1", AuthRequestID: "auth1"}
	mustApply(t, l, func(tx *Tx) error { return tx.Associate(a) })
	if got, err := l.AccountByGPT(ctx, testPIAID, "later"); err != nil || got.AccountID != "acct-1" {
		t.Fatalf("after associating, a miss before must not hide it: %+v %v", got, err)
	}
	// Served without the database now.
	if _, err := l.DB().ExecContext(ctx, `ALTER TABLE associations RENAME TO associations_gone`); err != nil {
		t.Fatal(err)
	}
	if got, err := l.AccountByGPT(ctx, testPIAID, "later"); err != nil || got.AccountID != "acct-1" {
		t.Fatalf("cached association: %+v %v", got, err)
	}
	if _, err := l.AccountByGPT(ctx, testPIAID, "other"); err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("an uncached token must reach the (now broken) database: %v", err)
	}
	if _, err := l.DB().ExecContext(ctx, `ALTER TABLE associations_gone RENAME TO associations`); err != nil {
		t.Fatal(err)
	}
	for i := range maxCachedAssocs + 10 {
		l.assocs.put(fmt.Sprint(i), a)
	}
	if n := len(l.assocs.m); n > maxCachedAssocs {
		t.Fatalf("%d cached associations, bound %d", n, maxCachedAssocs)
	}
}

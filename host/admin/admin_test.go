package admin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/internal/db"
	"github.com/otpcgate/otpcgate/internal/pgtest"
	"github.com/otpcgate/otpcgate/keystore"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestPostgres runs every test of this package again on PostgreSQL.
func TestPostgres(t *testing.T) { pgtest.RunOnPostgres(t) }

func openTokens(t *testing.T) *Tokens {
	t.Helper()
	d, err := db.Open(context.Background(), pgtest.Target(t, filepath.Join(t.TempDir(), "admin.db")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	ts, err := OpenTokens(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func TestTokensStoreOnlyHashes(t *testing.T) {
	ctx := context.Background()
	ts := openTokens(t)
	tok, secret, err := ts.Bootstrap(ctx, "first", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ts.Bootstrap(ctx, "again", false); !errors.Is(err, ErrTokenExists) {
		t.Fatalf("second bootstrap: %v", err)
	}
	// The database holds the SHA-256 of the secret part, never the token.
	var stored []byte
	if err := ts.db.QueryRow(`SELECT secret_hash FROM admin_tokens WHERE id = ?`, tok.ID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if len(stored) != sha256.Size || bytes.Contains(stored, []byte(secret)) {
		t.Fatalf("stored %d bytes", len(stored))
	}
	got, err := ts.Authenticate(ctx, secret)
	if err != nil || got.ID != tok.ID || got.Scope != ScopeOperator {
		t.Fatalf("authenticate: %+v %v", got, err)
	}
	m, msecret, err := ts.Issue(ctx, ScopeMerchant, "acme", "ci")
	if err != nil {
		t.Fatal(err)
	}
	flip := []byte(msecret)
	flip[len(flip)-2] ^= 1
	for _, tc := range []struct{ name, presented string }{
		{"empty", ""},
		{"no prefix", strings.TrimPrefix(secret, tokenPrefix)},
		{"other token's secret", secret[:len(tokenPrefix)+16] + msecret[len(tokenPrefix)+16:]},
		{"one bit changed", string(flip)},
		{"unknown id", tokenPrefix + "00000000000000ff" + msecret[len(tokenPrefix)+16:]},
		{"not base64", tokenPrefix + m.ID + "_***"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ts.Authenticate(ctx, tc.presented); !errors.Is(err, ErrUnauthenticated) {
				t.Fatalf("got %v, want ErrUnauthenticated", err)
			}
		})
	}
	if _, err := ts.Revoke(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Authenticate(ctx, msecret); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("revoked token: %v", err)
	}
	if _, err := ts.Revoke(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoke unknown: %v", err)
	}
	if _, _, err := ts.Issue(ctx, ScopeMerchant, "", ""); err == nil {
		t.Fatal("merchant token without merchant issued")
	}
	if _, _, err := ts.Issue(ctx, ScopeOperator, "acme", ""); err == nil {
		t.Fatal("operator token bound to a merchant issued")
	}
}

func TestRateLimiter(t *testing.T) {
	l := newRateLimiter(10, 3)
	for i := range 3 {
		if _, ok := l.allow(context.Background(), "a"); !ok {
			t.Fatalf("call %d within burst refused", i)
		}
	}
	wait, ok := l.allow(context.Background(), "a")
	if ok || wait <= 0 || wait > 100*time.Millisecond {
		t.Fatalf("4th call: ok %v wait %v", ok, wait)
	}
	if _, ok := l.allow(context.Background(), "b"); !ok {
		t.Fatal("another key shares the bucket")
	}
	time.Sleep(wait + 10*time.Millisecond)
	if _, ok := l.allow(context.Background(), "a"); !ok {
		t.Fatal("bucket did not refill")
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8444": true, "[::1]:8444": true, "localhost:1": true,
		"0.0.0.0:8444": false, ":8444": false, "10.0.0.1:8444": false, "garbage": false,
	} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v", addr, got)
		}
	}
}

func TestViewKeyWarnings(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		expires time.Time
		state   keystore.State
		want    string
	}{
		{"far", now.AddDate(0, 0, 200), keystore.StatePrimary, ""},
		{"30 days", now.AddDate(0, 0, 30).Add(time.Hour), keystore.StateActive, ""},
		{"29 days", now.AddDate(0, 0, 29).Add(time.Hour), keystore.StateActive, "warning"},
		{"6 days", now.AddDate(0, 0, 6), keystore.StatePrimary, "critical"},
		{"expired", now.Add(-time.Hour), keystore.StateRetiring, "expired"},
		{"disabled keys do not warn", now.AddDate(0, 0, 3), keystore.StateDisabled, ""},
		{"never expires", time.Time{}, keystore.StatePrimary, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := ViewKey(keystore.KeyInfo{ID: "k", State: tc.state, Expires: tc.expires}, now)
			if v.Warning != tc.want {
				t.Fatalf("warning %q, want %q", v.Warning, tc.want)
			}
			if tc.expires.IsZero() != (v.DaysToExpiry == nil) {
				t.Fatalf("days to expiry %v for expiry %v", v.DaysToExpiry, tc.expires)
			}
		})
	}
}

func TestTokenNames(t *testing.T) {
	ts := openTokens(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"ci deploy bot", true},
		{"Tōkyō オペレーター", true},
		{strings.Repeat("n", MaxTokenNameBytes), true},
		{strings.Repeat("n", MaxTokenNameBytes+1), false},
		{"ops\nFAKE audit line", false},
		{"bell\a", false},
		{"bad \xff utf-8", false},
	} {
		_, _, err := ts.Issue(ctx, ScopeOperator, "", tc.name)
		if tc.ok != (err == nil) || (!tc.ok && !errors.Is(err, ErrInvalid)) {
			t.Errorf("name %q: %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
	list, err := ts.List(ctx)
	if err != nil || len(list) != 3 {
		t.Fatalf("%d tokens stored (%v), want only the 3 valid ones", len(list), err)
	}
}

// TestUploadSlots: at most one upload per merchant and max on the host,
// taken without waiting; a released slot is free again.
func TestUploadSlots(t *testing.T) {
	u := newUploadSlots(2)
	relA, ok := u.acquire("a")
	if !ok {
		t.Fatal("first upload of a refused")
	}
	steps := []struct {
		merchant string
		want     bool
	}{
		{"a", false}, // one per merchant
		{"b", true},
		{"c", false}, // two on the host
	}
	var releases []func()
	for _, s := range steps {
		rel, ok := u.acquire(s.merchant)
		if ok != s.want {
			t.Fatalf("acquire(%s) = %v, want %v", s.merchant, ok, s.want)
		}
		if ok {
			releases = append(releases, rel)
		}
	}
	relA()
	if rel, ok := u.acquire("c"); !ok {
		t.Fatal("a released slot is not free")
	} else {
		rel()
	}
	if rel, ok := u.acquire("a"); !ok {
		t.Fatal("a's own slot is not free after release")
	} else {
		rel()
	}
	for _, rel := range releases {
		rel()
	}
	if len(u.active) != 0 {
		t.Fatalf("slots left taken: %v", u.active)
	}
}

// TestRollbackTarget: the version active before the active one (marked),
// else, without that history, the version uploaded just before it.
func TestRollbackTarget(t *testing.T) {
	vs := []PluginVersion{{Version: "a"}, {Version: "b"}, {Version: "c"}}
	for active, want := range map[string]string{"c": "b", "b": "a", "a": "", "": "", "gone": ""} {
		if got := RollbackTarget(vs, active); got != want {
			t.Errorf("upload order: RollbackTarget(%q) = %q, want %q", active, got, want)
		}
	}
	vs[2].RollbackTarget = true // c was active before
	for active, want := range map[string]string{"a": "c", "b": "c", "c": "b"} {
		if got := RollbackTarget(vs, active); got != want {
			t.Errorf("history: RollbackTarget(%q) = %q, want %q", active, got, want)
		}
	}
}

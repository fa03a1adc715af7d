package keystore

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"database/sql"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/otpcgate/otpcgate/internal/db"
	"github.com/otpcgate/otpcgate/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestPostgres runs every test of this package again on PostgreSQL.
func TestPostgres(t *testing.T) { pgtest.RunOnPostgres(t) }

// Test keys are generated once per test binary: RSA generation dominates
// the run time otherwise. They are TEST-ONLY and never leave t.TempDir().
var (
	fixturesOnce sync.Once
	fixtures     struct {
		pgp []*material // RSA-2048 OpenPGP self keys (unencrypted secret)
		jwk []*rsa.PrivateKey
	}
)

func testFixtures(t testing.TB) {
	t.Helper()
	fixturesOnce.Do(func() {
		for range 3 {
			m, err := generatePGP(GenerateOptions{Algorithm: AlgRSA, Bits: 2048, Lifetime: DefaultLifetime, Name: "fixture", Now: time.Now})
			if err != nil {
				panic(err)
			}
			fixtures.pgp = append(fixtures.pgp, m)
		}
		for range 3 {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			fixtures.jwk = append(fixtures.jwk, k)
		}
	})
}

// pgpSecret returns fixture i as a binary secret key, pgpPublic as a binary
// public key.
func pgpSecret(t testing.TB, i int) []byte { testFixtures(t); return fixtures.pgp[i].private }
func pgpPublic(t testing.TB, i int) []byte { testFixtures(t); return fixtures.pgp[i].public }
func pgpID(t testing.TB, i int) string     { testFixtures(t); return fixtures.pgp[i].id }

// jwkJSON returns fixture i as a private (self) or public (peer) JWK.
func jwkJSON(t testing.TB, i int, private bool, kid, use string) []byte {
	t.Helper()
	testFixtures(t)
	k := jose.JSONWebKey{Key: fixtures.jwk[i], KeyID: kid, Use: use}
	if !private {
		k = k.Public()
	}
	b, err := k.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func armorBytes(t testing.TB, typ string, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, typ, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func entityOf(t testing.TB, data []byte) *openpgp.Entity {
	t.Helper()
	el, err := readPGP(data)
	if err != nil {
		t.Fatal(err)
	}
	return el[0]
}

type testEnv struct {
	ctx  context.Context
	path string
	db   *sql.DB
	kek  *KEK
	s    *Store
}

func newTestStore(t testing.TB) *testEnv {
	t.Helper()
	ctx := context.Background()
	path := pgtest.Target(t, filepath.Join(t.TempDir(), "keystore.db"))
	d, err := db.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	kek, err := GenerateKEK()
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, d, kek)
	if err != nil {
		t.Fatal(err)
	}
	s.SetLogger(slog.New(slog.DiscardHandler))
	return &testEnv{ctx: ctx, path: path, db: d, kek: kek, s: s}
}

// reopen opens a second connection pool and Store on the same file, as
// another process would.
func (e *testEnv) reopen(t testing.TB, kek *KEK) (*Store, error) {
	t.Helper()
	d, err := db.Open(e.ctx, e.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	s, err := Open(e.ctx, d, kek)
	if s != nil {
		s.SetLogger(slog.New(slog.DiscardHandler))
	}
	return s, err
}

func (e *testEnv) keyset(t testing.TB, kind Kind) string {
	t.Helper()
	ki, err := e.s.CreateKeyset(e.ctx, "test", "merchant-"+string(kind)+"-"+time.Now().Format("150405.000000000"), kind, EnvSandbox)
	if err != nil {
		t.Fatal(err)
	}
	return ki.ID
}

func (e *testEnv) mustImport(t testing.TB, ks string, owner Owner, data []byte, opts ImportOptions) []KeyInfo {
	t.Helper()
	out, err := e.s.Import(e.ctx, "test", ks, owner, data, opts)
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	return out
}

func (e *testEnv) mustSet(t testing.TB, ks, id string, st State) {
	t.Helper()
	if err := e.s.SetState(e.ctx, "test", ks, id, st); err != nil {
		t.Fatalf("%s → %s: %v", id, st, err)
	}
}

func jsonFields(t testing.TB, b []byte) []map[string]any {
	t.Helper()
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		t.Fatal(err)
	}
	return set.Keys
}

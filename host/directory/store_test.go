package directory

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/host/ledger"
	"github.com/otpcgate/otpcgate/internal/db"
	"github.com/otpcgate/otpcgate/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestPostgres runs this package's tests again on a throwaway PostgreSQL.
func TestPostgres(t *testing.T) { pgtest.RunOnPostgres(t) }

func openStore(t *testing.T) (*Store, context.Context) {
	t.Helper()
	ctx := context.Background()
	d, err := db.Open(ctx, pgtest.Target(t, filepath.Join(t.TempDir(), "directory.db")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	s, err := Open(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	// Opening again applies nothing twice.
	if _, err := Open(ctx, d); err != nil {
		t.Fatalf("second Open: %v", err)
	}
	return s, ctx
}

func TestIntegrations(t *testing.T) {
	s, ctx := openStore(t)
	if _, err := s.Integration(ctx, "m1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown merchant: %v, want ErrNotFound", err)
	}
	in := Integration{MerchantID: "m1", BasePath: "/m1/", Envelope: "pgp", KeysetID: "ks1"}
	if err := s.PutIntegration(ctx, in); err != nil {
		t.Fatal(err)
	}
	got, err := s.Integration(ctx, "m1")
	if err != nil || got.BasePath != "/m1" || got.Envelope != "pgp" || got.KeysetID != "ks1" {
		t.Fatalf("stored %+v (%v); the base path is kept normalised", got, err)
	}
	in.Envelope, in.GoogleEndpoint = "jose", "https://google.example/x"
	if err := s.PutIntegration(ctx, in); err != nil {
		t.Fatalf("replace: %v", err)
	}
	if err := s.PutIntegration(ctx, Integration{MerchantID: "m2", BasePath: "/m1", Envelope: "pgp", KeysetID: "ks2"}); err == nil {
		t.Fatal("a second merchant took m1's base path")
	}
	if err := s.PutIntegration(ctx, Integration{MerchantID: "m2", BasePath: "/m2", Envelope: "pgp", KeysetID: "ks2"}); err != nil {
		t.Fatal(err)
	}
	all, err := s.Integrations(ctx)
	if err != nil || len(all) != 2 || all[0].MerchantID != "m1" || all[0].Envelope != "jose" || all[0].GoogleEndpoint != "https://google.example/x" {
		t.Fatalf("Integrations = %+v, %v", all, err)
	}
}

func TestPluginVersions(t *testing.T) {
	s, ctx := openStore(t)
	v1, err := s.AddPluginVersion(ctx, PluginVersion{MerchantID: "m1", Version: "v1", Wasm: []byte("one")})
	if err != nil || len(v1.SHA256) != 64 || string(v1.Config) != "{}" {
		t.Fatalf("add v1: %+v %v", v1, err)
	}
	if _, err := s.AddPluginVersion(ctx, PluginVersion{MerchantID: "m1", Version: "v1", Wasm: []byte("one")}); err != nil {
		t.Fatalf("the same bytes again: %v", err)
	}
	if _, err := s.AddPluginVersion(ctx, PluginVersion{MerchantID: "m1", Version: "v1", Wasm: []byte("changed")}); !errors.Is(err, ErrImmutable) {
		t.Fatalf("other bytes under v1: %v, want ErrImmutable", err)
	}
	if _, err := s.AddPluginVersion(ctx, PluginVersion{MerchantID: "m1", Version: "v2", Wasm: []byte("two"), SHA256: v1.SHA256}); err == nil {
		t.Fatal("a wrong expected sha256 was accepted")
	}
	for _, v := range []string{"v2", "v3"} {
		if _, err := s.AddPluginVersion(ctx, PluginVersion{MerchantID: "m1", Version: v, Wasm: []byte(v), Config: []byte(`{"a":1}`)}); err != nil {
			t.Fatal(err)
		}
	}
	vs, err := s.PluginVersions(ctx, "m1")
	if err != nil || len(vs) != 3 || vs[0].Version != "v1" || vs[0].Size != 3 {
		t.Fatalf("PluginVersions = %+v, %v", vs, err)
	}
	pv, err := s.PluginVersion(ctx, "m1", "v3")
	if err != nil || !bytes.Equal(pv.Wasm, []byte("v3")) || string(pv.Config) != `{"a":1}` {
		t.Fatalf("PluginVersion = %+v, %v", pv, err)
	}
	if _, err := s.PluginVersion(ctx, "m2", "v3"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another merchant's version: %v, want ErrNotFound", err)
	}

	// Activation history, not upload order, names the previous version.
	if _, err := s.ActivePluginVersion(ctx, "m1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("nothing active yet: %v", err)
	}
	steps := []struct{ activate, active, previous string }{
		{"v3", "v3", ""},
		{"v1", "v1", "v3"},
		{"v1", "v1", "v3"}, // activating the active version again keeps the history
		{"v2", "v2", "v1"},
	}
	for _, st := range steps {
		if err := s.ActivatePluginVersion(ctx, "m1", st.activate); err != nil {
			t.Fatal(err)
		}
		active, err := s.ActivePluginVersion(ctx, "m1")
		prev, perr := s.PreviousPluginVersion(ctx, "m1")
		if err != nil || perr != nil || active.Version != st.active || prev != st.previous {
			t.Fatalf("after activating %s: active %q previous %q (%v, %v), want %q and %q",
				st.activate, active.Version, prev, err, perr, st.active, st.previous)
		}
	}
	if err := s.ActivatePluginVersion(ctx, "m1", "v9"); err == nil {
		t.Fatal("an unknown version was activated")
	}
}

// TestDeletePluginVersion: a version in use (active, shadow or canary) is
// refused with the reason; the previous version may go, and then is no
// longer offered as the rollback target.
func TestDeletePluginVersion(t *testing.T) {
	s, ctx := openStore(t)
	for _, v := range []string{"v1", "v2", "shadow", "canary"} {
		if _, err := s.AddPluginVersion(ctx, PluginVersion{MerchantID: "m1", Version: v, Wasm: []byte(v)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range []string{"v1", "v2"} {
		if err := s.ActivatePluginVersion(ctx, "m1", v); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetShadow(ctx, Shadow{MerchantID: "m1", Version: "shadow", Sample: 0.5, Started: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetCanary(ctx, Canary{MerchantID: "m1", Version: "canary", Fraction: 0.1, MaxFailures: 3, MaxLatency: time.Second, Started: time.Now()}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		version string
		want    error
		reason  string
	}{
		{"v2", ErrActiveVersion, ""},
		{"shadow", ErrActiveVersion, "shadow"},
		{"canary", ErrActiveVersion, "canary"},
		{"nope", ErrNotFound, ""},
	}
	for _, tc := range tests {
		err := s.DeletePluginVersion(ctx, "m1", tc.version)
		if !errors.Is(err, tc.want) || !bytes.Contains([]byte(err.Error()), []byte(tc.reason)) {
			t.Errorf("delete %s: %v, want %v mentioning %q", tc.version, err, tc.want, tc.reason)
		}
	}
	sh, err := s.Shadows(ctx)
	if err != nil || sh["m1"].Version != "shadow" || sh["m1"].Sample != 0.5 {
		t.Fatalf("Shadows = %+v, %v", sh, err)
	}
	cs, err := s.Canaries(ctx)
	if c := cs["m1"]; err != nil || c.Version != "canary" || c.Fraction != 0.1 || c.MaxFailures != 3 || c.MaxLatency != time.Second {
		t.Fatalf("Canaries = %+v, %v", cs, err)
	}
	if err := s.DeletePluginVersion(ctx, "m1", "v1"); err != nil {
		t.Fatalf("delete the previous version: %v", err)
	}
	if prev, err := s.PreviousPluginVersion(ctx, "m1"); err != nil || prev != "" {
		t.Fatalf("previous after its deletion: %q, %v", prev, err)
	}
	// Ended candidates may go.
	if err := s.SetShadow(ctx, Shadow{MerchantID: "m1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetCanary(ctx, Canary{MerchantID: "m1"}); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"shadow", "canary"} {
		if err := s.DeletePluginVersion(ctx, "m1", v); err != nil {
			t.Fatalf("delete the ended %s: %v", v, err)
		}
	}
}

// TestRecordings: recordings are kept only while a merchant records, at
// most Max per merchant (the oldest go), and never past the retention.
func TestRecordings(t *testing.T) {
	s, ctx := openStore(t)
	now := time.Now()
	if err := s.SetRecording(ctx, "m1", &RecordingSettings{Until: now.Add(time.Hour), Retention: time.Hour, Max: 3}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRecording(ctx, "m2", &RecordingSettings{Until: now.Add(time.Hour), Retention: time.Minute, Max: 10}); err != nil {
		t.Fatal(err)
	}
	var recs []NewRecording
	for i := range 5 {
		recs = append(recs, NewRecording{MerchantID: "m1", Version: "v1", Op: 1, At: now, Sealed: []byte{byte(i)}})
	}
	recs = append(recs,
		NewRecording{MerchantID: "m2", Version: "v1", Op: 1, At: now.Add(-2 * time.Minute), Sealed: []byte("old")},
		NewRecording{MerchantID: "m2", Version: "v1", Op: 2, At: now, Sealed: []byte("new")},
		NewRecording{MerchantID: "m3", Version: "v1", Op: 1, At: now, Sealed: []byte("not recording")})
	if err := s.AddRecordings(ctx, recs); err != nil {
		t.Fatal(err)
	}
	got, err := s.Recordings(ctx, "m1", 100)
	if err != nil || len(got) != 3 || got[0].Sealed[0] != 2 || got[2].Sealed[0] != 4 || got[0].ID >= got[1].ID {
		t.Fatalf("m1 keeps its newest 3: %+v, %v", got, err)
	}
	if got, err := s.Recordings(ctx, "m1", 2); err != nil || len(got) != 2 {
		t.Fatalf("limit 2: %d, %v", len(got), err)
	}
	if got, err := s.Recordings(ctx, "m2", 100); err != nil || len(got) != 1 || string(got[0].Sealed) != "new" {
		t.Fatalf("m2 keeps what is within its retention: %+v, %v", got, err)
	}
	for id, want := range map[string]int64{"m1": 3, "m2": 1, "m3": 0} {
		if n, err := s.RecordingCount(ctx, id); err != nil || n != want {
			t.Errorf("RecordingCount(%s) = %d, %v, want %d", id, n, err, want)
		}
	}
	if err := s.SetRecording(ctx, "m1", nil); err != nil {
		t.Fatal(err)
	}
	st, err := s.RecordingSettings(ctx)
	if _, on := st["m1"]; err != nil || on || st["m2"].Max != 10 || st["m2"].Retention != time.Minute {
		t.Fatalf("settings after m1 stopped: %+v, %v", st, err)
	}
	if err := s.AddRecordings(ctx, []NewRecording{{MerchantID: "m1", Version: "v1", At: now, Sealed: []byte("late")}}); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.RecordingCount(ctx, "m1"); n != 3 {
		t.Fatalf("a stopped merchant's recording was stored: %d", n)
	}
}

// TestDeleteMerchant removes every row of one merchant and nothing of
// another, through the caller's transaction.
func TestDeleteMerchant(t *testing.T) {
	s, ctx := openStore(t)
	for _, m := range []string{"m1", "m2"} {
		if err := s.PutIntegration(ctx, Integration{MerchantID: m, BasePath: "/" + m, Envelope: "pgp", KeysetID: "ks-" + m}); err != nil {
			t.Fatal(err)
		}
		for _, v := range []string{"v1", "v2"} {
			if _, err := s.AddPluginVersion(ctx, PluginVersion{MerchantID: m, Version: v, Wasm: []byte(v)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.ActivatePluginVersion(ctx, m, "v1"); err != nil {
			t.Fatal(err)
		}
		if err := s.SetShadow(ctx, Shadow{MerchantID: m, Version: "v2", Sample: 1, Started: time.Now()}); err != nil {
			t.Fatal(err)
		}
		if err := s.SetRecording(ctx, m, &RecordingSettings{Until: time.Now().Add(time.Hour), Retention: time.Hour, Max: 5}); err != nil {
			t.Fatal(err)
		}
		if err := s.AddRecordings(ctx, []NewRecording{{MerchantID: m, Version: "v1", At: time.Now(), Sealed: []byte("x")}}); err != nil {
			t.Fatal(err)
		}
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	exec := func(q string, args ...any) (int64, error) {
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return 0, err
		}
		return res.RowsAffected()
	}
	if err := s.DeleteMerchant(exec, "m1"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Integration(ctx, "m1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("m1's integration: %v", err)
	}
	if vs, _ := s.PluginVersions(ctx, "m1"); len(vs) != 0 {
		t.Fatalf("m1's versions remain: %+v", vs)
	}
	if n, _ := s.RecordingCount(ctx, "m1"); n != 0 {
		t.Fatalf("m1's recordings remain: %d", n)
	}
	sh, _ := s.Shadows(ctx)
	st, _ := s.RecordingSettings(ctx)
	if _, ok := sh["m1"]; ok || sh["m2"].Version != "v2" {
		t.Fatalf("shadows after delete: %+v", sh)
	}
	if _, ok := st["m1"]; ok {
		t.Fatalf("m1 still records: %+v", st)
	}
	if _, err := s.Integration(ctx, "m2"); err != nil {
		t.Fatalf("m2 was touched: %v", err)
	}
	if active, err := s.ActivePluginVersion(ctx, "m2"); err != nil || active.Version != "v1" {
		t.Fatalf("m2's active version: %+v %v", active, err)
	}
	if n, _ := s.RecordingCount(ctx, "m2"); n != 1 {
		t.Fatalf("m2's recordings: %d", n)
	}
}

// TestSnapshot reads merchants from a real ledger beside their
// integrations: a merchant without an integration is not served, one
// without a ledger row is an error, and lookups by id and base path agree.
func TestSnapshot(t *testing.T) {
	ctx := context.Background()
	target := pgtest.Target(t, filepath.Join(t.TempDir(), "gateway.db"))
	l, err := ledger.Open(ctx, target, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	s, err := Open(ctx, l.DB())
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Apply(ctx, func(tx *ledger.Tx) error {
		for _, m := range []ledger.Merchant{{ID: "m1", Name: "One"}, {ID: "m2", Name: "Two"}, {ID: "bare"}} {
			if err := tx.CreateMerchant(m); err != nil {
				return err
			}
		}
		for piaid, m := range map[string]string{"p-b": "m1", "p-a": "m1", "p-c": "m2"} {
			if err := tx.AddPIAID(piaid, m); err != nil {
				return err
			}
		}
		return tx.SetMerchantStatus("m2", ledger.MerchantDisabled)
	}); err != nil {
		t.Fatal(err)
	}
	var pub Published
	if _, ok := pub.Load().Merchant("m1"); ok {
		t.Fatal("an empty Published found a merchant")
	}
	for _, m := range []string{"m1", "m2"} {
		if err := s.PutIntegration(ctx, Integration{MerchantID: m, BasePath: "/" + m, Envelope: "pgp", KeysetID: "ks-" + m}); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := s.Load(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	pub.Store(snap)
	m1, ok := pub.Load().Merchant("m1")
	if !ok || m1.Name != "One" || m1.Disabled || !slices.Equal(m1.PIAIDs, []string{"p-a", "p-b"}) || m1.Integration.KeysetID != "ks-m1" {
		t.Fatalf("m1 = %+v, %v", m1, ok)
	}
	if !m1.HasPIAID("p-b") || m1.HasPIAID("p-c") {
		t.Fatal("HasPIAID")
	}
	if m2, ok := snap.ByBasePath("/m2"); !ok || m2.ID != "m2" || !m2.Disabled {
		t.Fatalf("by base path /m2: %+v, %v", m2, ok)
	}
	if _, ok := snap.Merchant("bare"); ok {
		t.Fatal("a merchant without an integration is in the snapshot")
	}
	if ms := snap.Merchants(); len(ms) != 2 || ms[0].ID != "m1" || ms[1].ID != "m2" {
		t.Fatalf("Merchants = %+v", ms)
	}
	if err := s.PutIntegration(ctx, Integration{MerchantID: "ghost", BasePath: "/ghost", Envelope: "pgp", KeysetID: "ks"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(ctx, l); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("an integration without a merchant: %v, want ledger.ErrNotFound", err)
	}
}

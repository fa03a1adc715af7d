package deploy_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/otpcgate/otpcgate/host/admin"
	"github.com/otpcgate/otpcgate/host/deploy"
	"github.com/otpcgate/otpcgate/host/devenv"
	"github.com/otpcgate/otpcgate/host/directory"
	"github.com/otpcgate/otpcgate/host/ledger"
	"github.com/otpcgate/otpcgate/host/plugincall"
	"github.com/otpcgate/otpcgate/host/runtime"
	"github.com/otpcgate/otpcgate/host/runtime/runtimetest"
	"github.com/otpcgate/otpcgate/internal/db"
)

type fixture struct {
	s   *deploy.Service
	dir *directory.Store
	rt  *runtime.Manager
	l   *ledger.Ledger
}

// newFixture runs a Service over real parts for one merchant, m1: a SQLite
// ledger and directory, the wasm runtime and the plugin-call service. Its
// Reload applies the directory as the gateway's does.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	d, err := db.Open(ctx, filepath.Join(t.TempDir(), "deploy.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	f := &fixture{rt: runtimetest.Manager(t, runtime.Options{})}
	if f.l, err = ledger.New(ctx, d, ledger.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.l.Close() })
	if err := f.l.Apply(ctx, func(tx *ledger.Tx) error { return tx.CreateMerchant(ledger.Merchant{ID: "m1"}) }); err != nil {
		t.Fatal(err)
	}
	if f.dir, err = directory.Open(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := f.dir.PutIntegration(ctx, directory.Integration{MerchantID: "m1", BasePath: "/m1", Envelope: "pgp", KeysetID: "ks"}); err != nil {
		t.Fatal(err)
	}
	calls := plugincall.New(plugincall.Config{}, f.rt, f.l)
	t.Cleanup(calls.Close)
	var reloadMu, changes sync.Mutex
	f.s, err = deploy.New(deploy.Config{RecordingKey: make([]byte, 32)}, deploy.Deps{Directory: f.dir, Ledger: f.l, Runtime: f.rt,
		Calls: calls, ReloadLock: &reloadMu, Changes: &changes,
		Reload: func(ctx context.Context) error {
			reloadMu.Lock()
			defer reloadMu.Unlock()
			return f.s.EnsureActive(ctx, "m1")
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.s.Close)
	return f
}

func (f *fixture) loaded() []string {
	var out []string
	for _, v := range f.rt.Versions("m1") {
		out = append(out, v.Version)
	}
	return out
}

// TestUploadActivateTrim: a module that is not wasm, or whose warm-up
// fails, is refused and nothing is stored; activation keeps loaded only
// the active version and its rollback target; the active version cannot
// be deleted.
func TestUploadActivateTrim(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	wasm := runtimetest.Build(t, "../../plugins/konbini")
	for _, tc := range []struct {
		name string
		up   admin.PluginUpload
	}{
		{"not wasm", admin.PluginUpload{Version: "x", Wasm: []byte("#!/bin/sh")}},
		{"wrong sha256", admin.PluginUpload{Version: "x", Wasm: wasm, SHA256: strings.Repeat("0", 64)}},
		{"configuration its warm-up refuses", admin.PluginUpload{Version: "x", Wasm: wasm, Config: []byte(`{"codeLength": 2}`)}},
	} {
		if _, err := f.s.UploadPlugin(ctx, "m1", tc.up); !errors.Is(err, admin.ErrPluginRefused) {
			t.Fatalf("%s: %v, want ErrPluginRefused", tc.name, err)
		}
	}
	if vs, _ := f.dir.PluginVersions(ctx, "m1"); len(vs) != 0 || len(f.loaded()) != 0 {
		t.Fatalf("refused uploads left %d stored, %v loaded", len(vs), f.loaded())
	}
	for _, v := range []string{"v1", "v2", "v3"} {
		pv, err := f.s.UploadPlugin(ctx, "m1", admin.PluginUpload{Version: v, Wasm: wasm, Config: devenv.KonbiniConfig, Activate: true})
		if err != nil || !pv.Active || len(pv.Ops) == 0 {
			t.Fatalf("upload %s: %+v %v", v, pv, err)
		}
	}
	if got := f.loaded(); len(got) != 2 || !slices.Contains(got, "v3") || !slices.Contains(got, "v2") {
		t.Fatalf("loaded %v, want the active v3 and its rollback target v2", got)
	}
	vs, err := f.s.PluginVersions(ctx, "m1")
	if err != nil || len(vs) != 3 || vs[1].Version != "v2" || !vs[1].RollbackTarget || !vs[2].Active {
		t.Fatalf("versions %+v %v", vs, err)
	}
	if _, err := f.s.DeletePlugin(ctx, "m1", "v3"); !errors.Is(err, admin.ErrConflict) {
		t.Fatalf("delete the active version: %v, want ErrConflict", err)
	}
	if _, err := f.s.ActivatePlugin(ctx, "m1", "v1"); err != nil {
		t.Fatalf("roll back to the unloaded v1: %v", err)
	}
	if got := f.loaded(); len(got) != 2 || !slices.Contains(got, "v1") || !slices.Contains(got, "v3") {
		t.Fatalf("after activating v1: loaded %v, want v1 and v3", got)
	}
	if active, err := f.dir.ActivePluginVersion(ctx, "m1"); err != nil || active.Version != "v1" {
		t.Fatalf("directory's active version %q %v", active.Version, err)
	}
}

// TestQuarantine: an active version that fails to load leaves the merchant
// on the version it runs, audited once; activating a version ends it.
func TestQuarantine(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	wasm := runtimetest.Build(t, "../../plugins/konbini")
	if _, err := f.s.UploadPlugin(ctx, "m1", admin.PluginUpload{Version: "good", Wasm: wasm, Config: devenv.KonbiniConfig, Activate: true}); err != nil {
		t.Fatal(err)
	}
	// A version whose warm-up fails, stored and activated behind the
	// service's back (as a restore or another build might).
	bomb := runtimetest.Build(t, "../../testdata/plugins/timebomb")
	if _, err := f.dir.AddPluginVersion(ctx, directory.PluginVersion{MerchantID: "m1", Version: "bomb", Wasm: bomb,
		Config: []byte(`{"explode_after_ms": 1}`)}); err != nil {
		t.Fatal(err)
	}
	if err := f.dir.ActivatePluginVersion(ctx, "m1", "bomb"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := f.s.EnsureActive(ctx, "m1"); err != nil {
			t.Fatalf("a version that fails to load is not an error: %v", err)
		}
	}
	q := f.s.Quarantined()
	if len(q) != 1 || q[0].Merchant != "m1" || q[0].Version != "bomb" || q[0].Fallback != "good" {
		t.Fatalf("quarantine %+v", q)
	}
	if cur, ok := f.rt.Active("m1"); !ok || cur.Version != "good" {
		t.Fatalf("runtime runs %+v, want the fallback", cur)
	}
	audit, err := f.l.AuditLog(ctx, ledger.AuditQuery{})
	n := 0
	for _, a := range audit {
		if a.Action == "plugin.quarantine" {
			n++
		}
	}
	if err != nil || n != 1 {
		t.Fatalf("%d quarantine audit entries (%v), want 1", n, err)
	}
	if _, err := f.s.ActivatePlugin(ctx, "m1", "good"); err != nil {
		t.Fatal(err)
	}
	if q := f.s.Quarantined(); len(q) != 0 {
		t.Fatalf("quarantine after activating good: %+v", q)
	}
}

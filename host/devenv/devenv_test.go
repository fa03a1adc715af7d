package devenv

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/otpcgate/otpcgate/host/directory"
	"github.com/otpcgate/otpcgate/host/runtime/runtimetest"
	"github.com/otpcgate/otpcgate/internal/db"
	"github.com/otpcgate/otpcgate/keystore"
)

// TestProvision creates an installation once, with its secrets private
// to the owner; a second Provision returns it unchanged, a rebuilt plugin
// becomes active for every demo merchant unless the author activated a
// version of their own, and RecordAdmin and RefreshKeyFiles keep dev.json
// and the key files current.
func TestProvision(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "dev")
	wasm := runtimetest.Build(t, "../../plugins/konbini")
	v1 := Plugin{Version: "v1", Wasm: wasm, Config: KonbiniConfig}
	info, err := Provision(ctx, dir, "127.0.0.1:8443", v1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Merchants) != 2 || info.Merchants[0].Envelope == info.Merchants[1].Envelope {
		t.Fatalf("merchants %+v, want one PGP and one JOSE", info.Merchants)
	}
	for _, m := range info.Merchants {
		if m.Plugin != "v1" || m.MerchantToken == "" || m.DemoToken == "" || m.BaseURL == "" {
			t.Fatalf("merchant %+v", m)
		}
	}
	private := []string{filepath.Join(dir, File), info.KEKFile, info.KeyFile, info.Merchants[0].GooglePrivateKeys, info.Merchants[1].GooglePrivateKeys}
	for _, p := range private {
		st, err := os.Stat(p)
		if err != nil || st.Mode().Perm()&0o077 != 0 {
			t.Fatalf("%s: %v, mode %v; want it private", p, err, st.Mode())
		}
	}
	read, err := Read(dir)
	if err != nil || !reflect.DeepEqual(read, info) {
		t.Fatalf("Read = %+v, %v; want what Provision returned", read, err)
	}
	again, err := Provision(ctx, dir, "127.0.0.1:9999", v1, nil)
	if err != nil || !reflect.DeepEqual(again, info) {
		t.Fatalf("second Provision changed the installation: %+v, %v", again, err)
	}

	// The author activates a version of their own for demo-jose; a rebuilt
	// dev plugin is stored for it but activated only for demo-pgp.
	d, err := db.Open(ctx, info.DBPath)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	dirs, err := directory.Open(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dirs.AddPluginVersion(ctx, directory.PluginVersion{MerchantID: "demo-jose", Version: "mine", Wasm: wasm, Config: KonbiniConfig}); err != nil {
		t.Fatal(err)
	}
	if err := dirs.ActivatePluginVersion(ctx, "demo-jose", "mine"); err != nil {
		t.Fatal(err)
	}
	v2 := Plugin{Version: "v2", Wasm: wasm, Config: KonbiniConfig}
	if _, err := Provision(ctx, dir, "", v2, nil); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{"demo-pgp": "v2", "demo-jose": "mine"} {
		active, err := dirs.ActivePluginVersion(ctx, id)
		if err != nil || active.Version != want {
			t.Fatalf("%s runs %q (%v), want %q", id, active.Version, err, want)
		}
		if _, err := dirs.PluginVersion(ctx, id, "v2"); err != nil {
			t.Fatalf("%s: the rebuilt plugin is not stored: %v", id, err)
		}
	}

	info, err = RecordAdmin(dir, "127.0.0.1:9444")
	if err != nil || info.AdminURL != "http://127.0.0.1:9444" {
		t.Fatalf("RecordAdmin: %+v %v", info, err)
	}
	if read, _ := Read(dir); read.AdminURL != info.AdminURL {
		t.Fatalf("dev.json has admin URL %q", read.AdminURL)
	}

	// A rotated primary key reaches the key files.
	kek, err := keystore.ReadKEKFile(info.KEKFile)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := keystore.Open(ctx, d, kek)
	if err != nil {
		t.Fatal(err)
	}
	m := info.Merchants[1]
	before, err := os.ReadFile(m.OurPublicKeys)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewPrimaryKey(ctx, ks, m.KeysetID, "rotated"); err != nil {
		t.Fatal(err)
	}
	if err := RefreshKeyFiles(ctx, info, ks); err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(m.OurPublicKeys)
	if err != nil || string(after) == string(before) {
		t.Fatalf("our public key file after a rotation: unchanged=%v %v", string(after) == string(before), err)
	}
}

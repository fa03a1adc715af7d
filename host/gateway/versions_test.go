package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/otpcgate/otpcgate/host/admin"
	"github.com/otpcgate/otpcgate/host/directory"
	"github.com/otpcgate/otpcgate/host/runtime"
	"github.com/otpcgate/otpcgate/internal/testenv"
)

// TestPluginVersionsBounded: only the active version and its rollback
// target stay loaded whatever is uploaded; stored versions are capped per
// merchant (409 with the next step) and can be deleted, never the active
// one; a version unloaded meanwhile is compiled again when activated and
// serves traffic.
func TestPluginVersionsBounded(t *testing.T) {
	wasm := konbini(t).Wasm
	const maxVersions = 4
	a := newAdminEnv(t, admin.Config{MaxPluginBytes: len(wasm) + 1024, MaxPluginVersions: maxVersions})
	ctx := context.Background()
	op := a.client(a.operator)
	path := admin.MerchantPath("demo-pgp", "plugins")
	list := func() []admin.PluginVersion { return a.pluginVersions(t, "demo-pgp") }
	// checkLoaded: the active version is loaded, and nothing but it and
	// its rollback target (admin.RollbackTarget).
	checkLoaded := func(step string) {
		t.Helper()
		vs := list()
		i := slices.IndexFunc(vs, func(v admin.PluginVersion) bool { return v.Active })
		if i < 0 || !vs[i].Loaded {
			t.Fatalf("%s: active version not loaded: %+v", step, vs)
		}
		target := admin.RollbackTarget(vs, vs[i].Version)
		for j, v := range vs {
			if v.Loaded && j != i && v.Version != target {
				t.Fatalf("%s: version %s is loaded, neither active (%s) nor its rollback target", step, v.Version, vs[i].Version)
			}
		}
		if n := len(a.g.Plugins.Versions("demo-pgp")); n > 2 {
			t.Fatalf("%s: %d versions loaded in the runtime", step, n)
		}
	}
	upload := func(version string, activate bool) error {
		cfg := strings.Replace(string(konbiniConfig), `"prefix": "81"`, `"prefix": "8`+version[1:]+`"`, 1)
		return op.Do(ctx, http.MethodPost, path, admin.PluginUpload{Version: version, Wasm: wasm, Config: []byte(cfg), Activate: activate}, nil)
	}
	generate := func() string {
		t.Helper()
		_, resp := a.env.generate(a.pgp, 1_000_000_000)
		return printable(resp.Result.Success.DisplayableReferenceNumber)
	}

	checkLoaded("start")
	for _, v := range []string{"v2", "v3", "v4"} { // konbini-test is the first of 4
		if err := upload(v, false); err != nil {
			t.Fatalf("upload %s: %v", v, err)
		}
		checkLoaded("upload " + v)
	}
	err := upload("v5", false)
	if got := status(err); got != http.StatusConflict || !strings.Contains(err.Error(), "plugins delete") {
		t.Fatalf("upload over the cap of %d: %d %v, want 409 naming `plugins delete`", maxVersions, got, err)
	}
	if got := status(op.Do(ctx, http.MethodDelete, path+"/konbini-test", nil, nil)); got != http.StatusConflict {
		t.Fatalf("delete the active version: %d, want 409", got)
	}
	if got := status(op.Do(ctx, http.MethodDelete, path+"/nope", nil, nil)); got != http.StatusNotFound {
		t.Fatalf("delete an unknown version: %d, want 404", got)
	}
	var deleted admin.PluginVersion
	if err := op.Do(ctx, http.MethodDelete, path+"/v4", nil, &deleted); err != nil || deleted.Version != "v4" {
		t.Fatalf("delete v4: %v %+v", err, deleted)
	}
	if err := upload("v5", true); err != nil {
		t.Fatalf("upload after a delete: %v", err)
	}
	checkLoaded("activate v5")
	if p := generate(); !strings.HasPrefix(p, "85") {
		t.Fatalf("v5 answered with %q", p)
	}
	// v3 was unloaded at its upload: activating it compiles it again.
	if err := op.Do(ctx, http.MethodPost, path+"/v3/activate", nil, nil); err != nil {
		t.Fatal(err)
	}
	checkLoaded("activate v3")
	if p := generate(); !strings.HasPrefix(p, "83") {
		t.Fatalf("v3 answered with %q", p)
	}
	// A rollback follows activation history, not upload order: back to v5,
	// active before v3; a second one undoes the first.
	for i, want := range []string{"85", "83"} {
		if err := op.Do(ctx, http.MethodPost, path+"/rollback", nil, nil); err != nil {
			t.Fatal(err)
		}
		checkLoaded("rollback")
		if p := generate(); !strings.HasPrefix(p, want) {
			t.Fatalf("after rollback %d: %q, want the %s… version", i+1, p, want)
		}
	}
	// After `rollback --to v2`, a plain rollback goes back to v3.
	if err := op.Do(ctx, http.MethodPost, path+"/rollback", map[string]string{"version": "v2"}, nil); err != nil {
		t.Fatal(err)
	}
	checkLoaded("rollback --to v2")
	if p := generate(); !strings.HasPrefix(p, "82") {
		t.Fatalf("after rollback --to v2: %q", p)
	}
	if err := op.Do(ctx, http.MethodPost, path+"/rollback", nil, nil); err != nil {
		t.Fatalf("a plain rollback after rollback --to: %v", err)
	}
	if p := generate(); !strings.HasPrefix(p, "83") {
		t.Fatalf("after rollback --to v2 and a plain rollback: %q, want v3 again", p)
	}
	// A merchant's own cap: demo-jose may store one version, which it has.
	one := admin.Quotas{PluginVersions: 1, LogBytesPerMinute: 2048}
	if err := op.Do(ctx, http.MethodPatch, "/v1/merchants/demo-jose", admin.MerchantUpdate{Quotas: &one}, nil); err != nil {
		t.Fatal(err)
	}
	err = op.Do(ctx, http.MethodPost, admin.MerchantPath("demo-jose", "plugins"), admin.PluginUpload{Version: "j2", Wasm: wasm, Config: konbiniConfig}, nil)
	if got := status(err); got != http.StatusConflict || !strings.Contains(err.Error(), "1 plugin versions") {
		t.Fatalf("upload over demo-jose's own cap of 1: %d %v", got, err)
	}
	// Its own upload size limit and instance memory cap.
	small := admin.Quotas{PluginBytes: 1024, PluginMemoryMiB: 16}
	if err := op.Do(ctx, http.MethodPatch, "/v1/merchants/demo-jose", admin.MerchantUpdate{Quotas: &small}, nil); err != nil {
		t.Fatal(err)
	}
	if got := status(op.Do(ctx, http.MethodPost, admin.MerchantPath("demo-jose", "plugins"),
		admin.PluginUpload{Version: "j3", Wasm: wasm, Config: konbiniConfig}, nil)); got != http.StatusRequestEntityTooLarge {
		t.Fatalf("upload over demo-jose's own size limit: %d, want 413", got)
	}
	spec, err := a.g.Deploy.VersionSpec(ctx, directory.PluginVersion{MerchantID: "demo-jose", Version: "x"})
	if err != nil || spec.Limits.MemoryPages != 16*16 {
		t.Fatalf("demo-jose's versions load with %d pages (%v), want 256", spec.Limits.MemoryPages, err)
	}
	if spec, _ := a.g.Deploy.VersionSpec(ctx, directory.PluginVersion{MerchantID: "demo-pgp", Version: "x"}); spec.Limits.MemoryPages != 0 {
		t.Fatalf("demo-pgp's versions load with %d pages, want the host's", spec.Limits.MemoryPages)
	}
	if err := op.Do(ctx, http.MethodPatch, "/v1/merchants/demo-jose", admin.MerchantUpdate{Quotas: &one}, nil); err != nil {
		t.Fatal(err)
	}
	// Its own log budget reaches the runtime at once (the update reloads).
	if got := a.g.Plugins.LogBudget("demo-jose"); got != 2048 {
		t.Fatalf("demo-jose's log budget in the runtime: %d, want 2048", got)
	}
	if err := op.Do(ctx, http.MethodPatch, "/v1/merchants/demo-jose", admin.MerchantUpdate{Quotas: &admin.Quotas{}}, nil); err != nil {
		t.Fatal(err)
	}
	if got := a.g.Plugins.LogBudget("demo-jose"); got != runtime.DefaultLogBytesPerMinute {
		t.Fatalf("demo-jose's log budget after reset: %d", got)
	}

	var audit []admin.AuditEntry
	if err := op.Do(ctx, http.MethodGet, "/v1/merchants/demo-pgp/events", nil, &audit); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(audit, func(e admin.AuditEntry) bool {
		return e.Action == "plugin.delete" && strings.Contains(string(e.Before), `"v4"`)
	}) {
		t.Fatalf("no plugin.delete audit entry for v4: %v", fmt.Sprint(audit))
	}
}

// TestPluginUploadsBounded: while one upload of a merchant is still
// sending its body, another upload of that merchant is answered 429 with
// Retry-After before its body is read; once the first ends, uploads go on.
func TestPluginUploadsBounded(t *testing.T) {
	a := newAdminEnv(t, admin.Config{})
	ctx := context.Background()
	op := a.client(a.operator)
	path := admin.MerchantPath("demo-pgp", "plugins")

	pr, pw := io.Pipe()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.url+path, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+a.operator)
	req.Header.Set("Content-Type", "application/json")
	done := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- -1
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	if _, err := pw.Write([]byte(`{"version": "slow", "wasm": "`)); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, func() string {
		if n := a.srv.UploadsInProgress(); n != 1 {
			return fmt.Sprintf("%d uploads in progress, want the slow one", n)
		}
		return ""
	})
	err = op.Do(ctx, http.MethodPost, path, admin.PluginUpload{}, nil)
	var ae *admin.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusTooManyRequests || ae.Hint == "" {
		t.Fatalf("a second upload of the merchant: %v, want 429 with a next step", err)
	}
	pw.CloseWithError(io.ErrUnexpectedEOF)
	if got := <-done; got == http.StatusCreated {
		t.Fatalf("the truncated upload was accepted")
	}
	// The client gives up as soon as its body fails; the server ends
	// the request when it reads the truncated body.
	testenv.WaitFor(t, func() string {
		if n := a.srv.UploadsInProgress(); n != 0 {
			return fmt.Sprintf("%d uploads in progress after the slow one ended", n)
		}
		return ""
	})
	if got := status(op.Do(ctx, http.MethodPost, path, admin.PluginUpload{}, nil)); got != http.StatusBadRequest {
		t.Fatalf("after the slow upload ended: %d, want 400 (a slot, then the empty upload refused)", got)
	}
}

// TestUploadFromStoredVersion: a new configuration is the same module
// stored under a new version with `from`, without sending the module again;
// both wasm and from, or an unknown from, are refused and audited.
func TestUploadFromStoredVersion(t *testing.T) {
	a := newAdminEnv(t, admin.Config{})
	ctx := context.Background()
	op := a.client(a.operator)
	path := admin.MerchantPath("demo-pgp", "plugins")
	cfg := bytes.Replace(konbiniConfig, []byte(`"prefix": "81"`), []byte(`"prefix": "84"`), 1)
	var pv admin.PluginVersion
	if err := op.Do(ctx, http.MethodPost, path, admin.PluginUpload{Version: "prefix-84", From: "konbini-test", Config: cfg, Activate: true}, &pv); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(konbini(t).Wasm)
	if !pv.Active || pv.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("from konbini-test: %+v, want it active with the same module", pv)
	}
	_, resp := a.env.generate(a.pgp, 1_000_000_000)
	if p := printable(resp.Result.Success.DisplayableReferenceNumber); !strings.HasPrefix(p, "84") {
		t.Fatalf("the new version's configuration is not in force: %q", p)
	}
	for _, up := range []admin.PluginUpload{{Version: "x1", From: "nope", Config: cfg}, {Version: "x2", From: "konbini-test", Wasm: konbini(t).Wasm}} {
		if got := status(op.Do(ctx, http.MethodPost, path, up, nil)); got != http.StatusBadRequest {
			t.Errorf("upload %+v: %d, want 400", up.Version, got)
		}
	}
}

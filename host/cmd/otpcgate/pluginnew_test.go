package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/otpcgate/otpcgate/host/admin"
	"github.com/otpcgate/otpcgate/host/devenv"
	"github.com/otpcgate/otpcgate/internal/wasmbuild"
)

// newPluginModule runs `otpcgate plugins new acme` into a temp dir outside
// the repository, without --sdk (found above the working directory, as in
// a checkout), and returns the module's directory.
func newPluginModule(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "acme")
	e, out, _ := testEnv(nil)
	root := newRootCmd(e)
	root.SetArgs([]string{"plugins", "new", "acme", "--dir", dir})
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "go test ./...") {
		t.Errorf("no next step printed: %s", out)
	}
	return dir
}

// buildPluginFile builds the plugin module in dir to a .wasm file and
// returns its path.
func buildPluginFile(t *testing.T, dir string) string {
	t.Helper()
	wasm, err := wasmbuild.Build(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "acme.wasm")
	if err := os.WriteFile(f, wasm, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestPluginsNew does what a new plugin author does: `otpcgate plugins new`
// outside the repository, the generated module's own tests, a wasm build,
// a run in the real runtime with `plugins call`, an upload with the
// merchant's token to a live gateway, and `sim smoke` against it.
func TestPluginsNew(t *testing.T) {
	ctx := context.Background()
	dir := newPluginModule(t)
	mod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil || !strings.Contains(string(mod), "require "+sdkModule) || strings.Contains(string(mod), "wazero") {
		t.Fatalf("go.mod %v:\n%s", err, mod)
	}
	// The module stands alone: no workspace, only the sdk as a dependency.
	gotest := exec.CommandContext(ctx, "go", "test", "-count=1", "./...")
	gotest.Dir = dir
	gotest.Env = append(os.Environ(), "GOWORK=off")
	if b, err := gotest.CombinedOutput(); err != nil {
		t.Fatalf("the generated module's tests: %v\n%s", err, b)
	}
	golist := exec.CommandContext(ctx, "go", "list", "-deps", "-f", "{{with .Module}}{{.Path}}{{end}}", ".")
	golist.Dir = dir
	golist.Env = append(os.Environ(), "GOWORK=off", "GOOS=wasip1", "GOARCH=wasm")
	deps, err := golist.Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range strings.Fields(string(deps)) {
		if !strings.HasPrefix(m, "example.com/acme") && !strings.HasPrefix(m, sdkModule) {
			t.Errorf("the plugin depends on %s; a plugin needs the sdk only", m)
		}
	}
	if b, err := exec.CommandContext(ctx, "gofmt", "-l", dir).CombinedOutput(); err != nil || len(b) > 0 {
		t.Errorf("generated code not gofmt-clean: %v %s", err, b)
	}
	wasmFile := buildPluginFile(t, dir)
	configFile := filepath.Join(dir, "config.json")
	for amount, want := range map[string]string{"1500": "ok", "99": "refusal"} {
		e, out, _ := testEnv(nil)
		root := newRootCmd(e)
		root.SetArgs([]string{"plugins", "call", "generate", "--wasm", wasmFile, "--config-file", configFile, "--amount", amount, "--json"})
		if err := root.ExecuteContext(ctx); err != nil {
			t.Fatal(err)
		}
		var r localCall
		if err := json.Unmarshal(out.Bytes(), &r); err != nil || r.Outcome != want {
			t.Fatalf("plugins call generate --amount %s: %v %+v, want %s", amount, err, r, want)
		}
	}

	l := startLiveGateway(t)
	l.writeDevInfo(t)
	for _, m := range l.info.Merchants {
		// Each merchant uploads with its own token (the merchant comes from the token).
		out, stderr, err := l.cli(ctx, m.MerchantToken, nil, "plugins", "upload", "--admin-url", l.adminURL,
			"--file", wasmFile, "--config-file", configFile, "--version", "acme-1", "--activate")
		if err != nil {
			t.Fatalf("upload for %s: %v\n%s", m.ID, err, stderr)
		}
		// The upload says what the plugin handles and what fails without the rest.
		for _, want := range []string{"handles: generate, cancel, refund, paid", "warning: no associate handler: Google's associateAccount"} {
			if !strings.Contains(out, want) {
				t.Errorf("upload output lacks %q:\n%s", want, out)
			}
		}
	}
	smoke, _, err := l.cli(ctx, "", nil, "sim", "smoke", "--data-dir", l.info.DataDir)
	if err != nil || strings.Contains(smoke, "FAIL") || strings.Count(smoke, "PASS") < 6 {
		t.Fatalf("sim smoke against the new plugin: %v\n%s", err, smoke)
	}
	logs, _, err := l.cli(ctx, l.info.Merchants[0].MerchantToken, nil, "plugins", "logs", "--admin-url", l.adminURL)
	if err != nil || !strings.Contains(logs, "acme-1") || !strings.Contains(logs, "issued ") {
		t.Fatalf("the new plugin's log lines: %v\n%s", err, logs)
	}
}

// TestDevWithAuthorsPlugin: `otpcgate dev --plugin DIR` runs a plugin module
// that lives outside the repository with its own config.json; a version the
// author then activates through the admin API stays active when dev
// restarts (dev's build is stored, not activated over it).
func TestDevWithAuthorsPlugin(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin, err := testBinary()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dir := newPluginModule(t)
	dataDir := t.TempDir()
	addr, adminAddr := freeAddr(t), freeAddr(t)
	dev := func() *devProcess {
		return startChild(t, exec.Command(bin, "dev", "--data-dir", dataDir, "--addr", addr, "--admin-addr", adminAddr,
			"--plugin", dir, "--log-level", "info"), addr)
	}
	proc := dev()
	info, err := devenv.Read(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	m := info.Merchants[0]
	if !strings.HasPrefix(m.Plugin, "acme-") {
		t.Fatalf("dev's plugin version %q, want it named after the author's directory", m.Plugin)
	}
	cli := func(args ...string) string {
		t.Helper()
		e, out, errb := testEnv(map[string]string{adminURLEnv: "http://" + adminAddr, adminTokenEnv: m.MerchantToken})
		root := newRootCmd(e)
		root.SetArgs(args)
		if err := root.ExecuteContext(ctx); err != nil {
			t.Fatalf("%q: %v\n%s", args, err, errb)
		}
		return out.String()
	}
	// config.json (JPY, 100..300,000) is in force: 99 JPY is refused, 1,500 issued.
	if out := cli("sim", "call", "generateReferenceNumber", "--data-dir", dataDir, "--merchant", m.ID, "--amount", "99"); !strings.Contains(out, "HTTP 400 invalidFieldValue") {
		t.Fatalf("99 JPY: %s", out)
	}
	if out := cli("sim", "call", "generateReferenceNumber", "--data-dir", dataDir, "--merchant", m.ID, "--amount", "1500"); !strings.Contains(out, "HTTP 200") {
		t.Fatalf("1500 JPY: %s", out)
	}
	// The author uploads a build of their own and activates it.
	wasmFile := buildPluginFile(t, dir)
	cli("plugins", "upload", "--file", wasmFile, "--config-file", filepath.Join(dir, "config.json"), "--version", "acme-mine", "--activate")
	if err := proc.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("dev did not stop cleanly: %v", err)
	}
	proc = dev()
	if !strings.Contains(proc.logs(), "keeping the plugin version activated through the admin API") {
		t.Errorf("the restart did not say it kept the author's version:\n%s", proc.logs())
	}
	var vs []admin.PluginVersion
	if err := json.Unmarshal([]byte(cli("plugins", "list", "--json")), &vs); err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		if v.Active != (v.Version == "acme-mine") {
			t.Fatalf("after the restart %s active=%v; want only the author's acme-mine active: %+v", v.Version, v.Active, vs)
		}
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otpcgate/otpcgate/host/devenv"
	"github.com/otpcgate/otpcgate/host/directory"
	"github.com/otpcgate/otpcgate/host/plugincall"
	"github.com/otpcgate/otpcgate/host/runtime/runtimetest"
	"github.com/otpcgate/otpcgate/internal/testenv"
)

// TestSimCallAndPluginLogs sends chosen Google requests with `otpcgate sim
// call` to a live gateway — success, a refusal, a replay, a trap and a
// timeout — and reads the trap's trace back with the merchant's own
// `plugins logs --failures`, which never shows the other merchant's lines.
func TestSimCallAndPluginLogs(t *testing.T) {
	l := startLiveGateway(t)
	ctx := context.Background()
	l.writeDevInfo(t)
	// demo-jose runs the outcomes plugin, whose requestId prefix picks what it does.
	wasm := runtimetest.Build(t, "../../../testdata/plugins/outcomes")
	if _, err := l.g.Directory.AddPluginVersion(ctx, directory.PluginVersion{MerchantID: "demo-jose", Version: "outcomes", Wasm: wasm}); err != nil {
		t.Fatal(err)
	}
	if err := l.g.Directory.ActivatePluginVersion(ctx, "demo-jose", "outcomes"); err != nil {
		t.Fatal(err)
	}
	if err := l.g.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	call := func(args ...string) simCallResult {
		t.Helper()
		out, _, err := l.cli(ctx, "", nil, append([]string{"sim", "call", "--data-dir", l.info.DataDir, "--json"}, args...)...)
		if err != nil {
			t.Fatalf("sim call %q: %v", args, err)
		}
		var r simCallResult
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return r
	}
	ok := call("generateReferenceNumber", "--merchant", "demo-pgp", "--amount", "1500")
	if ok.Status != 200 || !strings.Contains(string(ok.Answer), `"printableString"`) {
		t.Fatalf("generate: %+v", ok)
	}
	if r := call("generateReferenceNumber", "--merchant", "demo-pgp", "--amount", "99"); r.Status != 400 || r.Member != "invalidFieldValue" {
		t.Fatalf("generate 99 JPY: %+v, want 400 invalidFieldValue", r)
	}
	replay := call("generateReferenceNumber", "--merchant", "demo-pgp", "--amount", "1500", "--request-id", ok.RequestID)
	result := func(r simCallResult) string {
		var v struct{ Result json.RawMessage }
		if err := json.Unmarshal(r.Answer, &v); err != nil || len(v.Result) == 0 {
			t.Fatalf("answer %s: %v", r.Answer, err)
		}
		return string(v.Result)
	}
	if replay.Status != 200 || result(replay) != result(ok) {
		t.Fatalf("replay: %+v, want the first answer's code %s", replay, result(ok))
	}
	if r := call("cancelReferenceNumber", "--merchant", "demo-pgp", "--transaction", ok.RequestID); r.Status != 200 || !strings.Contains(string(r.Answer), `"success"`) {
		t.Fatalf("cancel: %+v", r)
	}
	if r := call("generateReferenceNumber", "--merchant", "demo-jose", "--request-id", "trap-"+ok.RequestID); r.Status != 503 || r.RetryAfter == "" {
		t.Fatalf("trap: %+v, want 503 with Retry-After", r)
	}
	if r := call("generateReferenceNumber", "--merchant", "demo-jose", "--request-id", "timeout-"+ok.RequestID); r.Status != 503 || r.RetryAfter == "" {
		t.Fatalf("timeout: %+v, want 503 with Retry-After", r)
	}

	logs := func(merchant string, args ...string) string {
		t.Helper()
		out, _, err := l.cli(ctx, l.merchant(merchant).MerchantToken, nil, append([]string{"plugins", "logs", "--admin-url", l.adminURL}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	jose := logs("demo-jose", "--failures")
	for _, want := range []string{"trap in generate", "panic: outcomes: trap requested", "main.go:", "timeout in generate"} {
		if !strings.Contains(jose, want) {
			t.Errorf("demo-jose's plugins logs --failures lack %q:\n%s", want, jose)
		}
	}
	if all := logs("demo-jose"); !strings.Contains(all, "outcome trap") {
		t.Errorf("demo-jose's plugins logs lack its own line:\n%s", all)
	}
	if pgp := logs("demo-pgp"); strings.Contains(pgp, "outcome") || strings.Contains(pgp, "trap") {
		t.Errorf("demo-pgp's plugins logs show demo-jose's lines:\n%s", pgp)
	}
	if _, _, err := l.cli(ctx, l.merchant("demo-pgp").MerchantToken, nil, "plugins", "logs", "--admin-url", l.adminURL, "--merchant", "demo-jose"); err == nil {
		t.Error("demo-pgp's token read demo-jose's plugin logs")
	}
	show, _, err := l.cli(ctx, l.merchant("demo-jose").MerchantToken, nil, "plugins", "show", "outcomes", "--admin-url", l.adminURL)
	if err != nil || !strings.Contains(show, "last 2 failed calls") || !strings.Contains(show, "main.go:") {
		t.Errorf("plugins show: %v\n%s", err, show)
	}
}

// TestCLIShadowAndDiff: a merchant shadows a candidate with its own token
// (`plugins shadow`) and records its calls (`plugins record`), sends chosen
// requests (`sim call`); `plugins diff` names the requests on which the
// candidate would have decided otherwise, and `plugins replay` finds the
// same on the recordings while the recorded version reproduces them.
func TestCLIShadowAndDiff(t *testing.T) {
	l := startLiveGateway(t)
	ctx := context.Background()
	l.writeDevInfo(t)
	cfg := filepath.Join(t.TempDir(), "max-2000.json")
	if err := os.WriteFile(cfg, bytes.Replace(devenv.KonbiniConfig, []byte(`"maxAmountMicros": 300000000000`), []byte(`"maxAmountMicros": 2000000000`), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	tok := l.merchant("demo-pgp").MerchantToken
	cli := func(args ...string) string {
		t.Helper()
		out, stderr, err := l.cli(ctx, tok, nil, append(args, "--admin-url", l.adminURL)...)
		if err != nil {
			t.Fatalf("%q: %v\n%s", args, err, stderr)
		}
		return out
	}
	cli("plugins", "upload", "--from", "konbini-1", "--version", "max-2000", "--config-file", cfg)
	if out := cli("plugins", "shadow", "max-2000"); !strings.Contains(out, "shadow of max-2000 on 100% of calls") {
		t.Fatalf("plugins shadow: %s", out)
	}
	if out := cli("plugins", "record", "--on", "--retention", "2h"); !strings.Contains(out, "recording on until") {
		t.Fatalf("plugins record --on: %s", out)
	}
	for _, amount := range []string{"1500", "5000", "1500", "9000"} {
		out, _, err := l.cli(ctx, "", nil, "sim", "call", "generateReferenceNumber", "--data-dir", l.info.DataDir, "--amount", amount)
		if err != nil || !strings.Contains(out, "HTTP 200") {
			t.Fatalf("sim call %s: %v %s", amount, err, out)
		}
	}
	var rep plugincall.ShadowReport
	testenv.WaitFor(t, func() string {
		if err := json.Unmarshal([]byte(cli("plugins", "diff", "--json")), &rep); err != nil {
			return err.Error()
		}
		if rep.Compared < 4 {
			return "not compared yet"
		}
		return ""
	})
	out := cli("plugins", "diff")
	if rep.Different != 2 || !strings.Contains(out, "4 compared, 2 different") || strings.Count(out, "candidate: refusal") != 2 {
		t.Fatalf("plugins diff:\n%s", out)
	}
	if out := cli("plugins", "shadow", "--stop"); !strings.Contains(out, "2 different") {
		t.Fatalf("plugins shadow --stop: %s", out)
	}
	// The same four calls, recorded, replayed offline on both versions.
	testenv.WaitFor(t, func() string {
		if out := cli("plugins", "record"); !strings.Contains(out, "4 recordings kept") {
			return out
		}
		return ""
	})
	if out := cli("plugins", "replay", "--version", "konbini-1"); !strings.Contains(out, "replayed 4 recordings on konbini-1: 4 as recorded, 0 different") {
		t.Fatalf("replay on the recorded version: %s", out)
	}
	if out := cli("plugins", "replay", "--version", "max-2000"); !strings.Contains(out, "2 as recorded, 2 different") || strings.Count(out, "replayed: refusal") != 2 {
		t.Fatalf("replay on max-2000: %s", out)
	}
	cli("plugins", "record", "--off")
	if out := cli("plugins", "diff"); !strings.Contains(out, "no shadow runs") {
		t.Fatalf("after stop: %s", out)
	}
}

package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/host/devenv"
	"github.com/otpcgate/otpcgate/host/google"
	"github.com/otpcgate/otpcgate/internal/wasmbuild"
)

// testBinary builds the otpcgate binary once per test binary.
var testBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "otpcgate-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "otpcgate")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		return "", &buildError{err, out}
	}
	return bin, nil
})

type buildError struct {
	err error
	out []byte
}

func (e *buildError) Error() string { return "go build: " + e.err.Error() + "\n" + string(e.out) }

// TestServeConfig runs `otpcgate serve --config FILE` as an operator would:
// the keys and plugins are already in the database, the configuration file
// names the database, the KEK file, the certificate and the merchants
// (seeded on start), and Google's calls are answered.
func TestServeConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin, err := testBinary()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dir := t.TempDir()
	addr := freeAddr(t)
	wasm, err := wasmbuild.Build(ctx, "../../../plugins/konbini")
	if err != nil {
		t.Fatal(err)
	}
	info, err := devenv.Provision(ctx, dir, addr, devenv.Plugin{Version: "v1", Wasm: wasm, Config: devenv.KonbiniConfig}, nil)
	if err != nil {
		t.Fatal(err)
	}
	type merchantCfg struct {
		ID       string   `json:"id"`
		BasePath string   `json:"base_path"`
		PIAIDs   []string `json:"piaids"`
		Envelope string   `json:"envelope"`
		KeysetID string   `json:"keyset_id"`
		Google   string   `json:"google_endpoint"`
	}
	cfg := map[string]any{
		"data_dir": dir, "db_path": info.DBPath, "kek_file": info.KEKFile,
		"listen": map[string]any{"addr": addr, "cert_file": info.CertFile, "key_file": info.KeyFile},
		"admin":  map[string]any{"addr": ""},
		"log":    map[string]any{"level": "warn", "format": "json"},
	}
	var ms []merchantCfg
	for _, m := range info.Merchants {
		ms = append(ms, merchantCfg{ID: m.ID, BasePath: m.BasePath, PIAIDs: []string{m.PIAID}, Envelope: string(m.Envelope), KeysetID: m.KeysetID,
			Google: google.SandboxEndpoint})
	}
	cfg["merchants"] = ms
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "otpcgate.json")
	if err := os.WriteFile(cfgFile, b, 0o600); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(bin, "serve", "--config", cfgFile)
	logFile := filepath.Join(dir, "serve.log")
	lf, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	cmd.Stdout, cmd.Stderr = lf, lf
	logs := func() string { b, _ := os.ReadFile(logFile); return string(b) }
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve did not stop cleanly on SIGTERM: %v\n%s", err, logs())
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Error("serve did not stop within 30 s of SIGTERM")
		}
	}()
	waitHealthy(t, addr, done, logs)

	e, out, _ := testEnv(nil)
	if err := simSmoke(ctx, e, dir); err != nil {
		t.Fatalf("sim smoke against serve: %v\n%s\nserver log:\n%s", err, out, logs())
	}
	t.Logf("serve --config answered every smoke check:\n%s", out)
}

// waitHealthy waits until https://addr/healthz answers 200.
func waitHealthy(t *testing.T, addr string, exited chan error, logs func() string) {
	t.Helper()
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if res, err := hc.Get("https://" + addr + "/healthz"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-exited:
			exited <- err // for the deferred stop
			t.Fatalf("otpcgate exited before it was healthy (%v):\n%s", err, logs())
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("otpcgate did not become healthy on %s:\n%s", addr, logs())
}

package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpcgate/otpcgate/host/admin"
	"github.com/otpcgate/otpcgate/host/devenv"
	"github.com/otpcgate/otpcgate/host/envelope"
	"github.com/otpcgate/otpcgate/host/gateway"
	"github.com/otpcgate/otpcgate/host/runtime/runtimetest"
	"github.com/otpcgate/otpcgate/host/server"
	"github.com/otpcgate/otpcgate/host/sim"
	"github.com/otpcgate/otpcgate/keystore"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// liveGateway is a provisioned dev installation served on loopback: the
// Google-facing TLS listener and the admin API.
type liveGateway struct {
	info     *devenv.Info
	g        *gateway.Gateway
	adminURL string
	client   *sim.Client
	wasm     []byte
}

func startLiveGateway(t *testing.T) *liveGateway {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	wasm := runtimetest.Build(t, "../../../plugins/konbini")
	info, err := devenv.Provision(ctx, dir, "127.0.0.1:0",
		devenv.Plugin{Version: "konbini-1", Wasm: wasm, Config: devenv.KonbiniConfig}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kek, err := keystore.ReadKEKFile(info.KEKFile)
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.Open(ctx, gateway.Options{Database: info.DBPath, KEK: kek,
		Server:  server.Config{CertFile: info.CertFile, KeyFile: info.KeyFile},
		Limiter: server.LimiterConfig{MaxQueue: 1024, MaxWait: 10 * time.Second},
		Logger:  slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := g.AdminServer(ctx, admin.Config{}, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	gln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	aln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 2)
	go func() { done <- g.Serve(sctx, gln) }()
	go func() { done <- srv.Serve(sctx, aln) }()
	t.Cleanup(func() {
		cancel()
		for range 2 {
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		}
		g.Close()
	})
	pem, err := os.ReadFile(info.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	for i := range info.Merchants {
		info.Merchants[i].BaseURL = "https://" + gln.Addr().String() + info.Merchants[i].BasePath
	}
	return &liveGateway{info: info, g: g, adminURL: "http://" + aln.Addr().String(), wasm: wasm,
		client: &sim.Client{HTTP: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12},
			MaxIdleConnsPerHost: 16}}}}
}

// writeDevInfo writes dev.json with the listeners' real addresses, as
// `otpcgate dev` does, for commands that read it (sim).
func (l *liveGateway) writeDevInfo(t *testing.T) {
	t.Helper()
	b, err := json.MarshalIndent(l.info, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(l.info.DataDir, devenv.File), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func (l *liveGateway) merchant(id string) devenv.Merchant {
	for _, m := range l.info.Merchants {
		if m.ID == id {
			return m
		}
	}
	panic("no dev merchant " + id)
}

// cli runs one otpcgate command line in process with stdin.
// operatorToken bootstraps the first operator token, as an operator would,
// and returns its secret.
func (l *liveGateway) operatorToken(t *testing.T) string {
	t.Helper()
	secret, _, err := l.cli(context.Background(), "", nil, "tokens", "bootstrap", "--db-path", l.info.DBPath)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(secret)
}

func (l *liveGateway) cli(ctx context.Context, token string, stdin io.Reader, args ...string) (stdout, stderr string, err error) {
	e, out, errb := testEnv(map[string]string{adminURLEnv: l.adminURL, adminTokenEnv: token})
	root := newRootCmd(e)
	if stdin != nil {
		root.SetIn(stdin)
	}
	root.SetArgs(args)
	err = root.ExecuteContext(ctx)
	return out.String(), errb.String(), err
}

// googleTraffic sends generateReferenceNumber to one merchant until stop.
type googleTraffic struct {
	ok, failed atomic.Int64
	first      atomic.Value
	stop       chan struct{}
	wg         sync.WaitGroup
}

func (l *liveGateway) traffic(m devenv.Merchant, workers int) *googleTraffic {
	codec, err := envelope.New(m.Envelope, envelope.Config{})
	if err != nil {
		panic(err)
	}
	tg := &sim.Target{BaseURL: m.BaseURL, PIAID: m.PIAID, Codec: codec,
		Keyset: func(ctx context.Context) (*keystore.Keyset, error) { return l.g.Keys.Keyset(ctx, m.SimKeysetID) }}
	tr := &googleTraffic{stop: make(chan struct{})}
	for range workers {
		tr.wg.Add(1)
		go func() {
			defer tr.wg.Done()
			for {
				select {
				case <-tr.stop:
					return
				default:
				}
				req := &otpc.GenerateReferenceNumberRequest{RequestHeader: l.client.Header(tg),
					GooglePaymentToken:     otpc.GooglePaymentToken{IssuerID: otpc.IssuerID{Value: m.DemoIssuer}, Token: m.DemoToken},
					TransactionDescription: "Google - Test",
					Amount:                 otpc.Amount{AmountMicros: 1_000_000_000, CurrencyCode: "JPY"}}
				var resp otpc.GenerateReferenceNumberResponse
				res, err := l.client.Call(context.Background(), tg, otpc.MethodGenerateReferenceNumber, req, &resp)
				if err != nil || res.Status != http.StatusOK || resp.Result.Success == nil {
					tr.failed.Add(1)
					tr.first.CompareAndSwap(nil, fmt.Sprintf("err %v result %+v", err, res))
					continue
				}
				tr.ok.Add(1)
			}
		}()
	}
	return tr
}

func (tr *googleTraffic) waitOK(t *testing.T, n int64) {
	t.Helper()
	target := tr.ok.Load() + n
	for deadline := time.Now().Add(30 * time.Second); tr.ok.Load() < target; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("traffic stalled: ok %d failed %d (%v)", tr.ok.Load(), tr.failed.Load(), tr.first.Load())
		}
	}
}

func TestCLIKeyRotationUnderTraffic(t *testing.T) {
	l := startLiveGateway(t)
	ctx := context.Background()
	m := l.merchant("demo-pgp")

	// No token: the error says how to get one.
	if _, _, err := l.cli(ctx, "", nil, "merchants", "list"); err == nil || !strings.Contains(err.Error(), "tokens bootstrap") {
		t.Fatalf("without a token: %v", err)
	}
	// Bootstrap works on the database file while the gateway runs.
	secret, stderr, err := l.cli(ctx, "", nil, "tokens", "bootstrap", "--db-path", l.info.DBPath)
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(secret)
	if !strings.HasPrefix(token, "otpca_") || !strings.Contains(stderr, "shown only this once") {
		t.Fatalf("bootstrap printed %q / %q", secret, stderr)
	}
	if _, _, err := l.cli(ctx, "", nil, "tokens", "bootstrap", "--db-path", l.info.DBPath); !errors.Is(err, admin.ErrTokenExists) {
		t.Fatalf("second bootstrap: %v", err)
	}

	out, _, err := l.cli(ctx, token, nil, "keys", "list", "--merchant", m.ID, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var before []admin.KeyView
	if err := json.Unmarshal([]byte(out), &before); err != nil {
		t.Fatal(err)
	}
	var oldID string
	for _, k := range before {
		if k.Owner == keystore.OwnerSelf && k.State == keystore.StatePrimary {
			oldID = k.ID
		}
	}
	if oldID == "" {
		t.Fatalf("no primary self key: %+v", before)
	}

	tr := l.traffic(m, 3)
	tr.waitOK(t, 20)

	pubFile := filepath.Join(t.TempDir(), "new-public.asc")
	stdinR, stdinW := io.Pipe()
	type result struct {
		stdout, stderr string
		err            error
	}
	resc := make(chan result, 1)
	go func() {
		o, e, err := l.cli(ctx, token, stdinR, "keys", "rotate", "--merchant", m.ID, "--out", pubFile, "--grace", "300ms")
		resc <- result{o, e, err}
	}()
	// Play Google: wait for the exported key, install it, confirm.
	var pub []byte
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if pub, err = os.ReadFile(pubFile); err == nil && len(pub) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("rotate never exported the new public key")
		}
	}
	tr.waitOK(t, 10)
	keys, err := l.g.Keys.Import(ctx, "google (test)", m.SimKeysetID, keystore.OwnerPeer, pub, keystore.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.g.Keys.SetState(ctx, "google (test)", m.SimKeysetID, keys[0].ID, keystore.StateActive); err != nil {
		t.Fatal(err)
	}
	tr.waitOK(t, 10)
	if _, err := io.WriteString(stdinW, "yes\n"); err != nil {
		t.Fatal(err)
	}
	res := <-resc
	if res.err != nil {
		t.Fatalf("rotate: %v\n%s", res.err, res.stderr)
	}
	for _, want := range []string{"[1/7] generated", "[3/7] round trip through the envelope passed", "[6/7]", "[7/7] " + oldID + " is retiring"} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("rotate output lacks %q:\n%s", want, res.stderr)
		}
	}
	newID := keys[0].ID
	tr.waitOK(t, 30)
	tr.halt()
	if f := tr.failed.Load(); f != 0 {
		t.Fatalf("%d of %d Google requests failed during the rotation: %v", f, f+tr.ok.Load(), tr.first.Load())
	}
	if n := l.g.Counters.Get(newID)[keystore.UseSign]; n == 0 {
		t.Fatal("the new key never signed a response after promotion")
	}
	t.Logf("rotation under traffic: %d requests, 0 failed; new key signed %d", tr.ok.Load(), l.g.Counters.Get(newID)[keystore.UseSign])

	out, _, err = l.cli(ctx, token, nil, "keys", "list", "--merchant", m.ID, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var after []admin.KeyView
	if err := json.Unmarshal([]byte(out), &after); err != nil {
		t.Fatal(err)
	}
	states := map[string]keystore.State{}
	for _, k := range after {
		states[k.ID] = k.State
	}
	if states[newID] != keystore.StatePrimary || states[oldID] != keystore.StateRetiring {
		t.Fatalf("after rotation: new %s, old %s", states[newID], states[oldID])
	}
	out, _, err = l.cli(ctx, token, nil, "audit", "--subject", admin.MerchantSubject(m.ID))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(out, "key.state") != 3 || !strings.Contains(out, "key.generate") || strings.Contains(out, token[len(token)-20:]) {
		t.Fatalf("audit after rotation:\n%s", out)
	}
}

func TestCLIPluginsAndExpiryWarnings(t *testing.T) {
	l := startLiveGateway(t)
	ctx := context.Background()
	token := l.operatorToken(t)

	out, _, err := l.cli(ctx, token, nil, "merchants", "list")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "ID") || !strings.Contains(out, "demo-jose") || !strings.Contains(out, "konbini-1") {
		t.Fatalf("merchants list:\n%s", out)
	}

	wasmFile := filepath.Join(t.TempDir(), "konbini.wasm")
	cfgFile := filepath.Join(t.TempDir(), "konbini.json")
	if err := os.WriteFile(wasmFile, l.wasm, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgFile, bytes.Replace(devenv.KonbiniConfig, []byte(`"81"`), []byte(`"83"`), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := l.cli(ctx, token, nil, "plugins", "upload", "--merchant", "demo-jose", "--file", wasmFile,
		"--config-file", cfgFile, "--version", "konbini-2", "--activate")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "uploading 100%") || !strings.Contains(stderr, "compiling and warming") {
		t.Fatalf("upload shows no progress:\n%q", stderr)
	}
	if !strings.Contains(out, "konbini-2") || !strings.Contains(out, "*") {
		t.Fatalf("upload output:\n%s", out)
	}
	// A wrong sha256 is refused with the next step.
	_, _, err = l.cli(ctx, token, nil, "plugins", "upload", "--merchant", "demo-jose", "--file", wasmFile,
		"--version", "konbini-3", "--sha256", strings.Repeat("0", 64))
	if err == nil || !strings.Contains(err.Error(), "sha256") || !strings.Contains(err.Error(), "next:") {
		t.Fatalf("wrong sha256: %v", err)
	}
	out, _, err = l.cli(ctx, token, nil, "plugins", "rollback", "--merchant", "demo-jose", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var pv admin.PluginVersion
	if err := json.Unmarshal([]byte(out), &pv); err != nil || pv.Version != "konbini-1" || !pv.Active {
		t.Fatalf("rollback: %v %s", err, out)
	}

	// Keys close to expiry are flagged in the CLI.
	for _, days := range []string{"20", "5"} {
		if _, _, err := l.cli(ctx, token, nil, "keys", "generate", "--merchant", "demo-jose", "--lifetime-days", days); err != nil {
			t.Fatal(err)
		}
	}
	out, stderr, err = l.cli(ctx, token, nil, "keys", "list", "--merchant", "demo-jose")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr, "WARNING (warning)") || !strings.Contains(stderr, "WARNING (critical)") ||
		!strings.Contains(stderr, "keys rotate") || !strings.Contains(out, "CRITICAL") {
		t.Fatalf("expiry warnings missing:\n%s\n%s", out, stderr)
	}
}

func (tr *googleTraffic) halt() {
	close(tr.stop)
	tr.wg.Wait()
}

// TestCLIAdminAddrFromConfig: without --admin-url or OTPCGATE_ADMIN_URL the
// CLI dials the admin address of the configuration file it is given, as
// the server it talks to does; a configuration without an admin listener
// says so.
func TestCLIAdminAddrFromConfig(t *testing.T) {
	l := startLiveGateway(t)
	ctx := context.Background()
	token := l.operatorToken(t)
	addr := strings.TrimPrefix(l.adminURL, "http://")
	dir := t.TempDir()
	run := func(cfg string) (string, error) {
		file := filepath.Join(dir, "config.json")
		if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		e, out, _ := testEnv(map[string]string{adminTokenEnv: token}) // no admin URL
		root := newRootCmd(e)
		root.SetArgs([]string{"merchants", "list", "--config", file})
		err := root.ExecuteContext(ctx)
		return out.String(), err
	}
	out, err := run(`{"admin": {"addr": "` + addr + `"}}`)
	if err != nil || !strings.Contains(out, "demo-jose") {
		t.Fatalf("merchants list --config: %v\n%s", err, out)
	}
	if _, err := run(`{"admin": {"addr": ""}}`); err == nil || !strings.Contains(err.Error(), "disables the admin API") {
		t.Fatalf("admin disabled in the configuration: %v", err)
	}
}

// TestTokensBootstrapOut: --out writes the secret to a new 0600 file that
// authenticates; a refused bootstrap (a token exists) and an existing file
// write nothing.
func TestTokensBootstrapOut(t *testing.T) {
	l := startLiveGateway(t)
	ctx := context.Background()
	dir := t.TempDir()
	out := filepath.Join(dir, "operator.token")
	if _, stderr, err := l.cli(ctx, "", nil, "tokens", "bootstrap", "--db-path", l.info.DBPath, "--out", out); err != nil ||
		!strings.Contains(stderr, "mode 0600") {
		t.Fatalf("bootstrap --out: %v\n%s", err, stderr)
	}
	st, err := os.Stat(out)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", st, err)
	}
	secret, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.cli(ctx, strings.TrimSpace(string(secret)), nil, "merchants", "list"); err != nil {
		t.Fatalf("the written token does not authenticate: %v", err)
	}
	// A token exists: refused, and no file is left behind.
	again := filepath.Join(dir, "again.token")
	if _, _, err := l.cli(ctx, "", nil, "tokens", "bootstrap", "--db-path", l.info.DBPath, "--out", again); err == nil {
		t.Fatal("second bootstrap accepted")
	}
	if _, err := os.Stat(again); !os.IsNotExist(err) {
		t.Fatalf("a refused bootstrap left %s behind (%v)", again, err)
	}
	// An existing file is never overwritten, even with --force.
	if _, _, err := l.cli(ctx, "", nil, "tokens", "bootstrap", "--db-path", l.info.DBPath, "--force", "--out", out); err == nil ||
		!strings.Contains(err.Error(), "exists") {
		t.Fatalf("bootstrap over an existing file: %v", err)
	}
	if now, _ := os.ReadFile(out); string(now) != string(secret) {
		t.Fatal("the existing token file was changed")
	}
}

// TestCLIMerchantDelete: `merchants delete` and `release-piaid` through the
// CLI: refused with the next step while the merchant is active, done once
// it is disabled (a merchant with records: TestAdminDeleteMerchantAndReleasePIAID).
func TestCLIMerchantDelete(t *testing.T) {
	l := startLiveGateway(t)
	ctx := context.Background()
	token := l.operatorToken(t)
	run := func(args ...string) (string, string, error) {
		return l.cli(ctx, token, nil, args...)
	}
	if _, stderr, err := run("merchants", "create", "--id", "oops", "--base-path", "/oops", "--envelope", "pgp",
		"--piaid", "OOPS_1", "--piaid", "OOPS_2", "--kv-max-keys", "7"); err != nil {
		t.Fatalf("create: %v\n%s", err, stderr)
	}
	// The merchant's own KV quota: set at creation, one field changed by
	// update keeps the other.
	if _, stderr, err := run("merchants", "update", "oops", "--kv-max-bytes", "4096"); err != nil {
		t.Fatalf("update quota: %v\n%s", err, stderr)
	}
	if _, stderr, err := run("merchants", "update", "oops", "--max-plugin-versions", "3"); err != nil {
		t.Fatalf("update versions cap: %v\n%s", err, stderr)
	}
	if out, _, err := run("merchants", "show", "oops"); err != nil || !strings.Contains(out, "0 of 7 keys, 0 of 4096 bytes (its own quota where set)") ||
		!strings.Contains(out, "own quotas: kv keys 7, kv bytes 4096, log bytes/min -, plugin versions 3, plugin bytes -, plugin memory MiB -") {
		t.Fatalf("show: %v\n%s", err, out)
	}
	if _, stderr, err := run("merchants", "delete", "oops"); err == nil || !strings.Contains(stderr+err.Error(), "disable it first") {
		t.Fatalf("delete while active: %v\n%s", err, stderr)
	}
	if _, stderr, err := run("merchants", "disable", "oops"); err != nil {
		t.Fatalf("disable: %v\n%s", err, stderr)
	}
	out, stderr, err := run("merchants", "release-piaid", "oops", "OOPS_2")
	if err != nil || !strings.Contains(out, "OOPS_1") || strings.Contains(out, "OOPS_2") {
		t.Fatalf("release-piaid: %v\n%s%s", err, out, stderr)
	}
	out, stderr, err = run("merchants", "delete", "oops")
	if err != nil || !strings.Contains(out, "deleted merchant oops (PIAIDs OOPS_1 now free)") {
		t.Fatalf("delete: %v\n%s%s", err, out, stderr)
	}
	if out, _, err := run("merchants", "list"); err != nil || strings.Contains(out, "oops") {
		t.Fatalf("list after delete: %v\n%s", err, out)
	}
}

// TestCLIJSONErrors: with --json a failure is JSON on stdout too — the
// API's refusal with its HTTP status, a local error with its hint — and
// the exit code is 1.
func TestCLIJSONErrors(t *testing.T) {
	l := startLiveGateway(t)
	secret := l.operatorToken(t)
	for _, tc := range []struct {
		name, token string
		args        []string
		status      int
	}{
		{"refused by the API", secret, []string{"merchants", "show", "no-such-merchant", "--json"}, http.StatusNotFound},
		{"no token", "", []string{"merchants", "list", "--json"}, 0},
	} {
		e, out, _ := testEnv(map[string]string{adminURLEnv: l.adminURL, adminTokenEnv: tc.token})
		if code := execute(context.Background(), tc.args, e); code != 1 {
			t.Errorf("%s: exit %d, want 1", tc.name, code)
		}
		var got cliError
		if err := json.Unmarshal(out.Bytes(), &got); err != nil || got.Error == "" || got.Status != tc.status {
			t.Errorf("%s: stdout %q (%v), want a JSON error with status %d", tc.name, out, err, tc.status)
		}
		if tc.status == 0 && got.Next == "" {
			t.Errorf("%s: no hint in %+v", tc.name, got)
		}
	}
}

// TestCLIMerchantFromToken: with a merchant token, --merchant defaults to
// the token's merchant; with an operator token it is still required.
func TestCLIMerchantFromToken(t *testing.T) {
	l := startLiveGateway(t)
	ctx := context.Background()
	operator := l.operatorToken(t)
	out, stderr, err := l.cli(ctx, operator, nil, "tokens", "issue", "--merchant", "demo-pgp", "--name", "ci", "--json")
	if err != nil {
		t.Fatalf("issue: %v\n%s", err, stderr)
	}
	var it admin.IssuedToken
	if err := json.Unmarshal([]byte(out), &it); err != nil || it.Secret == "" {
		t.Fatalf("issued %q: %v", out, err)
	}
	for _, args := range [][]string{{"plugins", "list", "--json"}, {"keys", "list", "--json"}} {
		out, stderr, err := l.cli(ctx, it.Secret, nil, args...)
		if err != nil || !strings.HasPrefix(strings.TrimSpace(out), "[") {
			t.Errorf("%v with demo-pgp's token and no --merchant: %v\n%s%s", args, err, out, stderr)
		}
	}
	if _, _, err := l.cli(ctx, operator, nil, "plugins", "list"); err == nil || !strings.Contains(err.Error(), "operator token") {
		t.Errorf("plugins list with an operator token and no --merchant: %v", err)
	}
}

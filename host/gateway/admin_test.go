package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpcgate/otpcgate/host/admin"
	"github.com/otpcgate/otpcgate/host/plugincall"
	"github.com/otpcgate/otpcgate/host/runtime/runtimetest"
	"github.com/otpcgate/otpcgate/host/sim"
	"github.com/otpcgate/otpcgate/sdk/otpc"

	"github.com/otpcgate/otpcgate/internal/testenv"
)

// adminEnv is a running gateway with its admin API on loopback HTTP.
type adminEnv struct {
	*env
	srv      *admin.Server
	url      string
	logs     *testenv.Buffer
	operator string
	calls    *plugincall.Service
}

func newAdminEnv(t *testing.T, cfg admin.Config, mutate ...func(*Options)) *adminEnv {
	t.Helper()
	logs := &testenv.Buffer{}
	e := newEnv(t, append([]func(*Options){func(o *Options) {
		o.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}}, mutate...)...)
	cfg.Calls = e.g.Calls
	reg := prometheus.NewRegistry()
	srv, url := serveAdmin(t, e.g, cfg, reg)
	toks, err := admin.OpenTokens(context.Background(), e.g.DB)
	if err != nil {
		t.Fatal(err)
	}
	_, secret, err := toks.Bootstrap(context.Background(), "test operator", false)
	if err != nil {
		t.Fatal(err)
	}
	return &adminEnv{env: e, srv: srv, url: url, logs: logs, operator: secret, calls: e.g.Calls}
}

// serveAdmin serves g's admin API on a loopback port until the test ends
// and returns it with its base URL.
func serveAdmin(t testing.TB, g *Gateway, cfg admin.Config, reg *prometheus.Registry) (*admin.Server, string) {
	t.Helper()
	srv, err := g.AdminServer(context.Background(), cfg, reg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("admin serve: %v", err)
		}
	})
	return srv, "http://" + ln.Addr().String()
}

func (a *adminEnv) client(token string) *admin.Client {
	return &admin.Client{BaseURL: a.url, Token: token, HTTP: &http.Client{Timeout: time.Minute}}
}

// status returns the HTTP status of a call (200 for success).
func status(err error) int {
	var ae *admin.APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	if err != nil {
		return -1
	}
	return http.StatusOK
}

// pluginVersions lists a merchant's plugin versions through the API.
func (a *adminEnv) pluginVersions(t *testing.T, merchant string) []admin.PluginVersion {
	t.Helper()
	var vs []admin.PluginVersion
	if err := a.client(a.operator).Do(context.Background(), http.MethodGet, admin.MerchantPath(merchant, "plugins"), nil, &vs); err != nil {
		t.Fatal(err)
	}
	return vs
}

func (a *adminEnv) issue(t *testing.T, merchant string) admin.IssuedToken {
	t.Helper()
	var it admin.IssuedToken
	body := map[string]string{"scope": "merchant", "merchantId": merchant, "name": "test " + merchant}
	if err := a.client(a.operator).Do(context.Background(), http.MethodPost, "/v1/tokens", body, &it); err != nil {
		t.Fatal(err)
	}
	return it
}

func TestAdminAuthorization(t *testing.T) {
	a := newAdminEnv(t, admin.Config{})
	ctx := context.Background()
	tokA := a.issue(t, "demo-pgp")
	tokB := a.issue(t, "demo-jose")
	op, ca := a.client(a.operator), a.client(tokA.Secret)
	var anything json.RawMessage
	var raw []byte

	cases := []struct {
		name   string
		c      *admin.Client
		method string
		path   string
		body   any
		want   int
	}{
		{"no token", a.client(""), http.MethodGet, "/v1/merchants/demo-pgp", nil, http.StatusUnauthorized},
		{"garbage token", a.client("otpca_0123456789abcdef_AAAA"), http.MethodGet, "/v1/merchants/demo-pgp", nil, http.StatusUnauthorized},
		{"A reads itself", ca, http.MethodGet, "/v1/merchants/demo-pgp", nil, http.StatusOK},
		{"A reads its keys", ca, http.MethodGet, "/v1/merchants/demo-pgp/keys", nil, http.StatusOK},
		{"A reads its events", ca, http.MethodGet, "/v1/merchants/demo-pgp/events", nil, http.StatusOK},
		{"A reads its metrics", ca, http.MethodGet, "/v1/merchants/demo-pgp/metrics", nil, http.StatusOK},
		{"A reads B", ca, http.MethodGet, "/v1/merchants/demo-jose", nil, http.StatusForbidden},
		{"A reads B's keys", ca, http.MethodGet, "/v1/merchants/demo-jose/keys", nil, http.StatusForbidden},
		{"A exports B's keys", ca, http.MethodGet, "/v1/merchants/demo-jose/keys/public", nil, http.StatusForbidden},
		{"A reads B's plugins", ca, http.MethodGet, "/v1/merchants/demo-jose/plugins", nil, http.StatusForbidden},
		{"A reads B's events", ca, http.MethodGet, "/v1/merchants/demo-jose/events", nil, http.StatusForbidden},
		{"A reads B's metrics", ca, http.MethodGet, "/v1/merchants/demo-jose/metrics", nil, http.StatusForbidden},
		{"A uploads to B", ca, http.MethodPost, "/v1/merchants/demo-jose/plugins", admin.PluginUpload{Version: "x", Wasm: []byte("x")}, http.StatusForbidden},
		{"A rolls B back", ca, http.MethodPost, "/v1/merchants/demo-jose/plugins/rollback", nil, http.StatusForbidden},
		{"A activates B's plugin", ca, http.MethodPost, "/v1/merchants/demo-jose/plugins/konbini-test/activate", nil, http.StatusForbidden},
		{"A lists merchants", ca, http.MethodGet, "/v1/merchants", nil, http.StatusForbidden},
		{"A disables itself", ca, http.MethodPost, "/v1/merchants/demo-pgp/disable", nil, http.StatusForbidden},
		{"A generates a key", ca, http.MethodPost, "/v1/merchants/demo-pgp/keys", admin.GenerateRequest{}, http.StatusForbidden},
		{"A changes B's key", ca, http.MethodPost, "/v1/merchants/demo-jose/keys/x/state", admin.StateRequest{State: "disabled"}, http.StatusForbidden},
		{"A lists tokens", ca, http.MethodGet, "/v1/tokens", nil, http.StatusForbidden},
		{"A issues a token", ca, http.MethodPost, "/v1/tokens", map[string]string{"scope": "operator"}, http.StatusForbidden},
		{"A revokes B's token", ca, http.MethodDelete, "/v1/tokens/" + tokB.ID, nil, http.StatusForbidden},
		{"A reads the audit log", ca, http.MethodGet, "/v1/audit", nil, http.StatusForbidden},
		{"A scrapes metrics", ca, http.MethodGet, "/metrics", nil, http.StatusForbidden},
		{"A re-activates its own plugin", ca, http.MethodPost, "/v1/merchants/demo-pgp/plugins/konbini-test/activate", nil, http.StatusOK},
		{"operator reads B", op, http.MethodGet, "/v1/merchants/demo-jose", nil, http.StatusOK},
		{"unknown merchant", op, http.MethodGet, "/v1/merchants/nobody", nil, http.StatusNotFound},
		{"description without token", a.client(""), http.MethodGet, "/openapi.json", nil, http.StatusOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := any(&anything)
			if strings.HasSuffix(tc.path, "/public") {
				out = &raw
			}
			if got := status(tc.c.Do(ctx, tc.method, tc.path, tc.body, out)); got != tc.want {
				t.Fatalf("%s %s: status %d, want %d", tc.method, tc.path, got, tc.want)
			}
		})
	}
	// A merchant token sees public key material only.
	if err := ca.Do(ctx, http.MethodGet, "/v1/merchants/demo-pgp/keys/public", nil, &raw); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte("BEGIN PGP PUBLIC KEY BLOCK")) || bytes.Contains(raw, []byte("PRIVATE")) {
		t.Fatalf("public export is not an armored public key block:\n%.200s", raw)
	}

	// Revocation takes effect at once.
	var revoked admin.Token
	if err := op.Do(ctx, http.MethodDelete, "/v1/tokens/"+tokA.ID, nil, &revoked); err != nil {
		t.Fatal(err)
	}
	if revoked.Revoked.IsZero() {
		t.Fatal("revoked token shows no revocation time")
	}
	if got := status(ca.Do(ctx, http.MethodGet, "/v1/merchants/demo-pgp", nil, &anything)); got != http.StatusUnauthorized {
		t.Fatalf("revoked token: status %d, want 401", got)
	}
	// B is unaffected.
	if got := status(a.client(tokB.Secret).Do(ctx, http.MethodGet, "/v1/merchants/demo-jose", nil, &anything)); got != http.StatusOK {
		t.Fatalf("B after A's revocation: %d", got)
	}

	// Every change is audited, with the token id and never a secret.
	var audit []admin.AuditEntry
	if err := op.Do(ctx, http.MethodGet, "/v1/audit", nil, &audit); err != nil {
		t.Fatal(err)
	}
	actions := map[string]int{}
	for _, e := range audit {
		actions[e.Action]++
	}
	if actions["token.issue"] != 2 || actions["token.revoke"] != 1 {
		t.Fatalf("audit actions %v, want 2 token.issue and 1 token.revoke", actions)
	}
	auditJSON, _ := json.Marshal(audit)
	for _, secret := range []string{a.operator, tokA.Secret, tokB.Secret} {
		_, tail, _ := strings.Cut(secret[len("otpca_"):], "_")
		if strings.Contains(a.logs.String(), tail) || bytes.Contains(auditJSON, []byte(tail)) {
			t.Fatal("a token secret appears in the logs or the audit log")
		}
	}
	if !strings.Contains(a.logs.String(), `"route":"/v1/merchants/:id"`) {
		t.Fatal("admin requests are not logged at all; the secret check above proves nothing")
	}
}

func TestAdminRateLimitAndTLS(t *testing.T) {
	a := newAdminEnv(t, admin.Config{Rate: 1, Burst: 3})
	var m admin.Merchant
	got := []int{}
	for range 5 {
		got = append(got, status(a.client(a.operator).Do(context.Background(), http.MethodGet, "/v1/merchants/demo-pgp", nil, &m)))
	}
	if !slices.Contains(got, http.StatusTooManyRequests) || got[0] != http.StatusOK {
		t.Fatalf("statuses %v: want 200 first and a 429 within 5 calls at 1/s burst 3", got)
	}

	if _, err := a.g.AdminServer(context.Background(), admin.Config{Addr: "0.0.0.0:8444"}, nil); !errors.Is(err, admin.ErrTLSRequired) {
		t.Fatalf("non-loopback without TLS: %v, want ErrTLSRequired", err)
	}
	// With the certificate: real TLS on the listener.
	srv, err := a.g.AdminServer(context.Background(), admin.Config{Addr: "0.0.0.0:0",
		CertFile: a.dir + "/tls-cert.pem", KeyFile: a.dir + "/tls-key.pem"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	defer func() { cancel(); <-done }()
	c := &admin.Client{BaseURL: "https://" + ln.Addr().String(), Token: a.operator, HTTP: a.env.client.HTTP}
	if err := c.Do(context.Background(), http.MethodGet, "/v1/merchants/demo-pgp", nil, &m); err != nil || m.ID != "demo-pgp" {
		t.Fatalf("over TLS: %v %+v", err, m)
	}
	plain := &admin.Client{BaseURL: "http://" + ln.Addr().String(), Token: a.operator}
	if err := plain.Do(context.Background(), http.MethodGet, "/healthz", nil, nil); status(err) == http.StatusOK {
		t.Fatal("plain HTTP accepted on the TLS listener")
	}
}

// abiV2 is a module that exports the whole ABI but claims version 2.
func abiV2() []byte {
	sec := func(id byte, body ...byte) []byte { return append([]byte{id, byte(len(body))}, body...) }
	name := func(s string) []byte { return append([]byte{byte(len(s))}, s...) }
	out := []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}
	out = append(out, sec(1, 4, 0x60, 0, 0, 0x60, 0, 1, 0x7f, 0x60, 1, 0x7f, 1, 0x7f, 0x60, 3, 0x7f, 0x7f, 0x7f, 1, 0x7e)...)
	out = append(out, sec(3, 4, 0, 1, 2, 3)...)
	out = append(out, sec(5, 1, 0, 1)...)
	exp := []byte{5}
	for i, n := range []string{"_initialize", "otpc_abi_version", "otpc_alloc", "otpc_handle"} {
		exp = append(append(exp, name(n)...), 0, byte(i))
	}
	exp = append(append(exp, name("memory")...), 2, 0)
	out = append(out, sec(7, exp...)...)
	out = append(out, sec(10, 4, 2, 0, 0x0b, 4, 0, 0x41, 2, 0x0b, 5, 0, 0x41, 0x80, 0x08, 0x0b, 4, 0, 0x42, 0, 0x0b)...)
	return out
}

// traffic drives generateReferenceNumber calls until stop, counting any
// answer that is not a 200 success.
type traffic struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	prefixes   map[string]int
	firstErr   string
	stop       chan struct{}
	wg         sync.WaitGroup
}

func startTraffic(e *env, t *sim.Target, workers int) *traffic {
	tr := &traffic{stop: make(chan struct{}), prefixes: map[string]int{}}
	m := e.merchant(t)
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
				req := &otpc.GenerateReferenceNumberRequest{
					RequestHeader:          e.client.Header(t),
					GooglePaymentToken:     otpc.GooglePaymentToken{IssuerID: otpc.IssuerID{Value: m.DemoIssuer}, Token: m.DemoToken},
					TransactionDescription: "Google - Test",
					Amount:                 otpc.Amount{AmountMicros: 1_000_000_000, CurrencyCode: "JPY"},
				}
				var resp otpc.GenerateReferenceNumberResponse
				res, err := e.client.Call(context.Background(), t, otpc.MethodGenerateReferenceNumber, req, &resp)
				if err != nil || res.Status != http.StatusOK || resp.Result.Success == nil {
					tr.failed.Add(1)
					tr.mu.Lock()
					if tr.firstErr == "" {
						tr.firstErr = fmt.Sprintf("err %v result %+v", err, res)
					}
					tr.mu.Unlock()
					continue
				}
				tr.ok.Add(1)
				p := printable(resp.Result.Success.DisplayableReferenceNumber)
				tr.mu.Lock()
				tr.prefixes[p[:min(2, len(p))]]++
				tr.mu.Unlock()
			}
		}()
	}
	return tr
}

func (tr *traffic) halt() {
	close(tr.stop)
	tr.wg.Wait()
}

// waitOK waits until n more requests succeeded, so each step runs under load.
func (tr *traffic) waitOK(tb testing.TB, n int64) {
	tb.Helper()
	target := tr.ok.Load() + n
	deadline := time.Now().Add(30 * time.Second)
	for tr.ok.Load() < target {
		if time.Now().After(deadline) {
			tb.Fatalf("traffic stalled: ok %d failed %d (%s)", tr.ok.Load(), tr.failed.Load(), tr.firstErr)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAdminPluginLifecycle(t *testing.T) {
	wasm := konbini(t).Wasm
	a := newAdminEnv(t, admin.Config{MaxPluginBytes: len(wasm) + 1024})
	ctx := context.Background()
	op := a.client(a.operator)
	path := admin.MerchantPath("demo-pgp", "plugins")
	versions := func() []admin.PluginVersion { return a.pluginVersions(t, "demo-pgp") }
	before := versions()
	if len(before) != 1 || !before[0].Active {
		t.Fatalf("provisioned versions: %+v", before)
	}
	badConfig := bytes.Replace(konbiniConfig, []byte(`"expiry": "72h"`), []byte(`"expiry": "soon"`), 1)
	if bytes.Equal(badConfig, konbiniConfig) {
		t.Fatal("test config edit did not apply")
	}
	broken := []struct {
		name   string
		up     admin.PluginUpload
		status int
		msg    string
	}{
		{"not wasm", admin.PluginUpload{Version: "bad1", Wasm: []byte("#!/bin/sh\necho hi\n")}, 422, "wasm"},
		{"wrong ABI", admin.PluginUpload{Version: "bad2", Wasm: abiV2()}, 422, "ABI version 2"},
		{"forbidden import", admin.PluginUpload{Version: "bad3", Wasm: runtimetest.Build(t, "../../testdata/plugins/badimports")}, 422, "import"},
		{"over size", admin.PluginUpload{Version: "bad4", Wasm: append(slices.Clone(wasm), make([]byte, 2048)...)}, 413, "limit"},
		{"wrong sha256", admin.PluginUpload{Version: "bad5", Wasm: wasm, SHA256: strings.Repeat("ab", 32)}, 422, "sha256"},
		{"bad configuration", admin.PluginUpload{Version: "bad6", Wasm: wasm, Config: badConfig}, 422, "expiry"},
		{"immutable version", admin.PluginUpload{Version: "konbini-test", Wasm: abiV2()}, 409, "immutable"},
		{"same module, another configuration", admin.PluginUpload{Version: "konbini-test", Wasm: wasm,
			Config: bytes.Replace(konbiniConfig, []byte(`"prefix": "81"`), []byte(`"prefix": "83"`), 1)}, 409, "another configuration"},
	}
	for _, tc := range broken {
		t.Run(tc.name, func(t *testing.T) {
			err := op.Do(ctx, http.MethodPost, path, tc.up, nil)
			var ae *admin.APIError
			if !errors.As(err, &ae) || ae.Status != tc.status || !strings.Contains(ae.Msg, tc.msg) {
				t.Fatalf("got %v, want status %d mentioning %q", err, tc.status, tc.msg)
			}
			if tc.status == 422 && ae.Hint == "" {
				t.Fatal("refusal without a next step")
			}
			if got := versions(); len(got) != 1 || got[0].Version != "konbini-test" || !got[0].Active {
				t.Fatalf("a refused upload changed the versions: %+v", got)
			}
		})
	}

	// The same module and configuration again is a no-op (whitespace of
	// the JSON aside), not a conflict.
	var indented bytes.Buffer
	if err := json.Indent(&indented, konbiniConfig, "", "    "); err != nil {
		t.Fatal(err)
	}
	if err := op.Do(ctx, http.MethodPost, path, admin.PluginUpload{Version: "konbini-test", Wasm: wasm, Config: indented.Bytes()}, nil); err != nil {
		t.Fatalf("re-upload of the same version: %v", err)
	}

	tr := startTraffic(a.env, a.pgp, 3)
	tr.waitOK(t, 20)
	// v2 prints codes with prefix 82 instead of 81, so we see which
	// version answered.
	cfg2 := bytes.Replace(konbiniConfig, []byte(`"prefix": "81"`), []byte(`"prefix": "82"`), 1)
	var pv admin.PluginVersion
	if err := op.Do(ctx, http.MethodPost, path, admin.PluginUpload{Version: "v2", Wasm: wasm, SHA256: before[0].SHA256, Config: cfg2, Activate: true}, &pv); err != nil {
		t.Fatal(err)
	}
	if !pv.Active || !pv.Loaded {
		t.Fatalf("uploaded version: %+v", pv)
	}
	tr.waitOK(t, 30)
	tr.mu.Lock()
	n82 := tr.prefixes["82"]
	tr.mu.Unlock()
	if n82 == 0 {
		t.Fatalf("no code from v2 after activation: %v", tr.prefixes)
	}
	if err := op.Do(ctx, http.MethodPost, path+"/rollback", nil, &pv); err != nil {
		t.Fatal(err)
	}
	if pv.Version != "konbini-test" || !pv.Active {
		t.Fatalf("rollback: %+v", pv)
	}
	tr.mu.Lock()
	n81 := tr.prefixes["81"]
	tr.mu.Unlock()
	tr.waitOK(t, 30)
	tr.halt()
	if f := tr.failed.Load(); f != 0 {
		t.Fatalf("%d of %d requests failed during activation and rollback: %s", f, f+tr.ok.Load(), tr.firstErr)
	}
	if tr.prefixes["81"] <= n81 {
		t.Fatalf("no code from the rolled-back version: %v", tr.prefixes)
	}
	t.Logf("traffic: %d ok, 0 failed; codes by prefix %v", tr.ok.Load(), tr.prefixes)

	vs := versions()
	if len(vs) != 2 || vs[1].Version != "v2" || vs[1].Active || !vs[0].Active {
		t.Fatalf("versions after rollback: %+v", vs)
	}
	// The pipeline calls plugins through the gateway's plugin-call service,
	// so the traffic above is counted under the version that served it.
	st1, ok1 := a.calls.Stats("demo-pgp", "konbini-test")
	st2, ok2 := a.calls.Stats("demo-pgp", "v2")
	if !ok1 || !ok2 || st1.Calls == 0 || st2.Calls == 0 || st1.Errors+st2.Errors != 0 || st1.P99Ms <= 0 {
		t.Fatalf("per-version stats: %+v %v, %+v %v", st1, ok1, st2, ok2)
	}
	if st1.Calls+st2.Calls < tr.ok.Load() {
		t.Fatalf("%d plugin calls counted for %d answered requests", st1.Calls+st2.Calls, tr.ok.Load())
	}
	if err := op.Do(ctx, http.MethodGet, path, nil, &vs); err != nil || vs[0].Stats == nil || vs[0].Stats.Calls != st1.Calls {
		t.Fatalf("stats in the listing: %v %+v, want %+v", err, vs[0].Stats, st1)
	}

	var audit []admin.AuditEntry
	if err := op.Do(ctx, http.MethodGet, "/v1/merchants/demo-pgp/events", nil, &audit); err != nil {
		t.Fatal(err)
	}
	var acts []string
	refused := map[string]string{}
	for _, e := range audit {
		acts = append(acts, e.Action)
		var rec map[string]any
		if err := json.Unmarshal(e.After, &rec); err != nil {
			t.Fatalf("audit %s payload %s: %v", e.Action, e.After, err)
		}
		if _, ok := rec["version"]; !ok {
			t.Errorf("audit %s payload %s: no camelCase version field", e.Action, e.After)
		}
		if e.Action == "plugin.upload_refused" {
			refused[rec["version"].(string)], _ = rec["reason"].(string)
		}
	}
	// Every refused upload is audited with its reason; the accepted no-op
	// re-upload is audited like any upload.
	var want []string
	for range broken {
		want = append(want, "plugin.upload_refused")
	}
	want = append(want, "plugin.upload", "plugin.upload", "plugin.activate", "plugin.rollback")
	if !slices.Equal(acts, want) {
		t.Fatalf("audited %v, want %v", acts, want)
	}
	for _, tc := range broken {
		if r := refused[tc.up.Version]; tc.up.Version != "konbini-test" && !strings.Contains(r, tc.msg) {
			t.Errorf("refused upload %s audited with reason %q, want it to mention %q", tc.up.Version, r, tc.msg)
		}
	}

	var metrics []byte
	if err := op.Do(ctx, http.MethodGet, "/metrics", nil, &metrics); err != nil {
		t.Fatal(err)
	}
	for _, re := range []string{
		`otpcgate_protocol_requests_total\{outcome="ok"\} [1-9]`,
		`otpcgate_key_uses_total\{key="[0-9A-F]+",use="decrypt"\} [1-9]`,
		`otpcgate_key_expiry_seconds\{`,
		`otpcgate_keys_expiring\{within="30d"\} 0`,
		`otpcgate_outbox_depth `,
		`otpcgate_sqlite_transactions_total [1-9]`,
		fmt.Sprintf(`otpcgate_plugin_calls_total\{plugin="demo-pgp",result="ok",version="konbini-test"\} %d\n`, st1.Calls),
		`otpcgate_plugin_outcomes_total\{merchant="demo-pgp",op="generate",outcome="ok"\} [1-9]`,
		`otpcgate_plugin_call_duration_seconds_bucket\{`,
	} {
		if !regexp.MustCompile(re).Match(metrics) {
			t.Errorf("/metrics lacks %s", re)
		}
	}
}

func TestAdminOpenAPIMatchesRoutes(t *testing.T) {
	a := newAdminEnv(t, admin.Config{})
	var served []byte
	if err := a.client("").Do(context.Background(), http.MethodGet, "/openapi.json", nil, &served); err != nil {
		t.Fatal(err)
	}
	docs, err := os.ReadFile("../../docs/admin-openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(served, docs) {
		t.Fatal("docs/admin-openapi.json differs from the served description; copy host/admin/openapi.json")
	}
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(served, &doc); err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for p, ops := range doc.Paths {
		for m := range ops {
			if m != "parameters" {
				documented[strings.ToUpper(m)+" "+p] = true
			}
		}
	}
	param := regexp.MustCompile(`:([a-z]+)`)
	for _, r := range a.srv.Routes() {
		k := r.Method + " " + param.ReplaceAllString(r.Path, "{$1}")
		if !documented[k] {
			t.Errorf("route %s is not in the OpenAPI document", k)
		}
		delete(documented, k)
	}
	for k := range documented {
		t.Errorf("documented %s is not served", k)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi version %q", doc.OpenAPI)
	}
}

func TestAdminMerchants(t *testing.T) {
	a := newAdminEnv(t, admin.Config{})
	ctx := context.Background()
	op := a.client(a.operator)
	var m admin.Merchant
	spec := admin.MerchantSpec{ID: "acme", Name: "ACME", BasePath: "/acme", Envelope: "pgp", PIAIDs: []string{"ACME_JPY"}}
	if err := op.Do(ctx, http.MethodPost, "/v1/merchants", spec, &m); err != nil {
		t.Fatal(err)
	}
	if m.ID != "acme" || m.Status != "active" || m.KeysetID == "" || m.Environment != "sandbox" || m.BasePath != "/acme" ||
		!slices.Equal(m.PIAIDs, []string{"ACME_JPY"}) {
		t.Fatalf("created %+v", m)
	}
	for _, tc := range []struct {
		name string
		spec admin.MerchantSpec
		want int
	}{
		{"duplicate id", spec, http.StatusConflict},
		{"PIAID of another merchant", admin.MerchantSpec{ID: "x1", BasePath: "/x1", Envelope: "pgp", PIAIDs: []string{"DEMO_PGP_JPY"}}, http.StatusConflict},
		{"base path of another merchant", admin.MerchantSpec{ID: "x2", BasePath: "/demo-jose", Envelope: "jose", PIAIDs: []string{"X2"}}, http.StatusConflict},
		{"unknown envelope", admin.MerchantSpec{ID: "x3", BasePath: "/x3", Envelope: "xml", PIAIDs: []string{"X3"}}, http.StatusBadRequest},
		{"no PIAID", admin.MerchantSpec{ID: "x4", BasePath: "/x4", Envelope: "pgp"}, http.StatusBadRequest},
		{"JWK keyset for PGP", admin.MerchantSpec{ID: "x5", BasePath: "/x5", Envelope: "pgp", PIAIDs: []string{"X5"},
			KeysetID: a.merchant(a.jose).KeysetID}, http.StatusBadRequest},
		{"http Google endpoint", admin.MerchantSpec{ID: "x6", BasePath: "/x6", Envelope: "pgp", PIAIDs: []string{"X6"},
			GoogleEndpoint: "http://google.example/gsp"}, http.StatusBadRequest},
		{"file Google endpoint", admin.MerchantSpec{ID: "x7", BasePath: "/x7", Envelope: "pgp", PIAIDs: []string{"X7"},
			GoogleEndpoint: "file:///etc/passwd"}, http.StatusBadRequest},
		{"Google endpoint with credentials", admin.MerchantSpec{ID: "x8", BasePath: "/x8", Envelope: "pgp", PIAIDs: []string{"X8"},
			GoogleEndpoint: "https://user:pw@google.example/gsp"}, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := status(op.Do(ctx, http.MethodPost, "/v1/merchants", tc.spec, nil)); got != tc.want {
				t.Fatalf("status %d, want %d", got, tc.want)
			}
		})
	}
	var ms []admin.Merchant
	if err := op.Do(ctx, http.MethodGet, "/v1/merchants", nil, &ms); err != nil || len(ms) != 3 {
		t.Fatalf("list: %v %d (refused creations must leave nothing behind)", err, len(ms))
	}
	for _, bad := range []string{"http://google.example/gsp", "file:///tmp/x", "gopher://google.example"} {
		if got := status(op.Do(ctx, http.MethodPatch, "/v1/merchants/acme", admin.MerchantUpdate{GoogleEndpoint: &bad}, nil)); got != http.StatusBadRequest {
			t.Fatalf("update to Google endpoint %s: status %d, want 400", bad, got)
		}
	}
	endpoint := "https://google.example/sandbox"
	if err := op.Do(ctx, http.MethodPatch, "/v1/merchants/acme",
		admin.MerchantUpdate{GoogleEndpoint: &endpoint, AddPIAIDs: []string{"ACME_USD"}}, &m); err != nil {
		t.Fatal(err)
	}
	if m.GoogleEndpoint != endpoint || !slices.Equal(m.PIAIDs, []string{"ACME_JPY", "ACME_USD"}) {
		t.Fatalf("updated %+v", m)
	}

	// Disabling takes effect for Google at once; enabling restores it.
	call := func() int {
		t.Helper()
		pm := a.merchant(a.pgp)
		req := &otpc.GenerateReferenceNumberRequest{RequestHeader: a.env.client.Header(a.pgp),
			GooglePaymentToken:     otpc.GooglePaymentToken{IssuerID: otpc.IssuerID{Value: pm.DemoIssuer}, Token: pm.DemoToken},
			TransactionDescription: "Google - Test", Amount: otpc.Amount{AmountMicros: 1_000_000_000, CurrencyCode: "JPY"}}
		var resp otpc.GenerateReferenceNumberResponse
		res, err := a.env.client.Call(ctx, a.pgp, otpc.MethodGenerateReferenceNumber, req, &resp)
		if res == nil {
			t.Fatal(err)
		}
		return res.Status
	}
	if got := call(); got != http.StatusOK {
		t.Fatalf("before disabling: %d", got)
	}
	if err := op.Do(ctx, http.MethodPost, "/v1/merchants/demo-pgp/disable", nil, &m); err != nil || m.Status != "disabled" {
		t.Fatalf("disable: %v %+v", err, m)
	}
	if got := call(); got != http.StatusForbidden {
		t.Fatalf("disabled merchant answered %d, want 403", got)
	}
	if err := op.Do(ctx, http.MethodPost, "/v1/merchants/demo-pgp/enable", nil, &m); err != nil || m.Status != "active" {
		t.Fatalf("enable: %v %+v", err, m)
	}
	if got := call(); got != http.StatusOK {
		t.Fatalf("after enabling: %d", got)
	}
	var audit []admin.AuditEntry
	if err := op.Do(ctx, http.MethodGet, "/v1/audit", nil, &audit); err != nil {
		t.Fatal(err)
	}
	var acts []string
	for _, e := range audit {
		acts = append(acts, e.Action+" "+e.Subject)
		if e.Action == "merchant.update" && (bytes.Contains(e.Before, []byte(endpoint)) || !bytes.Contains(e.After, []byte(endpoint))) {
			t.Errorf("update audit lacks before/after: %s -> %s", e.Before, e.After)
		}
	}
	want := []string{"merchant.create merchant/acme", "merchant.update merchant/acme",
		"merchant.disable merchant/demo-pgp", "merchant.enable merchant/demo-pgp"}
	if !slices.Equal(acts, want) {
		t.Fatalf("audit %v, want %v", acts, want)
	}
}

// TestAdminKeyVerify: a merchant's only key in service cannot be verified
// by a round trip (nothing can play Google): 409 with the next step, never
// the "do not promote" of a failed trip; a newly generated key is verified
// against it in both directions, while still pending.
func TestAdminKeyVerify(t *testing.T) {
	a := newAdminEnv(t, admin.Config{})
	ctx := context.Background()
	op := a.client(a.operator)
	for _, id := range []string{"demo-pgp", "demo-jose"} {
		var keys []admin.KeyView
		if err := op.Do(ctx, http.MethodGet, "/v1/merchants/"+id+"/keys", nil, &keys); err != nil {
			t.Fatal(err)
		}
		var first string
		for _, k := range keys {
			if k.Owner == "self" && k.State == "primary" {
				first = k.ID
			}
		}
		err := op.Do(ctx, http.MethodPost, "/v1/merchants/"+id+"/keys/"+first+"/verify", nil, nil)
		var ae *admin.APIError
		if !errors.As(err, &ae) || ae.Status != http.StatusConflict || strings.Contains(ae.Hint, "do not promote") ||
			!strings.Contains(ae.Hint, "promote it") {
			t.Fatalf("%s: verifying the only key: %v", id, err)
		}
		var k admin.KeyView
		if err := op.Do(ctx, http.MethodPost, "/v1/merchants/"+id+"/keys", admin.GenerateRequest{Name: "next"}, &k); err != nil {
			t.Fatal(err)
		}
		var res admin.VerifyResult
		if err := op.Do(ctx, http.MethodPost, "/v1/merchants/"+id+"/keys/"+k.ID+"/verify", nil, &res); err != nil ||
			!res.Inbound || !res.Outbound || res.With != first {
			t.Fatalf("%s: verifying a new key: %+v %v", id, res, err)
		}
	}
}

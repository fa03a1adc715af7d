package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/host/devenv"
	"github.com/otpcgate/otpcgate/host/envelope"
	"github.com/otpcgate/otpcgate/host/google"
	"github.com/otpcgate/otpcgate/host/ledger"
	"github.com/otpcgate/otpcgate/host/runtime/runtimetest"
	"github.com/otpcgate/otpcgate/host/server"
	"github.com/otpcgate/otpcgate/host/sim"
	"github.com/otpcgate/otpcgate/host/sim/googlesim"
	"github.com/otpcgate/otpcgate/internal/db"
	"github.com/otpcgate/otpcgate/internal/pgtest"
	"github.com/otpcgate/otpcgate/keystore"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// konbiniConfig is the demo plugin configuration the tests run with.
var konbiniConfig = devenv.KonbiniConfig

// konbini builds the example plugin once per test binary.
func konbini(tb testing.TB) devenv.Plugin {
	tb.Helper()
	wasm := runtimetest.Build(tb, "../../plugins/konbini")
	return devenv.Plugin{Version: "konbini-test", Wasm: wasm, Config: konbiniConfig}
}

// provisioned caches one provisioned data directory per test binary: key
// generation and plugin compilation dominate setup, so tests copy it.
var provisioned struct {
	once sync.Once
	dir  string
	err  error
}

// env is one running gateway with Google's view of it.
type env struct {
	t    testing.TB
	dir  string
	info *devenv.Info
	// database is the SQLite file in dir, or on the suite's PostgreSQL run
	// a fresh database holding a copy of it (see useCopy).
	database string
	g        *Gateway
	// sim is the simulated Google the gateway notifies, mounted at
	// devenv.SimGooglePath as otpcgate dev does.
	sim    *googlesim.Google
	ln     net.Listener
	addr   string
	cancel context.CancelFunc
	done   chan error
	client *sim.Client
	pgp    *sim.Target
	jose   *sim.Target
}

// templateDir provisions a dev installation once; each test gets a copy so
// tests never share a database.
func templateDir(tb testing.TB) string {
	tb.Helper()
	provisioned.once.Do(func() {
		dir, err := os.MkdirTemp("", "otpcgate-gateway-test-")
		if err != nil {
			provisioned.err = err
			return
		}
		provisioned.dir = dir
		_, provisioned.err = devenv.Provision(context.Background(), dir, "127.0.0.1:0", konbini(tb), nil)
	})
	if provisioned.err != nil {
		tb.Fatal(provisioned.err)
	}
	return provisioned.dir
}

func TestMain(m *testing.M) {
	pgtest.Main(&cleanupTemplate{m})
}

// TestPostgres runs every test of this package again with each gateway on
// PostgreSQL instead of SQLite.
func TestPostgres(t *testing.T) { pgtest.RunOnPostgres(t) }

type cleanupTemplate struct{ m *testing.M }

func (c *cleanupTemplate) Run() int {
	code := c.m.Run()
	if provisioned.dir != "" {
		os.RemoveAll(provisioned.dir)
	}
	return code
}

// useCopy points e at its copy of the template: the SQLite file, or on
// PostgreSQL a new database the file is copied into as otpcgate db
// migrate does.
func (e *env) useCopy() { e.useCopyOn(pgtest.OnPostgres()) }

// useCopyOn is useCopy on PostgreSQL when pg is true, whatever the run.
func (e *env) useCopyOn(pg bool) {
	file := filepath.Join(e.dir, "otpcgate.db")
	e.database = file
	if !pg {
		return
	}
	ctx := context.Background()
	url := pgtest.NewDatabase(e.t)
	src, err := db.Open(ctx, file)
	if err != nil {
		e.t.Fatal(err)
	}
	defer src.Close()
	dst, err := db.Open(ctx, url)
	if err != nil {
		e.t.Fatal(err)
	}
	defer dst.Close()
	if _, err := CopyToPostgres(ctx, src, dst); err != nil {
		e.t.Fatal(err)
	}
	e.database = url
}

// copyDir copies the template (SQLite file after a checkpoint, keys, cert).
func copyDir(tb testing.TB, src, dst string) {
	tb.Helper()
	entries, err := os.ReadDir(src)
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			tb.Fatal(err)
		}
	}
}

// newEnv starts a gateway on a copy of the provisioned installation.
func newEnv(tb testing.TB, mutate ...func(*Options)) *env {
	tb.Helper()
	return newEnvOn(tb, pgtest.OnPostgres(), mutate...)
}

// newEnvOn is newEnv on PostgreSQL when pg is true, on SQLite otherwise.
func newEnvOn(tb testing.TB, pg bool, mutate ...func(*Options)) *env {
	tb.Helper()
	dir := tb.TempDir()
	copyDir(tb, templateDir(tb), dir)
	info, err := devenv.Read(dir)
	if err != nil {
		tb.Fatal(err)
	}
	e := &env{t: tb, dir: dir, info: info}
	e.useCopyOn(pg)
	e.start(mutate...)
	tb.Cleanup(e.stop)
	return e
}

func (e *env) options() Options {
	kek, err := keystore.ReadKEKFile(filepath.Join(e.dir, "kek"))
	if err != nil {
		e.t.Fatal(err)
	}
	tr, err := e.info.GoogleTransport()
	if err != nil {
		e.t.Fatal(err)
	}
	return Options{
		// One compile cache for the test binary: each env copies the
		// template's KEK, so the entries authenticate for all of them and
		// the plugin compiles once instead of once per env.
		PluginCacheDir:  filepath.Join(templateDir(e.t), "plugin-cache"),
		Extra:           e.mountSimGoogle,
		GoogleTransport: tr,
		Worker:          google.WorkerConfig{PollInterval: 50 * time.Millisecond, BackoffBase: 50 * time.Millisecond, BackoffCap: time.Second},
		Database:        e.database,
		KEK:             kek,
		Server: server.Config{
			CertFile: filepath.Join(e.dir, "tls-cert.pem"),
			KeyFile:  filepath.Join(e.dir, "tls-key.pem"),
		},
		Limiter: server.LimiterConfig{MaxQueue: 1024, MaxWait: 10 * time.Second},
		Logger:  slog.New(slog.DiscardHandler),
	}
}

// mountSimGoogle is Options.Extra: the simulated Google of the dev
// merchants, as otpcgate dev mounts it.
func (e *env) mountSimGoogle(g *Gateway) (map[string]http.Handler, error) {
	accounts := make([]googlesim.DevAccount, len(e.info.Merchants))
	for i, m := range e.info.Merchants {
		accounts[i] = googlesim.DevAccount{PIAID: m.PIAID, Envelope: m.Envelope, KeysetID: m.SimKeysetID}
	}
	google, err := googlesim.NewDev(googlesim.Config{Logger: slog.New(slog.DiscardHandler)}, g.Keys, accounts)
	if err != nil {
		return nil, err
	}
	e.sim = google
	return map[string]http.Handler{devenv.SimGooglePath: googlesim.DevHandler(devenv.SimGooglePath, google)}, nil
}

// start opens the gateway on the env's directory and serves it.
func (e *env) start(mutate ...func(*Options)) {
	e.t.Helper()
	opts := e.options()
	for _, f := range mutate {
		f(&opts)
	}
	g, err := Open(context.Background(), opts)
	if err != nil {
		e.t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		g.Close()
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.g, e.ln, e.addr, e.cancel, e.done = g, ln, ln.Addr().String(), cancel, make(chan error, 1)
	// The template was provisioned before the port was known: point the
	// merchants' Google endpoint at this listener's simulated Google.
	ins, err := g.Directory.Integrations(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, in := range ins {
		in.GoogleEndpoint = "https://" + e.addr + devenv.SimGooglePath
		if err := g.Directory.PutIntegration(ctx, in); err != nil {
			e.t.Fatal(err)
		}
	}
	if err := g.Reload(ctx); err != nil {
		e.t.Fatal(err)
	}
	go func() { e.done <- g.Serve(ctx, ln) }()

	pool := x509.NewCertPool()
	pem, err := os.ReadFile(opts.Server.CertFile)
	if err != nil {
		e.t.Fatal(err)
	}
	pool.AppendCertsFromPEM(pem)
	e.client = &sim.Client{HTTP: &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12},
			MaxIdleConnsPerHost: 64,
		},
	}}
	e.pgp = e.target("demo-pgp")
	e.jose = e.target("demo-jose")
}

func (e *env) target(id string) *sim.Target {
	for _, m := range e.info.Merchants {
		if m.ID != id {
			continue
		}
		codec, err := envelope.New(m.Envelope, envelope.Config{})
		if err != nil {
			e.t.Fatal(err)
		}
		simKeyset := m.SimKeysetID
		return &sim.Target{
			BaseURL: "https://" + e.addr + m.BasePath,
			PIAID:   m.PIAID,
			Codec:   codec,
			Keyset: func(ctx context.Context) (*keystore.Keyset, error) {
				return e.g.Keys.Keyset(ctx, simKeyset)
			},
		}
	}
	e.t.Fatalf("no dev merchant %s", id)
	return nil
}

// stop shuts the gateway down gracefully.
func (e *env) stop() {
	if e.g == nil {
		return
	}
	e.cancel()
	if err := <-e.done; err != nil {
		e.t.Errorf("serve: %v", err)
	}
	if err := e.g.Close(); err != nil {
		e.t.Errorf("close: %v", err)
	}
	e.g = nil
}

// restart stops and reopens the gateway on the same files.
func (e *env) restart() {
	e.t.Helper()
	e.stop()
	e.start()
}

func (e *env) merchant(t *sim.Target) devenv.Merchant {
	for _, m := range e.info.Merchants {
		if m.PIAID == t.PIAID {
			return m
		}
	}
	e.t.Fatalf("no merchant for %s", t.PIAID)
	return devenv.Merchant{}
}

// generate creates a code for the merchant's demo token.
func (e *env) generate(t *sim.Target, micros int64) (otpc.RequestHeader, *otpc.GenerateReferenceNumberResponse) {
	e.t.Helper()
	m := e.merchant(t)
	req := &otpc.GenerateReferenceNumberRequest{
		RequestHeader:          e.client.Header(t),
		GooglePaymentToken:     otpc.GooglePaymentToken{IssuerID: otpc.IssuerID{Value: m.DemoIssuer}, Token: m.DemoToken},
		TransactionDescription: "Google - Test",
		Amount:                 otpc.Amount{AmountMicros: micros, CurrencyCode: "JPY"},
	}
	var resp otpc.GenerateReferenceNumberResponse
	res, err := e.client.Call(context.Background(), t, otpc.MethodGenerateReferenceNumber, req, &resp)
	if err != nil {
		e.t.Fatal(err)
	}
	if res.Status != http.StatusOK || resp.Result.Success == nil {
		e.t.Fatalf("generate: status %d member %q body %s", res.Status, res.Member(), res.Plaintext)
	}
	return req.RequestHeader, &resp
}

// pay marks a code paid as the merchant API will (issue #5): through the
// ledger's own state machine.
func (e *env) pay(t *sim.Target, txID string, micros int64) {
	e.t.Helper()
	err := e.g.Ledger.Apply(context.Background(), func(tx *ledger.Tx) error {
		_, err := tx.MarkPaid(t.PIAID, txID, ledger.Payment{IntegratorTransactionID: "pay-" + txID, PaidAt: time.Now(), PaidMicros: micros})
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

// printable returns the printable string of a displayable reference number.
func printable(d otpc.DisplayableReferenceNumber) string {
	switch {
	case d.BarcodeWithPrintableString != nil:
		return d.BarcodeWithPrintableString.PrintableString
	case d.PrintableString != nil:
		return *d.PrintableString
	}
	return ""
}

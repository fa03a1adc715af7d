package weblogin_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/otpcgate/otpcgate/host/devenv"
	"github.com/otpcgate/otpcgate/host/envelope"
	"github.com/otpcgate/otpcgate/host/gateway"
	"github.com/otpcgate/otpcgate/host/runtime/runtimetest"
	"github.com/otpcgate/otpcgate/host/server"
	"github.com/otpcgate/otpcgate/host/sim"
	"github.com/otpcgate/otpcgate/host/weblogin"
	"github.com/otpcgate/otpcgate/keystore"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// Demo credentials of devenv.KonbiniConfig (test-only).
const (
	demoAccount  = "demo-account-1"
	demoPassword = "demo-password"
)

// provisioned is one dev installation per test binary (key generation and
// the konbini wasm build dominate setup); each env copies it.
var provisioned struct {
	once sync.Once
	dir  string
	err  error
}

func templateDir(tb testing.TB) string {
	tb.Helper()
	provisioned.once.Do(func() {
		dir, err := os.MkdirTemp("", "otpcgate-weblogin-test-")
		if err != nil {
			provisioned.err = err
			return
		}
		provisioned.dir = dir
		wasm := runtimetest.Build(tb, "../../plugins/konbini")
		_, provisioned.err = devenv.Provision(context.Background(), dir, "127.0.0.1:0",
			devenv.Plugin{Version: "konbini-test", Wasm: wasm, Config: devenv.KonbiniConfig}, nil)
	})
	if provisioned.err != nil {
		tb.Fatal(provisioned.err)
	}
	return provisioned.dir
}

func TestMain(m *testing.M) {
	code := m.Run()
	stopBrowser()
	stopBackend()
	if provisioned.dir != "" {
		os.RemoveAll(provisioned.dir)
	}
	os.Exit(code)
}

// backend is the one gateway per test binary: the Google-facing API on
// loopback TLS over a copy of the provisioned installation. Opening a
// gateway compiles the plugin, so tests share it; each test has its own
// requests, so their ledger rows never collide.
var backend struct {
	once   sync.Once
	err    error
	dir    string
	info   *devenv.Info
	g      *gateway.Gateway
	addr   string
	pair   tls.Certificate
	pool   *x509.CertPool
	logs   bytes.Buffer
	logMu  sync.Mutex
	logger *slog.Logger
	stop   func()
}

// startBackend opens and serves the shared gateway. Its logger (which
// the plugin runtime shares) writes JSON at debug level into backend.logs.
func startBackend(tb testing.TB) {
	tb.Helper()
	backend.once.Do(func() {
		dir, err := os.MkdirTemp("", "otpcgate-weblogin-gw-")
		if err != nil {
			backend.err = err
			return
		}
		backend.dir = dir
		backend.err = func() error {
			if err := copyFiles(templateDir(tb), dir); err != nil {
				return err
			}
			info, err := devenv.Read(dir)
			if err != nil {
				return err
			}
			backend.info = info
			backend.logger = slog.New(slog.NewJSONHandler(syncWriter{&backend.logMu, &backend.logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
			kek, err := keystore.ReadKEKFile(filepath.Join(dir, "kek"))
			if err != nil {
				return err
			}
			certFile, keyFile := filepath.Join(dir, "tls-cert.pem"), filepath.Join(dir, "tls-key.pem")
			g, err := gateway.Open(context.Background(), gateway.Options{
				Database: filepath.Join(dir, "otpcgate.db"), KEK: kek,
				Server:  server.Config{CertFile: certFile, KeyFile: keyFile},
				Limiter: server.LimiterConfig{MaxQueue: 256, MaxWait: 10 * time.Second},
				Logger:  backend.logger,
			})
			if err != nil {
				return err
			}
			backend.g = g
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				g.Close()
				return err
			}
			backend.addr = ln.Addr().String()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- g.Serve(ctx, ln) }()
			backend.stop = func() {
				cancel()
				<-done
				g.Close()
			}
			if backend.pair, err = tls.LoadX509KeyPair(certFile, keyFile); err != nil {
				return err
			}
			pemBytes, err := os.ReadFile(certFile)
			if err != nil {
				return err
			}
			backend.pool = x509.NewCertPool()
			backend.pool.AppendCertsFromPEM(pemBytes)
			return nil
		}()
	})
	if backend.err != nil {
		tb.Fatal(backend.err)
	}
}

func stopBackend() {
	if backend.stop != nil {
		backend.stop()
	}
	if backend.dir != "" {
		os.RemoveAll(backend.dir)
	}
}

// env is one test's view: the shared gateway, a weblogin.Service of its
// own configuration serving the login page through its Echo middleware on
// a second loopback TLS listener (same certificate), and a simulated
// Google with a callback endpoint per merchant.
type env struct {
	t        testing.TB
	info     *devenv.Info
	g        *gateway.Gateway
	svc      *weblogin.Service
	page     *httptest.Server
	pool     *x509.CertPool
	cert     *x509.Certificate
	google   *sim.Client
	targets  map[string]*sim.Target // by merchant id
	merchant map[string]*weblogin.Merchant
	cb       map[string]*sim.AuthCallback
}

// dir resolves base paths for the middleware, like the gateway's own.
type dir map[string]*weblogin.Merchant

func (d dir) LoginMerchant(_ context.Context, base string) (*weblogin.Merchant, error) {
	if m, ok := d[base]; ok {
		return m, nil
	}
	return nil, weblogin.ErrUnknownMerchant
}

// syncWriter serialises log writes from concurrent handlers.
type syncWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (s syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func newEnv(tb testing.TB, mutate func(*weblogin.Config)) *env {
	tb.Helper()
	return newEnvLockouts(tb, mutate, true)
}

// newEnvKeepLockouts is newEnv over the lockouts the ledger holds now: a
// restarted login page.
func newEnvKeepLockouts(tb testing.TB, mutate func(*weblogin.Config)) *env {
	tb.Helper()
	return newEnvLockouts(tb, mutate, false)
}

func newEnvLockouts(tb testing.TB, mutate func(*weblogin.Config), fresh bool) *env {
	tb.Helper()
	startBackend(tb)
	e := &env{t: tb, info: backend.info, g: backend.g, pool: backend.pool, cert: backend.pair.Leaf,
		targets: map[string]*sim.Target{}, merchant: map[string]*weblogin.Merchant{}, cb: map[string]*sim.AuthCallback{}}
	e.google = &sim.Client{HTTP: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: e.pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}}}}
	cfg := weblogin.Config{Callbacks: map[string][]string{}, Logger: backend.logger}
	d := dir{}
	for _, m := range e.info.Merchants {
		codec, err := envelope.New(m.Envelope, envelope.Config{})
		if err != nil {
			tb.Fatal(err)
		}
		simKeyset, ourKeyset := m.SimKeysetID, m.KeysetID
		t := &sim.Target{BaseURL: "https://" + backend.addr + m.BasePath, PIAID: m.PIAID, Codec: codec,
			Keyset: func(ctx context.Context) (*keystore.Keyset, error) { return e.g.Keys.Keyset(ctx, simKeyset) }}
		e.targets[m.ID] = t
		cb := sim.NewAuthCallback(e.google, t)
		tb.Cleanup(cb.Close)
		e.cb[m.ID] = cb
		cfg.Callbacks[m.ID] = []string{cb.Server.URL + "/payments/"}
		wm := &weblogin.Merchant{ID: m.ID, Name: "Demo Konbini", Codec: codec,
			PIAIDs: []string{m.PIAID}, PluginID: m.ID,
			Keyset: func(ctx context.Context) (*keystore.Keyset, error) { return e.g.Keys.Keyset(ctx, ourKeyset) }}
		e.merchant[m.ID] = wm
		d[m.BasePath] = wm
	}
	if mutate != nil {
		mutate(&cfg)
	}
	var err error
	if e.svc, err = weblogin.New(cfg, e.g.Ledger, e.g.Calls); err != nil {
		tb.Fatal(err)
	}
	// Lockouts live in the shared backend's ledger: each test starts and
	// ends without any.
	clearLockouts := func() {
		if _, err := e.g.DB.Exec(`DELETE FROM login_failures`); err != nil {
			tb.Fatal(err)
		}
	}
	if fresh {
		clearLockouts()
	}
	tb.Cleanup(clearLockouts)
	ec := echo.New()
	ec.HideBanner, ec.HidePort = true, true
	ec.Use(e.svc.Middleware(d))
	ec.Any("/*", func(c echo.Context) error { return c.NoContent(http.StatusNotFound) })
	e.page = httptest.NewUnstartedServer(ec)
	e.page.TLS = &tls.Config{Certificates: []tls.Certificate{backend.pair}, MinVersion: tls.VersionTLS12}
	e.page.StartTLS()
	tb.Cleanup(e.page.Close)
	return e
}

// copyFiles copies the template's files (SQLite file, keys, certificate).
func copyFiles(src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, ent := range entries {
		if ent.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, ent.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, ent.Name()), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// pageURL is the login page of a merchant.
func (e *env) pageURL(id string) string {
	for _, m := range e.info.Merchants {
		if m.ID == id {
			return e.page.URL + m.BasePath + e.svc.Path()
		}
	}
	e.t.Fatalf("no merchant %s", id)
	return ""
}

// request seals a fresh authentication request for merchant id.
func (e *env) request(id string, opt sim.AuthOptions) *sim.AuthRequest {
	e.t.Helper()
	r, err := e.google.NewAuthRequest(context.Background(), e.targets[id], e.pageURL(id), e.cb[id].URL, opt)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// logText returns everything the gateway and every page logged so far.
func (e *env) logText() string {
	backend.logMu.Lock()
	defer backend.logMu.Unlock()
	return backend.logs.String()
}

// browser is a non-browser HTTP client for the page: cookie jar, no
// redirect following (tests inspect the 303).
type browser struct {
	t  testing.TB
	hc *http.Client
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: e.t, hc: &http.Client{
		Jar: jar, Timeout: 30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.pool, ServerName: "localhost"}},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}}
}

// response is a read response.
type response struct {
	*http.Response
	body string
}

func (b *browser) do(req *http.Request) *response {
	b.t.Helper()
	res, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return &response{res, string(body)}
}

func (b *browser) get(u string) *response {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

func (b *browser) post(u string, form url.Values) *response {
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var (
	hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
	actionRE = regexp.MustCompile(`<form method="post" action="([^"]*)">`)
	errorRE  = regexp.MustCompile(`<p class="error" id="error" role="alert">([^<]*)</p>`)
)

// form returns the page's form action (absolute) and hidden fields.
func (r *response) form(t testing.TB) (string, url.Values) {
	t.Helper()
	m := actionRE.FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("no form in page (status %d): %s", r.StatusCode, r.body)
	}
	action, err := r.Request.URL.Parse(html.UnescapeString(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	vals := url.Values{}
	for _, h := range hiddenRE.FindAllStringSubmatch(r.body, -1) {
		vals.Set(h[1], html.UnescapeString(h[2]))
	}
	return action.String(), vals
}

// errorText is the page's error message, or "".
func (r *response) errorText() string {
	m := errorRE.FindStringSubmatch(r.body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

// login opens the page and submits credentials; it returns the form
// response and the answer.
func (b *browser) login(pageURL, account, password string) (*response, *response) {
	b.t.Helper()
	page := b.get(pageURL)
	if page.StatusCode != http.StatusOK {
		b.t.Fatalf("GET page: %d %s", page.StatusCode, page.errorText())
	}
	action, vals := page.form(b.t)
	vals.Set("account", account)
	vals.Set("password", password)
	vals.Set("action", "login")
	return page, b.post(action, vals)
}

// callback parses a 303 to the callback and opens its response.
func (e *env) callback(id string, res *response, want *otpc.AuthenticationRequest) (int, *otpc.AuthenticationResponse) {
	e.t.Helper()
	if res.StatusCode != http.StatusSeeOther {
		e.t.Fatalf("status %d, want 303; error %q", res.StatusCode, res.errorText())
	}
	loc, err := url.Parse(res.Header.Get("Location"))
	if err != nil {
		e.t.Fatal(err)
	}
	if !strings.HasPrefix(loc.String(), e.cb[id].URL+"?") {
		e.t.Fatalf("redirect to %s, want the callback %s", loc, e.cb[id].URL)
	}
	q := loc.Query()
	resp, err := e.google.OpenAuthResponse(context.Background(), e.targets[id], q.Get(sim.ParamResult),
		q.Get(sim.ParamAuthenticationResponse), want)
	if err != nil {
		e.t.Fatal(err)
	}
	code := 0
	switch q.Get(sim.ParamResult) {
	case "100":
		code = 100
	case "201":
		code = 201
	case "202":
		code = 202
	}
	return code, resp
}

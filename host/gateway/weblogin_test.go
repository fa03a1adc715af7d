package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/host/ledger"
	"github.com/otpcgate/otpcgate/host/sim"
	"github.com/otpcgate/otpcgate/host/weblogin"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// TestMountWebLogin serves the login page on the gateway's own listener
// through mountWebLogin and runs the association flow over it (the
// browser version of this flow is in host/weblogin). It mounts at a path
// of its own, so it holds whether or not Open mounts the default one.
func TestMountWebLogin(t *testing.T) {
	ctx := context.Background()
	e := &env{t: t, dir: t.TempDir()}
	copyDir(t, templateDir(t), e.dir)
	var err error
	if e.info, err = ReadDevInfo(e.dir); err != nil {
		t.Fatal(err)
	}
	opts := e.options()
	g, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := os.ReadFile(opts.Server.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)
	transport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}}
	google := &sim.Client{HTTP: &http.Client{Timeout: 30 * time.Second, Transport: transport}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.g, e.ln, e.addr, e.client = g, ln, ln.Addr().String(), google
	pgp := e.target("demo-pgp")
	// The simulated Google's callback, allowed for every merchant.
	cb := sim.NewAuthCallback(google, pgp)
	defer cb.Close()
	if err := g.mountWebLogin(weblogin.Config{Path: "/link-account",
		Callbacks: map[string][]string{weblogin.AllMerchants: {cb.Server.URL + "/payments/"}}}); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	e.cancel, e.done = cancel, make(chan error, 1)
	go func() { e.done <- g.Serve(sctx, ln) }()
	t.Cleanup(e.stop)

	page := "https://" + e.addr + "/demo-pgp/link-account"
	req, err := google.NewAuthRequest(ctx, pgp, page, cb.URL, sim.AuthOptions{})
	if err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 30 * time.Second, Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, body := get(t, hc, req.URL)
	if res.StatusCode != http.StatusOK || res.Header.Get("X-Request-Id") == "" {
		t.Fatalf("page: %d (request id %q)", res.StatusCode, res.Header.Get("X-Request-Id"))
	}
	vals := url.Values{}
	for _, m := range regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`).FindAllStringSubmatch(body, -1) {
		vals.Set(m[1], html.UnescapeString(m[2]))
	}
	vals.Set("account", "demo-account-1")
	vals.Set("password", "demo-password")
	vals.Set("action", "login")
	res, err = hc.PostForm(page, vals)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	loc, err := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusSeeOther || err != nil {
		t.Fatalf("submit: %d %v", res.StatusCode, err)
	}
	resp, err := google.OpenAuthResponse(ctx, pgp, loc.Query().Get("gspResult"), loc.Query().Get("gspAuthenticationResponse"), &req.Request)
	if err != nil || resp.AuthenticationResult.Success == nil {
		t.Fatalf("response %+v: %v", resp, err)
	}
	assoc, r, err := google.Associate(ctx, pgp, req.Request.RequestID)
	if err != nil || r.Status != http.StatusOK || assoc.Response.Result.Success == nil {
		t.Fatalf("associateAccount: %v %d %s", err, r.Status, r.Plaintext)
	}
	gen, r, err := google.Generate(ctx, pgp, assoc, otpc.Amount{AmountMicros: 1000_000000, CurrencyCode: "JPY"})
	if err != nil || r.Status != http.StatusOK || gen.Result.Success == nil {
		t.Fatalf("generateReferenceNumber: %v %d %s", err, r.Status, r.Plaintext)
	}

	// Unknown base paths fall through to the API dispatcher's 404.
	if res, _ := get(t, hc, "https://"+e.addr+"/nobody/link-account"); res.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown merchant: %d", res.StatusCode)
	}
	// A merchant disabled and reloaded shows the disabled page.
	if err := g.Ledger.Apply(ctx, func(tx *ledger.Tx) error {
		return tx.SetMerchantStatus("demo-pgp", ledger.MerchantDisabled)
	}); err != nil {
		t.Fatal(err)
	}
	if err := g.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	req2, err := google.NewAuthRequest(ctx, pgp, page, cb.URL, sim.AuthOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res, body := get(t, hc, req2.URL); res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, weblogin.MsgDisabled) {
		t.Fatalf("disabled merchant: %d", res.StatusCode)
	}
}

func get(t *testing.T, hc *http.Client, u string) (*http.Response, string) {
	t.Helper()
	res, err := hc.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}

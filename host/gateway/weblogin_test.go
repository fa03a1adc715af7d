package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/host/devenv"
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
	if e.info, err = devenv.Read(e.dir); err != nil {
		t.Fatal(err)
	}
	e.useCopy()
	opts := e.options()
	g, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if e.done == nil { // failed before serving; e.stop closes otherwise
			g.Close()
		}
	})
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
	lr, err := google.Login(ctx, req, "demo-account-1", "demo-password", false)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := google.OpenLoginResult(ctx, pgp, req, lr)
	if err != nil || resp.AuthenticationResult.Success == nil {
		t.Fatalf("login %+v: %v", lr, err)
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
	hc := &http.Client{Timeout: 30 * time.Second, Transport: transport}
	if res, _ := get(t, hc, "https://"+e.addr+"/nobody/link-account"); res.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown merchant: %d", res.StatusCode)
	}
	if res, body := get(t, hc, page); res.StatusCode != http.StatusBadRequest || res.Header.Get("X-Request-Id") == "" ||
		!strings.Contains(body, weblogin.MsgIncomplete) {
		t.Fatalf("page without parameters: %d (request id %q)", res.StatusCode, res.Header.Get("X-Request-Id"))
	} else if !strings.Contains(body, "<h1>"+devenv.MerchantName+"</h1>") || strings.Contains(body, "(pgp)") {
		// Shoppers see the store's name, never the envelope.
		t.Fatalf("page shows the merchant as:\n%s", body)
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
	if _, err := google.Login(ctx, req2, "demo-account-1", "demo-password", false); !errors.Is(err, sim.ErrNoLoginForm) ||
		!strings.Contains(err.Error(), weblogin.MsgDisabled) {
		t.Fatalf("disabled merchant: %v", err)
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

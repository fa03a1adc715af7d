package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/host/sim"
	"github.com/otpcgate/otpcgate/host/weblogin"
)

// simCallback is the callback URL the simulator hands the login page; the
// redirect is never followed, it only has to pass the allow-list.
const simCallback = "https://google.example/payments/sim-callback"

// newWebLoginEnv starts a gateway on a copy of the provisioned
// installation with the web login page mounted at weblogin.DefaultPath,
// allowing simCallback.
func newWebLoginEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir()}
	copyDir(t, templateDir(t), e.dir)
	var err error
	if e.info, err = ReadDevInfo(e.dir); err != nil {
		t.Fatal(err)
	}
	opts := e.options()
	g, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.mountWebLogin(weblogin.Config{Callbacks: map[string][]string{
		weblogin.AllMerchants: {"https://google.example/payments/"}}}); err != nil {
		g.Close()
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		g.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.g, e.ln, e.addr, e.cancel, e.done = g, ln, ln.Addr().String(), cancel, make(chan error, 1)
	go func() { e.done <- g.Serve(ctx, ln) }()
	t.Cleanup(e.stop)
	pem, err := os.ReadFile(opts.Server.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	e.client = &sim.Client{HTTP: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}}}}
	e.pgp, e.jose = e.target("demo-pgp"), e.target("demo-jose")
	return e
}

// TestSimWebLoginSession: with the login page served, the happy suite's
// associateAccount authenticates through it as a user would (sealed
// request, form, sealed success) and associates; without it, the step is
// skipped and says why.
func TestSimWebLoginSession(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		env    func(*testing.T) *env
		status sim.Status
		detail string
	}{
		{"page served", newWebLoginEnv, sim.Pass, ""},
		{"no page", func(t *testing.T) *env { return newEnv(t) }, sim.Skip, "serves no web login page at https://"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.env(t)
			senv := e.simEnv(t)
			senv.AuthSession = sim.WebLoginSession(e.client, weblogin.DefaultPath, simCallback, "demo-account-1", "demo-password")
			rep := sim.Run(ctx, senv, sim.HappySuite())
			var assoc []sim.Step
			for _, s := range rep.Steps {
				if s.Name == "associateAccount" {
					assoc = append(assoc, s)
				}
			}
			if len(assoc) != 2 {
				t.Fatalf("associateAccount steps: %+v", rep.Steps)
			}
			for _, s := range assoc {
				if s.Status != tc.status || !strings.Contains(s.Detail, tc.detail) {
					t.Errorf("%s: %s %q, want %s %q", s.Merchant, s.Status, s.Detail, tc.status, tc.detail)
				}
			}
			if rep.Failed != 0 {
				t.Fatalf("failed steps: %+v", rep.FailedSteps())
			}
		})
	}
}

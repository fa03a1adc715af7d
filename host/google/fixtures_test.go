package google_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/host/envelope"
	"github.com/otpcgate/otpcgate/host/google"
	"github.com/otpcgate/otpcgate/host/sim/googlesim"
	"github.com/otpcgate/otpcgate/internal/db"
	"github.com/otpcgate/otpcgate/keystore"
)

// integration is one merchant's integration in one envelope format, with
// the simulated Google's view of it. Keys are generated once per test
// binary (RSA-2048 generation dominates setup).
type integration struct {
	format envelope.Format
	codec  envelope.Codec
	piaid  string
	// merchant: our keys (self) + Google's public key (peer).
	// google: Google's keys (self) + our public key (peer).
	// rogue: Google's key (active, decrypts) but a primary signing key we
	// never imported, to produce responses with an untrusted signature.
	merchant, google, rogue string
}

var fixtures struct {
	once  sync.Once
	dir   string
	store *keystore.Store
	pgp   integration
	jose  integration
	err   error
}

func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if path := os.Getenv(crashEnv); path != "" {
		crashChild(path) // never returns
	}
	code := m.Run()
	if fixtures.dir != "" {
		os.RemoveAll(fixtures.dir)
	}
	os.Exit(code)
}

// integrations returns the PGP and JOSE integrations.
func integrations(t testing.TB) []integration {
	t.Helper()
	fixtures.once.Do(func() { fixtures.err = setupFixtures() })
	if fixtures.err != nil {
		t.Fatal(fixtures.err)
	}
	return []integration{fixtures.pgp, fixtures.jose}
}

const actor = "google test"

func setupFixtures() error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "otpcgate-google-test-")
	if err != nil {
		return err
	}
	fixtures.dir = dir
	d, err := db.Open(ctx, filepath.Join(dir, "keys.db"))
	if err != nil {
		return err
	}
	kek, err := keystore.GenerateKEK()
	if err != nil {
		return err
	}
	st, err := keystore.Open(ctx, d, kek)
	if err != nil {
		return err
	}
	fixtures.store = st
	for _, x := range []struct {
		kind  keystore.Kind
		piaid string
		dst   *integration
	}{
		{keystore.KindPGP, "TEST_PGP_JPY", &fixtures.pgp},
		{keystore.KindJWK, "TEST_JOSE_JPY", &fixtures.jose},
	} {
		in, err := newIntegration(ctx, st, x.kind, x.piaid)
		if err != nil {
			return fmt.Errorf("%s: %w", x.kind, err)
		}
		*x.dst = in
	}
	return nil
}

func newIntegration(ctx context.Context, st *keystore.Store, kind keystore.Kind, piaid string) (integration, error) {
	format, err := envelope.ForKind(kind)
	if err != nil {
		return integration{}, err
	}
	codec, err := envelope.New(format, envelope.Config{})
	if err != nil {
		return integration{}, err
	}
	in := integration{format: format, codec: codec, piaid: piaid}
	mk := func(name string) (string, error) {
		ks, err := st.CreateKeyset(ctx, actor, name, kind, keystore.EnvSandbox)
		return ks.ID, err
	}
	if in.merchant, err = mk("merchant-" + piaid); err != nil {
		return in, err
	}
	if in.google, err = mk("google-" + piaid); err != nil {
		return in, err
	}
	if in.rogue, err = mk("rogue-" + piaid); err != nil {
		return in, err
	}
	ourKey, err := generate(ctx, st, in.merchant)
	if err != nil {
		return in, err
	}
	googleKey, err := generate(ctx, st, in.google)
	if err != nil {
		return in, err
	}
	if _, err := generate(ctx, st, in.rogue); err != nil {
		return in, err
	}
	ourPub, err := st.ExportPublic(ctx, in.merchant, ourKey.ID)
	if err != nil {
		return in, err
	}
	googlePub, err := st.ExportPublic(ctx, in.google, googleKey.ID)
	if err != nil {
		return in, err
	}
	googlePriv, err := st.ExportPrivate(ctx, in.google, googleKey.ID)
	if err != nil {
		return in, err
	}
	// The key exchange of spec §11, both ways.
	if err := importKeys(ctx, st, in.google, keystore.OwnerPeer, ourPub, ourKey.Expires, true); err != nil {
		return in, err
	}
	if err := importKeys(ctx, st, in.merchant, keystore.OwnerPeer, googlePub, googleKey.Expires, true); err != nil {
		return in, err
	}
	if err := importKeys(ctx, st, in.rogue, keystore.OwnerPeer, ourPub, ourKey.Expires, true); err != nil {
		return in, err
	}
	return in, importKeys(ctx, st, in.rogue, keystore.OwnerSelf, googlePriv, googleKey.Expires, false)
}

func generate(ctx context.Context, st *keystore.Store, keysetID string) (keystore.KeyInfo, error) {
	k, err := st.Generate(ctx, actor, keysetID, keystore.GenerateOptions{Name: "test " + keysetID})
	if err != nil {
		return k, err
	}
	for _, s := range []keystore.State{keystore.StateActive, keystore.StatePrimary} {
		if err := st.SetState(ctx, actor, keysetID, k.ID, s); err != nil {
			return k, err
		}
	}
	return k, nil
}

func importKeys(ctx context.Context, st *keystore.Store, keysetID string, owner keystore.Owner, data []byte,
	expires time.Time, primary bool) error {
	keys, err := st.Import(ctx, actor, keysetID, owner, data, keystore.ImportOptions{Expires: expires})
	if err != nil {
		return err
	}
	states := []keystore.State{keystore.StateActive}
	if primary {
		states = append(states, keystore.StatePrimary)
	}
	for _, k := range keys {
		for _, s := range states {
			if err := st.SetState(ctx, actor, keysetID, k.ID, s); err != nil {
				return err
			}
		}
	}
	return nil
}

func keysetFunc(id string) func(ctx context.Context) (*keystore.Keyset, error) {
	return func(ctx context.Context) (*keystore.Keyset, error) { return fixtures.store.Keyset(ctx, id) }
}

// route is the merchant's route to Google at endpoint.
func (in integration) route(endpoint string) google.Route {
	return google.Route{Endpoint: endpoint, PIAID: in.piaid, Codec: in.codec, Keyset: keysetFunc(in.merchant)}
}

// account is the simulated Google's view of the integration.
func (in integration) account() googlesim.Account {
	return googlesim.Account{PIAID: in.piaid, Codec: in.codec, Keyset: keysetFunc(in.google)}
}

// googleServer is a simulated Google on a loopback TLS listener, mounted
// under /gsp like the real endpoints.
type googleServer struct {
	sim      *googlesim.Google
	srv      *httptest.Server
	endpoint string
}

func startGoogle(t testing.TB, ins ...integration) *googleServer {
	t.Helper()
	g := googlesim.New(googlesim.Config{})
	for _, in := range ins {
		g.AddAccount(in.account())
	}
	mux := http.NewServeMux()
	mux.Handle("/gsp/", g)
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are part of the tests
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return &googleServer{sim: g, srv: srv, endpoint: srv.URL + "/gsp"}
}

// roots trusts the test server's certificate.
func roots(srv *httptest.Server) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(srv.Certificate())
	return p
}

// newClient returns a client that trusts srv's certificate, with real
// hostname verification.
func newClient(t testing.TB, srv *httptest.Server, mod func(*google.Config)) *google.Client {
	t.Helper()
	tr, err := google.NewTransport(&tls.Config{RootCAs: roots(srv)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.CloseIdleConnections)
	cfg := google.Config{Transport: tr, Timeout: 5 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	c, err := google.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

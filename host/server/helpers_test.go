package server

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"github.com/otpcgate/otpcgate/internal/reqid"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/internal/tlsutil"
)

// rsaTestKey is generated once per test binary: RSA key generation is slow.
var rsaTestKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// writeECDSACert writes a self-signed ECDSA P-256 localhost pair with CN cn.
func writeECDSACert(t testing.TB, dir, cn string) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	certPEM, keyPEM, err := tlsutil.SelfSigned([]string{cn, "localhost", "127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := tlsutil.WriteFileAtomic(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := tlsutil.WriteFileAtomic(certFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// writeRSACert writes a self-signed RSA-2048 pair for 127.0.0.1.
func writeRSACert(t testing.TB, dir string) (certFile, keyFile string) {
	t.Helper()
	key := rsaTestKey()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(2),
		Subject:               pkix.Name{CommonName: "rsa.test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "rsa-cert.pem"), filepath.Join(dir, "rsa-key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// testServer is a Server running on a loopback port.
type testServer struct {
	*Server
	addr   string
	roots  *x509.CertPool
	cancel context.CancelFunc
	done   chan error
}

// startServer starts a server on 127.0.0.1:0 with an ECDSA certificate
// unless cfg names one; it is stopped at the end of the test.
func startServer(t *testing.T, cfg Config, gw Gateway, opts Options) *testServer {
	t.Helper()
	if cfg.CertFile == "" {
		cfg.CertFile, cfg.KeyFile = writeECDSACert(t, t.TempDir(), "server.test")
	}
	s, err := New(cfg, gw, opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{Server: s, addr: ln.Addr().String(), roots: x509.NewCertPool(), cancel: cancel, done: make(chan error, 1)}
	pemBytes, err := os.ReadFile(cfg.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	ts.roots.AppendCertsFromPEM(pemBytes)
	go func() { ts.done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() { ts.stop(t) })
	return ts
}

// stop shuts the server down once and checks Serve returned cleanly.
func (ts *testServer) stop(t *testing.T) {
	ts.cancel()
	select {
	case err, ok := <-ts.done:
		if ok && err != nil {
			t.Errorf("Serve: %v", err)
		}
		if ok {
			close(ts.done)
		}
	case <-time.After(30 * time.Second):
		t.Error("server did not stop")
	}
}

// client returns an HTTPS client trusting the server's certificate.
func (ts *testServer) client(tc *tls.Config) *http.Client {
	if tc == nil {
		tc = &tls.Config{}
	}
	tc = tc.Clone()
	tc.RootCAs = ts.roots
	if tc.ServerName == "" {
		tc.ServerName = "127.0.0.1"
	}
	return &http.Client{
		Transport: &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: len(tc.NextProtos) > 0},
		Timeout:   20 * time.Second,
	}
}

func (ts *testServer) url(path string) string { return "https://" + ts.addr + path }

// handshake dials the server with tc and returns the connection state.
func (ts *testServer) handshake(tc *tls.Config) (tls.ConnectionState, error) {
	tc = tc.Clone()
	if tc.RootCAs == nil {
		tc.RootCAs = ts.roots
	}
	if tc.ServerName == "" {
		tc.ServerName = "127.0.0.1"
	}
	d := &tls.Dialer{Config: tc, NetDialer: &net.Dialer{Timeout: 5 * time.Second}}
	c, err := d.Dial("tcp", ts.addr)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	tlsConn, ok := c.(*tls.Conn)
	if !ok {
		return tls.ConnectionState{}, errors.New("not a TLS connection")
	}
	return tlsConn.ConnectionState(), nil
}

// recorder is a Gateway that records its calls.
type recorder struct {
	mu    sync.Mutex
	calls []Request
	ctxID []string // reqid.From of each call's context
	resp  func(r *Request) *Response
}

func (g *recorder) Serve(ctx context.Context, r *Request) *Response {
	g.mu.Lock()
	cp := *r
	cp.Body = append([]byte(nil), r.Body...)
	g.calls = append(g.calls, cp)
	g.ctxID = append(g.ctxID, reqid.From(ctx))
	g.mu.Unlock()
	if g.resp != nil {
		return g.resp(r)
	}
	return &Response{Status: http.StatusOK, Body: []byte("answer:" + r.MerchantID + ":" + r.Method)}
}

func (g *recorder) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.calls)
}

func (g *recorder) last() Request {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls[len(g.calls)-1]
}

package server

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/internal/tlsutil"
)

func TestTLSVersions(t *testing.T) {
	on := startServer(t, Config{}, &recorder{}, Options{})
	off := startServer(t, Config{DisableTLS13: true}, &recorder{}, Options{})
	tests := []struct {
		name     string
		ts       *testServer
		min, max uint16
		want     uint16 // 0 = handshake must fail
	}{
		{"TLS1.0 refused", on, tls.VersionTLS10, tls.VersionTLS10, 0},
		{"TLS1.1 refused", on, tls.VersionTLS11, tls.VersionTLS11, 0},
		{"TLS1.2", on, tls.VersionTLS12, tls.VersionTLS12, tls.VersionTLS12},
		{"TLS1.3 on by default", on, tls.VersionTLS12, tls.VersionTLS13, tls.VersionTLS13},
		{"TLS1.3 only vs on", on, tls.VersionTLS13, tls.VersionTLS13, tls.VersionTLS13},
		{"TLS1.3 off: 1.2 negotiated", off, tls.VersionTLS12, tls.VersionTLS13, tls.VersionTLS12},
		{"TLS1.3 off: 1.3-only client refused", off, tls.VersionTLS13, tls.VersionTLS13, 0},
		{"TLS1.3 off: TLS1.1 refused", off, tls.VersionTLS10, tls.VersionTLS11, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, err := tc.ts.handshake(&tls.Config{MinVersion: tc.min, MaxVersion: tc.max})
			if tc.want == 0 {
				if err == nil {
					t.Fatalf("handshake succeeded with %s", tls.VersionName(st.Version))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if st.Version != tc.want {
				t.Fatalf("version %s, want %s", tls.VersionName(st.Version), tls.VersionName(tc.want))
			}
		})
	}
}

// TestTLS12CipherSuites offers each TLS 1.2 suite Go knows, one at a time,
// to servers with ECDSA and RSA certificates, with and without the CBC
// suites enabled; exactly the configured spec suites may negotiate.
func TestTLS12CipherSuites(t *testing.T) {
	dir := t.TempDir()
	rsaCert, rsaKey := writeRSACert(t, dir)
	servers := map[string]*testServer{
		"ecdsa":     startServer(t, Config{}, &recorder{}, Options{}),
		"rsa":       startServer(t, Config{CertFile: rsaCert, KeyFile: rsaKey}, &recorder{}, Options{}),
		"ecdsa+cbc": startServer(t, Config{AllowCBCSuites: true}, &recorder{}, Options{}),
		"rsa+cbc":   startServer(t, Config{CertFile: rsaCert, KeyFile: rsaKey, AllowCBCSuites: true}, &recorder{}, Options{}),
	}
	var all []*tls.CipherSuite
	all = append(all, tls.CipherSuites()...)
	all = append(all, tls.InsecureCipherSuites()...)
	negotiated := 0
	for _, cs := range all {
		if !slices.Contains(cs.SupportedVersions, tls.VersionTLS12) {
			continue // TLS 1.3 suites are not configurable
		}
		for name, ts := range servers {
			certKind := strings.TrimSuffix(name, "+cbc")
			if strings.Contains(cs.Name, "_ECDSA_") != (certKind == "ecdsa") {
				continue // the suite cannot work with this certificate anyway
			}
			allowed := slices.Contains(tlsutil.CipherSuites(strings.HasSuffix(name, "+cbc")), cs.ID)
			t.Run(cs.Name+"/"+name, func(t *testing.T) {
				st, err := ts.handshake(&tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{cs.ID}})
				if allowed {
					if err != nil {
						t.Fatalf("allowed suite refused: %v", err)
					}
					if st.CipherSuite != cs.ID {
						t.Fatalf("negotiated %s", tls.CipherSuiteName(st.CipherSuite))
					}
					negotiated++
				} else if err == nil {
					t.Fatalf("suite outside the spec list negotiated: %s", tls.CipherSuiteName(st.CipherSuite))
				}
			})
		}
	}
	// 4 AEAD suites once each by cert type on both servers of that type,
	// plus the 2 CBC suites on the +cbc servers.
	if negotiated != 4*2+2 {
		t.Fatalf("negotiated %d suite/server pairs, want 10", negotiated)
	}
}

func TestCurvePreferences(t *testing.T) {
	ts := startServer(t, Config{Curves: []string{"P256"}}, &recorder{}, Options{})
	st, err := ts.handshake(&tls.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if st.CurveID != tls.CurveP256 {
		t.Fatalf("key exchange %v, want P-256", st.CurveID)
	}
	if _, err := ts.handshake(&tls.Config{CurvePreferences: []tls.CurveID{tls.X25519}}); err == nil {
		t.Fatal("X25519-only client accepted by a P-256-only server")
	}
	if _, err := New(Config{Curves: []string{"nope"}, CertFile: "x", KeyFile: "y"}, &recorder{}, Options{}); err == nil {
		t.Fatal("unknown curve accepted")
	}
}

func TestNoPlainHTTP(t *testing.T) {
	g := &recorder{}
	ts := startServer(t, Config{Routes: []Route{{BasePath: "", MerchantID: "m"}}}, g, Options{})
	for _, path := range []string{"/healthz", "/" + APIPathSegment + "/echo"} {
		c, err := net.DialTimeout("tcp", ts.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/jose\r\nContent-Length: 2\r\n\r\nab", path)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			if resp.StatusCode == http.StatusOK {
				t.Fatalf("plain HTTP %s got 200", path)
			}
		}
		c.Close()
	}
	if g.count() != 0 {
		t.Fatal("plain HTTP request reached the gateway")
	}
}

func TestHTTP2OffByDefault(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		ts := startServer(t, Config{EnableHTTP2: h2}, &recorder{}, Options{})
		st, err := ts.handshake(&tls.Config{NextProtos: []string{"h2", "http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		want := "http/1.1"
		if h2 {
			want = "h2"
		}
		if st.NegotiatedProtocol != want {
			t.Fatalf("EnableHTTP2=%v: ALPN %q, want %q", h2, st.NegotiatedProtocol, want)
		}
	}
}

func TestCertHotReload(t *testing.T) {
	dir := t.TempDir()
	cf, kf := writeECDSACert(t, dir, "first.test")
	ts := startServer(t, Config{CertFile: cf, KeyFile: kf, CertReloadInterval: time.Millisecond}, &recorder{}, Options{})
	cn := func() string {
		t.Helper()
		st, err := ts.handshake(&tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		return st.PeerCertificates[0].Subject.CommonName
	}
	if got := cn(); got != "first.test" {
		t.Fatalf("CN %q", got)
	}
	time.Sleep(5 * time.Millisecond)
	writeECDSACert(t, dir, "second.test")
	time.Sleep(5 * time.Millisecond)
	if got := cn(); got != "second.test" {
		t.Fatalf("after replacing the files CN %q, want second.test", got)
	}
	// A broken key keeps the last good certificate.
	if err := tlsutil.WriteFileAtomic(kf, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	if got := cn(); got != "second.test" {
		t.Fatalf("after a bad key CN %q, want second.test", got)
	}
}

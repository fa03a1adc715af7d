package tlsutil

import (
	"bytes"
	"crypto/tls"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseCurves(t *testing.T) {
	tests := []struct {
		in      []string
		want    []tls.CurveID
		wantErr bool
	}{
		{nil, nil, false},
		{[]string{"X25519", "p256", "P-384"}, []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384}, false},
		{[]string{"X25519MLKEM768", "x25519", "X25519"}, []tls.CurveID{tls.X25519MLKEM768, tls.X25519}, false},
		{[]string{"curve448"}, nil, true},
	}
	for _, tc := range tests {
		got, err := ParseCurves(tc.in)
		if (err != nil) != tc.wantErr {
			t.Fatalf("ParseCurves(%v) err = %v", tc.in, err)
		}
		if err != nil && !errors.Is(err, ErrUnknownCurve) {
			t.Fatalf("ParseCurves(%v) err = %v, want ErrUnknownCurve", tc.in, err)
		}
		if len(got) != len(tc.want) {
			t.Fatalf("ParseCurves(%v) = %v, want %v", tc.in, got, tc.want)
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Fatalf("ParseCurves(%v) = %v, want %v", tc.in, got, tc.want)
			}
		}
	}
}

// TestCipherSuitesAreImplemented checks every suite we may offer is one Go
// implements for TLS 1.2, and which of them Go calls insecure.
func TestCipherSuitesAreImplemented(t *testing.T) {
	secure := map[uint16]bool{}
	for _, s := range tls.CipherSuites() {
		secure[s.ID] = true
	}
	insecure := map[uint16]bool{}
	for _, s := range tls.InsecureCipherSuites() {
		insecure[s.ID] = true
	}
	for _, id := range SpecAEADSuites() {
		if !secure[id] {
			t.Errorf("%s is not a secure Go suite", tls.CipherSuiteName(id))
		}
	}
	for _, id := range SpecCBCSuites() {
		if !insecure[id] {
			t.Errorf("%s expected among Go's insecure suites", tls.CipherSuiteName(id))
		}
	}
	if n := len(CipherSuites(false)); n != 4 {
		t.Errorf("default suites = %d, want 4", n)
	}
	if n := len(CipherSuites(true)); n != 6 {
		t.Errorf("suites with CBC = %d, want 6", n)
	}
}

func TestWriteSelfSignedPermsAndHosts(t *testing.T) {
	dir := t.TempDir()
	cf, kf := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	if err := WriteSelfSigned(cf, kf, DevHosts(), time.Hour); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(kf)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key mode = %v, want 0600", st.Mode().Perm())
	}
	pair, err := tls.LoadX509KeyPair(cf, kf)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"localhost", "127.0.0.1", "::1"} {
		if err := pair.Leaf.VerifyHostname(h); err != nil {
			t.Errorf("certificate does not cover %s: %v", h, err)
		}
	}
	if pair.Leaf.PublicKeyAlgorithm.String() != "ECDSA" {
		t.Errorf("key algorithm = %v, want ECDSA", pair.Leaf.PublicKeyAlgorithm)
	}
}

func TestCertReloader(t *testing.T) {
	dir := t.TempDir()
	cf, kf := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	if err := WriteSelfSigned(cf, kf, []string{"one.test"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	r, err := NewCertReloader(cf, kf, time.Nanosecond, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Current().Leaf.Subject.CommonName; got != "one.test" {
		t.Fatalf("CN = %q", got)
	}

	// A garbage certificate keeps the old one and logs one error.
	if err := WriteFileAtomic(cf, []byte("not a pem"), 0o644); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if got := r.Current().Leaf.Subject.CommonName; got != "one.test" {
			t.Fatalf("after bad file CN = %q, want old one.test", got)
		}
	}
	if n := strings.Count(logs.String(), "certificate reload failed"); n != 1 {
		t.Fatalf("logged %d reload errors, want 1:\n%s", n, logs.String())
	}

	// A good new pair is picked up.
	if err := WriteSelfSigned(cf, kf, []string{"two.test"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if got := r.Current().Leaf.Subject.CommonName; got != "two.test" {
		t.Fatalf("after reload CN = %q, want two.test", got)
	}

	// A missing key file keeps the current certificate and is logged.
	logs.Reset()
	if err := os.Remove(kf); err != nil {
		t.Fatal(err)
	}
	if got := r.Current().Leaf.Subject.CommonName; got != "two.test" {
		t.Fatalf("after key removal CN = %q, want two.test", got)
	}
	if !strings.Contains(logs.String(), "certificate reload failed") {
		t.Fatalf("missing key file not logged: %q", logs.String())
	}
}

func TestNewCertReloaderFailsWithoutFiles(t *testing.T) {
	dir := t.TempDir()
	if _, err := NewCertReloader(filepath.Join(dir, "x"), filepath.Join(dir, "y"), 0, nil); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want ErrNotExist", err)
	}
}

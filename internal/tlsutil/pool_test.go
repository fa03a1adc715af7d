package tlsutil

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestReadCertPool(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := WriteSelfSigned(cert, key, DevHosts(), time.Hour); err != nil {
		t.Fatal(err)
	}
	if pool, err := ReadCertPool(cert); err != nil || pool == nil {
		t.Fatalf("ReadCertPool(cert) = %v, %v", pool, err)
	}
	// A key file holds no certificate; a missing file is an error too.
	for _, p := range []string{key, filepath.Join(dir, "missing.pem")} {
		if _, err := ReadCertPool(p); err == nil {
			t.Errorf("ReadCertPool(%s) succeeded", filepath.Base(p))
		}
	}
	empty := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadCertPool(empty); err == nil {
		t.Error("an empty file gave a pool")
	}
}

package tlsutil

import (
	"crypto/x509"
	"fmt"
	"os"
)

// ReadCertPool returns a pool of the PEM certificates in path (a CA file, or
// the dev gateway's self-signed certificate); a file without one is an
// error.
func ReadCertPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no PEM certificate in %s", path)
	}
	return pool, nil
}

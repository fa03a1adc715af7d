package gateway

import (
	"testing"

	"github.com/otpcgate/otpcgate/internal/testenv"
)

// TestExternalClientWithGPG plays Google with nothing but the files dev.json
// names and the gpg binary: gpg signs and encrypts an echo request with the
// simulated Google's private key to our public key, the request goes over
// TLS, and gpg decrypts and verifies the answer. It shows that an external
// client can use a development installation without our code.
func TestExternalClientWithGPG(t *testing.T) {
	e := newEnv(t)
	m := e.merchant(e.pgp)
	testenv.GPGEcho(t, e.client.HTTP, e.pgp.BaseURL, m.PIAID, m.GooglePrivateKeys, m.OurPublicKeys)
}

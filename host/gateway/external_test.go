package gateway

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/internal/testenv"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// TestExternalClientWithGPG plays Google with nothing but the files dev.json
// names and the gpg binary: gpg signs and encrypts an echo request with the
// simulated Google's private key to our public key, the request goes over
// TLS, and gpg decrypts and verifies the answer. It shows that an external
// client can use a development installation without our code.
func TestExternalClientWithGPG(t *testing.T) {
	gpg := testenv.LookPath(t, "gpg", "the external client is GnuPG")
	e := newEnv(t)
	m := e.merchant(e.pgp)
	home := t.TempDir()
	run := func(stdin []byte, args ...string) []byte {
		t.Helper()
		cmd := exec.Command(gpg, append([]string{"--homedir", home, "--batch", "--yes", "--pinentry-mode", "loopback",
			"--trust-model", "always"}, args...)...)
		cmd.Stdin = bytes.NewReader(stdin)
		var out, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("gpg %v: %v\n%s", args, err, stderr.Bytes())
		}
		return out.Bytes()
	}
	run(nil, "--import", m.GooglePrivateKeys)
	run(nil, "--import", m.OurPublicKeys)
	ours := strings.TrimSpace(string(run(nil, "--with-colons", "--list-keys", "otpcgate demo")))
	var ourFpr string
	for _, line := range strings.Split(ours, "\n") {
		if f := strings.Split(line, ":"); f[0] == "fpr" && ourFpr == "" {
			ourFpr = f[9]
		}
	}
	if ourFpr == "" {
		t.Fatalf("our public key not found in gpg's keyring:\n%s", ours)
	}

	req := (&otpc.EchoRequest{RequestHeader: otpc.RequestHeader{
		RequestID: "gpg-client-1", RequestTimestamp: otpc.TimestampOf(time.Now()),
		ProtocolVersion: otpc.Version{Major: 2}, PaymentIntegratorAccountID: m.PIAID,
	}, ClientMessage: "from gpg"}).AppendJSON(nil)
	// The spec's command (§9.1), binary output for base64url.
	sealed := run(req, "--sign", "--digest-algo", "SHA384", "--encrypt", "--cipher-algo", "AES256", "--recipient", ourFpr)
	body := base64.RawURLEncoding.EncodeToString(sealed)

	hreq, err := http.NewRequest(http.MethodPost, e.pgp.BaseURL+otpc.PathPrefix+otpc.MethodEcho, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	hreq.Header.Set("Content-Type", "application/octet-stream; charset=utf-8")
	res, err := e.client.HTTP.Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	bin, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(string(raw), "="))
	if err != nil {
		t.Fatalf("answer is not base64url: %v", err)
	}
	statusFile := filepath.Join(home, "status")
	plain := run(bin, "--status-file", statusFile, "--decrypt")
	status, _ := os.ReadFile(statusFile)
	if !bytes.Contains(status, []byte("[GNUPG:] GOODSIG")) || !bytes.Contains(status, []byte("[GNUPG:] DECRYPTION_OKAY")) {
		t.Fatalf("gpg did not verify and decrypt the answer:\n%s", status)
	}
	var echo struct {
		ClientMessage string `json:"clientMessage"`
	}
	if err := json.Unmarshal(plain, &echo); err != nil || echo.ClientMessage != "from gpg" {
		t.Fatalf("answer %s (%v)", plain, err)
	}
}

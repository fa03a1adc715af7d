package testenv

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// GPGEcho plays Google with nothing but key files and the gpg binary: gpg
// signs an echo request with the private key in googlePrivate and encrypts
// it to the public key in ourPublic (the spec's command, §9.1), client
// posts it to baseURL's echo, and gpg decrypts and verifies the answer. It
// fails tb unless the answer is a verified echo of the message.
func GPGEcho(tb testing.TB, client *http.Client, baseURL, piaid, googlePrivate, ourPublic string) {
	tb.Helper()
	gpg := LookPath(tb, "gpg", "the external client is GnuPG")
	home := tb.TempDir()
	run := func(stdin []byte, args ...string) []byte {
		tb.Helper()
		cmd := exec.Command(gpg, append([]string{"--homedir", home, "--batch", "--yes", "--pinentry-mode", "loopback",
			"--trust-model", "always"}, args...)...)
		cmd.Stdin = bytes.NewReader(stdin)
		var out, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &stderr
		if err := cmd.Run(); err != nil {
			tb.Fatalf("gpg %v: %v\n%s", args, err, stderr.Bytes())
		}
		return out.Bytes()
	}
	run(nil, "--import", googlePrivate)
	// The recipient is whatever key the file holds, whatever its user id.
	var ourFpr string
	for _, line := range strings.Split(string(run(nil, "--with-colons", "--import-options", "show-only", "--import", ourPublic)), "\n") {
		if f := strings.Split(line, ":"); f[0] == "fpr" && ourFpr == "" {
			ourFpr = f[9]
		}
	}
	if ourFpr == "" {
		tb.Fatalf("no key in %s", ourPublic)
	}
	run(nil, "--import", ourPublic)

	const message = "from gpg"
	req := (&otpc.EchoRequest{RequestHeader: otpc.RequestHeader{
		RequestID: "gpg-client-" + strconv.FormatInt(time.Now().UnixNano(), 36), RequestTimestamp: otpc.TimestampOf(time.Now()),
		ProtocolVersion: otpc.Version{Major: 2}, PaymentIntegratorAccountID: piaid,
	}, ClientMessage: message}).AppendJSON(nil)
	sealed := run(req, "--sign", "--digest-algo", "SHA384", "--encrypt", "--cipher-algo", "AES256", "--recipient", ourFpr)
	hreq, err := http.NewRequest(http.MethodPost, strings.TrimSuffix(baseURL, "/")+otpc.PathPrefix+otpc.MethodEcho,
		strings.NewReader(base64.RawURLEncoding.EncodeToString(sealed)))
	if err != nil {
		tb.Fatal(err)
	}
	hreq.Header.Set("Content-Type", "application/octet-stream; charset=utf-8")
	res, err := client.Do(hreq)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		tb.Fatalf("gpg echo: status %d", res.StatusCode)
	}
	bin, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(string(raw), "="))
	if err != nil {
		tb.Fatalf("answer is not base64url: %v", err)
	}
	statusFile := filepath.Join(home, "status")
	plain := run(bin, "--status-file", statusFile, "--decrypt")
	status, _ := os.ReadFile(statusFile)
	if !bytes.Contains(status, []byte("[GNUPG:] GOODSIG")) || !bytes.Contains(status, []byte("[GNUPG:] DECRYPTION_OKAY")) {
		tb.Fatalf("gpg did not verify and decrypt the answer:\n%s", status)
	}
	var echo struct {
		ClientMessage string `json:"clientMessage"`
	}
	if err := json.Unmarshal(plain, &echo); err != nil || echo.ClientMessage != message {
		tb.Fatalf("answer %s (%v)", plain, err)
	}
}

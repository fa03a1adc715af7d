package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/otpcgate/otpcgate/host/envelope"
	"github.com/otpcgate/otpcgate/host/sim"
	"github.com/otpcgate/otpcgate/internal/db"
	"github.com/otpcgate/otpcgate/internal/tlsutil"
	"github.com/otpcgate/otpcgate/keystore"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// echoOptions are the inputs of `otpcgate sim echo`.
type echoOptions struct {
	url, piaid, envelope      string
	googleKey, gatewayKey, ca string
	serverName, passphraseEnv string
	message                   string
	timeout                   time.Duration
}

// newSimEchoCmd builds `sim echo`: one echo to any gateway (not only a dev
// one), signed with a stand-in Google key the operator holds, so an install
// is proven end to end (TLS, route, PIAID, keys, envelope) before Google is.
func newSimEchoCmd(e env) *cobra.Command {
	var o echoOptions
	cmd := &cobra.Command{
		Use:   "echo",
		Short: "Send one echo to a gateway as Google would, with a stand-in Google key",
		Long: "Sends one echo to a merchant's Google-facing URL, sealed as Google seals it: " +
			"signed with --google-key (a secret key you made to stand in for Google, whose " +
			"public half the merchant has imported, activated and promoted) and encrypted to " +
			"--gateway-key (the merchant's public keys, from `otpcgate keys export`). The answer " +
			"is opened and checked. Works against serve as well as dev; nothing is stored.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var passphrase []byte
			if o.passphraseEnv != "" {
				v, ok := "", false
				if e.lookup != nil {
					v, ok = e.lookup(o.passphraseEnv)
				}
				if !ok {
					return fmt.Errorf("--passphrase-env: %s is not set", o.passphraseEnv)
				}
				passphrase = []byte(v)
			}
			return simEcho(cmd.Context(), e, o, passphrase)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.url, "url", "", "the merchant's Google-facing base URL, e.g. https://gw.example:8443/acme (required)")
	f.StringVar(&o.piaid, "piaid", "", "a PIAID of the merchant (required)")
	f.StringVar(&o.envelope, "envelope", string(envelope.FormatPGP), "the merchant's envelope: pgp or jose")
	f.StringVar(&o.googleKey, "google-key", "", "stand-in Google secret key: gpg --export-secret-keys output or a private JWK/JWKS (required)")
	f.StringVar(&o.gatewayKey, "gateway-key", "", "the merchant's public keys, as `otpcgate keys export` writes them (required)")
	f.StringVar(&o.passphraseEnv, "passphrase-env", "", "environment variable holding the --google-key passphrase")
	f.StringVar(&o.ca, "ca", "", "PEM certificate(s) to trust for the gateway's TLS (default: the system's roots)")
	f.StringVar(&o.serverName, "server-name", "", "TLS server name to check (default: the URL's host)")
	f.StringVar(&o.message, "message", "otpcgate sim echo", "clientMessage to send")
	f.DurationVar(&o.timeout, "timeout", 30*time.Second, "give up after this long")
	for _, name := range []string{"url", "piaid", "google-key", "gateway-key"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

// simEcho loads the two key files into a throw-away keystore (the
// simulator's keyset: Google's secret key as self, the gateway's public
// keys as peer), sends one echo and checks the answer.
func simEcho(ctx context.Context, e env, o echoOptions, passphrase []byte) error {
	spec, ok := envelope.Lookup(envelope.Format(o.envelope))
	if !ok {
		return fmt.Errorf("--envelope %q: not a known envelope", o.envelope)
	}
	if !strings.HasPrefix(o.url, "https://") {
		return fmt.Errorf("--url %q: Google only calls https URLs", o.url)
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	tlsConf := &tls.Config{ServerName: o.serverName, MinVersion: tls.VersionTLS12}
	if o.ca != "" {
		pool, err := tlsutil.ReadCertPool(o.ca)
		if err != nil {
			return fmt.Errorf("--ca: %w", err)
		}
		tlsConf.RootCAs = pool
	}

	keyset, closeKeys, err := standInKeyset(ctx, spec.KeyKind, o, passphrase)
	if err != nil {
		return err
	}
	defer closeKeys()
	codec, err := envelope.New(spec.Format, envelope.Config{})
	if err != nil {
		return err
	}
	tg := &sim.Target{BaseURL: strings.TrimRight(o.url, "/"), PIAID: o.piaid, Codec: codec,
		Keyset: func(context.Context) (*keystore.Keyset, error) { return keyset, nil }}
	client := &sim.Client{HTTP: &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConf}}}

	start := time.Now()
	var resp otpc.EchoResponse
	res, err := client.Call(ctx, tg, otpc.MethodEcho,
		&otpc.EchoRequest{RequestHeader: client.Header(tg), ClientMessage: o.message}, &resp)
	took := time.Since(start).Round(time.Millisecond)
	switch {
	case err != nil:
		return fmt.Errorf("echo to %s: %w", tg.BaseURL, err)
	case res.Status != http.StatusOK:
		return fmt.Errorf("echo to %s: HTTP %d %s%s", tg.BaseURL, res.Status, res.Member(), echoHint(res))
	case resp.ClientMessage != o.message:
		return fmt.Errorf("echo to %s: clientMessage %q came back as %q", tg.BaseURL, o.message, resp.ClientMessage)
	}
	_, err = fmt.Fprintf(e.stdout, "echo %s PASS: HTTP 200 in %s, signed by the gateway and opened with %s, serverMessage %q\n",
		tg.BaseURL, took, o.gatewayKey, resp.ServerMessage)
	return err
}

// echoHint turns the refusals an operator meets while setting up into the
// next step.
func echoHint(res *sim.Result) string {
	switch res.Status {
	case http.StatusUnauthorized:
		return " (next: import, activate and promote the stand-in Google key on the merchant: `otpcgate keys import --merchant ID --file PUBLIC`)"
	case http.StatusBadRequest:
		if res.Member() == "invalidPayloadEncryption" {
			return " (next: --gateway-key must hold the merchant's active keys: `otpcgate keys export --merchant ID`)"
		}
	case http.StatusForbidden:
		return " (next: check --piaid and that the merchant is enabled: `otpcgate merchants show ID`)"
	case http.StatusNotFound:
		return " (next: --url must end with the merchant's base path: `otpcgate merchants list`)"
	}
	return ""
}

// standInKeyset builds the simulator's keyset from the two files in a
// temporary keystore that is removed afterwards.
func standInKeyset(ctx context.Context, kind keystore.Kind, o echoOptions, passphrase []byte) (*keystore.Keyset, func(), error) {
	googleKey, err := os.ReadFile(o.googleKey)
	if err != nil {
		return nil, nil, err
	}
	gatewayKey, err := os.ReadFile(o.gatewayKey)
	if err != nil {
		return nil, nil, err
	}
	dir, err := os.MkdirTemp("", "otpcgate-sim-echo-")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	fail := func(err error) (*keystore.Keyset, func(), error) {
		cleanup()
		return nil, nil, err
	}
	d, err := db.Open(ctx, filepath.Join(dir, "keys.db"))
	if err != nil {
		return fail(err)
	}
	defer d.Close()
	kek, err := keystore.GenerateKEK()
	if err != nil {
		return fail(err)
	}
	store, err := keystore.Open(ctx, d, kek)
	if err != nil {
		return fail(err)
	}
	store.SetLogger(slog.New(slog.DiscardHandler))
	ks, err := store.CreateKeyset(ctx, "sim-echo", "stand-in-google", kind, keystore.EnvSandbox)
	if err != nil {
		return fail(err)
	}
	imports := []struct {
		flag  string
		owner keystore.Owner
		data  []byte
		opts  keystore.ImportOptions
	}{
		{"--google-key", keystore.OwnerSelf, googleKey, keystore.ImportOptions{Passphrase: passphrase, Expires: time.Now().Add(time.Hour)}},
		{"--gateway-key", keystore.OwnerPeer, gatewayKey, keystore.ImportOptions{Expires: time.Now().Add(time.Hour)}},
	}
	for _, im := range imports {
		keys, err := store.Import(ctx, "sim-echo", ks.ID, im.owner, im.data, im.opts)
		if err != nil {
			return fail(fmt.Errorf("%s: %w", im.flag, err))
		}
		// Every key decrypts/verifies; the first usable one also signs
		// (ours) or is encrypted to (the gateway's).
		primary := false
		for _, k := range keys {
			if k.State != keystore.StatePending {
				continue
			}
			if err := store.SetState(ctx, "sim-echo", ks.ID, k.ID, keystore.StateActive); err != nil {
				return fail(fmt.Errorf("%s: %w", im.flag, err))
			}
			if !primary && ((im.owner == keystore.OwnerSelf && k.CanSign) || (im.owner == keystore.OwnerPeer && k.CanEncrypt)) {
				if err := store.SetState(ctx, "sim-echo", ks.ID, k.ID, keystore.StatePrimary); err != nil {
					return fail(fmt.Errorf("%s: %w", im.flag, err))
				}
				primary = true
			}
		}
		if !primary {
			return fail(fmt.Errorf("%s: no usable key in %d imported", im.flag, len(keys)))
		}
	}
	keyset, err := store.Keyset(ctx, ks.ID)
	if err != nil {
		return fail(err)
	}
	return keyset, cleanup, nil
}

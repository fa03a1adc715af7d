package envelope

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/internal/testenv"
	"github.com/otpcgate/otpcgate/keystore"
)

// gpgEnv is a throwaway gpg home holding every fixture key (gpg plays Google
// towards our code and the reverse).
type gpgEnv struct {
	t    *testing.T
	bin  string
	home string
}

func newGPG(t *testing.T) *gpgEnv {
	bin := testenv.LookPath(t, "gpg", "GnuPG is the independent OpenPGP implementation")
	home, err := os.MkdirTemp("", "envgpg")
	if err != nil {
		t.Fatal(err)
	}
	g := &gpgEnv{t: t, bin: bin, home: home}
	t.Cleanup(func() {
		// Stop the gpg-agent this home started; it is ours alone.
		_ = exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run()
		os.RemoveAll(home)
	})
	// gpg reads one armored block per --import from stdin.
	for _, s := range fixtureSpecs {
		if _, stderr, err := g.run(fx(t, s.name).armoredPriv, "--import"); err != nil {
			t.Fatalf("gpg --import %s: %v\n%s", s.name, err, stderr)
		}
	}
	return g
}

func (g *gpgEnv) run(stdin []byte, args ...string) ([]byte, string, error) {
	base := []string{"--homedir", g.home, "--batch", "--no-tty", "--pinentry-mode", "loopback",
		"--passphrase", "", "--trust-model", "always", "--yes"}
	cmd := exec.Command(g.bin, append(base, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.Bytes(), errb.String(), err
}

// fakedTimeInsideExpiredLifetime is a gpg --faked-system-time at which the
// "expired" fixture key was still valid.
func fakedTimeInsideExpiredLifetime(t *testing.T) string {
	return fx(t, "expired").pub.PrimaryKey.CreationTime.Add(48 * time.Hour).UTC().Format("20060102T150405")
}

// TestGPGToUs: messages made by gpg with the spec's sign+encrypt command
// (§9.1) open in our codec.
func TestGPGToUs(t *testing.T) {
	g := newGPG(t)
	ctx := context.Background()
	c := mustCodec(t, FormatPGP, Config{})
	P, A := keystore.StatePrimary, keystore.StateActive
	std := pgpKeyset(t, self("gw-a", P), peer("google-1", P), peer("expired", A))
	// The keystore may not record an expiry: the OpenPGP self-signature
	// still makes the expired key refuse to verify.
	stdNoExpiry := withExpiry(t, std, fx(t, "expired").ID(), time.Time{})
	onlyB := pgpKeyset(t, self("gw-b", P), peer("google-1", P))
	hidden := pgpKeyset(t, self("gw-b", P), self("gw-a", A), peer("google-1", P))
	big := pgpKeyset(t, self("gw-3072", P), peer("google-3072", P))
	id := func(n string) string { return fx(t, n).ID() }
	multiline := []byte("{\n  \"a\": 1,\n  \"b\": \"x\"\n}\n")

	for _, tc := range []struct {
		name       string
		signers    []string
		recipients []string
		flags      []string
		armor, pad bool
		fakeTime   bool
		ks         *keystore.Keyset
		plaintext  []byte
		want       error
		decrypted  string
		verified   string
		tried      int
	}{
		{name: "spec command armored padded", signers: []string{"google-1"}, recipients: []string{"gw-a"}, armor: true, pad: true, ks: std, decrypted: "gw-a", verified: "google-1", tried: 1},
		{name: "binary unpadded", signers: []string{"google-1"}, recipients: []string{"gw-a"}, ks: std, decrypted: "gw-a", verified: "google-1", tried: 1},
		{name: "armored unpadded uncompressed", signers: []string{"google-1"}, recipients: []string{"gw-a"}, armor: true, flags: []string{"-z", "0"}, ks: std, decrypted: "gw-a", verified: "google-1", tried: 1},
		{name: "binary padded zlib", signers: []string{"google-1"}, recipients: []string{"gw-a"}, pad: true, flags: []string{"--compress-algo", "zlib"}, ks: std, decrypted: "gw-a", verified: "google-1", tried: 1},
		{name: "bzip2", signers: []string{"google-1"}, recipients: []string{"gw-a"}, flags: []string{"--compress-algo", "bzip2"}, ks: std, decrypted: "gw-a", verified: "google-1", tried: 1},
		{name: "several recipients, ours in the middle", signers: []string{"google-1"}, recipients: []string{"google-2", "gw-b", "gw-a"}, ks: onlyB, decrypted: "gw-b", verified: "google-1", tried: 1},
		{name: "unknown signer first", signers: []string{"unknown", "google-1"}, recipients: []string{"gw-a"}, ks: std, decrypted: "gw-a", verified: "google-1", tried: 1},
		{name: "unknown signer last", signers: []string{"google-1", "unknown"}, recipients: []string{"gw-a"}, ks: std, decrypted: "gw-a", verified: "google-1", tried: 1},
		{name: "unknown signer between", signers: []string{"unknown", "google-1", "gw-b"}, recipients: []string{"gw-a"}, ks: std, decrypted: "gw-a", verified: "google-1", tried: 1},
		{name: "only unknown signers", signers: []string{"unknown", "google-2"}, recipients: []string{"gw-a"}, ks: std, want: ErrSignature},
		{name: "expired signer first", signers: []string{"expired", "google-1"}, recipients: []string{"gw-a"}, fakeTime: true, ks: std, decrypted: "gw-a", verified: "google-1", tried: 1},
		{name: "expired signer last", signers: []string{"google-1", "expired"}, recipients: []string{"gw-a"}, fakeTime: true, ks: std, decrypted: "gw-a", verified: "google-1", tried: 1},
		{name: "only expired signer", signers: []string{"expired"}, recipients: []string{"gw-a"}, fakeTime: true, ks: std, want: ErrSignature},
		{name: "only expired signer, expiry not in keystore", signers: []string{"expired"}, recipients: []string{"gw-a"}, fakeTime: true, ks: stdNoExpiry, want: ErrSignature},
		{name: "our own key signed", signers: []string{"gw-a"}, recipients: []string{"gw-a"}, ks: std, want: ErrSignature},
		{name: "RSA-3072", signers: []string{"google-3072"}, recipients: []string{"gw-3072"}, armor: true, ks: big, decrypted: "gw-3072", verified: "google-3072", tried: 1},
		{name: "hidden recipient", signers: []string{"google-1"}, recipients: []string{"gw-a"}, flags: []string{"--throw-keyids"}, ks: hidden, decrypted: "gw-a", verified: "google-1", tried: 2},
		{name: "text mode signature", signers: []string{"google-1"}, recipients: []string{"gw-a"}, flags: []string{"--textmode"}, plaintext: multiline, ks: std, decrypted: "gw-a", verified: "google-1", tried: 1},
		{name: "SHA-1 signature refused", signers: []string{"google-1"}, recipients: []string{"gw-a"}, flags: []string{"--digest-algo", "SHA1"}, ks: std, want: ErrSignature},
		{name: "CAST5 refused", signers: []string{"google-1"}, recipients: []string{"gw-a"}, flags: []string{"--cipher-algo", "CAST5"}, ks: std, want: ErrEncryption},
		{name: "wrong recipient", signers: []string{"google-1"}, recipients: []string{"google-2"}, ks: std, want: ErrEncryption},
		{name: "encrypted but unsigned", recipients: []string{"gw-a"}, ks: std, want: ErrSignature},
		{name: "signed but not encrypted", signers: []string{"google-1"}, ks: std, want: ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pt := payload
			if tc.plaintext != nil {
				pt = tc.plaintext
			}
			var args []string
			if tc.fakeTime {
				args = append(args, "--faked-system-time", fakedTimeInsideExpiredLifetime(t), "--ignore-time-conflict")
			}
			for _, s := range tc.signers {
				args = append(args, "-u", fx(t, s).ID())
			}
			if len(tc.signers) > 0 {
				args = append(args, "--sign", "--digest-algo", "SHA384")
			}
			if len(tc.recipients) > 0 {
				args = append(args, "--encrypt", "--cipher-algo", "AES256")
			}
			for _, r := range tc.recipients {
				args = append(args, "--recipient", fx(t, r).ID())
			}
			if tc.armor {
				args = append(args, "--armor")
			}
			args = append(args, tc.flags...)
			args = append(args, "--output", "-")
			// Later flags win in gpg: the case's --digest-algo / --cipher-algo
			// override the spec defaults above.
			msg, stderr, err := g.run(pt, args...)
			if err != nil {
				t.Fatalf("gpg %v: %v\n%s", args, err, stderr)
			}
			enc := base64.RawURLEncoding
			if tc.pad {
				enc = base64.URLEncoding
			}
			body := []byte(enc.EncodeToString(msg))
			op, err := c.Open(ctx, tc.ks, body)
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("got %v, want %v", err, tc.want)
				}
				t.Logf("refused as expected: %v", err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := op.Plaintext
			if bytes.Contains(got, []byte("\r\n")) && tc.plaintext != nil {
				got = bytes.ReplaceAll(got, []byte("\r\n"), []byte("\n"))
			}
			if !bytes.Equal(got, pt) {
				t.Errorf("plaintext %q", op.Plaintext)
			}
			if op.DecryptedBy != id(tc.decrypted) || op.VerifiedBy != id(tc.verified) || len(op.Tried) != tc.tried {
				t.Errorf("decrypted by %s verified by %s tried %v; want %s %s %d", op.DecryptedBy, op.VerifiedBy, op.Tried, tc.decrypted, tc.verified, tc.tried)
			}
		})
	}
	// The refusal names every signer it saw, unknown ones included.
	msg, stderr, err := g.run(payload, "-u", fx(t, "unknown").ID(), "-u", fx(t, "google-2").ID(), "--sign", "--encrypt", "-r", fx(t, "gw-a").ID(), "--output", "-")
	if err != nil {
		t.Fatal(stderr)
	}
	_, err = c.Open(ctx, std, []byte(base64.RawURLEncoding.EncodeToString(msg)))
	var se *SignatureError
	if !errors.As(err, &se) || len(se.Signers) != 2 {
		t.Fatalf("%#v", err)
	}
	for _, n := range []string{"unknown", "google-2"} {
		kid := fmt.Sprintf("%016X", fx(t, n).priv.PrimaryKey.KeyId)
		if !strings.Contains(strings.Join(se.Signers, ","), kid) {
			t.Errorf("signers %v lack %s (%s)", se.Signers, n, kid)
		}
	}
}

// TestUsToGPG: what our codec seals, gpg decrypts and verifies, with the
// algorithms the spec requires (SHA-384 signature, AES-256, MDC).
func TestUsToGPG(t *testing.T) {
	g := newGPG(t)
	ctx := context.Background()
	P, A := keystore.StatePrimary, keystore.StateActive
	for _, tc := range []struct {
		name       string
		cfg        PGPConfig
		ks         *keystore.Keyset
		signers    []string
		recipients []string
	}{
		{"binary unpadded, two recipients", PGPConfig{}, pgpKeyset(t, self("gw-a", P), peer("google-1", P), peer("google-2", A)), []string{"gw-a"}, []string{"google-1", "google-2"}},
		{"armored padded compressed", PGPConfig{Armor: true, Padded: true, Compress: true}, pgpKeyset(t, self("gw-a", P), peer("google-1", P)), []string{"gw-a"}, []string{"google-1"}},
		{"after rotation", PGPConfig{}, pgpKeyset(t, self("gw-a", keystore.StateRetiring), self("gw-b", P), peer("google-2", P), peer("google-1", keystore.StateRetiring)), []string{"gw-b"}, []string{"google-2"}},
		{"RSA-3072", PGPConfig{}, pgpKeyset(t, self("gw-3072", P), peer("google-3072", P)), []string{"gw-3072"}, []string{"google-3072"}},
		{"signed by all active keys, two recipients", PGPConfig{SignWithAllActive: true}, pgpKeyset(t, self("gw-a", A), self("gw-b", P), self("gw-3072", keystore.StateRetiring), peer("google-1", P), peer("google-2", A)), []string{"gw-b", "gw-a"}, []string{"google-1", "google-2"}},
		{"signed by all active keys, compressed armored", PGPConfig{SignWithAllActive: true, Compress: true, Armor: true}, pgpKeyset(t, self("gw-a", A), self("gw-b", P), peer("google-1", P)), []string{"gw-b", "gw-a"}, []string{"google-1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustCodec(t, FormatPGP, Config{PGP: tc.cfg})
			body, err := c.Seal(ctx, tc.ks, payload)
			if err != nil {
				t.Fatal(err)
			}
			msg, err := decodeBase64URL(body)
			if err != nil {
				t.Fatal(err)
			}
			out, stderr, err := g.run(msg, "--status-fd", "2", "--decrypt", "--output", "-")
			if err != nil {
				t.Fatalf("gpg --decrypt: %v\n%s", err, stderr)
			}
			if !bytes.Equal(out, payload) {
				t.Errorf("gpg plaintext %q", out)
			}
			status := map[string][]string{}
			var encTo []string
			var validSigs [][]string
			for _, line := range strings.Split(stderr, "\n") {
				f := strings.Fields(line)
				if len(f) < 2 || f[0] != "[GNUPG:]" {
					continue
				}
				status[f[1]] = f[2:]
				if f[1] == "ENC_TO" {
					encTo = append(encTo, f[2])
				}
				if f[1] == "VALIDSIG" {
					validSigs = append(validSigs, f[2:])
				}
			}
			if len(validSigs) != len(tc.signers) {
				t.Fatalf("%d valid signatures, want %d\n%s", len(validSigs), len(tc.signers), stderr)
			}
			for _, signer := range tc.signers {
				found := false
				for _, vs := range validSigs {
					if len(vs) >= 8 && vs[0] == fx(t, signer).ID() {
						found = true
						if vs[7] != "9" { // hash algorithm 9 = SHA-384
							t.Errorf("signature by %s: hash algorithm %s, want 9 (SHA384)", signer, vs[7])
						}
					}
				}
				if !found {
					t.Errorf("no valid signature by %s\n%s", signer, stderr)
				}
			}
			if di := status["DECRYPTION_INFO"]; len(di) < 2 || di[0] != "2" || di[1] != "9" {
				t.Errorf("DECRYPTION_INFO %v, want MDC (2) and AES256 (9)", di)
			}
			if len(encTo) != len(tc.recipients) {
				t.Errorf("ENC_TO %v, want %d recipients", encTo, len(tc.recipients))
			}
			for _, r := range tc.recipients {
				sub := fmt.Sprintf("%016X", fx(t, r).pub.Subkeys[0].PublicKey.KeyId)
				if !strings.Contains(strings.Join(encTo, " "), sub) {
					t.Errorf("not encrypted to %s's subkey %s: %v", r, sub, encTo)
				}
			}
		})
	}
}

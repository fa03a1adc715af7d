package keystore

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/otpcgate/otpcgate/internal/testenv"
)

// gpg is a throwaway GnuPG home for interop tests.
type gpg struct {
	t    *testing.T
	home string
}

// newGPG returns a fresh gpg home, or skips loudly when gpg is missing
// (fails instead in CI).
func newGPG(t *testing.T) *gpg {
	t.Helper()
	testenv.LookPath(t, "gpg", "GnuPG is the independent OpenPGP implementation")
	// A short path: the agent's socket path must fit in sun_path.
	home, err := os.MkdirTemp("", "gpg")
	if err != nil {
		t.Fatal(err)
	}
	g := &gpg{t: t, home: home}
	t.Cleanup(func() {
		exec.Command("gpgconf", "--homedir", home, "--kill", "gpg-agent").Run()
		os.RemoveAll(home)
	})
	return g
}

// run runs gpg in batch mode and returns stdout.
func (g *gpg) run(stdin []byte, args ...string) []byte {
	g.t.Helper()
	full := append([]string{"--homedir", g.home, "--batch", "--no-tty", "--yes", "--pinentry-mode", "loopback"}, args...)
	cmd := exec.Command("gpg", full...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		g.t.Fatalf("gpg %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.Bytes()
}

// genKey makes a primary sign+certify key and, if encBits > 0, an
// encryption subkey, as the spec's gpg hint does; returns the fingerprint.
func (g *gpg) genKey(uid, algo, encAlgo, pass string, extra ...string) string {
	g.t.Helper()
	args := append(append([]string{}, extra...), "--passphrase", pass, "--quick-generate-key", uid, algo, "sign,cert", "1y")
	g.run(nil, args...)
	fpr := g.fingerprint(uid)
	if encAlgo != "" {
		g.run(nil, append(append([]string{}, extra...), "--passphrase", pass, "--quick-add-key", fpr, encAlgo, "encr", "1y")...)
	}
	return fpr
}

func (g *gpg) fingerprint(uid string) string {
	g.t.Helper()
	out := g.run(nil, "--with-colons", "--list-keys", uid)
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Split(line, ":"); f[0] == "fpr" {
			return f[9]
		}
	}
	g.t.Fatalf("no fingerprint for %s", uid)
	return ""
}

func TestGPGInterop(t *testing.T) {
	g := newGPG(t)
	start := time.Now()
	plain := g.genKey("Plain <plain@example.test>", "rsa2048", "rsa2048", "")
	prot := g.genKey("Protected <prot@example.test>", "rsa3072", "rsa3072", "s3cret")
	signOnly := g.genKey("SignOnly <sign@example.test>", "rsa2048", "", "")
	revoked := g.genKey("Revoked <rev@example.test>", "rsa2048", "rsa2048", "")
	// Valid for one year from two years ago.
	expired := g.genKey("Expired <old@example.test>", "rsa2048", "rsa2048", "", "--faked-system-time", time.Now().AddDate(-2, 0, 0).Format("20060102T150405"))
	// gpg writes a revocation certificate at generation time, with a ':'
	// guarding the armor line against accidental import.
	rev, err := os.ReadFile(filepath.Join(g.home, "openpgp-revocs.d", revoked+".rev"))
	if err != nil {
		t.Fatal(err)
	}
	g.run(bytes.ReplaceAll(rev, []byte(":-----BEGIN"), []byte("-----BEGIN")), "--import")
	t.Logf("gpg key generation: %v", time.Since(start))

	e := newTestStore(t)
	peerKS, selfKS := e.keyset(t, KindPGP), e.keyset(t, KindPGP)

	t.Run("binary public, several keys", func(t *testing.T) {
		got := e.mustImport(t, peerKS, OwnerPeer, g.run(nil, "--export", plain, prot), ImportOptions{})
		if len(got) != 2 || got[0].ID != plain || got[1].ID != prot {
			t.Fatalf("imported %+v", got)
		}
		if got[1].Algorithm != "RSA-3072" || !got[1].CanEncrypt || got[0].UserID != "Plain <plain@example.test>" {
			t.Fatalf("metadata %+v", got[1])
		}
		if d, ok := got[0].DaysToExpiry(time.Now()); !ok || d < 364 || d > 365 {
			t.Fatalf("expiry %d days", d)
		}
	})
	t.Run("armored public", func(t *testing.T) {
		ks := e.keyset(t, KindPGP)
		got := e.mustImport(t, ks, OwnerPeer, g.run(nil, "--export", "--armor", plain), ImportOptions{})
		if len(got) != 1 || got[0].ID != plain {
			t.Fatalf("imported %+v", got)
		}
	})
	t.Run("binary secret decrypts gpg's message", func(t *testing.T) {
		got := e.mustImport(t, selfKS, OwnerSelf, g.run(nil, "--passphrase", "", "--export-secret-keys", plain), ImportOptions{})
		if !got[0].HasPrivate {
			t.Fatal("no private material")
		}
		msg := g.run([]byte("hello from gpg"), "--trust-model", "always", "--encrypt", "--cipher-algo", "AES256", "--recipient", plain)
		snap, err := e.s.Keyset(e.ctx, selfKS)
		if err != nil {
			t.Fatal(err)
		}
		md, err := openpgp.ReadMessage(bytes.NewReader(msg), openpgp.EntityList{snap.Key(plain).PGP}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		body := new(bytes.Buffer)
		body.ReadFrom(md.UnverifiedBody)
		if body.String() != "hello from gpg" {
			t.Fatalf("decrypted %q", body)
		}
	})
	t.Run("armored passphrase-protected secret", func(t *testing.T) {
		data := g.run(nil, "--passphrase", "s3cret", "--export-secret-keys", "--armor", prot)
		if !bytes.Contains(data, []byte("PRIVATE KEY BLOCK")) {
			t.Fatal("not an armored secret key")
		}
		for _, c := range []struct {
			pass string
			want error
		}{{"", ErrPassphraseRequired}, {"wrong", ErrBadPassphrase}} {
			if _, err := e.s.Import(e.ctx, "t", selfKS, OwnerSelf, data, ImportOptions{Passphrase: []byte(c.pass)}); !errors.Is(err, c.want) {
				t.Fatalf("passphrase %q: got %v, want %v", c.pass, err, c.want)
			}
		}
		got := e.mustImport(t, selfKS, OwnerSelf, data, ImportOptions{Passphrase: []byte("s3cret")})
		if got[0].ID != prot || got[0].Algorithm != "RSA-3072" {
			t.Fatalf("imported %+v", got)
		}
		// Stored unprotected-by-passphrase, wrapped by the KEK: a new
		// process opens it with the KEK alone.
		s2, err := e.reopen(t, e.kek)
		if err != nil {
			t.Fatal(err)
		}
		snap, err := s2.Keyset(e.ctx, selfKS)
		if err != nil {
			t.Fatal(err)
		}
		k := snap.Key(prot).PGP
		if k.PrivateKey == nil || k.PrivateKey.Encrypted || k.Subkeys[0].PrivateKey.Encrypted {
			t.Fatal("stored key not usable without passphrase")
		}
		e.mustSet(t, selfKS, prot, StateActive)
		e.mustSet(t, selfKS, prot, StatePrimary)
	})
	t.Run("refusals", func(t *testing.T) {
		for _, c := range []struct {
			name string
			fpr  string
			want error
		}{
			{"no encryption subkey", signOnly, ErrNoEncryptionKey},
			{"revoked", revoked, ErrRevoked},
			{"expired", expired, ErrExpired},
		} {
			_, err := e.s.Import(e.ctx, "t", peerKS, OwnerPeer, g.run(nil, "--export", c.fpr), ImportOptions{})
			if !errors.Is(err, c.want) {
				t.Errorf("%s: got %v, want %v", c.name, err, c.want)
			}
		}
		got := e.mustImport(t, peerKS, OwnerPeer, g.run(nil, "--export", expired), ImportOptions{AllowExpired: true})
		if got[0].State != StateDisabled {
			t.Fatalf("expired key imported as %s", got[0].State)
		}
	})
}

func TestGPGImportsOurExport(t *testing.T) {
	g := newGPG(t)
	e := newTestStore(t)
	ks := e.keyset(t, KindPGP)
	ki, err := e.s.Generate(e.ctx, "t", ks, GenerateOptions{Name: "otpcgate test", Email: "gw@example.test"})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := e.s.ExportPublic(e.ctx, ks)
	if err != nil {
		t.Fatal(err)
	}
	g.run(pub, "--import")
	if fpr := g.fingerprint("gw@example.test"); fpr != ki.ID {
		t.Fatalf("gpg sees %s, we said %s", fpr, ki.ID)
	}
	var caps, subCaps string
	for _, line := range strings.Split(string(g.run(nil, "--with-colons", "--list-keys", ki.ID)), "\n") {
		f := strings.Split(line, ":")
		switch f[0] {
		case "pub":
			caps = f[11]
			if f[1] == "e" || f[1] == "r" || f[6] == "" {
				t.Fatalf("gpg: validity %q expiry %q", f[1], f[6])
			}
		case "sub":
			subCaps = f[11]
		}
	}
	// Primary: sign+certify ("sc") and the whole key can encrypt ("E").
	if !strings.Contains(caps, "s") || !strings.Contains(caps, "c") || !strings.Contains(caps, "E") || subCaps != "e" {
		t.Fatalf("capabilities pub=%q sub=%q", caps, subCaps)
	}
	packets := string(g.run(pub, "--list-packets"))
	if !strings.Contains(packets, "pref-hash-algos: 9") || !strings.Contains(packets, "pref-sym-algos: 9") {
		t.Fatalf("preferences are not SHA384/AES256 first:\n%s", packets)
	}
	// gpg encrypts to our key; our snapshot decrypts.
	msg := g.run([]byte("to the gateway"), "--trust-model", "always", "--encrypt", "--recipient", ki.ID)
	e.mustSet(t, ks, ki.ID, StateActive)
	snap, _ := e.s.Keyset(e.ctx, ks)
	md, err := openpgp.ReadMessage(bytes.NewReader(msg), openpgp.EntityList{snap.Key(ki.ID).PGP}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	body := new(bytes.Buffer)
	body.ReadFrom(md.UnverifiedBody)
	if body.String() != "to the gateway" {
		t.Fatalf("decrypted %q", body)
	}
}

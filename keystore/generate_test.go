package keystore

import (
	"crypto"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
	jose "github.com/go-jose/go-jose/v4"
)

func TestGenerateOptionsRefused(t *testing.T) {
	e := newTestStore(t)
	pgpKS, jwkKS := e.keyset(t, KindPGP), e.keyset(t, KindJWK)
	cases := []struct {
		name string
		ks   string
		opts GenerateOptions
		want error
	}{
		{"RSA-1024", pgpKS, GenerateOptions{Bits: 1024}, ErrWeakKey},
		{"RSA-2047", jwkKS, GenerateOptions{Bits: 2047}, ErrWeakKey},
		{"lifetime over 2 years", pgpKS, GenerateOptions{Lifetime: MaxLifetime + time.Hour}, ErrLifetimeTooLong},
		{"EC for PGP", pgpKS, GenerateOptions{Algorithm: AlgECP256}, ErrUnsupportedKey},
		{"unknown algorithm", jwkKS, GenerateOptions{Algorithm: "DSA"}, ErrUnsupportedKey},
		{"unknown keyset", "ks_nope", GenerateOptions{}, ErrNotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := e.s.Generate(e.ctx, "t", c.ks, c.opts); !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

func TestGeneratePGP(t *testing.T) {
	e := newTestStore(t)
	ks := e.keyset(t, KindPGP)
	before := time.Now().Add(-time.Second)
	ki, err := e.s.Generate(e.ctx, "ops", ks, GenerateOptions{Name: "Merchant Ops", Email: "ops@example.test"})
	if err != nil {
		t.Fatal(err)
	}
	if ki.State != StatePending || ki.Owner != OwnerSelf || !ki.HasPrivate || ki.Algorithm != "RSA-2048" {
		t.Fatalf("generated %+v", ki)
	}
	if ki.UserID != "Merchant Ops <ops@example.test>" {
		t.Fatalf("user id %q", ki.UserID)
	}
	if d, ok := ki.DaysToExpiry(time.Now()); !ok || d < 364 || d > 365 {
		t.Fatalf("expires in %d days, want one year", d)
	}
	snap, err := e.s.Keyset(e.ctx, ks)
	if err != nil {
		t.Fatal(err)
	}
	ent := snap.Key(ki.ID).PGP
	sig, _ := ent.PrimarySelfSignature()
	if !sig.FlagSign || !sig.FlagCertify || sig.FlagEncryptCommunications {
		t.Fatalf("primary key flags: sign=%v certify=%v encrypt=%v", sig.FlagSign, sig.FlagCertify, sig.FlagEncryptCommunications)
	}
	if len(sig.PreferredHash) == 0 || sig.PreferredHash[0] != 9 { // 9 = SHA384 (RFC 4880 §9.4)
		t.Fatalf("preferred hashes %v, want SHA384 first", sig.PreferredHash)
	}
	if sig.Hash != crypto.SHA384 {
		t.Fatalf("self-signature hash %v", sig.Hash)
	}
	if len(sig.PreferredSymmetric) == 0 || sig.PreferredSymmetric[0] != uint8(packet.CipherAES256) {
		t.Fatalf("preferred ciphers %v, want AES256 first", sig.PreferredSymmetric)
	}
	if len(ent.Subkeys) != 1 {
		t.Fatalf("%d subkeys", len(ent.Subkeys))
	}
	sub := ent.Subkeys[0]
	bits, _ := sub.PublicKey.BitLength()
	if !sub.Sig.FlagEncryptCommunications || !sub.Sig.FlagEncryptStorage || sub.Sig.FlagSign || sub.PublicKey.PubKeyAlgo != packet.PubKeyAlgoRSA || bits != 2048 {
		t.Fatalf("subkey: %+v bits=%d", sub.Sig, bits)
	}
	if sub.Sig.KeyLifetimeSecs == nil || *sub.Sig.KeyLifetimeSecs != uint32(DefaultLifetime/time.Second) {
		t.Fatal("encryption subkey has no one-year expiry")
	}
	if ent.PrimaryKey.CreationTime.Before(before) {
		t.Fatal("creation time in the past")
	}
	if _, ok := ent.EncryptionKey(time.Now()); !ok {
		t.Fatal("go-crypto finds no encryption key")
	}
	if _, ok := ent.SigningKey(time.Now()); !ok {
		t.Fatal("go-crypto finds no signing key")
	}
	if _, ok := ent.EncryptionKey(time.Now().Add(DefaultLifetime + 24*time.Hour)); ok {
		t.Fatal("key still valid after a year")
	}
}

func TestGenerateJWK(t *testing.T) {
	e := newTestStore(t)
	ks := e.keyset(t, KindJWK)
	rsaKey, err := e.s.Generate(e.ctx, "t", ks, GenerateOptions{Lifetime: 30 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := e.s.Generate(e.ctx, "t", ks, GenerateOptions{Algorithm: AlgECP256, Use: "sig"})
	if err != nil {
		t.Fatal(err)
	}
	if rsaKey.Algorithm != "RSA-2048" || !rsaKey.CanEncrypt || !rsaKey.CanSign {
		t.Fatalf("RSA JWK: %+v", rsaKey)
	}
	if ecKey.Algorithm != "EC-P-256" || ecKey.CanEncrypt || !ecKey.CanSign {
		t.Fatalf("EC JWK: %+v", ecKey)
	}
	if d, _ := rsaKey.DaysToExpiry(time.Now()); d < 29 || d > 30 {
		t.Fatalf("RSA JWK expires in %d days", d)
	}
	snap, _ := e.s.Keyset(e.ctx, ks)
	for _, ki := range []KeyInfo{rsaKey, ecKey} {
		k := snap.Key(ki.ID).JWK
		if k.IsPublic() || k.Algorithm != "" {
			t.Fatalf("%s: public=%v alg=%q", ki.ID, k.IsPublic(), k.Algorithm)
		}
		if tp, _ := jwkThumbprint(k); tp != ki.ID || k.KeyID != ki.ID {
			t.Fatalf("kid %q is not the RFC 7638 thumbprint %q", ki.ID, tp)
		}
	}
	if _, ok := snap.Key(ecKey.ID).JWK.Key.(*ecdsa.PrivateKey); !ok || snap.Key(ecKey.ID).JWK.Use != "sig" {
		t.Fatal("EC key not a private P-256 signing key")
	}
	if snap.Key(rsaKey.ID).JWK.Use != "" {
		t.Fatal("RSA key has a use")
	}

	// The exported JWKS carries public members only and round-trips into
	// a peer keyset.
	out, err := e.s.ExportPublic(e.ctx, ks)
	if err != nil {
		t.Fatal(err)
	}
	keys := jsonFields(t, out)
	if len(keys) != 2 {
		t.Fatalf("%d keys exported", len(keys))
	}
	for _, k := range keys {
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"} {
			if _, ok := k[private]; ok {
				t.Fatalf("exported JWK has private member %q: %v", private, k)
			}
		}
		if _, ok := k["alg"]; ok {
			t.Fatal("exported JWK has alg")
		}
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(out, &set); err != nil {
		t.Fatal(err)
	}
	peerKS := e.keyset(t, KindJWK)
	got := e.mustImport(t, peerKS, OwnerPeer, out, ImportOptions{})
	ids := map[string]bool{}
	for _, k := range got {
		ids[k.ID] = true
	}
	if len(got) != 2 || !ids[rsaKey.ID] || !ids[ecKey.ID] {
		t.Fatalf("round trip ids: %+v", got)
	}
	if strings.Contains(string(out), `"d"`) {
		t.Fatal("private exponent in export")
	}
	// A private JWKS of our own keys imports as self.
	priv, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{*snap.Key(rsaKey.ID).JWK}})
	selfKS := e.keyset(t, KindJWK)
	if got := e.mustImport(t, selfKS, OwnerSelf, priv, ImportOptions{}); !got[0].HasPrivate {
		t.Fatal("private JWK imported without private material")
	}
}

func TestExportPGPRoundTrip(t *testing.T) {
	e := newTestStore(t)
	ks := e.keyset(t, KindPGP)
	a := e.mustImport(t, ks, OwnerSelf, pgpSecret(t, 0), ImportOptions{})[0].ID
	b := e.mustImport(t, ks, OwnerSelf, pgpSecret(t, 1), ImportOptions{})[0].ID
	e.mustImport(t, ks, OwnerPeer, pgpPublic(t, 2), ImportOptions{})
	e.mustSet(t, ks, b, StateDisabled) // not exported by default
	out, err := e.s.ExportPublic(e.ctx, ks)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), "-----BEGIN PGP PUBLIC KEY BLOCK-----") || strings.Contains(string(out), "PRIVATE") {
		t.Fatalf("export is not an armored public key block:\n%s", out)
	}
	peer := e.keyset(t, KindPGP)
	got := e.mustImport(t, peer, OwnerPeer, out, ImportOptions{})
	if len(got) != 1 || got[0].ID != a {
		t.Fatalf("exported %+v, want only %s", got, a)
	}
	// Explicit ids export any key, several in one block.
	out, err = e.s.ExportPublic(e.ctx, ks, a, b)
	if err != nil {
		t.Fatal(err)
	}
	el, err := readPGP(out)
	if err != nil || len(el) != 2 {
		t.Fatalf("two-key export: %d %v", len(el), err)
	}
	for _, ent := range el {
		if ent.PrivateKey != nil {
			t.Fatal("private key in public export")
		}
	}
	if _, err := e.s.ExportPublic(e.ctx, ks, "NOPE"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
}

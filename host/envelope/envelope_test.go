package envelope

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/keystore"
)

var payload = []byte(`{"requestHeader":{"protocolVersion":{"major":2},"requestId":"r-1"},"amount":{"amountMicros":"1000000","currencyCode":"JPY"},"note":"日本語 ok"}`)

func TestRoundTripPGP(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		cfg  PGPConfig
	}{
		{"binary-unpadded", PGPConfig{}},
		{"armored", PGPConfig{Armor: true}},
		{"padded", PGPConfig{Padded: true}},
		{"compressed", PGPConfig{Compress: true}},
		{"armored-padded-compressed", PGPConfig{Armor: true, Padded: true, Compress: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustCodec(t, FormatPGP, Config{PGP: tc.cfg})
			body, err := c.Seal(ctx, googlePGP(t), payload)
			if err != nil {
				t.Fatal(err)
			}
			if got := bytes.HasSuffix(body, []byte("=")); got != tc.cfg.Padded && len(body)%4 != 0 {
				t.Errorf("padding %v, want %v", got, tc.cfg.Padded)
			}
			raw, err := decodeBase64URL(body)
			if err != nil {
				t.Fatal(err)
			}
			if got := bytes.HasPrefix(raw, []byte(armorHeader)); got != tc.cfg.Armor {
				t.Errorf("armored %v, want %v", got, tc.cfg.Armor)
			}
			op, err := c.Open(ctx, gwPGP(t), body)
			if err != nil {
				t.Fatal(err)
			}
			// Compression must really happen on a repetitive payload.
			rep := bytes.Repeat(payload, 50)
			repBody, err := c.Seal(ctx, googlePGP(t), rep)
			if err != nil {
				t.Fatal(err)
			}
			if small := len(repBody) < len(rep)/2; small != tc.cfg.Compress {
				t.Errorf("%d-byte payload sealed to %d bytes; compress=%v", len(rep), len(repBody), tc.cfg.Compress)
			}
			if !bytes.Equal(op.Plaintext, payload) {
				t.Errorf("plaintext %q", op.Plaintext)
			}
			if op.DecryptedBy != fx(t, "gw-a").ID() || op.VerifiedBy != fx(t, "google-1").ID() {
				t.Errorf("decrypted by %s verified by %s", op.DecryptedBy, op.VerifiedBy)
			}
			if len(op.Tried) != 1 {
				t.Errorf("tried %v, want one key (by key id)", op.Tried)
			}
			// And the other direction: the same code with roles swapped.
			back, err := c.Seal(ctx, gwPGP(t), payload)
			if err != nil {
				t.Fatal(err)
			}
			op, err = c.Open(ctx, googlePGP(t), back)
			if err != nil || op.VerifiedBy != fx(t, "gw-a").ID() {
				t.Fatalf("reverse: %v %+v", err, op)
			}
		})
	}
}

func TestRoundTripJOSE(t *testing.T) {
	ctx := context.Background()
	type combo struct{ key, enc, sig string }
	var combos []combo
	for _, k := range []string{"RSA1_5", "RSA-OAEP-256"} {
		for _, e := range DefaultJWEContentEncryptions() {
			for _, s := range []string{"RS256", "PS256"} {
				combos = append(combos, combo{k, e, s})
			}
		}
	}
	for _, cb := range combos {
		for _, zip := range []bool{true, false} {
			name := cb.key + "/" + cb.enc + "/" + cb.sig
			if zip {
				name += "/zip"
			}
			t.Run(name, func(t *testing.T) {
				c := mustCodec(t, FormatJOSE, Config{JOSE: JOSEConfig{
					EmitKeyAlgorithm: cb.key, EmitContentEncryption: cb.enc,
					EmitSignatureAlgorithm: cb.sig, NoCompression: !zip,
				}})
				body, err := c.Seal(ctx, googleJOSE(t), payload)
				if err != nil {
					t.Fatal(err)
				}
				h := joseHeader(t, string(body))
				if h["alg"] != cb.key || h["enc"] != cb.enc || h["kid"] != jwkID("gw-a") || (h["zip"] == "DEF") != zip {
					t.Errorf("JWE header %v", h)
				}
				op, err := c.Open(ctx, gwJOSE(t), append([]byte("\r\n "), append(body, '\n')...))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(op.Plaintext, payload) || op.DecryptedBy != jwkID("gw-a") || op.VerifiedBy != jwkID("google-1") {
					t.Errorf("opened %+v", op)
				}
			})
		}
	}
	t.Run("ES256/ECDH-ES+A256KW", func(t *testing.T) {
		c := mustCodec(t, FormatJOSE, Config{})
		goog := joseKeyset(t, self("ec-google", keystore.StatePrimary), peer("ec-gw", keystore.StatePrimary))
		gw := joseKeyset(t, self("ec-gw", keystore.StatePrimary), peer("ec-google", keystore.StatePrimary))
		body, err := c.Seal(ctx, goog, payload)
		if err != nil {
			t.Fatal(err)
		}
		if h := joseHeader(t, string(body)); h["alg"] != "ECDH-ES+A256KW" {
			t.Errorf("header %v", h)
		}
		op, err := c.Open(ctx, gw, body)
		if err != nil || !bytes.Equal(op.Plaintext, payload) || op.VerifiedBy != jwkID("ec-google") {
			t.Fatalf("%v %+v", err, op)
		}
	})
	t.Run("defaults", func(t *testing.T) {
		c := mustCodec(t, FormatJOSE, Config{})
		body, err := c.Seal(ctx, gwJOSE(t), payload)
		if err != nil {
			t.Fatal(err)
		}
		h := joseHeader(t, string(body))
		if h["alg"] != "RSA-OAEP-256" || h["enc"] != "A256GCM" || h["zip"] != "DEF" || h["kid"] != jwkID("google-1") {
			t.Errorf("default JWE header %v", h)
		}
		if c.ContentType() != ContentTypeJOSE || c.Format() != FormatJOSE {
			t.Error("content type / format")
		}
	})
}

func TestNewRefusesUnsafeAlgorithms(t *testing.T) {
	for _, cfg := range []JOSEConfig{
		{KeyAlgorithms: []string{"dir"}},
		{KeyAlgorithms: []string{"A256KW"}},
		{KeyAlgorithms: []string{"PBES2-HS256+A128KW"}},
		{SignatureAlgorithms: []string{"HS256"}},
		{SignatureAlgorithms: []string{"none"}},
		{ContentEncryptions: []string{"A128CBC"}},
		{EmitKeyAlgorithm: "ECDH-ES"},
		{EmitSignatureAlgorithm: "HS256"},
	} {
		if _, err := New(FormatJOSE, Config{JOSE: cfg}); err == nil {
			t.Errorf("New accepted %+v", cfg)
		}
	}
	if _, err := New("xml", Config{}); err == nil {
		t.Error("unknown format accepted")
	}
}

// TestRotation walks a key rotation of the gateway's keys and of Google's.
func TestRotation(t *testing.T) {
	ctx := context.Background()
	P, A, R, D := keystore.StatePrimary, keystore.StateActive, keystore.StateRetiring, keystore.StateDisabled
	for _, f := range []Format{FormatPGP, FormatJOSE} {
		t.Run(string(f), func(t *testing.T) {
			c := mustCodec(t, f, Config{})
			ks := pgpKeyset
			id := func(n string) string { return fx(t, n).ID() }
			if f == FormatJOSE {
				ks = joseKeyset
				id = jwkID
			}
			// Google encrypts to the old key only, or to the new key only.
			toOld := ks(t, self("google-1", P), peer("gw-a", P))
			toNew := ks(t, self("google-1", P), peer("gw-b", P))
			bodyOld, err := c.Seal(ctx, toOld, payload)
			if err != nil {
				t.Fatal(err)
			}
			bodyNew, err := c.Seal(ctx, toNew, payload)
			if err != nil {
				t.Fatal(err)
			}
			for _, st := range []struct {
				name     string
				gw       *keystore.Keyset
				oldOK    bool
				newOK    bool
				signedBy string
			}{
				{"before", ks(t, self("gw-a", P), peer("google-1", P)), true, false, "gw-a"},
				{"overlap, old primary", ks(t, self("gw-a", P), self("gw-b", A), peer("google-1", P)), true, true, "gw-a"},
				{"overlap, new primary", ks(t, self("gw-a", R), self("gw-b", P), peer("google-1", P)), true, true, "gw-b"},
				{"old disabled", ks(t, self("gw-a", D), self("gw-b", P), peer("google-1", P)), false, true, "gw-b"},
			} {
				for _, m := range []struct {
					body []byte
					ok   bool
					by   string
				}{{bodyOld, st.oldOK, "gw-a"}, {bodyNew, st.newOK, "gw-b"}} {
					op, err := c.Open(ctx, st.gw, m.body)
					switch {
					case m.ok && err != nil:
						t.Errorf("%s: message to %s: %v", st.name, m.by, err)
					case m.ok && op.DecryptedBy != id(m.by):
						t.Errorf("%s: decrypted by %s, want %s", st.name, op.DecryptedBy, m.by)
					case !m.ok && !errors.Is(err, ErrEncryption):
						t.Errorf("%s: message to %s: err %v, want ErrEncryption", st.name, m.by, err)
					case !m.ok && errors.Is(err, ErrMalformed):
						t.Errorf("%s: refused as malformed: %v", st.name, err)
					}
					var ee *EncryptionError
					if !m.ok && errors.As(err, &ee) && len(ee.Tried) != 0 {
						t.Errorf("%s: tried %v with a disabled key", st.name, ee.Tried)
					}
				}
				// Signing follows the primary; Google trusts both gateway keys.
				body, err := c.Seal(ctx, st.gw, payload)
				if err != nil {
					t.Fatal(err)
				}
				op, err := c.Open(ctx, ks(t, self("google-1", P), peer("gw-a", A), peer("gw-b", A)), body)
				if err != nil || op.VerifiedBy != id(st.signedBy) {
					t.Errorf("%s: signed by %+v (%v), want %s", st.name, op, err, st.signedBy)
				}
			}
			// Google's own rotation: signatures by its old key stop verifying
			// once that key is disabled in the gateway.
			sealedByOld, err := c.Seal(ctx, ks(t, self("google-1", P), peer("gw-a", P)), payload)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Open(ctx, ks(t, self("gw-a", P), peer("google-1", A), peer("google-2", P)), sealedByOld); err != nil {
				t.Errorf("old Google key during overlap: %v", err)
			}
			_, err = c.Open(ctx, ks(t, self("gw-a", P), peer("google-1", D), peer("google-2", P)), sealedByOld)
			if !errors.Is(err, ErrSignature) {
				t.Errorf("disabled Google key: %v, want ErrSignature", err)
			}
			// Outbound during Google's overlap: PGP encrypts to both keys.
			if f == FormatPGP {
				body, err := c.Seal(ctx, ks(t, self("gw-a", P), peer("google-1", A), peer("google-2", P)), payload)
				if err != nil {
					t.Fatal(err)
				}
				for _, g := range []string{"google-1", "google-2"} {
					if _, err := c.Open(ctx, ks(t, self(g, P), peer("gw-a", P)), body); err != nil {
						t.Errorf("recipient %s: %v", g, err)
					}
				}
			}
		})
	}
}

func TestSealNoKey(t *testing.T) {
	ctx := context.Background()
	P := keystore.StatePrimary
	for _, tc := range []struct {
		f  Format
		ks *keystore.Keyset
	}{
		{FormatPGP, pgpKeyset(t, peer("google-1", P))},
		{FormatPGP, pgpKeyset(t, self("gw-a", P))},
		{FormatPGP, pgpKeyset(t, self("gw-a", P), peer("google-1", keystore.StateRetiring))},
		{FormatJOSE, joseKeyset(t, peer("google-1", P))},
		{FormatJOSE, joseKeyset(t, self("gw-a", P))},
		{FormatJOSE, gwPGP(t)}, // wrong kind
		{FormatPGP, nil},
	} {
		_, err := mustCodec(t, tc.f, Config{}).Seal(ctx, tc.ks, payload)
		if !errors.Is(err, ErrNoKey) {
			t.Errorf("%s: %v, want ErrNoKey", tc.f, err)
		}
	}
}

// TestExpiredPeerKeyIgnored: a key past its keyset expiry neither verifies
// nor is encrypted to.
func TestExpiredPeerKeyIgnored(t *testing.T) {
	ctx := context.Background()
	past := time.Now().Add(-time.Hour)
	for _, f := range []Format{FormatPGP, FormatJOSE} {
		c := mustCodec(t, f, Config{})
		gw, goog := gwPGP(t), googlePGP(t)
		googleID := fx(t, "google-1").ID()
		if f == FormatJOSE {
			gw, goog, googleID = gwJOSE(t), googleJOSE(t), jwkID("google-1")
		}
		body, err := c.Seal(ctx, goog, payload)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Open(ctx, withExpiry(t, gw, googleID, past), body)
		if !errors.Is(err, ErrSignature) {
			t.Errorf("%s: %v, want ErrSignature", f, err)
		}
		if _, err := c.Seal(ctx, withExpiry(t, gw, googleID, past), payload); !errors.Is(err, ErrNoKey) {
			t.Errorf("%s seal to expired: %v", f, err)
		}
	}
}

func flipByte(b []byte, i int) []byte {
	out := append([]byte(nil), b...)
	out[i] ^= 0x5a
	return out
}

func TestOpenNegativeCommon(t *testing.T) {
	ctx := context.Background()
	for _, f := range []Format{FormatPGP, FormatJOSE} {
		t.Run(string(f), func(t *testing.T) {
			c := mustCodec(t, f, Config{MaxBodyBytes: 64 << 10})
			gw, goog, other := gwPGP(t), googlePGP(t), pgpKeyset(t, self("google-1", keystore.StatePrimary), peer("google-2", keystore.StatePrimary))
			if f == FormatJOSE {
				gw, goog, other = gwJOSE(t), googleJOSE(t), joseKeyset(t, self("google-1", keystore.StatePrimary), peer("google-2", keystore.StatePrimary))
			}
			good, err := c.Seal(ctx, goog, payload)
			if err != nil {
				t.Fatal(err)
			}
			wrongKey, err := c.Seal(ctx, other, payload)
			if err != nil {
				t.Fatal(err)
			}
			// Tamper inside the ciphertext, far from headers.
			var tampered []byte
			if f == FormatPGP {
				raw, _ := decodeBase64URL(good)
				raw = flipByte(raw, len(raw)-30)
				tampered = []byte(base64.RawURLEncoding.EncodeToString(raw))
			} else {
				parts := strings.Split(string(good), ".")
				ct, _ := base64.RawURLEncoding.DecodeString(parts[3])
				parts[3] = base64.RawURLEncoding.EncodeToString(flipByte(ct, len(ct)/2))
				tampered = []byte(strings.Join(parts, "."))
			}
			for _, tc := range []struct {
				name string
				body []byte
				want error
			}{
				{"tampered ciphertext", tampered, ErrEncryption},
				{"truncated", good[:len(good)/2], ErrEncryption},
				{"truncated by one", good[:len(good)-1], ErrEncryption},
				{"wrong key", wrongKey, ErrEncryption},
				{"empty", nil, ErrMalformed},
				{"whitespace", []byte(" \n"), ErrMalformed},
				{"garbage base64", []byte("%%%not*base64!!"), ErrMalformed},
				{"random base64", []byte(base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0x99, 0x01}, 200))), ErrMalformed},
				{"oversized", bytes.Repeat([]byte("A"), 64<<10+1), ErrTooLarge},
			} {
				op, err := c.Open(ctx, gw, tc.body)
				if !errors.Is(err, tc.want) || op != nil {
					t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
				}
			}
			var ee *EncryptionError
			if _, err := c.Open(ctx, gw, wrongKey); !errors.As(err, &ee) || len(ee.Tried) != 0 || len(ee.Recipients) == 0 {
				t.Errorf("wrong key: %#v, want recipients listed and nothing tried", err)
			}
		})
	}
}

// TestSignWithAllActive: during our rotation a peer that trusts either of our
// keys verifies the response.
func TestSignWithAllActive(t *testing.T) {
	ctx := context.Background()
	P, A := keystore.StatePrimary, keystore.StateActive
	c := mustCodec(t, FormatPGP, Config{PGP: PGPConfig{SignWithAllActive: true}})
	body, err := c.Seal(ctx, pgpKeyset(t, self("gw-a", A), self("gw-b", P), self("gw-3072", keystore.StateRetiring), peer("google-1", P)), payload)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		trusts string
		want   error
	}{{"gw-a", nil}, {"gw-b", nil}, {"gw-3072", ErrSignature}} {
		op, err := c.Open(ctx, pgpKeyset(t, self("google-1", P), peer(tc.trusts, P)), body)
		if !errors.Is(err, tc.want) {
			t.Errorf("peer trusting %s: %v, want %v", tc.trusts, err, tc.want)
		}
		if err == nil && op.VerifiedBy != fx(t, tc.trusts).ID() {
			t.Errorf("verified by %s", op.VerifiedBy)
		}
	}
}

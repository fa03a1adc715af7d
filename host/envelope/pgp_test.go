package envelope

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// encryptRaw wraps arbitrary inner packets in a PKESK to the fixture's
// encryption subkey and an integrity-protected SEIPD, so tests can put
// hostile signed content inside a correctly encrypted message.
func encryptRaw(t testing.TB, inner []byte, to string) []byte {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	ek, ok := fx(t, to).pub.EncryptionKey(time.Now())
	if !ok {
		t.Fatal("no encryption key")
	}
	var buf bytes.Buffer
	if err := packet.SerializeEncryptedKey(&buf, ek.PublicKey, packet.CipherAES256, key, nil); err != nil {
		t.Fatal(err)
	}
	w, err := packet.SerializeSymmetricallyEncrypted(&buf, packet.CipherAES256, false, packet.CipherSuite{}, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(inner)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// signedBy returns the packets of a one-pass signed message (not encrypted).
func signedBy(t testing.TB, signer string, pl []byte, h crypto.Hash) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := openpgp.Sign(&buf, fx(t, signer).priv, &openpgp.FileHints{IsBinary: true}, &packet.Config{DefaultHash: h})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(pl)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// lastSignature returns the serialized last signature packet of msg.
func lastSignature(t testing.TB, msg []byte) []byte {
	t.Helper()
	pr := packet.NewReader(bytes.NewReader(msg))
	var sig *packet.Signature
	for {
		p, err := pr.Next()
		if err != nil {
			break
		}
		if lit, ok := p.(*packet.LiteralData); ok {
			io.Copy(io.Discard, lit.Body)
		}
		if s, ok := p.(*packet.Signature); ok {
			sig = s
		}
	}
	if sig == nil {
		t.Fatal("no signature")
	}
	var buf bytes.Buffer
	if err := sig.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type nopCloser struct{ *bytes.Buffer }

func (nopCloser) Close() error { return nil }

// literalOnly returns an unsigned literal data packet.
func literalOnly(t testing.TB, pl []byte) []byte {
	var buf bytes.Buffer
	w, err := packet.SerializeLiteral(nopCloser{&buf}, true, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(pl)
	w.Close()
	return buf.Bytes()
}

func b64url(b []byte) []byte { return []byte(base64.RawURLEncoding.EncodeToString(b)) }

func TestOpenPGPHostile(t *testing.T) {
	ctx := context.Background()
	c := mustCodec(t, FormatPGP, Config{})
	gw := gwPGP(t)

	good := signedBy(t, "google-1", payload, crypto.SHA384)
	// Sanity: the crafting path itself produces an accepted message.
	if op, err := c.Open(ctx, gw, b64url(encryptRaw(t, good, "gw-a"))); err != nil || op.VerifiedBy != fx(t, "google-1").ID() {
		t.Fatalf("crafted good message refused: %v", err)
	}
	badSig := flipByte(good, len(good)-5) // inside the signature MPI
	i := bytes.Index(good, []byte(`"amountMicros"`))
	swapped := append([]byte(nil), good...)
	copy(swapped[i:], `"amountMICROS"`)

	// A SED (tag 9) packet: CFB without MDC. Its content never gets
	// decrypted, so random bytes do.
	var noMDC bytes.Buffer
	full := encryptRaw(t, good, "gw-a")
	pk, err := packet.NewReader(bytes.NewReader(full)).Next()
	if err != nil {
		t.Fatal(err)
	}
	if err := pk.(*packet.EncryptedKey).Serialize(&noMDC); err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, 100)
	rand.Read(junk)
	noMDC.Write([]byte{0xC9, byte(len(junk))})
	noMDC.Write(junk)

	// A zip bomb: 8 MiB of zeros compresses to ~8 KiB; the limit is 4 MiB.
	bombCodec := mustCodec(t, FormatPGP, Config{PGP: PGPConfig{Compress: true}, MaxBodyBytes: 1 << 20})
	bomb, err := bombCodec.Seal(ctx, googlePGP(t), make([]byte, 8<<20))
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		body []byte
		want error
	}{
		{"tampered signature", b64url(encryptRaw(t, badSig, "gw-a")), ErrSignature},
		{"signed content changed", b64url(encryptRaw(t, swapped, "gw-a")), ErrSignature},
		{"literal data only", b64url(encryptRaw(t, literalOnly(t, payload), "gw-a")), ErrSignature},
		{"signature without literal data", b64url(encryptRaw(t, lastSignature(t, good), "gw-a")), ErrEncryption},
		{"no MDC", b64url(noMDC.Bytes()), ErrMalformed},
		{"tampered session key", b64url(flipByte(full, 40)), ErrEncryption},
		{"trailing packet after the encrypted data", b64url(append(append([]byte(nil), full...), 0xC0, 0x01, 0x00)), ErrEncryption},
		{"trailing signature after the encrypted data", b64url(append(encryptRaw(t, literalOnly(t, payload), "gw-a"), lastSignature(t, good)...)), ErrEncryption},
		{"zip bomb", bomb, ErrTooLarge},
		{"armor of a public key", []byte(base64.URLEncoding.EncodeToString(fx(t, "google-1").armoredPub)), ErrMalformed},
		{"binary public key", b64url(fx(t, "google-1").pub.PrimaryKey.Fingerprint), ErrMalformed},
	} {
		op, err := c.Open(ctx, gw, tc.body)
		if !errors.Is(err, tc.want) || op != nil {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		} else {
			t.Logf("%s: %v", tc.name, err)
		}
	}
	// The tail of a signed message cut mid-packet: what it parses as
	// depends on the signature's bytes (its creation time changes them), so
	// it may read as packets without literal data or as garbage. Either
	// way it is refused as the sender's fault, never opened.
	op, err := c.Open(ctx, gw, b64url(encryptRaw(t, good[len(good)-300:], "gw-a")))
	if op != nil || !errors.Is(err, ErrEncryption) && !errors.Is(err, ErrSignature) {
		t.Errorf("a cut signed message: %v, want a refusal (%v or %v)", err, ErrEncryption, ErrSignature)
	}
}

// TestOpenPGPStdAlphabet: standard-alphabet base64 (with + and /) is
// accepted defensively.
func TestOpenPGPStdAlphabet(t *testing.T) {
	ctx := context.Background()
	c := mustCodec(t, FormatPGP, Config{})
	for i := 0; i < 20; i++ {
		body, err := c.Seal(ctx, googlePGP(t), payload)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := decodeBase64URL(body)
		std := base64.StdEncoding.EncodeToString(raw)
		if !bytes.ContainsAny([]byte(std), "+/") {
			continue
		}
		if _, err := c.Open(ctx, gwPGP(t), []byte("\n"+std+"\r\n")); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatal("no sealed message had + or / in 20 tries")
}

package envelope

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/otpcgate/otpcgate/keystore"
)

// joseHeader decodes the protected header of a compact JWE or JWS.
func joseHeader(t testing.TB, compact string) map[string]any {
	t.Helper()
	seg := strings.SplitN(strings.TrimSpace(compact), ".", 2)[0]
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

// jweTo encrypts inner (normally a compact JWS) to the gateway key gw-a with
// go-jose, bypassing the codec, to build hostile messages.
func jweTo(t testing.TB, inner []byte, opts *jose.EncrypterOptions, kid string) []byte {
	t.Helper()
	enc, err := jose.NewEncrypter(jose.A256GCM, jose.Recipient{Algorithm: jose.RSA_OAEP_256, Key: &fx(t, "gw-a").RSA().PublicKey, KeyID: kid}, opts)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := enc.Encrypt(inner)
	if err != nil {
		t.Fatal(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return []byte(s)
}

// jwsBy signs payload with the named fixture key as kid (or no kid).
func jwsBy(t testing.TB, signer string, alg jose.SignatureAlgorithm, kid string, pl []byte) string {
	t.Helper()
	key := jose.JSONWebKey{Key: fx(t, signer).RSA(), KeyID: kid}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, nil)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Sign(pl)
	if err != nil {
		t.Fatal(err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestOpenJOSEHostile(t *testing.T) {
	ctx := context.Background()
	c := mustCodec(t, FormatJOSE, Config{})
	gw := gwJOSE(t)
	gwKid := jwkID("gw-a")
	googleKid := jwkID("google-1")

	// HS256 keyed with the PEM of Google's public key: the classic
	// algorithm-confusion forgery.
	der, err := x509.MarshalPKIXPublicKey(&fx(t, "google-1").RSA().PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	signingInput := b64(`{"alg":"HS256","kid":"`+googleKid+`"}`) + "." + b64(string(payload))
	mac := hmac.New(sha256.New, pemKey)
	mac.Write([]byte(signingInput))
	hsJWS := signingInput + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))

	goodJWS := jwsBy(t, "google-1", jose.RS256, googleKid, payload)
	parts := strings.Split(goodJWS, ".")
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	tamperedJWS := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(flipByte(sig, 10))
	swappedPayload := parts[0] + "." + b64(`{"amount":"9999"}`) + "." + parts[2]

	dirEnc, err := jose.NewEncrypter(jose.A256GCM, jose.Recipient{Algorithm: jose.DIRECT, Key: bytes.Repeat([]byte{1}, 32)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	dirObj, _ := dirEnc.Encrypt([]byte(goodJWS))
	dirJWE, _ := dirObj.CompactSerialize()
	kwEnc, _ := jose.NewEncrypter(jose.A256GCM, jose.Recipient{Algorithm: jose.A256KW, Key: bytes.Repeat([]byte{1}, 32)}, nil)
	kwObj, _ := kwEnc.Encrypt([]byte(goodJWS))
	kwJWE, _ := kwObj.CompactSerialize()
	fullJSON := jweTo(t, []byte(goodJWS), nil, gwKid)
	jsonObj, _ := jose.ParseEncryptedCompact(string(fullJSON), []jose.KeyAlgorithm{jose.RSA_OAEP_256}, []jose.ContentEncryption{jose.A256GCM})
	jsonSer := jsonObj.FullSerialize()

	for _, tc := range []struct {
		name string
		body []byte
		want error
	}{
		{"alg none", jweTo(t, []byte(b64(`{"alg":"none"}`)+"."+b64(string(payload))+"."), nil, gwKid), ErrSignature},
		{"HS256 keyed with the public key", jweTo(t, []byte(hsJWS), nil, gwKid), ErrSignature},
		{"tampered JWS signature", jweTo(t, []byte(tamperedJWS), nil, gwKid), ErrSignature},
		{"JWS payload swapped", jweTo(t, []byte(swappedPayload), nil, gwKid), ErrSignature},
		{"signed by unknown key claiming Google's kid", jweTo(t, []byte(jwsBy(t, "unknown", jose.RS256, googleKid, payload)), nil, gwKid), ErrSignature},
		{"signed by the gateway's own key", jweTo(t, []byte(jwsBy(t, "gw-a", jose.RS256, gwKid, payload)), nil, gwKid), ErrSignature},
		{"RS512 not allowed", jweTo(t, []byte(jwsBy(t, "google-1", jose.RS512, googleKid, payload)), nil, gwKid), ErrSignature},
		{"plain JSON inside", jweTo(t, payload, nil, gwKid), ErrSignature},
		{"JWE dir", []byte(dirJWE), ErrMalformed},
		{"JWE A256KW", []byte(kwJWE), ErrMalformed},
		{"JWE JSON serialization", []byte(jsonSer), ErrMalformed},
		{"JWE kid of an unknown key", jweTo(t, []byte(goodJWS), nil, "kid-nobody"), ErrEncryption},
		{"JWE kid of a peer key", jweTo(t, []byte(goodJWS), nil, googleKid), ErrEncryption},
		{"zip bomb", jweTo(t, make([]byte, 8<<20), &jose.EncrypterOptions{Compression: jose.DEFLATE}, gwKid), ErrTooLarge},
		{"two dots", []byte("a.b.c"), ErrMalformed},
	} {
		op, err := c.Open(ctx, gw, tc.body)
		if !errors.Is(err, tc.want) || op != nil {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// The configured plaintext limit also applies to inflated payloads.
	small := mustCodec(t, FormatJOSE, Config{MaxPlaintextBytes: 100 << 10})
	if _, err := small.Open(ctx, gw, jweTo(t, make([]byte, 200<<10), &jose.EncrypterOptions{Compression: jose.DEFLATE}, gwKid)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("inflated over MaxPlaintextBytes: %v", err)
	}
	var se *SignatureError
	if _, err := c.Open(ctx, gw, jweTo(t, []byte(tamperedJWS), nil, gwKid)); !errors.As(err, &se) || len(se.Signers) != 1 || se.Signers[0] != googleKid {
		t.Errorf("signature error should name the signer: %#v", err)
	}
}

// TestOpenJOSEWithoutKid: without kid every usable key is tried, in order.
func TestOpenJOSEWithoutKid(t *testing.T) {
	ctx := context.Background()
	c := mustCodec(t, FormatJOSE, Config{})
	P, A := keystore.StatePrimary, keystore.StateActive
	gw := joseKeyset(t, self("gw-b", P), self("gw-a", A), peer("google-2", P), peer("google-1", A))
	body := jweTo(t, []byte(jwsBy(t, "google-1", jose.PS256, "", payload)), nil, "")
	op, err := c.Open(ctx, gw, body)
	if err != nil {
		t.Fatal(err)
	}
	if op.DecryptedBy != jwkID("gw-a") || op.VerifiedBy != jwkID("google-1") || len(op.Tried) != 2 || op.Tried[0] != jwkID("gw-b") {
		t.Errorf("%+v", op)
	}
	// With kid only the named key is tried.
	op, err = c.Open(ctx, gw, jweTo(t, []byte(jwsBy(t, "google-1", jose.PS256, jwkID("google-1"), payload)), nil, jwkID("gw-a")))
	if err != nil || len(op.Tried) != 1 {
		t.Errorf("%v %+v", err, op)
	}
}

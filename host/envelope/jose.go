package envelope

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"strings"
	"sync"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/otpcgate/otpcgate/keystore"
)

// Algorithms the JOSE codec can ever be configured to accept. Everything
// symmetric ("dir", A*KW, PBES2, HS*) and "none" is absent on purpose: the
// peer key is public, so accepting a MAC keyed with it would let anyone
// forge messages (algorithm confusion).
var (
	safeKeyAlgs = map[string]jose.KeyAlgorithm{
		"RSA1_5": jose.RSA1_5, "RSA-OAEP": jose.RSA_OAEP, "RSA-OAEP-256": jose.RSA_OAEP_256,
		"ECDH-ES": jose.ECDH_ES, "ECDH-ES+A128KW": jose.ECDH_ES_A128KW,
		"ECDH-ES+A192KW": jose.ECDH_ES_A192KW, "ECDH-ES+A256KW": jose.ECDH_ES_A256KW,
	}
	safeEncs = map[string]jose.ContentEncryption{
		"A128CBC-HS256": jose.A128CBC_HS256, "A192CBC-HS384": jose.A192CBC_HS384,
		"A256CBC-HS512": jose.A256CBC_HS512, "A128GCM": jose.A128GCM,
		"A192GCM": jose.A192GCM, "A256GCM": jose.A256GCM,
	}
	safeSigAlgs = map[string]jose.SignatureAlgorithm{
		"RS256": jose.RS256, "RS384": jose.RS384, "RS512": jose.RS512,
		"PS256": jose.PS256, "PS384": jose.PS384, "PS512": jose.PS512,
		"ES256": jose.ES256, "ES384": jose.ES384, "ES512": jose.ES512,
	}
)

// joseCodec implements Codec for a compact JWS nested in a compact JWE
// (spec §9.2).
type joseCodec struct {
	// deflaters pools flate writers: a new one allocates ~1 MB, which cost
	// more than a quarter of a 1 KiB Seal when go-jose compressed for us.
	deflaters sync.Pool
	cfg       Config
	keyAlgs   []jose.KeyAlgorithm
	encs      []jose.ContentEncryption
	sigAlgs   []jose.SignatureAlgorithm
	emitKey   jose.KeyAlgorithm
	emitEnc   jose.ContentEncryption
	emitSig   jose.SignatureAlgorithm
	compress  bool
}

func newJOSE(cfg Config) (*joseCodec, error) {
	c := &joseCodec{cfg: cfg, compress: !cfg.JOSE.NoCompression}
	for _, a := range cfg.JOSE.KeyAlgorithms {
		v, ok := safeKeyAlgs[a]
		if !ok {
			return nil, fmt.Errorf("envelope: JWE key algorithm %q is not allowed", a)
		}
		c.keyAlgs = append(c.keyAlgs, v)
	}
	for _, a := range cfg.JOSE.ContentEncryptions {
		v, ok := safeEncs[a]
		if !ok {
			return nil, fmt.Errorf("envelope: JWE content encryption %q is not allowed", a)
		}
		c.encs = append(c.encs, v)
	}
	for _, a := range cfg.JOSE.SignatureAlgorithms {
		v, ok := safeSigAlgs[a]
		if !ok {
			return nil, fmt.Errorf("envelope: JWS algorithm %q is not allowed", a)
		}
		c.sigAlgs = append(c.sigAlgs, v)
	}
	var ok bool
	if c.emitKey, ok = safeKeyAlgs[cfg.JOSE.EmitKeyAlgorithm]; !ok || !strings.HasPrefix(cfg.JOSE.EmitKeyAlgorithm, "RSA") {
		return nil, fmt.Errorf("envelope: JWE key algorithm %q cannot be emitted for RSA keys", cfg.JOSE.EmitKeyAlgorithm)
	}
	if c.emitEnc, ok = safeEncs[cfg.JOSE.EmitContentEncryption]; !ok {
		return nil, fmt.Errorf("envelope: JWE content encryption %q cannot be emitted", cfg.JOSE.EmitContentEncryption)
	}
	if c.emitSig, ok = safeSigAlgs[cfg.JOSE.EmitSignatureAlgorithm]; !ok || strings.HasPrefix(cfg.JOSE.EmitSignatureAlgorithm, "ES") {
		return nil, fmt.Errorf("envelope: JWS algorithm %q cannot be emitted for RSA keys", cfg.JOSE.EmitSignatureAlgorithm)
	}
	return c, nil
}

func (c *joseCodec) Format() Format      { return FormatJOSE }
func (c *joseCodec) ContentType() string { return ContentTypeJOSE }

// Open implements Codec. The JWE kid selects the self key (every usable self
// key is tried only when kid is absent), the JWS kid the peer key (likewise).
func (c *joseCodec) Open(ctx context.Context, ks *keystore.Keyset, body []byte) (op *Opened, err error) {
	if len(body) > c.cfg.MaxBodyBytes {
		return nil, tooLarge("body", c.cfg.MaxBodyBytes)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkKind(ks, keystore.KindJWK); err != nil {
		return nil, err
	}
	defer func() {
		if r := recover(); r != nil {
			op, err = nil, malformed("parser panic", fmt.Errorf("%v", r))
		}
	}()
	s := strings.TrimSpace(string(body))
	if s == "" {
		return nil, malformed("empty body", nil)
	}
	if strings.Count(s, ".") != 4 {
		return nil, malformed("not a JWE compact serialization", nil)
	}
	jwe, err := jose.ParseEncryptedCompact(s, c.keyAlgs, c.encs)
	if err != nil {
		return nil, malformed("bad JWE or refused algorithm", err)
	}
	kid := jwe.Header.KeyID
	var cands []*keystore.Key
	if kid != "" {
		if k := ks.Key(kid); k != nil && k.Owner == keystore.OwnerSelf && k.Usable() && k.JWK != nil {
			cands = append(cands, k)
		}
	} else {
		for _, k := range ks.Usable(keystore.OwnerSelf) {
			if k.JWK != nil {
				cands = append(cands, k)
			}
		}
	}
	op = &Opened{}
	var recipients []string
	if kid != "" {
		recipients = []string{kid}
	}
	var lastErr error
	for _, k := range cands {
		op.Tried = append(op.Tried, k.ID)
		pt, err := jwe.Decrypt(k.JWK)
		if err != nil {
			if !errors.Is(err, jose.ErrCryptoFailure) && strings.Contains(err.Error(), "too large") {
				// go-jose bounds inflation at max(250 kB, 10 × input).
				return nil, fmt.Errorf("%w: decompressed payload: %v", ErrTooLarge, err)
			}
			lastErr = err
			continue
		}
		if len(pt) > c.cfg.MaxPlaintextBytes {
			return nil, tooLarge("decrypted payload", c.cfg.MaxPlaintextBytes)
		}
		op.DecryptedBy = k.ID
		payload, verifiedBy, err := c.verify(ks, pt)
		if err != nil {
			return nil, err
		}
		op.Plaintext, op.VerifiedBy = payload, verifiedBy
		return op, nil
	}
	reason := "no usable self key for the JWE"
	if lastErr != nil {
		reason = "decryption failed"
	}
	return nil, &EncryptionError{Recipients: recipients, Tried: op.Tried, Reason: reason, Err: lastErr}
}

// verify checks the nested compact JWS against the peer keys.
func (c *joseCodec) verify(ks *keystore.Keyset, inner []byte) ([]byte, string, error) {
	s := strings.TrimSpace(string(inner))
	if strings.Count(s, ".") != 2 {
		return nil, "", &SignatureError{Reason: "decrypted payload is not a compact JWS"}
	}
	jws, err := jose.ParseSignedCompact(s, c.sigAlgs)
	if err != nil {
		return nil, "", &SignatureError{Reason: "bad JWS or refused algorithm", Err: err}
	}
	if len(jws.Signatures) != 1 {
		return nil, "", &SignatureError{Reason: "JWS must have exactly one signature"}
	}
	now := c.cfg.Now()
	kid := jws.Signatures[0].Protected.KeyID
	var cands []*keystore.Key
	usable := func(k *keystore.Key) bool {
		return k != nil && k.Owner == keystore.OwnerPeer && k.Usable() && !k.Expired(now) && k.JWK != nil
	}
	if kid != "" {
		if k := ks.Key(kid); usable(k) {
			cands = append(cands, k)
		}
	} else {
		for _, k := range ks.Usable(keystore.OwnerPeer) {
			if usable(k) {
				cands = append(cands, k)
			}
		}
	}
	var lastErr error
	for _, k := range cands {
		payload, err := jws.Verify(k.JWK.Public())
		if err != nil {
			lastErr = err
			continue
		}
		return payload, k.ID, nil
	}
	var signers []string
	if kid != "" {
		signers = []string{kid}
	}
	reason := "no usable peer key for the JWS"
	if lastErr != nil {
		reason = "signature verification failed"
	}
	return nil, "", &SignatureError{Signers: signers, Reason: reason, Err: lastErr}
}

// Seal implements Codec: a compact JWS by the self primary key, encrypted as
// a compact JWE to the peer primary key (compact serialization has a single
// recipient; without a peer primary the first recipient is used).
func (c *joseCodec) Seal(ctx context.Context, ks *keystore.Keyset, plaintext []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkKind(ks, keystore.KindJWK); err != nil {
		return nil, err
	}
	now := c.cfg.Now()
	self := ks.Primary(keystore.OwnerSelf)
	if self == nil || self.JWK == nil || self.JWK.IsPublic() || self.Expired(now) {
		return nil, fmt.Errorf("%w: keyset %s has no usable self primary key", ErrNoKey, ks.ID)
	}
	sigAlg, err := c.signatureAlgorithm(self.JWK)
	if err != nil {
		return nil, err
	}
	recips := ks.Recipients(now)
	if len(recips) == 0 {
		return nil, fmt.Errorf("%w: keyset %s has no peer key to encrypt to", ErrNoKey, ks.ID)
	}
	peer := recips[0]
	for _, k := range recips {
		if k.State == keystore.StatePrimary {
			peer = k
		}
	}
	keyAlg, err := c.keyAlgorithm(peer.JWK)
	if err != nil {
		return nil, err
	}

	signingKey := *self.JWK
	signingKey.KeyID = self.ID
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: sigAlg, Key: signingKey}, nil)
	if err != nil {
		return nil, fmt.Errorf("envelope: jws signer: %w", err)
	}
	jws, err := signer.Sign(plaintext)
	if err != nil {
		return nil, fmt.Errorf("envelope: jws sign: %w", err)
	}
	inner, err := jws.CompactSerialize()
	if err != nil {
		return nil, err
	}
	opts := &jose.EncrypterOptions{}
	content := []byte(inner)
	if c.compress {
		// Compress here (pooled writer) rather than with opts.Compression;
		// the "zip" header is the same, and go-jose puts it in the
		// integrity-protected header like its own compression would.
		if content, err = c.deflate(content); err != nil {
			return nil, fmt.Errorf("envelope: deflate: %w", err)
		}
		opts.ExtraHeaders = map[jose.HeaderKey]any{"zip": string(jose.DEFLATE)}
	}
	enc, err := jose.NewEncrypter(c.emitEnc, jose.Recipient{Algorithm: keyAlg, Key: peer.JWK.Public().Key, KeyID: peer.ID}, opts)
	if err != nil {
		return nil, fmt.Errorf("envelope: jwe encrypter: %w", err)
	}
	jwe, err := enc.Encrypt(content)
	if err != nil {
		return nil, fmt.Errorf("envelope: jwe encrypt: %w", err)
	}
	out, err := jwe.CompactSerialize()
	if err != nil {
		return nil, err
	}
	return []byte(out), nil
}

// deflate compresses p as raw DEFLATE (RFC 1951), as JWE "zip":"DEF" needs.
func (c *joseCodec) deflate(p []byte) ([]byte, error) {
	var buf bytes.Buffer
	w, _ := c.deflaters.Get().(*flate.Writer)
	if w == nil {
		var err error
		if w, err = flate.NewWriter(&buf, flate.BestSpeed); err != nil {
			return nil, err
		}
	} else {
		w.Reset(&buf)
	}
	defer c.deflaters.Put(w)
	if _, err := w.Write(p); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (c *joseCodec) signatureAlgorithm(k *jose.JSONWebKey) (jose.SignatureAlgorithm, error) {
	switch key := k.Key.(type) {
	case *rsa.PrivateKey:
		return c.emitSig, nil
	case *ecdsa.PrivateKey:
		if key.Curve == elliptic.P256() {
			return jose.ES256, nil
		}
	}
	return "", fmt.Errorf("%w: self key %s: unsupported signing key type %T", ErrNoKey, k.KeyID, k.Key)
}

func (c *joseCodec) keyAlgorithm(k *jose.JSONWebKey) (jose.KeyAlgorithm, error) {
	switch k.Public().Key.(type) {
	case *rsa.PublicKey:
		return c.emitKey, nil
	case *ecdsa.PublicKey:
		return jose.ECDH_ES_A256KW, nil
	}
	return "", fmt.Errorf("%w: peer key %s: unsupported encryption key type %T", ErrNoKey, k.KeyID, k.Key)
}

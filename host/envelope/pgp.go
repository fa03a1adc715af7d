package envelope

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/otpcgate/otpcgate/keystore"
)

// pgpCodec implements Codec for base64url OpenPGP messages (spec §9.1).
//
// Open does not use openpgp.ReadMessage: that checks only one of several
// one-pass signatures (so an unknown signer can hide Google's signature) and
// its DecryptionKeys fallback ignores key ids. Instead it walks the packets:
// the session key is decrypted with the self key the PKESK names (found in
// O(1) through Keyset.ByPGPKeyID), the integrity check is enforced, and then
// every signature packet is checked against the peer key its issuer names.
type pgpCodec struct {
	cfg Config
}

func newPGP(cfg Config) *pgpCodec { return &pgpCodec{cfg: cfg} }

func (c *pgpCodec) Format() Format      { return FormatPGP }
func (c *pgpCodec) ContentType() string { return ContentTypePGP }

const armorHeader = "-----BEGIN PGP MESSAGE-----"

// decodeBase64URL decodes web-safe base64 with or without padding, and
// tolerates the standard alphabet and surrounding whitespace.
func decodeBase64URL(body []byte) ([]byte, error) {
	s := strings.TrimSpace(string(body))
	s = strings.TrimRight(s, "=")
	if strings.ContainsAny(s, "+/") {
		s = strings.NewReplacer("+", "-", "/", "_").Replace(s)
	}
	return base64.RawURLEncoding.DecodeString(s)
}

// pgpMessage returns the binary OpenPGP message inside a decoded body,
// removing ASCII armor when present.
func pgpMessage(raw []byte) ([]byte, error) {
	trimmed := bytes.TrimLeft(raw, " \t\r\n")
	if !bytes.HasPrefix(trimmed, []byte(armorHeader)) {
		return raw, nil
	}
	block, err := armor.Decode(bytes.NewReader(trimmed))
	if err != nil {
		return nil, err
	}
	if block.Type != "PGP MESSAGE" {
		return nil, fmt.Errorf("armor type %q", block.Type)
	}
	return io.ReadAll(block.Body)
}

// Open implements Codec.
func (c *pgpCodec) Open(ctx context.Context, ks *keystore.Keyset, body []byte) (op *Opened, err error) {
	if len(body) > c.cfg.MaxBodyBytes {
		return nil, tooLarge("body", c.cfg.MaxBodyBytes)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkKind(ks, keystore.KindPGP); err != nil {
		return nil, err
	}
	// The parsers below see attacker-controlled bytes; a panic in them must
	// become a refusal, not a crashed request goroutine.
	defer func() {
		if r := recover(); r != nil {
			op, err = nil, malformed("parser panic", fmt.Errorf("%v", r))
		}
	}()
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, malformed("empty body", nil)
	}
	raw, err := decodeBase64URL(body)
	if err != nil {
		return nil, malformed("body is not base64url", err)
	}
	msg, err := pgpMessage(raw)
	if err != nil {
		return nil, malformed("bad ASCII armor", err)
	}

	eks, _, _, err := readEncryptedHead(msg)
	if err != nil {
		return nil, err
	}
	now := c.cfg.Now()
	op = &Opened{}
	var recipients []string
	var lastErr error
	var cands []pgpCandidate
	for i, ek := range eks {
		recipients = append(recipients, fmt.Sprintf("%016X", ek.KeyId))
		if ek.KeyId == 0 {
			continue
		}
		k := ks.ByPGPKeyID(ek.KeyId)
		if k == nil || k.Owner != keystore.OwnerSelf || !k.Usable() {
			continue
		}
		if priv := decryptionKeyByID(k, ek.KeyId); priv != nil {
			cands = append(cands, pgpCandidate{i, k, priv})
		}
	}
	// Hidden recipients (key id 0) cost one private-key operation per key:
	// only then is every usable self key tried.
	for i, ek := range eks {
		if ek.KeyId != 0 {
			continue
		}
		for _, k := range ks.Usable(keystore.OwnerSelf) {
			for _, priv := range decryptionKeys(k) {
				cands = append(cands, pgpCandidate{i, k, priv})
			}
		}
	}
	for _, cand := range cands {
		if len(op.Tried) == 0 || op.Tried[len(op.Tried)-1] != cand.key.ID {
			op.Tried = append(op.Tried, cand.key.ID)
		}
		lit, sigs, err := c.decrypt(msg, cand)
		if err != nil {
			if errors.Is(err, ErrTooLarge) {
				return nil, err
			}
			lastErr = err
			continue
		}
		op.Plaintext = lit
		op.DecryptedBy = cand.key.ID
		verifiedBy, err := verifyPGPSignatures(ks, lit, sigs, now)
		if err != nil {
			return nil, err
		}
		op.VerifiedBy = verifiedBy
		return op, nil
	}
	reason := "no usable self key among the recipients"
	if lastErr != nil {
		reason = "decryption failed"
	}
	return nil, &EncryptionError{Recipients: recipients, Tried: op.Tried, Reason: reason, Err: lastErr}
}

type pgpCandidate struct {
	ek   int // index of the PKESK packet
	key  *keystore.Key
	priv *packet.PrivateKey
}

// readEncryptedHead parses msg up to its encrypted data packet (without
// decrypting anything), refusing
// messages that are not encrypted or lack integrity protection.
func readEncryptedHead(msg []byte) ([]*packet.EncryptedKey, packet.EncryptedDataPacket, *bytes.Reader, error) {
	br := bytes.NewReader(msg)
	pr := packet.NewReader(br)
	var eks []*packet.EncryptedKey
	for {
		p, err := pr.Next()
		if err == io.EOF {
			return nil, nil, nil, malformed("no encrypted data packet", nil)
		}
		if err != nil {
			return nil, nil, nil, malformed("not an OpenPGP message", err)
		}
		switch p := p.(type) {
		case *packet.EncryptedKey:
			eks = append(eks, p)
		case *packet.SymmetricKeyEncrypted:
			// Passphrase-encrypted session keys are not part of the protocol.
		case *packet.SymmetricallyEncrypted:
			if !p.IntegrityProtected {
				return nil, nil, nil, malformed("message is not integrity protected (no MDC)", nil)
			}
			if len(eks) == 0 {
				return nil, nil, nil, malformed("no public-key encrypted session key", nil)
			}
			return eks, p, br, nil
		case *packet.AEADEncrypted:
			// The pre-standard (RFC 4880bis v5) AEAD packet; RFC 9580 uses
			// SEIPD v2 instead, which is accepted above.
			return nil, nil, nil, malformed("unsupported AEAD encrypted data packet", nil)
		default:
			return nil, nil, nil, malformed(fmt.Sprintf("unexpected packet %T before encrypted data", p), nil)
		}
	}
}

// allowedCipher refuses everything but AES (no CAST5, IDEA, 3DES...).
func allowedCipher(c packet.CipherFunction) bool {
	switch c {
	case packet.CipherAES128, packet.CipherAES192, packet.CipherAES256:
		return true
	}
	return false
}

// allowedHash refuses MD5, SHA-1 and RIPEMD-160 signatures.
func allowedHash(h crypto.Hash) bool {
	switch h {
	case crypto.SHA224, crypto.SHA256, crypto.SHA384, crypto.SHA512, crypto.SHA3_256, crypto.SHA3_512:
		return true
	}
	return false
}

// decrypt decrypts msg with one candidate key. It re-parses msg because a
// failed attempt consumes the encrypted data stream; parsing costs
// microseconds next to the RSA operation. It returns the literal data and
// the signature packets, after the integrity check has passed.
func (c *pgpCodec) decrypt(msg []byte, cand pgpCandidate) ([]byte, []*packet.Signature, error) {
	eks, edp, outer, err := readEncryptedHead(msg)
	if err != nil {
		return nil, nil, err
	}
	ek := eks[cand.ek]
	var cipher packet.CipherFunction
	var sessionKey []byte
	// Implicit rejection: when the RSA PKCS#1 v1.5 session key does not
	// unpad, go on with a random key so that the failure costs the same
	// symmetric work and fails at the same place (the integrity check) as a
	// well-padded wrong key. This denies a Bleichenbacher timing oracle.
	sessionErr := ek.Decrypt(cand.priv, nil)
	if sessionErr == nil {
		cipher, sessionKey = ek.CipherFunc, ek.Key
	} else {
		cipher, sessionKey = packet.CipherAES256, make([]byte, 32)
		rand.Read(sessionKey)
	}
	if se, ok := edp.(*packet.SymmetricallyEncrypted); ok && se.Version == 2 {
		cipher = se.Cipher
	}
	if !allowedCipher(cipher) {
		return nil, nil, fmt.Errorf("refused symmetric cipher %d", cipher)
	}
	lit, sigs, err := c.readDecrypted(edp, cipher, sessionKey)
	if sessionErr != nil {
		return nil, nil, fmt.Errorf("session key: %w", sessionErr)
	}
	if err != nil {
		return nil, nil, err
	}
	// Nothing may follow the encrypted data: unauthenticated trailing
	// packets (a stray signature, a second MDC) are refused, as gpg does.
	if outer.Len() != 0 {
		return nil, nil, fmt.Errorf("%d bytes after the encrypted packet", outer.Len())
	}
	return lit, sigs, nil
}

// readDecrypted decrypts the data packet and collects the literal data and
// the signature packets, enforcing the plaintext limit and the MDC.
func (c *pgpCodec) readDecrypted(edp packet.EncryptedDataPacket, cipher packet.CipherFunction, key []byte) ([]byte, []*packet.Signature, error) {
	rc, err := edp.Decrypt(cipher, key)
	if err != nil {
		return nil, nil, fmt.Errorf("data: %w", err)
	}
	limit := int64(c.cfg.MaxPlaintextBytes)
	pr := packet.NewReader(rc)
	var lit []byte
	var sigs []*packet.Signature
	compressed := false
	for {
		p, err := pr.Next()
		if err == io.EOF {
			break
		}
		if errors.Is(err, errLimit) {
			return nil, nil, tooLarge("decompressed payload", c.cfg.MaxPlaintextBytes)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("decrypted packets: %w", err)
		}
		switch p := p.(type) {
		case *packet.Compressed:
			if compressed || lit != nil {
				return nil, nil, fmt.Errorf("unexpected compressed packet")
			}
			compressed = true
			// The limit applies to the decompressed stream: a zip bomb stops
			// at limit bytes.
			if err := pr.Push(&limitReader{r: p.Body, n: limit + 1}); err != nil {
				return nil, nil, err
			}
		case *packet.OnePassSignature:
			// Signatures are matched by issuer below, not by position.
		case *packet.LiteralData:
			if lit != nil {
				return nil, nil, fmt.Errorf("more than one literal data packet")
			}
			lit, err = io.ReadAll(io.LimitReader(p.Body, limit+1))
			if errors.Is(err, errLimit) {
				return nil, nil, tooLarge("decompressed payload", c.cfg.MaxPlaintextBytes)
			}
			if err != nil {
				return nil, nil, fmt.Errorf("literal data: %w", err)
			}
			if int64(len(lit)) > limit {
				return nil, nil, tooLarge("decrypted payload", c.cfg.MaxPlaintextBytes)
			}
		case *packet.Signature:
			sigs = append(sigs, p)
		default:
			return nil, nil, fmt.Errorf("unexpected packet %T in encrypted data", p)
		}
	}
	// Close checks the MDC / AEAD tag over everything read.
	if err := rc.Close(); err != nil {
		return nil, nil, fmt.Errorf("integrity check: %w", err)
	}
	if lit == nil {
		return nil, nil, fmt.Errorf("no literal data")
	}
	return lit, sigs, nil
}

// decryptionKeyByID returns the private key of k with the 64-bit id, if it is
// marked for encryption.
func decryptionKeyByID(k *keystore.Key, id uint64) *packet.PrivateKey {
	e := k.PGP
	for _, sk := range e.Subkeys {
		if sk.PublicKey.KeyId == id && sk.PrivateKey != nil && !sk.PrivateKey.Encrypted && canEncrypt(sk.Sig) {
			return sk.PrivateKey
		}
	}
	if e.PrimaryKey.KeyId == id && e.PrivateKey != nil && !e.PrivateKey.Encrypted {
		if sig, _ := e.PrimarySelfSignature(); canEncrypt(sig) {
			return e.PrivateKey
		}
	}
	return nil
}

// decryptionKeys returns the encryption subkeys of k with private material.
// Unlike go-crypto's DecryptionKeys it never adds the primary key.
func decryptionKeys(k *keystore.Key) []*packet.PrivateKey {
	var out []*packet.PrivateKey
	for _, sk := range k.PGP.Subkeys {
		if sk.PrivateKey != nil && !sk.PrivateKey.Encrypted && canEncrypt(sk.Sig) {
			out = append(out, sk.PrivateKey)
		}
	}
	return out
}

func canEncrypt(sig *packet.Signature) bool {
	return sig != nil && sig.FlagsValid && (sig.FlagEncryptCommunications || sig.FlagEncryptStorage)
}

// issuerKeyID returns the 64-bit key id a signature names.
func issuerKeyID(sig *packet.Signature) uint64 {
	if sig.IssuerKeyId != nil {
		return *sig.IssuerKeyId
	}
	if n := len(sig.IssuerFingerprint); n >= 20 {
		if sig.Version == 4 {
			return binary.BigEndian.Uint64(sig.IssuerFingerprint[n-8:])
		}
		return binary.BigEndian.Uint64(sig.IssuerFingerprint[:8])
	}
	return 0
}

// verifyPGPSignatures accepts the payload if ANY signature verifies with a
// usable, unexpired peer key. Unknown, expired and non-peer signers are
// ignored, as the spec requires.
func verifyPGPSignatures(ks *keystore.Keyset, lit []byte, sigs []*packet.Signature, now time.Time) (string, error) {
	var signers []string
	var lastErr error
	for _, sig := range sigs {
		id := issuerKeyID(sig)
		signers = append(signers, fmt.Sprintf("%016X", id))
		if sig.SigType != packet.SigTypeBinary && sig.SigType != packet.SigTypeText {
			continue
		}
		k := ks.ByPGPKeyID(id)
		if id == 0 || k == nil || k.Owner != keystore.OwnerPeer || !k.Usable() || k.Expired(now) {
			continue
		}
		if !allowedHash(sig.Hash) {
			lastErr = fmt.Errorf("signature by %016X uses refused hash %v", id, sig.Hash)
			continue
		}
		key, ok := k.PGP.SigningKeyById(now, id)
		if !ok {
			lastErr = fmt.Errorf("key %016X cannot sign at %s (expired, revoked or not a signing key)", id, now.UTC().Format(time.RFC3339))
			continue
		}
		h := sig.Hash.New()
		if salt := sig.Salt(); salt != nil {
			h.Write(salt)
		}
		var w io.Writer = h
		if sig.SigType == packet.SigTypeText {
			w = openpgp.NewCanonicalTextHash(h)
		}
		w.Write(lit)
		if err := key.PublicKey.VerifySignature(h, sig); err != nil {
			lastErr = err
			continue
		}
		if sig.SigExpired(now) {
			lastErr = fmt.Errorf("signature by %016X expired", id)
			continue
		}
		return k.ID, nil
	}
	reason := "no signature by a usable peer key"
	if len(sigs) == 0 {
		reason = "message is not signed"
	} else if lastErr != nil {
		reason = "signature verification failed"
	}
	return "", &SignatureError{Signers: signers, Reason: reason, Err: lastErr}
}

// Seal implements Codec: one message signed (SHA-384) by the self primary key
// and encrypted (AES-256) to every peer recipient key.
func (c *pgpCodec) Seal(ctx context.Context, ks *keystore.Keyset, plaintext []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkKind(ks, keystore.KindPGP); err != nil {
		return nil, err
	}
	now := c.cfg.Now()
	signer := ks.Primary(keystore.OwnerSelf)
	if signer == nil {
		return nil, fmt.Errorf("%w: keyset %s has no self primary key", ErrNoKey, ks.ID)
	}
	if sk, ok := signer.PGP.SigningKey(now); !ok || sk.PrivateKey == nil || sk.PrivateKey.Encrypted {
		return nil, fmt.Errorf("%w: self primary %s has no usable private signing key", ErrNoKey, signer.ID)
	}
	var to []*openpgp.Entity
	for _, k := range ks.Recipients(now) {
		if _, ok := k.PGP.EncryptionKey(now); ok {
			to = append(to, k.PGP)
		}
	}
	if len(to) == 0 {
		return nil, fmt.Errorf("%w: keyset %s has no peer key to encrypt to", ErrNoKey, ks.ID)
	}
	// go-crypto takes the hash and cipher from the intersection of the
	// recipients' preferences, using these when they are listed (gpg and
	// go-crypto keys list both); it never picks SHA-1 or a non-AES cipher.
	pcfg := &packet.Config{
		DefaultHash:   crypto.SHA384,
		DefaultCipher: packet.CipherAES256,
		Time:          c.cfg.Now,
	}
	if c.cfg.PGP.Compress {
		pcfg.DefaultCompressionAlgo = packet.CompressionZLIB
	}
	var buf bytes.Buffer
	var out io.Writer = &buf
	var armorW io.WriteCloser
	if c.cfg.PGP.Armor {
		w, err := armor.Encode(&buf, "PGP MESSAGE", nil)
		if err != nil {
			return nil, err
		}
		armorW, out = w, w
	}
	if c.cfg.PGP.SignWithAllActive {
		if err := c.sealMulti(out, to, pgpSigners(ks, now), plaintext, pcfg); err != nil {
			return nil, fmt.Errorf("envelope: pgp encrypt: %w", err)
		}
	} else {
		pt, err := openpgp.Encrypt(out, to, signer.PGP, &openpgp.FileHints{IsBinary: true}, pcfg)
		if err != nil {
			return nil, fmt.Errorf("envelope: pgp encrypt: %w", err)
		}
		if _, err := pt.Write(plaintext); err != nil {
			return nil, fmt.Errorf("envelope: pgp encrypt: %w", err)
		}
		if err := pt.Close(); err != nil {
			return nil, fmt.Errorf("envelope: pgp encrypt: %w", err)
		}
	}
	if armorW != nil {
		if err := armorW.Close(); err != nil {
			return nil, err
		}
	}
	enc := base64.RawURLEncoding
	if c.cfg.PGP.Padded {
		enc = base64.URLEncoding
	}
	dst := make([]byte, enc.EncodedLen(buf.Len()))
	enc.Encode(dst, buf.Bytes())
	return dst, nil
}

// errLimit reports a decompressed stream longer than MaxPlaintextBytes. Unlike
// io.LimitReader, which ends with a plain EOF that the packet parser turns
// into "unexpected EOF", it lets Open say ErrTooLarge.
var errLimit = errors.New("decompressed stream exceeds the plaintext limit")

type limitReader struct {
	r io.Reader
	n int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errLimit
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

package keystore

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	jose "github.com/go-jose/go-jose/v4"
)

// material is one key ready to be stored: its metadata, public half and, for
// self keys, the unencrypted private half (wrapped by the KEK before it
// touches the database).
type material struct {
	id         string
	kind       Kind
	created    time.Time
	expires    time.Time
	public     []byte // binary OpenPGP public key, or public JWK JSON
	private    []byte // unencrypted binary OpenPGP secret key, or private JWK JSON; nil if none
	algorithm  string // e.g. "RSA-2048", "EC-P256"
	userID     string // PGP primary user id; empty for JWK
	canEncrypt bool   // an encryption-capable (sub)key / JWK usable for JWE
	canSign    bool
}

// pgpFingerprint is the key id used for PGP keys: the primary key
// fingerprint in upper-case hex.
func pgpFingerprint(e *openpgp.Entity) string {
	return strings.ToUpper(fmt.Sprintf("%x", e.PrimaryKey.Fingerprint))
}

// checkPGPAlgo enforces the algorithm policy on one OpenPGP (sub)key: RSA of
// at least 2048 bits or a modern elliptic-curve algorithm. DSA and ElGamal
// are refused.
func checkPGPAlgo(pk *packet.PublicKey) (string, error) {
	switch pk.PubKeyAlgo {
	case packet.PubKeyAlgoRSA, packet.PubKeyAlgoRSAEncryptOnly, packet.PubKeyAlgoRSASignOnly:
		bits, err := pk.BitLength()
		if err != nil {
			return "", fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		if bits < 2048 {
			return "", fmt.Errorf("%w: %X is RSA-%d", ErrWeakKey, pk.Fingerprint, bits)
		}
		return fmt.Sprintf("RSA-%d", bits), nil
	case packet.PubKeyAlgoECDH, packet.PubKeyAlgoECDSA, packet.PubKeyAlgoEdDSA,
		packet.PubKeyAlgoX25519, packet.PubKeyAlgoEd25519, packet.PubKeyAlgoX448, packet.PubKeyAlgoEd448:
		return fmt.Sprintf("ECC(%d)", pk.PubKeyAlgo), nil
	}
	return "", fmt.Errorf("%w: %X uses OpenPGP algorithm %d", ErrUnsupportedKey, pk.Fingerprint, pk.PubKeyAlgo)
}

func lifetimeEnd(created time.Time, secs *uint32) time.Time {
	if secs == nil || *secs == 0 {
		return time.Time{}
	}
	return created.Add(time.Duration(*secs) * time.Second)
}

func earlier(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero():
		return a
	case b.Before(a):
		return b
	}
	return a
}

// pgpMaterial checks one OpenPGP entity against the import policy and
// serialises it. now is the clock for revocation and expiry checks; when
// allowExpired is set an expired key passes (the caller stores it disabled).
func pgpMaterial(e *openpgp.Entity, owner Owner, passphrase []byte, now time.Time, allowExpired bool) (*material, error) {
	fp := pgpFingerprint(e)
	fail := func(err error) (*material, error) { return nil, fmt.Errorf("PGP key %s: %w", fp, err) }
	if e.Revoked(now) {
		return fail(ErrRevoked)
	}
	selfSig, ident := e.PrimarySelfSignature()
	if selfSig == nil {
		return fail(fmt.Errorf("%w: no valid self-signature", ErrMalformed))
	}
	if ident != nil && ident.Revoked(now) {
		return fail(fmt.Errorf("%w: primary user id revoked", ErrRevoked))
	}
	hasPrivate := e.PrivateKey != nil && !e.PrivateKey.Dummy()
	if owner == OwnerPeer && hasPrivate {
		return fail(ErrUnexpectedPrivate)
	}
	if owner == OwnerSelf && !hasPrivate {
		return fail(ErrNoPrivateKey)
	}
	algo, err := checkPGPAlgo(e.PrimaryKey)
	if err != nil {
		return fail(err)
	}
	m := &material{
		id:      fp,
		kind:    KindPGP,
		created: e.PrimaryKey.CreationTime.UTC(),
		expires: lifetimeEnd(e.PrimaryKey.CreationTime, selfSig.KeyLifetimeSecs),
		canSign: selfSig.FlagsValid && selfSig.FlagSign && e.PrimaryKey.CanSign(),
	}
	m.algorithm = algo
	if ident != nil {
		m.userID = ident.Name
	}
	// Encryption capability ignores expiry here (expiry is judged once, on
	// the whole key, below); revoked subkeys never count.
	var encExpiry time.Time
	encFound := false
	for _, sk := range e.Subkeys {
		if sk.Revoked(now) || sk.Sig == nil {
			continue
		}
		if _, err := checkPGPAlgo(sk.PublicKey); err != nil {
			return fail(err)
		}
		if sk.Sig.FlagsValid && (sk.Sig.FlagEncryptCommunications || sk.Sig.FlagEncryptStorage) && sk.PublicKey.PubKeyAlgo.CanEncrypt() {
			if owner == OwnerSelf && (sk.PrivateKey == nil || sk.PrivateKey.Dummy()) {
				continue // we could not decrypt with it
			}
			end := lifetimeEnd(sk.PublicKey.CreationTime, sk.Sig.KeyLifetimeSecs)
			if !encFound || end.IsZero() || (!encExpiry.IsZero() && end.After(encExpiry)) {
				encExpiry = end
			}
			encFound = true
		}
		if sk.Sig.FlagsValid && sk.Sig.FlagSign && sk.PublicKey.CanSign() {
			m.canSign = true
		}
	}
	if !encFound && selfSig.FlagsValid && (selfSig.FlagEncryptCommunications || selfSig.FlagEncryptStorage) && e.PrimaryKey.PubKeyAlgo.CanEncrypt() {
		encFound = true
	}
	if !encFound {
		return fail(ErrNoEncryptionKey)
	}
	m.canEncrypt = true
	m.expires = earlier(m.expires, encExpiry).UTC()
	if !m.expires.IsZero() && !now.Before(m.expires) && !allowExpired {
		return fail(fmt.Errorf("%w on %s (import with AllowExpired to keep it disabled)", ErrExpired, m.expires.Format(time.DateOnly)))
	}

	var pub bytes.Buffer
	if err := e.Serialize(&pub); err != nil {
		return fail(fmt.Errorf("serialize public key: %w", err))
	}
	m.public = pub.Bytes()

	if owner == OwnerSelf {
		if err := decryptEntity(e, passphrase); err != nil {
			return fail(err)
		}
		var priv bytes.Buffer
		// WithoutSigning keeps the operator's own self-signatures as they are.
		if err := e.SerializePrivateWithoutSigning(&priv, nil); err != nil {
			return fail(fmt.Errorf("serialize secret key: %w", err))
		}
		m.private = priv.Bytes()
	}
	return m, nil
}

// decryptEntity removes the operator's passphrase protection, so the secret
// key can be re-wrapped by the KEK.
func decryptEntity(e *openpgp.Entity, passphrase []byte) error {
	encrypted := e.PrivateKey.Encrypted
	for _, sk := range e.Subkeys {
		if sk.PrivateKey != nil && sk.PrivateKey.Encrypted && !sk.PrivateKey.Dummy() {
			encrypted = true
		}
	}
	if !encrypted {
		return nil
	}
	if len(passphrase) == 0 {
		return ErrPassphraseRequired
	}
	if err := e.DecryptPrivateKeys(passphrase); err != nil {
		return fmt.Errorf("%w: %v", ErrBadPassphrase, err)
	}
	return nil
}

// readPGP parses armored or binary OpenPGP key data holding one or more keys.
func readPGP(data []byte) (el openpgp.EntityList, err error) {
	defer func() {
		if r := recover(); r != nil {
			el, err = nil, fmt.Errorf("%w: OpenPGP parser panic: %v", ErrMalformed, r)
		}
	}()
	trimmed := bytes.TrimSpace(data)
	if bytes.HasPrefix(trimmed, []byte("-----BEGIN PGP")) {
		// Several armored blocks may be concatenated (gpg --export --armor
		// of several keys writes one block; cat of several files writes many).
		rest := trimmed
		for len(bytes.TrimSpace(rest)) > 0 {
			block, err := armor.Decode(bytes.NewReader(rest))
			if err != nil {
				return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
			}
			if block.Type != openpgp.PublicKeyType && block.Type != openpgp.PrivateKeyType {
				return nil, fmt.Errorf("%w: armor type %q is not a key block", ErrMalformed, block.Type)
			}
			part, err := openpgp.ReadKeyRing(block.Body)
			if err != nil {
				return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
			}
			el = append(el, part...)
			end := bytes.Index(rest, []byte("-----END PGP"))
			if end < 0 {
				break
			}
			nl := bytes.IndexByte(rest[end:], '\n')
			if nl < 0 {
				break
			}
			rest = rest[end+nl+1:]
		}
	} else {
		el, err = openpgp.ReadKeyRing(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
	}
	if len(el) == 0 {
		return nil, ErrNoKeys
	}
	return el, nil
}

// readPGPEntity parses exactly one stored key (public or unencrypted secret).
func readPGPEntity(data []byte) (*openpgp.Entity, error) {
	el, err := openpgp.ReadKeyRing(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	if len(el) != 1 {
		return nil, fmt.Errorf("%d entities in one record", len(el))
	}
	return el[0], nil
}

// jwkThumbprint is the RFC 7638 SHA-256 thumbprint in unpadded base64url,
// used as kid when a JWK has none.
func jwkThumbprint(k *jose.JSONWebKey) (string, error) {
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// splitJWKs accepts a JWKS ({"keys": [...]}) or a single JWK and returns the
// raw members, refusing symmetric keys before go-jose sees them.
func splitJWKs(data []byte) ([]json.RawMessage, error) {
	var probe struct {
		Keys []json.RawMessage `json:"keys"`
		Kty  string            `json:"kty"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	raws := probe.Keys
	if probe.Kty != "" {
		raws = []json.RawMessage{data}
	}
	if len(raws) == 0 {
		return nil, ErrNoKeys
	}
	return raws, nil
}

// jwkMaterial checks one raw JWK against the import policy.
func jwkMaterial(raw json.RawMessage, owner Owner, now time.Time) (m *material, err error) {
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("%w: JWK parser panic: %v", ErrMalformed, r)
		}
	}()
	var head struct {
		Kty string `json:"kty"`
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if head.Kty == "oct" {
		return nil, fmt.Errorf("JWK %q: %w", head.Kid, ErrSymmetricKey)
	}
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(raw); err != nil {
		return nil, fmt.Errorf("JWK %q: %w: %v", head.Kid, ErrMalformed, err)
	}
	return jwkToMaterial(&k, owner, now)
}

func jwkToMaterial(k *jose.JSONWebKey, owner Owner, now time.Time) (*material, error) {
	if !k.Valid() {
		return nil, fmt.Errorf("JWK %q: %w: invalid key", k.KeyID, ErrMalformed)
	}
	m := &material{kind: KindJWK, created: now.UTC().Truncate(time.Second)}
	switch key := k.Key.(type) {
	case *rsa.PublicKey:
		m.algorithm = fmt.Sprintf("RSA-%d", key.N.BitLen())
		if key.N.BitLen() < 2048 {
			return nil, fmt.Errorf("JWK %q: %w: RSA-%d", k.KeyID, ErrWeakKey, key.N.BitLen())
		}
	case *rsa.PrivateKey:
		m.algorithm = fmt.Sprintf("RSA-%d", key.N.BitLen())
		if key.N.BitLen() < 2048 {
			return nil, fmt.Errorf("JWK %q: %w: RSA-%d", k.KeyID, ErrWeakKey, key.N.BitLen())
		}
	case *ecdsa.PublicKey:
		m.algorithm = "EC-" + key.Curve.Params().Name
	case *ecdsa.PrivateKey:
		m.algorithm = "EC-" + key.Curve.Params().Name
	case []byte:
		return nil, fmt.Errorf("JWK %q: %w", k.KeyID, ErrSymmetricKey)
	default:
		return nil, fmt.Errorf("JWK %q: %w: %T", k.KeyID, ErrUnsupportedKey, k.Key)
	}
	// RSA keys serve JWE (RSA1_5/RSA-OAEP) and JWS; EC keys serve JWS here
	// (ECDH-ES is not part of the OTPC profile). "use" narrows it.
	_, isRSA := k.Key.(*rsa.PublicKey)
	if _, ok := k.Key.(*rsa.PrivateKey); ok {
		isRSA = true
	}
	m.canEncrypt = isRSA && k.Use != "sig"
	m.canSign = k.Use != "enc"
	if k.KeyID == "" {
		kid, err := jwkThumbprint(k)
		if err != nil {
			return nil, fmt.Errorf("%w: thumbprint: %v", ErrMalformed, err)
		}
		k.KeyID = kid
	}
	m.id = k.KeyID
	pub := k.Public()
	if !pub.Valid() {
		return nil, fmt.Errorf("JWK %q: %w: no public half", k.KeyID, ErrMalformed)
	}
	var err error
	if m.public, err = pub.MarshalJSON(); err != nil {
		return nil, fmt.Errorf("JWK %q: %w", k.KeyID, err)
	}
	switch owner {
	case OwnerPeer:
		if !k.IsPublic() {
			return nil, fmt.Errorf("JWK %q: %w", k.KeyID, ErrUnexpectedPrivate)
		}
	case OwnerSelf:
		if k.IsPublic() {
			return nil, fmt.Errorf("JWK %q: %w", k.KeyID, ErrNoPrivateKey)
		}
		if m.private, err = k.MarshalJSON(); err != nil {
			return nil, fmt.Errorf("JWK %q: %w", k.KeyID, err)
		}
	}
	return m, nil
}

// ecCurve maps the curve names GenerateOptions accepts.
func ecCurve(name string) elliptic.Curve {
	switch name {
	case "P-256":
		return elliptic.P256()
	}
	return nil
}

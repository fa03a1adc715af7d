package keystore

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	jose "github.com/go-jose/go-jose/v4"
)

// Lifetimes the spec sets for our private keys (otpc-v2 §9).
const (
	// DefaultLifetime is the expiry of generated keys when none is asked for.
	DefaultLifetime = 365 * 24 * time.Hour
	// MaxLifetime is the longest lifetime Generate accepts.
	MaxLifetime = 2 * 365 * 24 * time.Hour
)

// Algorithm names accepted by GenerateOptions.Algorithm.
const (
	// AlgRSA is the default: an RSA key of Bits bits.
	AlgRSA = "RSA"
	// AlgECP256 generates an EC P-256 JWK, meant for JWS (ES256) only; it
	// is refused for PGP keysets.
	AlgECP256 = "EC-P256"
)

// GenerateOptions says what key Store.Generate makes. The zero value makes an
// RSA-2048 key valid for one year.
type GenerateOptions struct {
	// Algorithm is AlgRSA (default) or, for JWK keysets, AlgECP256.
	Algorithm string
	// Bits is the RSA modulus size: 2048 (default), 3072 or 4096.
	Bits int
	// Lifetime until expiry; 0 means DefaultLifetime; above MaxLifetime is
	// refused with ErrLifetimeTooLong.
	Lifetime time.Duration
	// Name, Comment and Email form the PGP user id "Name (Comment) <Email>".
	// Ignored for JWK. Name defaults to "otpcgate".
	Name, Comment, Email string
	// Use, for JWK only, sets the "use" member ("enc" or "sig"). Empty (the
	// default) leaves it unset so the key serves both JWE and JWS and the
	// envelope configuration alone picks algorithms. "alg" is never set.
	Use string
	// Now overrides the clock (tests); nil means time.Now.
	Now func() time.Time
}

func (o *GenerateOptions) normalize() error {
	if o.Algorithm == "" {
		o.Algorithm = AlgRSA
	}
	if o.Algorithm == AlgRSA {
		if o.Bits == 0 {
			o.Bits = 2048
		}
		if o.Bits != 2048 && o.Bits != 3072 && o.Bits != 4096 {
			return fmt.Errorf("%w: asked for %d", ErrWeakKey, o.Bits)
		}
	} else if o.Algorithm != AlgECP256 {
		return fmt.Errorf("%w: %q", ErrUnsupportedKey, o.Algorithm)
	}
	if o.Lifetime == 0 {
		o.Lifetime = DefaultLifetime
	}
	if o.Lifetime < 0 {
		return fmt.Errorf("keystore: negative key lifetime %v", o.Lifetime)
	}
	if o.Lifetime > MaxLifetime {
		return fmt.Errorf("%w: asked for %v", ErrLifetimeTooLong, o.Lifetime)
	}
	if o.Name == "" {
		o.Name = "otpcgate"
	}
	if o.Use != "" && o.Use != "enc" && o.Use != "sig" {
		return fmt.Errorf("keystore: JWK use %q is neither enc nor sig", o.Use)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// generatePGP makes an RSA OpenPGP key the way the spec asks: primary key
// usage sign+certify, an RSA encryption subkey, SHA-384 and AES-256 as
// preferred algorithms, both keys expiring after opts.Lifetime.
func generatePGP(opts GenerateOptions) (*material, error) {
	if opts.Algorithm != AlgRSA {
		return nil, fmt.Errorf("%w: PGP keys are RSA only", ErrUnsupportedKey)
	}
	now := opts.Now().UTC().Truncate(time.Second)
	cfg := &packet.Config{
		Algorithm:       packet.PubKeyAlgoRSA,
		RSABits:         opts.Bits,
		DefaultHash:     crypto.SHA384,
		DefaultCipher:   packet.CipherAES256,
		KeyLifetimeSecs: uint32(opts.Lifetime / time.Second),
		Time:            func() time.Time { return now },
	}
	e, err := openpgp.NewEntity(opts.Name, opts.Comment, opts.Email, cfg)
	if err != nil {
		return nil, fmt.Errorf("keystore: generate PGP key: %w", err)
	}
	// NewEntity's encryption subkey never expires on its own (it dies with
	// the primary). Give it the same expiry explicitly, as gpg does, so
	// every implementation sees it.
	sk := &e.Subkeys[0]
	life := cfg.KeyLifetimeSecs
	sk.Sig.KeyLifetimeSecs = &life
	if err := sk.Sig.SignKey(sk.PublicKey, e.PrivateKey, cfg); err != nil {
		return nil, fmt.Errorf("keystore: sign PGP subkey binding: %w", err)
	}
	var priv bytes.Buffer
	if err := e.SerializePrivateWithoutSigning(&priv, nil); err != nil {
		return nil, fmt.Errorf("keystore: serialize PGP key: %w", err)
	}
	// Re-read through the import path so generated and imported keys are
	// checked and described identically.
	el, err := readPGP(priv.Bytes())
	if err != nil {
		return nil, err
	}
	return pgpMaterial(el[0], OwnerSelf, nil, now, false)
}

// generateJWK makes a private JWK with kid = RFC 7638 thumbprint, no "alg",
// and "use" as asked.
func generateJWK(opts GenerateOptions) (*material, error) {
	var key any
	switch opts.Algorithm {
	case AlgRSA:
		k, err := rsa.GenerateKey(rand.Reader, opts.Bits)
		if err != nil {
			return nil, fmt.Errorf("keystore: generate RSA key: %w", err)
		}
		key = k
	case AlgECP256:
		k, err := ecdsa.GenerateKey(ecCurve("P-256"), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("keystore: generate EC key: %w", err)
		}
		key = k
	}
	jwk := &jose.JSONWebKey{Key: key, Use: opts.Use}
	now := opts.Now().UTC().Truncate(time.Second)
	m, err := jwkToMaterial(jwk, OwnerSelf, now)
	if err != nil {
		return nil, err
	}
	m.expires = now.Add(opts.Lifetime)
	return m, nil
}

// Generate creates a new self key in the keyset, in state pending: an
// OpenPGP key for PGP keysets, a private JWK for JWK keysets (see
// GenerateOptions). Key generation runs before any lock is taken.
func (s *Store) Generate(ctx context.Context, actor, keysetID string, opts GenerateOptions) (KeyInfo, error) {
	if err := opts.normalize(); err != nil {
		return KeyInfo{}, err
	}
	info, err := keysetInfo(ctx, s.db, keysetID)
	if err != nil {
		return KeyInfo{}, err
	}
	var m *material
	switch info.Kind {
	case KindPGP:
		m, err = generatePGP(opts)
	case KindJWK:
		m, err = generateJWK(opts)
	}
	if err != nil {
		return KeyInfo{}, err
	}
	out, err := s.insert(ctx, actor, keysetID, info.Kind, OwnerSelf, []*material{m}, StatePending, "generated")
	if err != nil {
		return KeyInfo{}, err
	}
	return out[0], nil
}

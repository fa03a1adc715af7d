// Package envelope opens inbound OTPC v2 bodies (decrypt, then verify) and
// seals outbound ones (sign, then encrypt), for the two application-layer
// protections of the spec (§9): PGP and nested JWS-in-JWE.
//
// Roles come from the keyset alone: keystore.OwnerSelf keys carry private
// material and decrypt and sign; keystore.OwnerPeer keys are public and verify
// and are encrypted to. The gateway (self = integrator, peer = Google) and the
// Google simulator (roles swapped) use the same codecs.
//
// Codecs hold only configuration (and buffer pools), so one value serves any
// number of goroutines and keysets; the keyset snapshot is passed on every
// call.
//
// Errors map to the spec's answers (§9.3) with errors.Is:
//
//	ErrTooLarge                  body or decompressed payload over the limits
//	ErrEncryption (ErrMalformed) invalidPayloadEncryption, HTTP 400
//	ErrSignature                 invalidPayloadSignature, HTTP 401
//	ErrNoKey                     our configuration: no usable key (Seal, or a
//	                             keyset of the wrong kind)
//
// *EncryptionError and *SignatureError (errors.As) carry the key ids seen
// and tried, for logs.
package envelope

import (
	"context"
	"fmt"
	"time"

	"github.com/otpcgate/otpcgate/keystore"
)

// Format names an application-layer protection.
type Format string

// Formats.
const (
	// FormatPGP is an OpenPGP signed-and-encrypted message, base64url encoded.
	FormatPGP Format = "pgp"
	// FormatJOSE is a compact JWS nested in a compact JWE.
	FormatJOSE Format = "jose"
)

// Content types of the two formats (spec §2.4).
const (
	ContentTypePGP  = MediaTypePGP + "; charset=utf-8"
	ContentTypeJOSE = MediaTypeJOSE + "; charset=utf-8"
)

// Media types of the two formats, without parameters (spec §2.4).
const (
	MediaTypePGP  = "application/octet-stream"
	MediaTypeJOSE = "application/jose"
)

// Codec opens and seals bodies of one format.
type Codec interface {
	// Format reports which protection the codec implements.
	Format() Format
	// ContentType is the HTTP Content-Type of bodies of this format.
	ContentType() string
	// Open decrypts body with one of ks's usable self keys and verifies that
	// at least one signature is by a usable, unexpired peer key. Errors match
	// ErrTooLarge, ErrMalformed, ErrEncryption or ErrSignature (ErrNoKey if
	// ks is nil or of the other kind); on error the result is nil.
	Open(ctx context.Context, ks *keystore.Keyset, body []byte) (*Opened, error)
	// Seal signs plaintext with ks's self primary key and encrypts it to the
	// peer recipients. It fails with ErrNoKey when either is missing.
	Seal(ctx context.Context, ks *keystore.Keyset, plaintext []byte) ([]byte, error)
}

// Opened is the result of a successful Open.
type Opened struct {
	// Plaintext is the verified payload (the JSON message).
	Plaintext []byte
	// DecryptedBy is the ID of the self key that decrypted the body.
	DecryptedBy string
	// VerifiedBy is the ID of the peer key whose signature verified.
	VerifiedBy string
	// Tried lists the IDs of self keys a decryption was attempted with, in
	// order; more than one only for hidden recipients or a JWE without kid.
	Tried []string
}

// Config tunes a codec. The zero value is valid and selects the defaults
// documented on each field.
type Config struct {
	// MaxBodyBytes bounds the body handed to Open; larger bodies fail with
	// ErrTooLarge before any parsing or crypto. Default 1 MiB.
	MaxBodyBytes int
	// MaxPlaintextBytes bounds the decrypted (and decompressed) payload.
	// Default 4 × MaxBodyBytes.
	MaxPlaintextBytes int
	// Now is the clock for key and signature expiry. Default time.Now.
	Now func() time.Time

	// PGP settings.
	PGP PGPConfig
	// JOSE settings.
	JOSE JOSEConfig
}

// PGPConfig tunes the PGP codec.
type PGPConfig struct {
	// Armor makes Seal emit an ASCII-armored message inside the base64url
	// text (as gpg --armor does). Default binary, which is smaller.
	Armor bool
	// Padded makes Seal emit padded base64url. Default unpadded
	// (base64.RawURLEncoding). Open accepts both, and the standard alphabet.
	Padded bool
	// Compress makes Seal ZLIB-compress the signed message. Default off:
	// payloads are small JSON and compress-then-encrypt leaks content via
	// length. go-crypto compresses only when every recipient key lists ZLIB
	// in its preferences (gpg keys do). Open accepts compressed (ZIP, ZLIB,
	// BZIP2) and uncompressed messages.
	Compress bool
	// SignWithAllActive makes Seal sign with the self primary key and every
	// active self key (spec §9.1: "sign payloads with multiple PGP keys"),
	// so a peer that has not yet imported our new key still verifies. Such
	// messages always use SHA-384 and AES-256, whatever the recipients'
	// preferences. Default: the primary key alone.
	SignWithAllActive bool
}

// JOSEConfig tunes the JOSE codec. Empty lists select the defaults.
type JOSEConfig struct {
	// KeyAlgorithms are the JWE "alg" values Open accepts. Default
	// DefaultJWEKeyAlgorithms().
	KeyAlgorithms []string
	// ContentEncryptions are the JWE "enc" values Open accepts. Default
	// DefaultJWEContentEncryptions().
	ContentEncryptions []string
	// SignatureAlgorithms are the JWS "alg" values Open accepts. Default
	// DefaultJWSAlgorithms().
	SignatureAlgorithms []string

	// EmitKeyAlgorithm is the JWE "alg" Seal uses for RSA recipients.
	// Default "RSA-OAEP-256": RSA1_5 (the older spec text) is exposed to
	// Bleichenbacher/Marvin padding oracles on any receiver that is not
	// constant-time, and Node.js no longer decrypts it. Set "RSA1_5" with
	// EmitContentEncryption "A128CBC-HS256" for the spec's legacy profile if
	// Google requires it. EC recipients always use "ECDH-ES+A256KW".
	EmitKeyAlgorithm string
	// EmitContentEncryption is the JWE "enc" Seal uses. Default "A256GCM"
	// (an AEAD with a 256-bit key).
	EmitContentEncryption string
	// EmitSignatureAlgorithm is the JWS "alg" Seal uses with RSA keys.
	// Default "RS256". EC P-256 keys always sign with "ES256".
	EmitSignatureAlgorithm string
	// NoCompression stops Seal from setting zip "DEF". Default: compress,
	// since the spec requires zip support both ways.
	NoCompression bool
}

// DefaultJWEKeyAlgorithms returns the JWE "alg" values Open accepts by
// default: the spec's RSA1_5 (Go decrypts it with implicit rejection, in
// constant time), RSA-OAEP-256, and ECDH-ES+A256KW for EC keys. Symmetric
// algorithms ("dir", A*KW, PBES2) are never accepted whatever the
// configuration.
func DefaultJWEKeyAlgorithms() []string {
	return []string{"RSA1_5", "RSA-OAEP-256", "ECDH-ES+A256KW"}
}

// DefaultJWEContentEncryptions returns the JWE "enc" values Open accepts by
// default: the spec's AES-CBC-HMAC family and A256GCM.
func DefaultJWEContentEncryptions() []string {
	return []string{"A128CBC-HS256", "A192CBC-HS384", "A256CBC-HS512", "A256GCM"}
}

// DefaultJWSAlgorithms returns the JWS "alg" values Open accepts by default.
// "none" and HMAC (HS*) are never accepted whatever the configuration: the
// peer key is public, so a MAC keyed with it proves nothing.
func DefaultJWSAlgorithms() []string { return []string{"RS256", "PS256", "ES256"} }

const defaultMaxBody = 1 << 20

func (c Config) withDefaults() Config {
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = defaultMaxBody
	}
	if c.MaxPlaintextBytes <= 0 {
		c.MaxPlaintextBytes = 4 * c.MaxBodyBytes
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	j := &c.JOSE
	if len(j.KeyAlgorithms) == 0 {
		j.KeyAlgorithms = DefaultJWEKeyAlgorithms()
	}
	if len(j.ContentEncryptions) == 0 {
		j.ContentEncryptions = DefaultJWEContentEncryptions()
	}
	if len(j.SignatureAlgorithms) == 0 {
		j.SignatureAlgorithms = DefaultJWSAlgorithms()
	}
	if j.EmitKeyAlgorithm == "" {
		j.EmitKeyAlgorithm = "RSA-OAEP-256"
	}
	if j.EmitContentEncryption == "" {
		j.EmitContentEncryption = "A256GCM"
	}
	if j.EmitSignatureAlgorithm == "" {
		j.EmitSignatureAlgorithm = "RS256"
	}
	return c
}

// New returns the codec for format.
func New(format Format, cfg Config) (Codec, error) {
	sp, ok := Lookup(format)
	if !ok {
		return nil, fmt.Errorf("envelope: unknown format %q", format)
	}
	return sp.newCodec(cfg.withDefaults())
}

// ForKind returns the format that serves keysets of kind.
func ForKind(kind keystore.Kind) (Format, error) {
	for _, sp := range specs {
		if sp.KeyKind == kind {
			return sp.Format, nil
		}
	}
	return "", fmt.Errorf("envelope: no format for key kind %q", kind)
}

func checkKind(ks *keystore.Keyset, want keystore.Kind) error {
	if ks == nil {
		return fmt.Errorf("%w: no keyset", ErrNoKey)
	}
	if ks.Kind != want {
		return fmt.Errorf("%w: keyset %s is %s, codec needs %s", ErrNoKey, ks.ID, ks.Kind, want)
	}
	return nil
}

package keystore

import "errors"

// Sentinel errors. Every error the Store returns for one of these causes wraps
// the sentinel, so callers test with errors.Is and still get a message that
// names the key or keyset involved.
var (
	// ErrNoKEK: no key-encryption key was configured (neither OTPCGATE_KEK
	// nor OTPCGATE_KEK_FILE), so private keys can be neither stored nor read.
	ErrNoKEK = errors.New("keystore: no key-encryption key configured (set OTPCGATE_KEK or OTPCGATE_KEK_FILE)")
	// ErrKEKFileMode: the KEK file may be read by group or others.
	ErrKEKFileMode = errors.New("keystore: KEK file readable by group or others")
	// ErrWrongKEK: the configured KEK does not open the database's KEK check
	// value or a private key record.
	ErrWrongKEK = errors.New("keystore: key-encryption key does not match this database")
	// ErrBadKEK: the KEK material is malformed (not 32 bytes after decoding).
	ErrBadKEK = errors.New("keystore: malformed key-encryption key")
	// ErrCorruptRecord: a private key record fails authentication, for example
	// because its ciphertext was moved to another row.
	ErrCorruptRecord = errors.New("keystore: private key record fails authentication")

	// ErrNotFound: no such keyset or key.
	ErrNotFound = errors.New("keystore: not found")
	// ErrKeysetExists: a keyset with that name already exists in that env.
	ErrKeysetExists = errors.New("keystore: keyset name already used in this environment")
	// ErrDuplicateKey: the keyset already holds a key with that id.
	ErrDuplicateKey = errors.New("keystore: key already in keyset")
	// ErrKindMismatch: PGP material offered to a JWK keyset or vice versa.
	ErrKindMismatch = errors.New("keystore: key kind does not match keyset kind")

	// ErrWeakKey: an RSA key (or subkey) shorter than 2048 bits, or a
	// generation request for a size other than 2048, 3072 or 4096.
	ErrWeakKey = errors.New("keystore: RSA key size not allowed (import: at least 2048 bits; generate: 2048, 3072 or 4096)")
	// ErrUnsupportedKey: an algorithm or key type the gateway does not use.
	ErrUnsupportedKey = errors.New("keystore: unsupported key algorithm")
	// ErrSymmetricKey: a JWK with kty "oct"; shared secrets are never keys here.
	ErrSymmetricKey = errors.New("keystore: symmetric JWK (kty oct) refused")
	// ErrExpired: the key is past its expiry.
	ErrExpired = errors.New("keystore: key expired")
	// ErrRevoked: the OpenPGP key carries a revocation signature.
	ErrRevoked = errors.New("keystore: key revoked")
	// ErrNoEncryptionKey: an OpenPGP key without a usable encryption
	// (sub)key, or a peer key that cannot be encrypted to.
	ErrNoEncryptionKey = errors.New("keystore: key has no encryption-capable (sub)key")
	// ErrNoPrivateKey: a self key was offered or promoted without usable
	// private material.
	ErrNoPrivateKey = errors.New("keystore: self key has no usable private material")
	// ErrCannotSign: a self key without signing capability (a PGP key
	// without a signing key, a JWK with use "enc") cannot be primary, since
	// the primary signs.
	ErrCannotSign = errors.New("keystore: self key cannot sign")
	// ErrUnexpectedPrivate: private material offered for a peer key; the
	// gateway never holds the other side's private keys.
	ErrUnexpectedPrivate = errors.New("keystore: private key material offered for a peer key")
	// ErrPassphraseRequired: the secret key is passphrase-protected and no
	// passphrase was given.
	ErrPassphraseRequired = errors.New("keystore: secret key is passphrase-protected; passphrase required")
	// ErrBadPassphrase: the passphrase does not decrypt the secret key.
	ErrBadPassphrase = errors.New("keystore: passphrase does not decrypt the secret key")
	// ErrLifetimeTooLong: a key lifetime above the two years the spec allows.
	ErrLifetimeTooLong = errors.New("keystore: key lifetime above the 2-year maximum")
	// ErrNoKeys: the import data holds no key.
	ErrNoKeys = errors.New("keystore: no key found in input")
	// ErrMalformed: the import data cannot be parsed.
	ErrMalformed = errors.New("keystore: malformed key data")

	// ErrIllegalTransition: the state change is not in the state machine.
	ErrIllegalTransition = errors.New("keystore: illegal key state transition")
)

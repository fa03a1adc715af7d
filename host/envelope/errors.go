package envelope

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Open and Seal return errors that match exactly one of
// them with errors.Is, except that ErrMalformed also matches ErrEncryption
// (the spec answers both with invalidPayloadEncryption).
var (
	// ErrEncryption: the body could not be decrypted with any usable self
	// key (spec invalidPayloadEncryption, HTTP 400). The error is an
	// *EncryptionError listing the key ids tried.
	ErrEncryption = errors.New("envelope: payload cannot be decrypted")
	// ErrSignature: no signature by a usable, unexpired peer key verified
	// (spec invalidPayloadSignature, HTTP 401). The error is a
	// *SignatureError listing the signer key ids seen.
	ErrSignature = errors.New("envelope: no valid signature by a trusted key")
	// ErrTooLarge: the body (or its decrypted, decompressed payload) exceeds
	// the configured limit. Checked on the body before any crypto.
	ErrTooLarge = errors.New("envelope: payload too large")
	// ErrMalformed: the body is not base64url / not an OpenPGP message / not a
	// JWE compact token, or uses a refused algorithm or structure.
	ErrMalformed = errors.New("envelope: malformed payload")
	// ErrNoKey: Seal found no usable self signing key or peer recipient.
	ErrNoKey = errors.New("envelope: no usable key")
)

// EncryptionError reports a body that could not be decrypted. It matches
// ErrEncryption, and also ErrMalformed when Malformed is set.
type EncryptionError struct {
	// Malformed is set when the body could not even be parsed.
	Malformed bool
	// Recipients are the key ids the message names (PGP 16-hex-digit key
	// ids, 0000000000000000 for a hidden recipient, or the JWE kid).
	Recipients []string
	// Tried are the IDs of self keys a decryption was attempted with.
	Tried []string
	// Reason is a short human-readable cause, safe to log.
	Reason string
	// Err is the underlying library error, if any.
	Err error
}

// Error implements error; it names key ids but never payload content.
func (e *EncryptionError) Error() string {
	var b strings.Builder
	if e.Malformed {
		b.WriteString("envelope: malformed payload: ")
	} else {
		b.WriteString("envelope: payload cannot be decrypted: ")
	}
	b.WriteString(e.Reason)
	if len(e.Recipients) > 0 {
		fmt.Fprintf(&b, " (recipients %s)", strings.Join(e.Recipients, ","))
	}
	if len(e.Tried) > 0 {
		fmt.Fprintf(&b, " (tried %s)", strings.Join(e.Tried, ","))
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

// Is makes errors.Is match ErrEncryption, and ErrMalformed for malformed input.
func (e *EncryptionError) Is(target error) bool {
	return target == ErrEncryption || (e.Malformed && target == ErrMalformed)
}

// Unwrap returns the underlying library error.
func (e *EncryptionError) Unwrap() error { return e.Err }

// SignatureError reports a decrypted payload without a valid signature by a
// trusted peer key. It matches ErrSignature.
type SignatureError struct {
	// Signers are the signer key ids found on the message (PGP hex key ids
	// or JWS kid), including unknown ones.
	Signers []string
	// Reason is a short human-readable cause, safe to log.
	Reason string
	// Err is the last verification error, if any.
	Err error
}

// Error implements error; it names key ids but never payload content.
func (e *SignatureError) Error() string {
	var b strings.Builder
	b.WriteString("envelope: no valid signature by a trusted key: ")
	b.WriteString(e.Reason)
	if len(e.Signers) > 0 {
		fmt.Fprintf(&b, " (signers %s)", strings.Join(e.Signers, ","))
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

// Is makes errors.Is match ErrSignature.
func (e *SignatureError) Is(target error) bool { return target == ErrSignature }

// Unwrap returns the last verification error.
func (e *SignatureError) Unwrap() error { return e.Err }

func malformed(reason string, err error) error {
	return &EncryptionError{Malformed: true, Reason: reason, Err: err}
}

func tooLarge(what string, limit int) error {
	return fmt.Errorf("%w: %s exceeds %d bytes", ErrTooLarge, what, limit)
}

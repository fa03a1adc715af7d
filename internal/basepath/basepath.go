// Package basepath checks and normalises a merchant's base path, the
// prefix of its URLs on the Google-facing listener. It sits below the
// server, the configuration and the merchant directory, which all need the
// same rule.
package basepath

import (
	"errors"
	"fmt"
	"strings"
)

// APIPathSegment is the fixed path segment between a base path and the
// method name (spec §5).
const APIPathSegment = "refundable-one-time-payment-code-v2"

// ErrInvalid matches every error Normalize returns.
var ErrInvalid = errors.New("invalid base path")

// Normalize validates a base path and returns its canonical form ("/"
// becomes ""; the result has no trailing slash). Segments are non-empty,
// not "." or "..", not APIPathSegment, and use only unreserved URL
// characters, so a base path never needs escaping.
func Normalize(p string) (string, error) {
	if p == "" || p == "/" {
		return "", nil
	}
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("%w: %q must start with /", ErrInvalid, p)
	}
	p = strings.TrimSuffix(p, "/")
	for _, seg := range strings.Split(p[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", fmt.Errorf("%w: %q has an empty or dot segment", ErrInvalid, p)
		}
		if seg == APIPathSegment {
			return "", fmt.Errorf("%w: %q must not contain %s", ErrInvalid, p, APIPathSegment)
		}
		for _, r := range seg {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._~", r)) {
				return "", fmt.Errorf("%w: %q: character %q not allowed", ErrInvalid, p, r)
			}
		}
	}
	return p, nil
}

package weblogin

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"time"
)

// errCSRF is any CSRF token failure; the reason is not shown to the user.
var errCSRF = errors.New("weblogin: bad form token")

// csrfToken returns base64url(expiry ‖ HMAC(secret, merchant, requestId,
// expiry)): it binds the form to one sealed request for a limited time
// without server-side state.
func csrfToken(secret []byte, merchant, requestID string, expires time.Time) string {
	var buf [8 + sha256.Size]byte
	binary.BigEndian.PutUint64(buf[:8], uint64(expires.Unix()))
	copy(buf[8:], csrfMAC(secret, merchant, requestID, buf[:8]))
	return base64.RawURLEncoding.EncodeToString(buf[:])
}

func csrfMAC(secret []byte, merchant, requestID string, expiry []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("otpcgate weblogin csrf v1\x00"))
	m.Write([]byte(merchant))
	m.Write([]byte{0})
	m.Write([]byte(requestID))
	m.Write([]byte{0})
	m.Write(expiry)
	return m.Sum(nil)
}

// checkCSRF verifies that the form field and the cookie carry the same
// token, that it was made by this process for this merchant and request,
// and that it has not expired.
func checkCSRF(secret []byte, merchant, requestID, field, cookie string, now time.Time) error {
	if field == "" || cookie == "" || !hmac.Equal([]byte(field), []byte(cookie)) {
		return errCSRF
	}
	raw, err := base64.RawURLEncoding.DecodeString(field)
	if err != nil || len(raw) != 8+sha256.Size {
		return errCSRF
	}
	if !hmac.Equal(raw[8:], csrfMAC(secret, merchant, requestID, raw[:8])) {
		return errCSRF
	}
	if now.Unix() > int64(binary.BigEndian.Uint64(raw[:8])) {
		return errCSRF
	}
	return nil
}

// cookieName is per request, so two login tabs do not clobber each
// other's token. __Host- makes the browser insist on Secure, Path=/ and no
// Domain.
func cookieName(requestID string) string {
	h := sha256.Sum256([]byte(requestID))
	return "__Host-otpc-login-" + base64.RawURLEncoding.EncodeToString(h[:9])
}

package weblogin

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestCSRFToken(t *testing.T) {
	secret := []byte("test-only-secret-0123456789abcdef")
	now := time.Unix(1_700_000_000, 0)
	tok := csrfToken(secret, "m1", "req-1", now.Add(time.Minute))
	for _, tc := range []struct {
		name                       string
		secret                     []byte
		merchant, req, field, cook string
		at                         time.Time
		ok                         bool
	}{
		{"valid", secret, "m1", "req-1", tok, tok, now, true},
		{"at expiry", secret, "m1", "req-1", tok, tok, now.Add(time.Minute), true},
		{"expired", secret, "m1", "req-1", tok, tok, now.Add(time.Minute + time.Second), false},
		{"other merchant", secret, "m2", "req-1", tok, tok, now, false},
		{"other request", secret, "m1", "req-2", tok, tok, now, false},
		{"other process", []byte("another-secret"), "m1", "req-1", tok, tok, now, false},
		{"cookie differs", secret, "m1", "req-1", tok, tok + "x", now, false},
		{"empty", secret, "m1", "req-1", "", "", now, false},
		{"garbage", secret, "m1", "req-1", "!!", "!!", now, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkCSRF(tc.secret, tc.merchant, tc.req, tc.field, tc.cook, tc.at)
			if (err == nil) != tc.ok {
				t.Fatalf("err %v", err)
			}
		})
	}
	if cookieName("a") == cookieName("b") || !strings.HasPrefix(cookieName("a"), "__Host-") {
		t.Fatal("cookie names")
	}
}

func TestPrefixAllows(t *testing.T) {
	p, err := parsePrefix("https://Pay.Example.com:8443/cb")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		u  string
		ok bool
	}{
		{"https://pay.example.com:8443/cb", true},
		{"https://pay.example.com:8443/cb/", true},
		{"https://pay.example.com:8443/cb/x?y=1", true},
		{"https://pay.example.com:8443/cbx", false},
		{"https://pay.example.com/cb", false},
		{"https://pay.example.com:8443/", false},
		{"https://pay.example.com:8443/other/cb", false},
		{"https://pay.example.com:8443/cb/..%2F..%2Fx", true}, // checkCallback refuses unclean paths first
	} {
		u, err := url.Parse(tc.u)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.allows(u); got != tc.ok {
			t.Errorf("%s: %v", tc.u, got)
		}
	}
}

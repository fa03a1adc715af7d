// Package reqid names requests: an id made for each request the host
// serves (Google's, the login page's, the admin API's), sent back in
// X-Request-Id and carried in the request's context, so every log line a
// request causes — the host's and its plugin's — can be found by it.
package reqid

import (
	"context"
	"crypto/rand"
	"encoding/hex"
)

type key struct{}

// New returns a fresh id: 16 hex digits.
func New() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails since Go 1.24
	return hex.EncodeToString(b[:])
}

// With returns ctx carrying id.
func With(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, key{}, id)
}

// From returns the id With put in ctx, or "".
func From(ctx context.Context) string {
	id, _ := ctx.Value(key{}).(string)
	return id
}

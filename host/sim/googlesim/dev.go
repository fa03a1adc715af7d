package googlesim

import (
	"context"
	"net/http"

	"github.com/otpcgate/otpcgate/host/envelope"
	"github.com/otpcgate/otpcgate/keystore"
)

// DevAccount names one development merchant the simulated Google plays the
// other side for: its PIAID, its envelope, and the keyset holding Google's
// private keys and the integrator's public keys.
type DevAccount struct {
	PIAID    string
	Envelope envelope.Format
	KeysetID string
}

// Keysets yields keyset snapshots by id (keystore.Store does).
type Keysets interface {
	Keyset(ctx context.Context, id string) (*keystore.Keyset, error)
}

// NewDev returns a simulated Google for the development merchants of
// one gateway, with keys read live from that gateway's keystore (so a
// rotation drill is seen at once).
func NewDev(cfg Config, keys Keysets, accounts []DevAccount) (*Google, error) {
	g := New(cfg)
	for _, a := range accounts {
		codec, err := envelope.New(a.Envelope, envelope.Config{})
		if err != nil {
			return nil, err
		}
		id := a.KeysetID
		g.AddAccount(Account{PIAID: a.PIAID, Codec: codec,
			Keyset: func(ctx context.Context) (*keystore.Keyset, error) { return keys.Keyset(ctx, id) }})
	}
	return g, nil
}

// DevHandler serves g's endpoints and its observation hooks (HookCalls,
// HookStatements, HookAccepted) under prefix. The hooks are
// unauthenticated: only a development listener may mount this, never a
// production one.
func DevHandler(prefix string, g *Google) http.Handler {
	hooks := Hooks(g)
	return http.StripPrefix(prefix, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch p := r.URL.Path; {
		case p == HookCalls, p == HookStatements, p == HookAccepted:
			hooks.ServeHTTP(w, r)
		default:
			g.ServeHTTP(w, r)
		}
	}))
}

package gateway

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/otpcgate/otpcgate/host/envelope"
	"github.com/otpcgate/otpcgate/host/sim"
	"github.com/otpcgate/otpcgate/keystore"
)

// SimGooglePath is where development installations serve the simulated
// Google's endpoints on the gateway's own listener.
const SimGooglePath = "/sim-google"

// mountSimGoogle serves a simulated Google for the dev merchants, playing
// the Google side with their "sim-google" keysets, so a development
// gateway's notifications are delivered, opened and checked for real.
//
// It also mounts the simulated Google's observation hooks
// (SimGooglePath + sim.HookCalls, sim.HookStatements, sim.HookAccepted)
// for `otpcgate sim run` in another process. They are unauthenticated
// test hooks: only development installations (Options.Dev, i.e.
// `otpcgate dev`) mount them, on the dev listener; `serve` never does.
func (g *Gateway) mountSimGoogle(dev *DevInfo) {
	g.SimGoogle = sim.NewGoogle(sim.GoogleConfig{Logger: g.log})
	for _, m := range dev.Merchants {
		codec, err := envelope.New(m.Envelope, envelope.Config{})
		if err != nil {
			continue // ForKind made it: cannot happen for provisioned merchants
		}
		ksID := m.SimKeysetID
		g.SimGoogle.AddAccount(sim.GoogleAccount{PIAID: m.PIAID, Codec: codec,
			Keyset: func(ctx context.Context) (*keystore.Keyset, error) { return g.Keys.Keyset(ctx, ksID) }})
	}
	h := http.StripPrefix(SimGooglePath, g.SimGoogle)
	e := g.Server.Echo()
	e.Any(SimGooglePath+"/*", echo.WrapHandler(h))
	hooks := echo.WrapHandler(http.StripPrefix(SimGooglePath, sim.GoogleHooks(g.SimGoogle)))
	e.GET(SimGooglePath+sim.HookCalls, hooks)
	e.POST(SimGooglePath+sim.HookStatements, hooks)
	e.GET(SimGooglePath+sim.HookAccepted, hooks)
}

package main

import (
	"log/slog"
	"net/http"

	"github.com/otpcgate/otpcgate/host/devenv"
	"github.com/otpcgate/otpcgate/host/gateway"
	"github.com/otpcgate/otpcgate/host/sim/googlesim"
)

// devSimGoogle is the gateway.Options.Extra of `otpcgate dev`: a simulated
// Google for the demo merchants at devenv.SimGooglePath on the gateway's
// own listener, so its notifications are really delivered, opened and
// checked. Only dev mounts it; the production assembly never imports sim.
func devSimGoogle(info *devenv.Info, log *slog.Logger) func(*gateway.Gateway) (map[string]http.Handler, error) {
	return func(g *gateway.Gateway) (map[string]http.Handler, error) {
		accounts := make([]googlesim.DevAccount, len(info.Merchants))
		for i, m := range info.Merchants {
			accounts[i] = googlesim.DevAccount{PIAID: m.PIAID, Envelope: m.Envelope, KeysetID: m.SimKeysetID}
		}
		google, err := googlesim.NewDev(googlesim.Config{Logger: log}, g.Keys, accounts)
		if err != nil {
			return nil, err
		}
		return map[string]http.Handler{devenv.SimGooglePath: googlesim.DevHandler(devenv.SimGooglePath, google)}, nil
	}
}

package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpcgate/otpcgate/host/server"
	"github.com/otpcgate/otpcgate/internal/config"
)

// errGatewayNotWired is what serve reports until the pipeline is plugged
// in below; nothing pretends to work before that.
var errGatewayNotWired = errors.New("gateway not wired: buildGateway in host/cmd/otpcgate/gateway.go has no pipeline yet")

// gatewayParts is what buildGateway hands to run.
type gatewayParts struct {
	// gateway serves Google's calls (the request pipeline).
	gateway server.Gateway
	// ready backs /readyz (database reachable, keys loaded, plugins warm).
	ready server.ReadyFunc
	// mounts add extra routes to the server before it starts (merchant
	// web login page, ...).
	mounts []func(*server.Server)
	// close releases what buildGateway opened (database, plugin runtime).
	close func() error
}

// deps are the process-wide parts run creates before the gateway.
type deps struct {
	log *slog.Logger
	// limiter is the admission limiter; the pipeline acquires it around
	// its CPU-bound part (decrypt, plugin, sign).
	limiter *server.Limiter
	// metrics is the process registry (server and limiter metrics are
	// already registered); the admin listener should expose it.
	metrics *prometheus.Registry
}

// buildGateway is the hook where the gateway engineer wires the pipeline:
// open the database (cfg.DBPath), the keystore (cfg.KEKFile), seed
// cfg.Merchants, start the plugin runtime and return a server.Gateway that
// wraps its CPU-bound part in d.limiter.Acquire.
func buildGateway(ctx context.Context, cfg *config.Config, d deps) (gatewayParts, error) {
	return gatewayParts{}, errGatewayNotWired
}

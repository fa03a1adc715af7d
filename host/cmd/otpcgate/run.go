package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpcgate/otpcgate/host/server"
	"github.com/otpcgate/otpcgate/internal/config"
)

// run builds the gateway and serves on the Google-facing listener until
// ctx ends. cfg must be validated. serve and (later) dev both call it.
func run(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	// One limiter per process: the pipeline acquires it around its
	// CPU-bound part (decrypt, plugin, sign), so it is not given to the
	// server as well.
	lim := server.NewLimiter(cfg.LimiterConfig())
	// One registry for the process; the admin listener exposes it.
	reg := prometheus.NewRegistry()
	if err := server.RegisterLimiterMetrics(reg, lim); err != nil {
		return err
	}
	parts, err := buildGateway(ctx, cfg, deps{log: log, limiter: lim, metrics: reg})
	if err != nil {
		return fmt.Errorf("build gateway: %w", err)
	}
	defer func() {
		if parts.close != nil {
			if err := parts.close(); err != nil {
				log.Error("closing gateway", "err", err)
			}
		}
	}()
	srv, err := server.New(cfg.ServerConfig(), parts.gateway, server.Options{Logger: log, Ready: parts.ready, Metrics: reg})
	if err != nil {
		return err
	}
	for _, mount := range parts.mounts {
		mount(srv)
	}
	return srv.ListenAndServe(ctx)
}

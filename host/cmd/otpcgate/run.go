package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpcgate/otpcgate/host/gateway"
	"github.com/otpcgate/otpcgate/host/server"
	"github.com/otpcgate/otpcgate/internal/config"
)

// run builds the gateway and serves on the Google-facing listener until
// ctx ends. cfg must be validated. serve and dev both call it.
func run(ctx context.Context, cfg *config.Config, e env, log *slog.Logger, mutate ...func(*gateway.Options)) error {
	kek, err := loadKEK(cfg, e)
	if err != nil {
		return err
	}
	// One limiter per process: the pipeline acquires it around its
	// CPU-bound part (decrypt, plugin, sign), so it is not given to the
	// server as well.
	lim := server.NewLimiter(cfg.LimiterConfig())
	// One registry for the process; the admin listener exposes it.
	reg := prometheus.NewRegistry()
	if err := server.RegisterLimiterMetrics(reg, lim); err != nil {
		return err
	}
	g, err := openGateway(ctx, cfg, kek, deps{log: log, limiter: lim, metrics: reg}, mutate...)
	if err != nil {
		return err
	}
	defer func() {
		if err := g.Close(); err != nil {
			log.Error("closing gateway", "err", err)
		}
	}()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	_, waitAdmin, err := startAdmin(ctx, cfg, g, reg, g.Calls, log)
	if err != nil {
		return err
	}
	log.Info("serving", "addr", cfg.Listen.Addr)
	err = g.ListenAndServe(ctx)
	cancel() // the Google-facing listener is down: stop the admin API too
	return errors.Join(err, waitAdmin())
}

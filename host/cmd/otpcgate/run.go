package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpcgate/otpcgate/host/gateway"
	"github.com/otpcgate/otpcgate/host/server"
	"github.com/otpcgate/otpcgate/internal/config"
)

// run builds the gateway and serves on the Google-facing listener until
// ctx ends. cfg must be validated. serve and dev both call it; ready, if
// set, is called once both listeners accept connections (dev prints its
// banner then, not before).
func run(ctx context.Context, cfg *config.Config, e env, log *slog.Logger, ready func(adminAddr string), mutate ...func(*gateway.Options)) error {
	kek, err := loadKEK(cfg, e)
	if err != nil {
		return err
	}
	// One limiter per process: the pipeline acquires it around its
	// CPU-bound part (decrypt, plugin, sign), so it is not given to the
	// server as well.
	lim := server.NewLimiter(limiterConfig(cfg))
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
	// Bind the Google-facing port first: a busy port is reported before
	// anything else starts.
	ln, err := net.Listen("tcp", cfg.Listen.Addr)
	if err != nil {
		return portError("listen.addr", cfg.Listen.Addr, "--listen-addr; otpcgate dev: --addr with a new --data-dir", err)
	}
	adminAddr, waitAdmin, err := startAdmin(ctx, cfg, g, reg, g.Calls, log)
	if err != nil {
		ln.Close()
		return err
	}
	log.Info("serving", "addr", ln.Addr().String())
	if ready != nil {
		ready(adminAddr)
	}
	err = g.Serve(ctx, ln)
	cancel() // the Google-facing listener is down: stop the admin API too
	return errors.Join(err, waitAdmin())
}

// portError explains a listener that could not bind; for a port in use it
// says what usually holds it.
func portError(setting, addr, flag string, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%s %s is already in use (another otpcgate, e.g. a running `otpcgate dev`?)\n"+
			"  next: stop it, or choose another address (%s)", setting, addr, flag)
	}
	return fmt.Errorf("%s: %w", setting, err)
}

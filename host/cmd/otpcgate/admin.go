package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpcgate/otpcgate/host/admin"
	"github.com/otpcgate/otpcgate/host/gateway"
	"github.com/otpcgate/otpcgate/internal/config"
)

// adminConfig derives the admin listener's settings from the
// configuration. A non-loopback admin address serves TLS with the
// Google-facing listener's certificate files.
func adminConfig(cfg *config.Config) admin.Config {
	ac := admin.Config{Addr: cfg.Admin.Addr, MaxPluginBytes: cfg.Admin.MaxPluginBytes,
		MaxPluginVersions: cfg.Admin.MaxPluginVersions, MaxUploads: cfg.Admin.MaxUploads}
	if !admin.IsLoopback(ac.Addr) {
		ac.CertFile, ac.KeyFile = cfg.Listen.CertFile, cfg.Listen.KeyFile
	}
	return ac
}

// startAdmin listens on the admin address (nothing when it is empty) and
// serves the admin API until ctx ends. Listening happens before it returns,
// so a taken port fails the start; addr is the bound address and wait
// returns the server's error once ctx has ended.
func startAdmin(ctx context.Context, cfg *config.Config, g *gateway.Gateway, reg *prometheus.Registry, calls admin.Calls,
	log *slog.Logger) (addr string, wait func() error, err error) {
	if cfg.Admin.Addr == "" {
		log.Info("admin API disabled (admin.addr is empty)")
		return "", func() error { return nil }, nil
	}
	ac := adminConfig(cfg)
	ac.Calls = calls
	srv, err := g.AdminServer(ctx, ac, reg)
	if err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", ac.Addr)
	if err != nil {
		return "", nil, portError("admin.addr", ac.Addr, "--admin-addr", err)
	}
	log.Info("admin API listening", "addr", ln.Addr().String(), "tls", srv.TLS())
	done := make(chan error, 1)
	go func() {
		err := srv.Serve(ctx, ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		done <- err
	}()
	return ln.Addr().String(), func() error { return <-done }, nil
}

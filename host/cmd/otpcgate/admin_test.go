package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpcgate/otpcgate/host/admin"
	"github.com/otpcgate/otpcgate/internal/config"
)

func TestAdminConfigTLSOffLoopback(t *testing.T) {
	for _, tc := range []struct {
		addr    string
		wantTLS bool
	}{{"127.0.0.1:8444", false}, {"[::1]:8444", false}, {"0.0.0.0:8444", true}, {"10.1.2.3:8444", true}} {
		cfg := &config.Config{Admin: config.Admin{Addr: tc.addr}, Listen: config.Listen{CertFile: "c.pem", KeyFile: "k.pem"}}
		ac := adminConfig(cfg)
		if (ac.CertFile != "") != tc.wantTLS || ac.Addr != tc.addr {
			t.Errorf("%s: %+v", tc.addr, ac)
		}
	}
}

func TestStartAdmin(t *testing.T) {
	l := startLiveGateway(t)
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.DiscardHandler)
	cfg := &config.Config{Admin: config.Admin{Addr: "127.0.0.1:0"}}
	addr, wait, err := startAdmin(ctx, cfg, l.g, prometheus.NewRegistry(), l.g.Calls, log)
	if err != nil {
		t.Fatal(err)
	}
	c := &admin.Client{BaseURL: "http://" + addr}
	var h map[string]string
	if err := c.Do(ctx, http.MethodGet, "/healthz", nil, &h); err != nil || h["status"] != "ok" {
		t.Fatalf("healthz: %v %v", err, h)
	}
	var ae *admin.APIError
	if err := c.Do(ctx, http.MethodGet, "/metrics", nil, nil); !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		t.Fatalf("/metrics without a token: %v", err)
	}
	cancel()
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	// Disabled: nothing listens, wait returns at once.
	if addr, wait, err := startAdmin(context.Background(), &config.Config{}, l.g, nil, nil, log); err != nil || addr != "" || wait() != nil {
		t.Fatalf("disabled admin: %q %v", addr, err)
	}
}

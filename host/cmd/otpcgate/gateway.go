package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpcgate/otpcgate/host/directory"
	"github.com/otpcgate/otpcgate/host/envelope"
	"github.com/otpcgate/otpcgate/host/gateway"
	"github.com/otpcgate/otpcgate/host/ledger"
	"github.com/otpcgate/otpcgate/host/plugincall"
	"github.com/otpcgate/otpcgate/host/protocol"
	"github.com/otpcgate/otpcgate/host/runtime"
	"github.com/otpcgate/otpcgate/host/server"
	"github.com/otpcgate/otpcgate/host/weblogin"
	"github.com/otpcgate/otpcgate/internal/config"
	"github.com/otpcgate/otpcgate/keystore"
)

// deps are the process-wide parts run creates before the gateway.
type deps struct {
	log *slog.Logger
	// limiter is the admission limiter; the pipeline acquires it around
	// its CPU-bound part (decrypt, plugin, sign).
	limiter *server.Limiter
	// metrics is the process registry (server and limiter metrics are
	// registered on it); the admin listener will expose it.
	metrics *prometheus.Registry
}

// openGateway opens the database and every component for cfg, seeds the
// merchants the configuration lists and loads their plugins.
func openGateway(ctx context.Context, cfg *config.Config, kek *keystore.KEK, d deps, mutate ...func(*gateway.Options)) (*gateway.Gateway, error) {
	cacheDir := ""
	if cfg.DataDir != "" {
		cacheDir = filepath.Join(cfg.DataDir, "plugin-cache")
	}
	opts := gateway.Options{
		Database:       cfg.Database(),
		KEK:            kek,
		PluginCacheDir: cacheDir,
		Server:         serverConfig(cfg),
		Admission:      d.limiter,
		Metrics:        d.metrics,
		Envelope:       envelope.Config{MaxBodyBytes: int(cfg.Limits.BodyLimit)},
		Protocol:       protocol.Config{Skew: cfg.TimestampSkew.D(), CircuitOpenPause: circuitOpenPause(cfg.PluginCalls.CircuitOpenPause.D())},
		CommitWindow:   commitWindow(cfg.CommitWindow.D()),
		Calls: plugincall.Config{BreakerTimeouts: cfg.PluginCalls.BreakerTimeouts,
			BreakerCoolDown: cfg.PluginCalls.BreakerCoolDown.D()},
		KVQuota: ledger.KVQuota{MaxKeys: cfg.PluginCalls.KVMaxKeys, MaxBytes: cfg.PluginCalls.KVMaxBytes},
		Runtime: runtime.Options{LogBytesPerMinute: cfg.PluginCalls.LogBytesPerMinute,
			Limits: runtime.Limits{MemoryPages: uint32(cfg.PluginCalls.MemoryMiB) * 16}, // 64 KiB pages
			Pool:   runtime.PoolConfig{Max: cfg.PluginCalls.InstancesPerVersion}},
		WebLogin: weblogin.Config{Path: cfg.WebLogin.Path, Callbacks: cfg.WebLogin.Callbacks},
		Logger:   d.log,
	}
	for _, f := range mutate {
		f(&opts)
	}
	g, err := gateway.Open(ctx, opts)
	if err != nil {
		return nil, err
	}
	seeds := make([]gateway.SeedMerchant, 0, len(cfg.Merchants))
	for _, m := range cfg.Merchants {
		rules := make(map[string]ledger.AmountRules, len(m.AmountRules))
		for p, r := range m.AmountRules {
			rules[p] = ledger.AmountRules{Currencies: r.Currencies, MinMicros: r.MinAmountMicros, MaxMicros: r.MaxAmountMicros}
		}
		seeds = append(seeds, gateway.SeedMerchant{
			Integration: directory.Integration{MerchantID: m.ID, BasePath: m.BasePath, Envelope: envelope.Format(m.Envelope),
				KeysetID: m.KeysetID, GoogleEndpoint: m.GoogleEndpoint},
			PIAIDs: m.PIAIDs, AmountRules: rules,
			Quotas: ledger.MerchantQuotas{KV: ledger.KVQuota{MaxKeys: m.KVMaxKeys, MaxBytes: m.KVMaxBytes},
				LogBytesPerMinute: m.LogBytesPerMinute, PluginVersions: m.MaxPluginVersions,
				PluginBytes: m.MaxPluginBytes, PluginMemoryMiB: m.PluginMemoryMiB},
		})
	}
	if err := g.Seed(ctx, seeds); err != nil {
		g.Close()
		return nil, err
	}
	if err := g.Reload(ctx); err != nil {
		g.Close()
		return nil, err
	}
	return g, nil
}

// loadKEK reads the key-encryption key from the configured file, else from
// the environment (OTPCGATE_KEK, OTPCGATE_KEK_FILE).
func loadKEK(cfg *config.Config, e env) (*keystore.KEK, error) {
	if cfg.KEKFile != "" {
		k, err := keystore.ReadKEKFile(cfg.KEKFile)
		if err != nil {
			return nil, fmt.Errorf("kek_file: %w", err)
		}
		return k, nil
	}
	k, err := keystore.LoadKEK(func(name string) string {
		if e.lookup == nil {
			return ""
		}
		v, _ := e.lookup(name)
		return v
	})
	if err != nil {
		return nil, fmt.Errorf("%w, or kek_file in the configuration", err)
	}
	return k, nil
}

// commitWindow maps the configured window to gateway.Options: an explicit
// "0s" means no waiting, which the gateway spells as a negative window.
func commitWindow(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// circuitOpenPause maps the config's circuit_open_pause, where "0s" means
// no pause, to protocol.Config's, where zero means the default.
func circuitOpenPause(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

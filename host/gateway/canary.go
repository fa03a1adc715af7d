package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/otpcgate/otpcgate/host/admin"
	"github.com/otpcgate/otpcgate/host/directory"
	"github.com/otpcgate/otpcgate/host/ledger"
	"github.com/otpcgate/otpcgate/host/plugincall"
)

// loadCanary makes merchantID's canary in the registry the plugin-call
// service's; a candidate that does not load runs no canary (logged).
func (g *Gateway) loadCanary(ctx context.Context, merchantID string, c directory.Canary) {
	if c.Version != "" {
		if err := g.ensureLoaded(ctx, merchantID, c.Version); err != nil {
			g.log.Error("plugin canary not started: its candidate does not load", "merchant", merchantID, "version", c.Version, "err", err)
			c.Version = ""
		}
	}
	g.Calls.SetCanary(merchantID, c.Version, c.Fraction, plugincall.CanaryLimits{MaxFailures: c.MaxFailures, MaxLatency: c.MaxLatency})
}

// canaryRolledBack ends a canary that crossed its limits, on every host
// (the registry row goes), and records why in the audit log.
func (g *Gateway) canaryRolledBack(merchantID string, st plugincall.CanaryState) {
	ctx := context.Background()
	g.log.Warn("plugin canary rolled back: every transaction is on the active version again", "merchant", merchantID,
		"version", st.Version, "reason", st.Reason)
	cur, err := g.Directory.Canaries(ctx)
	if err != nil || cur[merchantID].Version != st.Version {
		return // changed meanwhile (or unreadable: the next reload decides)
	}
	if err := g.Directory.SetCanary(ctx, directory.Canary{MerchantID: merchantID}); err != nil {
		g.log.Error("plugin canary rollback not stored", "merchant", merchantID, "err", err)
		return
	}
	before, _ := json.Marshal(st)
	after, _ := json.Marshal(map[string]string{"reason": st.Reason})
	if err := g.Ledger.Audit(ctx, ledger.AuditEntry{Actor: "otpcgate", Action: "plugin.canary_rollback",
		Subject: admin.MerchantSubject(merchantID), Before: before, After: after}); err != nil {
		g.log.Error("plugin canary rollback not audited", "merchant", merchantID, "err", err)
	}
	if err := g.Reload(ctx); err != nil {
		g.log.Error("reload after a canary rollback", "err", err)
	}
}

// StartCanary sends fraction of merchantID's new transactions to version
// (admin.Backend).
func (b *adminBackend) StartCanary(ctx context.Context, merchantID string, req admin.CanaryRequest) (plugincall.CanaryState, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !(req.Fraction > 0 && req.Fraction <= 1) {
		return plugincall.CanaryState{}, fmt.Errorf("%w: fraction must be in (0, 1], got %v", admin.ErrInvalid, req.Fraction)
	}
	lim := plugincall.CanaryLimits{MaxFailures: req.MaxFailures}
	if req.MaxLatency != "" {
		d, err := time.ParseDuration(req.MaxLatency)
		if err != nil || d <= 0 {
			return plugincall.CanaryState{}, fmt.Errorf("%w: maxLatency must be a positive duration, got %q", admin.ErrInvalid, req.MaxLatency)
		}
		lim.MaxLatency = d
	}
	if req.MaxFailures < 0 {
		return plugincall.CanaryState{}, fmt.Errorf("%w: maxFailures must be positive", admin.ErrInvalid)
	}
	if _, err := b.version(ctx, merchantID, req.Version); err != nil {
		return plugincall.CanaryState{}, err
	}
	if active, err := b.g.Directory.ActivePluginVersion(ctx, merchantID); err == nil && active.Version == req.Version {
		return plugincall.CanaryState{}, fmt.Errorf("%w: %s is the active version; a canary is a candidate", admin.ErrConflict, req.Version)
	}
	if err := b.g.ensureLoaded(ctx, merchantID, req.Version); err != nil {
		return plugincall.CanaryState{}, fmt.Errorf("%w: the candidate does not load: %v", admin.ErrPluginRefused, err)
	}
	c := directory.Canary{MerchantID: merchantID, Version: req.Version, Fraction: req.Fraction, MaxFailures: lim.MaxFailures, MaxLatency: lim.MaxLatency, Started: time.Now()}
	if err := b.g.Directory.SetCanary(ctx, c); err != nil {
		return plugincall.CanaryState{}, err
	}
	if err := b.g.Reload(ctx); err != nil {
		return plugincall.CanaryState{}, err
	}
	return b.g.Calls.Canary(merchantID), nil
}

// StopCanary ends merchantID's canary and returns its last state; with
// promote, the candidate becomes the active version (admin.Backend).
func (b *adminBackend) StopCanary(ctx context.Context, merchantID string, promote bool) (plugincall.CanaryState, error) {
	st := b.g.Calls.Canary(merchantID)
	cur, err := b.g.Directory.Canaries(ctx)
	if err != nil {
		return st, err
	}
	c, ok := cur[merchantID]
	if promote && !ok {
		return st, fmt.Errorf("%w: no canary runs to promote", admin.ErrConflict)
	}
	if promote {
		// Activation first: the candidate serves every transaction before
		// the canary ends, so none goes back to the old version between.
		if _, err := b.ActivatePlugin(ctx, merchantID, c.Version); err != nil {
			return st, err
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.g.Directory.SetCanary(ctx, directory.Canary{MerchantID: merchantID}); err != nil {
		return st, err
	}
	if err := b.g.Reload(ctx); err != nil {
		return st, err
	}
	return st, b.trimLoaded(ctx, merchantID)
}

// CanaryState returns merchantID's canary (admin.Backend).
func (b *adminBackend) CanaryState(ctx context.Context, merchantID string) (plugincall.CanaryState, error) {
	if _, err := b.g.Directory.Integration(ctx, merchantID); err != nil {
		return plugincall.CanaryState{}, fmt.Errorf("%w: merchant %s", admin.ErrNotFound, merchantID)
	}
	return b.g.Calls.Canary(merchantID), nil
}

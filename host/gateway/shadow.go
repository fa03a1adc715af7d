package gateway

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/otpcgate/otpcgate/host/admin"
	"github.com/otpcgate/otpcgate/host/directory"
	"github.com/otpcgate/otpcgate/host/plugincall"
	"github.com/otpcgate/otpcgate/host/runtime"
)

// loadShadow makes merchantID's shadow in the registry (if any) the
// plugin-call service's: its candidate loaded and sampled. A candidate
// that does not load stops nothing but its shadow (logged).
func (g *Gateway) loadShadow(ctx context.Context, merchantID string, sh directory.Shadow) {
	if sh.Version == "" {
		g.Calls.SetShadow(merchantID, "", 0)
		return
	}
	if err := g.ensureLoaded(ctx, merchantID, sh.Version); err != nil {
		g.log.Error("plugin shadow not started: its candidate does not load", "merchant", merchantID, "version", sh.Version, "err", err)
		g.Calls.SetShadow(merchantID, "", 0)
		return
	}
	g.Calls.SetShadow(merchantID, sh.Version, sh.Sample)
}

// ensureLoaded loads a stored version into the runtime unless it is.
func (g *Gateway) ensureLoaded(ctx context.Context, merchantID, version string) error {
	if slices.ContainsFunc(g.Plugins.Versions(merchantID), func(v runtime.VersionInfo) bool { return v.Version == version }) {
		return nil
	}
	pv, err := g.Directory.PluginVersion(ctx, merchantID, version)
	if err != nil {
		return err
	}
	spec, err := g.versionSpec(ctx, pv)
	if err != nil {
		return err
	}
	_, err = g.Plugins.Load(ctx, merchantID, spec)
	return err
}

// StartShadow runs version beside merchantID's active version on sample
// of its calls (admin.Backend).
func (b *adminBackend) StartShadow(ctx context.Context, merchantID, version string, sample float64) (plugincall.ShadowReport, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !(sample > 0 && sample <= 1) {
		return plugincall.ShadowReport{}, fmt.Errorf("%w: sample must be in (0, 1], got %v", admin.ErrInvalid, sample)
	}
	if _, err := b.version(ctx, merchantID, version); err != nil {
		return plugincall.ShadowReport{}, err
	}
	if active, err := b.g.Directory.ActivePluginVersion(ctx, merchantID); err == nil && active.Version == version {
		return plugincall.ShadowReport{}, fmt.Errorf("%w: %s is the active version; shadow a candidate", admin.ErrConflict, version)
	}
	if err := b.g.ensureLoaded(ctx, merchantID, version); err != nil {
		return plugincall.ShadowReport{}, fmt.Errorf("%w: the candidate does not load: %v", admin.ErrPluginRefused, err)
	}
	if err := b.g.Directory.SetShadow(ctx, directory.Shadow{MerchantID: merchantID, Version: version, Sample: sample, Started: time.Now()}); err != nil {
		return plugincall.ShadowReport{}, err
	}
	if err := b.g.Reload(ctx); err != nil {
		return plugincall.ShadowReport{}, err
	}
	return b.g.Calls.Shadow(merchantID), nil
}

// StopShadow stops merchantID's shadow and returns its last report
// (admin.Backend).
func (b *adminBackend) StopShadow(ctx context.Context, merchantID string) (plugincall.ShadowReport, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	rep := b.g.Calls.Shadow(merchantID)
	if err := b.g.Directory.SetShadow(ctx, directory.Shadow{MerchantID: merchantID}); err != nil {
		return rep, err
	}
	if err := b.g.Reload(ctx); err != nil {
		return rep, err
	}
	return rep, b.trimLoaded(ctx, merchantID)
}

// ShadowReport returns merchantID's shadow report (admin.Backend).
func (b *adminBackend) ShadowReport(ctx context.Context, merchantID string) (plugincall.ShadowReport, error) {
	if _, err := b.g.Directory.Integration(ctx, merchantID); err != nil {
		return plugincall.ShadowReport{}, fmt.Errorf("%w: merchant %s", admin.ErrNotFound, merchantID)
	}
	return b.g.Calls.Shadow(merchantID), nil
}

package gateway

import (
	"context"
	"errors"
	"fmt"

	"github.com/otpcgate/otpcgate/host/admin"
	"github.com/otpcgate/otpcgate/host/runtime"
)

// trimLoaded keeps loaded only the versions a merchant can be switched to
// at once: the active one and its rollback target (the version uploaded
// just before it). Every loaded version holds its own compiled module and
// instance pool (tens of MiB); the others compile again on demand, from the
// verified disk cache, when activated.
func (g *Gateway) trimLoaded(ctx context.Context, merchantID string) error {
	active, ok := g.Plugins.Active(merchantID)
	keep := map[string]bool{}
	if ok {
		keep[active.Version] = true
		vs, err := g.Registry.PluginVersions(ctx, merchantID) // oldest first
		if err != nil {
			return err
		}
		for i, v := range vs {
			if v.Version == active.Version && i > 0 {
				keep[vs[i-1].Version] = true
			}
		}
	}
	for _, v := range g.Plugins.Versions(merchantID) {
		if !keep[v.Version] {
			if err := g.Plugins.Unload(merchantID, v.Version); err != nil {
				return err
			}
			g.log.Info("plugin version unloaded", "merchant", merchantID, "version", v.Version)
		}
	}
	return nil
}

// versionSpec is how a merchant's stored version is loaded: with the
// merchant's own instance memory cap, if it has one.
func (g *Gateway) versionSpec(ctx context.Context, pv PluginVersion) (runtime.VersionSpec, error) {
	spec := runtime.VersionSpec{Version: pv.Version, Wasm: pv.Wasm, SHA256: pv.SHA256, Config: pv.Config}
	q, err := g.Ledger.MerchantQuotas(ctx, pv.MerchantID)
	if err != nil {
		return spec, err
	}
	if q.PluginMemoryMiB > 0 {
		spec.Limits.MemoryPages = uint32(min(q.PluginMemoryMiB, 4096)) * 16 // 64 KiB pages
	}
	return spec, nil
}

func (b *adminBackend) DeletePlugin(ctx context.Context, merchantID, version string) (admin.PluginVersion, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	pv, err := b.version(ctx, merchantID, version)
	if err != nil {
		return admin.PluginVersion{}, err
	}
	switch err := b.g.Registry.DeletePluginVersion(ctx, merchantID, version); {
	case errors.Is(err, ErrActiveVersion):
		return admin.PluginVersion{}, fmt.Errorf("%w: %v; activate another version first", admin.ErrConflict, err)
	case errors.Is(err, ErrNotFound):
		return admin.PluginVersion{}, fmt.Errorf("%w: plugin %s has no version %s", admin.ErrNotFound, merchantID, version)
	case err != nil:
		return admin.PluginVersion{}, err
	}
	if err := b.g.trimLoaded(ctx, merchantID); err != nil {
		return pv, err
	}
	return pv, nil
}

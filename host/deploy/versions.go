package deploy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/otpcgate/otpcgate/host/admin"
	"github.com/otpcgate/otpcgate/host/directory"
	"github.com/otpcgate/otpcgate/host/runtime"
)

// trimLoaded keeps loaded only the versions a merchant can be switched to
// at once: the one serving (the runtime's active version, a quarantine
// fallback included) and its rollback target (admin.RollbackTarget). Every
// loaded version holds its own compiled module and instance pool (tens of
// MiB); the others compile again on demand, from the verified disk cache,
// when activated.
func (s *Service) trimLoaded(ctx context.Context, merchantID string) error {
	keep := map[string]bool{}
	if active, ok := s.rt.Active(merchantID); ok {
		vs, err := s.PluginVersions(ctx, merchantID)
		if err != nil {
			return err
		}
		keep[active.Version], keep[admin.RollbackTarget(vs, active.Version)] = true, true
	}
	// A candidate in shadow runs on every sampled call; a replay pins its
	// version while it runs.
	if sh := s.calls.Shadow(merchantID); sh.Version != "" {
		keep[sh.Version] = true
	}
	if c := s.calls.Canary(merchantID); c.Version != "" {
		keep[c.Version] = true // serves its share of transactions
	}
	s.replaying.Range(func(k, n any) bool {
		if m, v, _ := strings.Cut(k.(string), "\x00"); m == merchantID && n.(*atomic.Int64).Load() > 0 {
			keep[v] = true
		}
		return true
	})
	for _, v := range s.rt.Versions(merchantID) {
		if !keep[v.Version] {
			if err := s.rt.Unload(merchantID, v.Version); err != nil {
				return err
			}
			s.log.Info("plugin version unloaded", "merchant", merchantID, "version", v.Version)
		}
	}
	return nil
}

// versionSpec is how a merchant's stored version is loaded: with the
// merchant's own instance memory cap, if it has one.
func (s *Service) VersionSpec(ctx context.Context, pv directory.PluginVersion) (runtime.VersionSpec, error) {
	spec := runtime.VersionSpec{Version: pv.Version, Wasm: pv.Wasm, SHA256: pv.SHA256, Config: pv.Config}
	q, err := s.ledger.MerchantQuotas(ctx, pv.MerchantID)
	if err != nil {
		return spec, err
	}
	if q.PluginMemoryMiB > 0 {
		spec.Limits.MemoryPages = uint32(min(q.PluginMemoryMiB, 4096)) * 16 // 64 KiB pages
	}
	return spec, nil
}

// DeletePlugin deletes a stored version that is neither active nor a
// shadow or canary candidate (admin.Backend).
func (s *Service) DeletePlugin(ctx context.Context, merchantID, version string) (admin.PluginVersion, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pv, err := s.version(ctx, merchantID, version)
	if err != nil {
		return admin.PluginVersion{}, err
	}
	switch err := s.dir.DeletePluginVersion(ctx, merchantID, version); {
	case errors.Is(err, directory.ErrActiveVersion):
		return admin.PluginVersion{}, fmt.Errorf("%w: %v; activate another version first", admin.ErrConflict, err)
	case errors.Is(err, directory.ErrNotFound):
		return admin.PluginVersion{}, fmt.Errorf("%w: plugin %s has no version %s", admin.ErrNotFound, merchantID, version)
	case err != nil:
		return admin.PluginVersion{}, err
	}
	if err := s.trimLoaded(ctx, merchantID); err != nil {
		return pv, err
	}
	return pv, nil
}

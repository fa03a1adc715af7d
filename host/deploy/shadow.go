package deploy

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

// loadShadow makes merchantID's shadow in the directory (if any) the
// plugin-call service's: its candidate loaded and sampled. A candidate
// that does not load stops nothing but its shadow (logged).
func (s *Service) loadShadow(ctx context.Context, merchantID string, sh directory.Shadow) {
	if sh.Version == "" {
		s.calls.SetShadow(merchantID, "", 0)
		return
	}
	if err := s.ensureLoaded(ctx, merchantID, sh.Version); err != nil {
		s.log.Error("plugin shadow not started: its candidate does not load", "merchant", merchantID, "version", sh.Version, "err", err)
		s.calls.SetShadow(merchantID, "", 0)
		return
	}
	s.calls.SetShadow(merchantID, sh.Version, sh.Sample)
}

// ensureLoaded loads a stored version into the runtime unless it is.
func (s *Service) ensureLoaded(ctx context.Context, merchantID, version string) error {
	if slices.ContainsFunc(s.rt.Versions(merchantID), func(v runtime.VersionInfo) bool { return v.Version == version }) {
		return nil
	}
	pv, err := s.dir.PluginVersion(ctx, merchantID, version)
	if err != nil {
		return err
	}
	spec, err := s.VersionSpec(ctx, pv)
	if err != nil {
		return err
	}
	_, err = s.rt.Load(ctx, merchantID, spec)
	return err
}

// StartShadow runs version beside merchantID's active version on sample
// of its calls (admin.Backend).
func (s *Service) StartShadow(ctx context.Context, merchantID, version string, sample float64) (plugincall.ShadowReport, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !(sample > 0 && sample <= 1) {
		return plugincall.ShadowReport{}, fmt.Errorf("%w: sample must be in (0, 1], got %v", admin.ErrInvalid, sample)
	}
	if _, err := s.version(ctx, merchantID, version); err != nil {
		return plugincall.ShadowReport{}, err
	}
	if active, err := s.dir.ActivePluginVersion(ctx, merchantID); err == nil && active.Version == version {
		return plugincall.ShadowReport{}, fmt.Errorf("%w: %s is the active version; shadow a candidate", admin.ErrConflict, version)
	}
	if err := s.ensureLoaded(ctx, merchantID, version); err != nil {
		return plugincall.ShadowReport{}, fmt.Errorf("%w: the candidate does not load: %v", admin.ErrPluginRefused, err)
	}
	if err := s.dir.SetShadow(ctx, directory.Shadow{MerchantID: merchantID, Version: version, Sample: sample, Started: time.Now()}); err != nil {
		return plugincall.ShadowReport{}, err
	}
	if err := s.reload(ctx); err != nil {
		return plugincall.ShadowReport{}, err
	}
	return s.calls.Shadow(merchantID), nil
}

// StopShadow stops merchantID's shadow and returns its last report
// (admin.Backend).
func (s *Service) StopShadow(ctx context.Context, merchantID string) (plugincall.ShadowReport, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rep := s.calls.Shadow(merchantID)
	if err := s.dir.SetShadow(ctx, directory.Shadow{MerchantID: merchantID}); err != nil {
		return rep, err
	}
	if err := s.reload(ctx); err != nil {
		return rep, err
	}
	return rep, s.trimLoaded(ctx, merchantID)
}

// ShadowReport returns merchantID's shadow report (admin.Backend).
func (s *Service) ShadowReport(ctx context.Context, merchantID string) (plugincall.ShadowReport, error) {
	if _, err := s.dir.Integration(ctx, merchantID); err != nil {
		return plugincall.ShadowReport{}, fmt.Errorf("%w: merchant %s", admin.ErrNotFound, merchantID)
	}
	return s.calls.Shadow(merchantID), nil
}

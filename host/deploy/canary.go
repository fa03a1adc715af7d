package deploy

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

// loadCanary makes merchantID's canary in the directory the plugin-call
// service's; a candidate that does not load runs no canary (logged).
func (s *Service) loadCanary(ctx context.Context, merchantID string, c directory.Canary) {
	if c.Version != "" {
		if err := s.ensureLoaded(ctx, merchantID, c.Version); err != nil {
			s.log.Error("plugin canary not started: its candidate does not load", "merchant", merchantID, "version", c.Version, "err", err)
			c.Version = ""
		}
	}
	s.calls.SetCanary(merchantID, c.Version, c.Fraction, plugincall.CanaryLimits{MaxFailures: c.MaxFailures, MaxLatency: c.MaxLatency})
}

// canaryRolledBack ends a canary that crossed its limits, on every host
// (the directory row goes), and records why in the audit log.
func (s *Service) canaryRolledBack(merchantID string, st plugincall.CanaryState) {
	ctx := context.Background()
	s.log.Warn("plugin canary rolled back: every transaction is on the active version again", "merchant", merchantID,
		"version", st.Version, "reason", st.Reason)
	cur, err := s.dir.Canaries(ctx)
	if err != nil || cur[merchantID].Version != st.Version {
		return // changed meanwhile (or unreadable: the next reload decides)
	}
	if err := s.dir.SetCanary(ctx, directory.Canary{MerchantID: merchantID}); err != nil {
		s.log.Error("plugin canary rollback not stored", "merchant", merchantID, "err", err)
		return
	}
	before, _ := json.Marshal(st)
	after, _ := json.Marshal(map[string]string{"reason": st.Reason})
	if err := s.ledger.Audit(ctx, ledger.AuditEntry{Actor: "otpcgate", Action: "plugin.canary_rollback",
		Subject: admin.MerchantSubject(merchantID), Before: before, After: after}); err != nil {
		s.log.Error("plugin canary rollback not audited", "merchant", merchantID, "err", err)
	}
	if err := s.reload(ctx); err != nil {
		s.log.Error("reload after a canary rollback", "err", err)
	}
}

// StartCanary sends fraction of merchantID's new transactions to version
// (admin.Backend).
func (s *Service) StartCanary(ctx context.Context, merchantID string, req admin.CanaryRequest) (plugincall.CanaryState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
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
	if _, err := s.version(ctx, merchantID, req.Version); err != nil {
		return plugincall.CanaryState{}, err
	}
	if active, err := s.dir.ActivePluginVersion(ctx, merchantID); err == nil && active.Version == req.Version {
		return plugincall.CanaryState{}, fmt.Errorf("%w: %s is the active version; a canary is a candidate", admin.ErrConflict, req.Version)
	}
	if err := s.ensureLoaded(ctx, merchantID, req.Version); err != nil {
		return plugincall.CanaryState{}, fmt.Errorf("%w: the candidate does not load: %v", admin.ErrPluginRefused, err)
	}
	c := directory.Canary{MerchantID: merchantID, Version: req.Version, Fraction: req.Fraction, MaxFailures: lim.MaxFailures, MaxLatency: lim.MaxLatency, Started: time.Now()}
	if err := s.dir.SetCanary(ctx, c); err != nil {
		return plugincall.CanaryState{}, err
	}
	if err := s.reload(ctx); err != nil {
		return plugincall.CanaryState{}, err
	}
	return s.calls.Canary(merchantID), nil
}

// StopCanary ends merchantID's canary and returns its last state; with
// promote, the candidate becomes the active version (admin.Backend).
func (s *Service) StopCanary(ctx context.Context, merchantID string, promote bool) (plugincall.CanaryState, error) {
	st := s.calls.Canary(merchantID)
	cur, err := s.dir.Canaries(ctx)
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
		if _, err := s.ActivatePlugin(ctx, merchantID, c.Version); err != nil {
			return st, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.dir.SetCanary(ctx, directory.Canary{MerchantID: merchantID}); err != nil {
		return st, err
	}
	if err := s.reload(ctx); err != nil {
		return st, err
	}
	return st, s.trimLoaded(ctx, merchantID)
}

// CanaryState returns merchantID's canary (admin.Backend).
func (s *Service) CanaryState(ctx context.Context, merchantID string) (plugincall.CanaryState, error) {
	if _, err := s.dir.Integration(ctx, merchantID); err != nil {
		return plugincall.CanaryState{}, fmt.Errorf("%w: merchant %s", admin.ErrNotFound, merchantID)
	}
	return s.calls.Canary(merchantID), nil
}

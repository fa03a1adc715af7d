package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpcgate/otpcgate/host/directory"
	"github.com/otpcgate/otpcgate/host/ledger"
)

// Quarantine describes a merchant whose active plugin version failed to
// load (e.g. at start, after passing its warm-up at upload). The merchant
// is served on Fallback, its newest earlier version that loads, or without
// a plugin (plugin-backed methods answer 503) when none does. Every other
// merchant and the admin API are unaffected; activating a version through
// the admin API (plugins activate or rollback) ends the quarantine.
type Quarantine struct {
	Merchant string
	Version  string // the directory's active version, which failed to load
	Err      string
	Fallback string // "" when no earlier version loads
	Since    time.Time
}

// pluginLoadError is a failure of the runtime to load a stored version, as
// opposed to a failure to read the directory.
type pluginLoadError struct {
	version string
	err     error
}

func (e *pluginLoadError) Error() string {
	return fmt.Sprintf("load plugin version %s: %v", e.version, e.err)
}

func (e *pluginLoadError) Unwrap() error { return e.err }

// quarantines records the merchants in quarantine.
type quarantines struct {
	mu sync.Mutex
	m  map[string]Quarantine
}

// Quarantined lists the merchants in quarantine, by merchant id.
func (s *Service) Quarantined() []Quarantine {
	s.quar.mu.Lock()
	defer s.quar.mu.Unlock()
	out := make([]Quarantine, 0, len(s.quar.m))
	for _, q := range s.quar.m {
		out = append(out, q)
	}
	slices.SortFunc(out, func(a, b Quarantine) int {
		if a.Merchant < b.Merchant {
			return -1
		}
		if a.Merchant > b.Merchant {
			return 1
		}
		return 0
	})
	return out
}

// inQuarantine reports whether version is the merchant's quarantined one.
func (s *Service) inQuarantine(merchantID, version string) bool {
	s.quar.mu.Lock()
	defer s.quar.mu.Unlock()
	q, ok := s.quar.m[merchantID]
	return ok && q.Version == version
}

// endQuarantine is called once the merchant's active version is in force.
func (s *Service) endQuarantine(merchantID string) {
	s.quar.mu.Lock()
	defer s.quar.mu.Unlock()
	if q, ok := s.quar.m[merchantID]; ok {
		delete(s.quar.m, merchantID)
		s.log.Info("plugin quarantine ended", "merchant", merchantID, "version", q.Version)
	}
}

// quarantine keeps the merchant served after its active version failed to
// load: on the version the runtime already runs for it if any (a reload),
// else on the newest earlier stored version that loads, else without a
// plugin. It logs, audits and records the decision once per failed version.
func (s *Service) quarantine(ctx context.Context, merchantID string, lf *pluginLoadError) error {
	q := Quarantine{Merchant: merchantID, Version: lf.version, Err: lf.err.Error(), Since: time.Now()}
	if cur, ok := s.rt.Active(merchantID); ok {
		q.Fallback = cur.Version
	} else {
		fallback, err := s.loadFallback(ctx, merchantID, lf.version)
		if err != nil {
			return err
		}
		q.Fallback = fallback
	}
	s.quar.mu.Lock()
	if s.quar.m == nil {
		s.quar.m = map[string]Quarantine{}
	}
	old, seen := s.quar.m[merchantID]
	if seen && old.Version == q.Version && old.Fallback == q.Fallback {
		s.quar.mu.Unlock()
		return nil
	}
	s.quar.m[merchantID] = q
	s.quar.mu.Unlock()

	s.log.Error("plugin quarantined: its active version failed to load; the merchant is served on its fallback "+
		"(no fallback: plugin-backed methods answer 503); activate or roll back a version through the admin API to end it",
		"merchant", merchantID, "version", q.Version, "err", q.Err, "fallback", q.Fallback)
	before, _ := json.Marshal(map[string]string{"version": q.Version, "error": q.Err})
	after, _ := json.Marshal(map[string]string{"fallback": q.Fallback})
	if err := s.ledger.Audit(ctx, ledger.AuditEntry{Actor: "gateway", Action: "plugin.quarantine",
		Subject: merchantID, Before: before, After: after}); err != nil {
		return fmt.Errorf("deploy: audit quarantine of %s: %w", merchantID, err)
	}
	return nil
}

// loadFallback loads and activates, in the runtime only, the newest stored
// version older than broken that loads. It returns "" if none does.
func (s *Service) loadFallback(ctx context.Context, merchantID, broken string) (string, error) {
	vs, err := s.dir.PluginVersions(ctx, merchantID) // oldest first
	if err != nil {
		return "", err
	}
	i := slices.IndexFunc(vs, func(v directory.PluginVersionInfo) bool { return v.Version == broken })
	if i < 0 {
		i = len(vs)
	}
	for j := i - 1; j >= 0; j-- {
		pv, err := s.dir.PluginVersion(ctx, merchantID, vs[j].Version)
		if err != nil {
			return "", err
		}
		spec, err := s.VersionSpec(ctx, pv)
		if err != nil {
			return "", err
		}
		if _, err := s.rt.Load(ctx, merchantID, spec); err != nil {
			s.log.Warn("plugin fallback candidate failed to load", "merchant", merchantID, "version", pv.Version, "err", err)
			continue
		}
		if err := s.rt.Activate(merchantID, pv.Version); err != nil {
			return "", err
		}
		return pv.Version, nil
	}
	return "", nil
}

var descQuarantined = prometheus.NewDesc("otpcgate_plugin_quarantined",
	"1 for a merchant whose active plugin version failed to load (version: the failed one; fallback: the version serving, empty for none).",
	[]string{"merchant", "version", "fallback"}, nil)

// Describe implements prometheus.Collector: the quarantine as a gauge per
// merchant.
func (s *Service) Describe(ch chan<- *prometheus.Desc) { ch <- descQuarantined }

// Collect implements prometheus.Collector.
func (s *Service) Collect(ch chan<- prometheus.Metric) {
	for _, q := range s.Quarantined() {
		ch <- prometheus.MustNewConstMetric(descQuarantined, prometheus.GaugeValue, 1, q.Merchant, q.Version, q.Fallback)
	}
}

// isLoadError reports whether err is a stored version failing to load.
func isLoadError(err error) (*pluginLoadError, bool) {
	var lf *pluginLoadError
	ok := errors.As(err, &lf)
	return lf, ok
}

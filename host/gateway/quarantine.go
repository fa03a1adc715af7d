package gateway

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
	Version  string // the registry's active version, which failed to load
	Err      string
	Fallback string // "" when no earlier version loads
	Since    time.Time
}

// pluginLoadError is a failure of the runtime to load a stored version, as
// opposed to a failure to read the registry.
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
func (g *Gateway) Quarantined() []Quarantine {
	g.quar.mu.Lock()
	defer g.quar.mu.Unlock()
	out := make([]Quarantine, 0, len(g.quar.m))
	for _, q := range g.quar.m {
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
func (g *Gateway) inQuarantine(merchantID, version string) bool {
	g.quar.mu.Lock()
	defer g.quar.mu.Unlock()
	q, ok := g.quar.m[merchantID]
	return ok && q.Version == version
}

// endQuarantine is called once the merchant's active version is in force.
func (g *Gateway) endQuarantine(merchantID string) {
	g.quar.mu.Lock()
	defer g.quar.mu.Unlock()
	if q, ok := g.quar.m[merchantID]; ok {
		delete(g.quar.m, merchantID)
		g.log.Info("plugin quarantine ended", "merchant", merchantID, "version", q.Version)
	}
}

// quarantine keeps the merchant served after its active version failed to
// load: on the version the runtime already runs for it if any (a reload),
// else on the newest earlier stored version that loads, else without a
// plugin. It logs, audits and records the decision once per failed version.
func (g *Gateway) quarantine(ctx context.Context, merchantID string, lf *pluginLoadError) error {
	q := Quarantine{Merchant: merchantID, Version: lf.version, Err: lf.err.Error(), Since: time.Now()}
	if cur, ok := g.Plugins.Active(merchantID); ok {
		q.Fallback = cur.Version
	} else {
		fallback, err := g.loadFallback(ctx, merchantID, lf.version)
		if err != nil {
			return err
		}
		q.Fallback = fallback
	}
	g.quar.mu.Lock()
	if g.quar.m == nil {
		g.quar.m = map[string]Quarantine{}
	}
	old, seen := g.quar.m[merchantID]
	if seen && old.Version == q.Version && old.Fallback == q.Fallback {
		g.quar.mu.Unlock()
		return nil
	}
	g.quar.m[merchantID] = q
	g.quar.mu.Unlock()

	g.log.Error("plugin quarantined: its active version failed to load; the merchant is served on its fallback "+
		"(no fallback: plugin-backed methods answer 503); activate or roll back a version through the admin API to end it",
		"merchant", merchantID, "version", q.Version, "err", q.Err, "fallback", q.Fallback)
	before, _ := json.Marshal(map[string]string{"version": q.Version, "error": q.Err})
	after, _ := json.Marshal(map[string]string{"fallback": q.Fallback})
	if err := g.Ledger.Audit(ctx, ledger.AuditEntry{Actor: "gateway", Action: "plugin.quarantine",
		Subject: merchantID, Before: before, After: after}); err != nil {
		return fmt.Errorf("gateway: audit quarantine of %s: %w", merchantID, err)
	}
	return nil
}

// loadFallback loads and activates, in the runtime only, the newest stored
// version older than broken that loads. It returns "" if none does.
func (g *Gateway) loadFallback(ctx context.Context, merchantID, broken string) (string, error) {
	vs, err := g.Directory.PluginVersions(ctx, merchantID) // oldest first
	if err != nil {
		return "", err
	}
	i := slices.IndexFunc(vs, func(v directory.PluginVersionInfo) bool { return v.Version == broken })
	if i < 0 {
		i = len(vs)
	}
	for j := i - 1; j >= 0; j-- {
		pv, err := g.Directory.PluginVersion(ctx, merchantID, vs[j].Version)
		if err != nil {
			return "", err
		}
		spec, err := g.versionSpec(ctx, pv)
		if err != nil {
			return "", err
		}
		if _, err := g.Plugins.Load(ctx, merchantID, spec); err != nil {
			g.log.Warn("plugin fallback candidate failed to load", "merchant", merchantID, "version", pv.Version, "err", err)
			continue
		}
		if err := g.Plugins.Activate(merchantID, pv.Version); err != nil {
			return "", err
		}
		return pv.Version, nil
	}
	return "", nil
}

// quarantineCollector exports the quarantine as a gauge per merchant.
type quarantineCollector struct{ g *Gateway }

var descQuarantined = prometheus.NewDesc("otpcgate_plugin_quarantined",
	"1 for a merchant whose active plugin version failed to load (version: the failed one; fallback: the version serving, empty for none).",
	[]string{"merchant", "version", "fallback"}, nil)

var descKeysetQuarantined = prometheus.NewDesc("otpcgate_keyset_quarantined",
	"1 for a merchant whose keyset failed to load at start (its requests answer 503) until it loads.",
	[]string{"merchant", "keyset"}, nil)

func (c quarantineCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descQuarantined
	ch <- descKeysetQuarantined
}

func (c quarantineCollector) Collect(ch chan<- prometheus.Metric) {
	for _, q := range c.g.Quarantined() {
		ch <- prometheus.MustNewConstMetric(descQuarantined, prometheus.GaugeValue, 1, q.Merchant, q.Version, q.Fallback)
	}
	for merchant, keyset := range c.g.QuarantinedKeysets(context.Background()) {
		ch <- prometheus.MustNewConstMetric(descKeysetQuarantined, prometheus.GaugeValue, 1, merchant, keyset)
	}
}

// QuarantinedKeysets lists, by merchant, the keysets that failed to load at
// start and still do not (one that loads now leaves the list).
func (g *Gateway) QuarantinedKeysets(ctx context.Context) map[string]string {
	out := map[string]string{}
	g.quarantinedKeysets.Range(func(k, v any) bool {
		merchant, keyset := k.(string), v.(string)
		if _, err := g.Keys.Keyset(ctx, keyset); err == nil {
			g.quarantinedKeysets.Delete(merchant)
			return true
		}
		out[merchant] = keyset
		return true
	})
	return out
}

// isLoadError reports whether err is a stored version failing to load.
func isLoadError(err error) (*pluginLoadError, bool) {
	var lf *pluginLoadError
	ok := errors.As(err, &lf)
	return lf, ok
}

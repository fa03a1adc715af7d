package admin

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpcgate/otpcgate/host/runtime"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// Runner is the part of runtime.Manager that PluginMetrics decorates.
type Runner interface {
	Call(ctx context.Context, pluginID string, op otpc.Op, input []byte, env runtime.CallEnv) ([]byte, runtime.ChangeSet, error)
	Active(pluginID string) (runtime.VersionInfo, bool)
}

// latencyWindow is how many recent call latencies each version keeps for
// p50/p99: enough for a stable p99, small enough to sort on demand.
const latencyWindow = 2048

// PluginMetrics counts plugin calls per version (calls, errors, traps,
// timeouts, latency). It implements protocol.Plugins by calling Runner, so
// the pipeline can use it in place of the runtime.
type PluginMetrics struct {
	next Runner

	mu   sync.Mutex
	vers map[verKey]*verStats

	hist *prometheus.HistogramVec
}

type verKey struct{ plugin, version string }

type verStats struct {
	calls, errors, traps, timeouts, limits int64
	ring                                   [latencyWindow]float64 // seconds
	n                                      int
}

// CallStats are one plugin version's counters since start.
type CallStats struct {
	Calls    int64   `json:"calls"`
	Errors   int64   `json:"errors"`
	Traps    int64   `json:"traps"`
	Timeouts int64   `json:"timeouts"`
	Limits   int64   `json:"limits"`
	P50Ms    float64 `json:"p50Ms"`
	P99Ms    float64 `json:"p99Ms"`
}

// NewPluginMetrics decorates next.
func NewPluginMetrics(next Runner) *PluginMetrics {
	return &PluginMetrics{
		next: next,
		vers: map[verKey]*verStats{},
		hist: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "otpcgate_plugin_call_duration_seconds",
			Help:    "Plugin call latency by plugin and version.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"plugin", "version"}),
	}
}

// Call runs the plugin and records the outcome under the version that
// served it: the failing version named by a *runtime.CallError, else the
// version active when the call started (a call racing an activation may be
// counted under the old version; it did run on one of the two).
func (p *PluginMetrics) Call(ctx context.Context, pluginID string, op otpc.Op, input []byte, env runtime.CallEnv) ([]byte, runtime.ChangeSet, error) {
	version := ""
	if vi, ok := p.next.Active(pluginID); ok {
		version = vi.Version
	}
	start := time.Now()
	out, cs, err := p.next.Call(ctx, pluginID, op, input, env)
	took := time.Since(start).Seconds()
	var ce *runtime.CallError
	if errors.As(err, &ce) && ce.Version != "" {
		version = ce.Version
	}
	if version == "" {
		return out, cs, err // no version ran
	}
	p.hist.WithLabelValues(pluginID, version).Observe(took)
	p.mu.Lock()
	s := p.vers[verKey{pluginID, version}]
	if s == nil {
		s = &verStats{}
		p.vers[verKey{pluginID, version}] = s
	}
	s.calls++
	if err != nil {
		s.errors++
		switch {
		case runtime.IsKind(err, runtime.KindTrap):
			s.traps++
		case runtime.IsKind(err, runtime.KindTimeout):
			s.timeouts++
		case runtime.IsKind(err, runtime.KindLimit):
			s.limits++
		}
	}
	s.ring[s.n%latencyWindow] = took
	s.n++
	p.mu.Unlock()
	return out, cs, err
}

// Active reports the wrapped runner's active version, so a PluginMetrics is
// itself a Runner.
func (p *PluginMetrics) Active(pluginID string) (runtime.VersionInfo, bool) {
	return p.next.Active(pluginID)
}

// Stats returns a version's counters; ok is false if it never ran.
func (p *PluginMetrics) Stats(pluginID, version string) (CallStats, bool) {
	p.mu.Lock()
	s := p.vers[verKey{pluginID, version}]
	if s == nil {
		p.mu.Unlock()
		return CallStats{}, false
	}
	cs := CallStats{Calls: s.calls, Errors: s.errors, Traps: s.traps, Timeouts: s.timeouts, Limits: s.limits}
	lat := slices.Clone(s.ring[:min(s.n, latencyWindow)])
	p.mu.Unlock()
	slices.Sort(lat)
	cs.P50Ms = quantile(lat, 0.50) * 1e3
	cs.P99Ms = quantile(lat, 0.99) * 1e3
	return cs, true
}

func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

var (
	descPluginCalls = prometheus.NewDesc("otpcgate_plugin_calls_total",
		"Plugin calls by plugin, version and result (ok, error, trap, timeout, limit).",
		[]string{"plugin", "version", "result"}, nil)
)

// Describe implements prometheus.Collector.
func (p *PluginMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- descPluginCalls
	p.hist.Describe(ch)
}

// Collect implements prometheus.Collector.
func (p *PluginMetrics) Collect(ch chan<- prometheus.Metric) {
	p.mu.Lock()
	for k, s := range p.vers {
		other := s.errors - s.traps - s.timeouts - s.limits
		for _, r := range []struct {
			name string
			v    int64
		}{{"ok", s.calls - s.errors}, {"error", other}, {"trap", s.traps}, {"timeout", s.timeouts}, {"limit", s.limits}} {
			ch <- prometheus.MustNewConstMetric(descPluginCalls, prometheus.CounterValue, float64(r.v), k.plugin, k.version, r.name)
		}
	}
	p.mu.Unlock()
	p.hist.Collect(ch)
}

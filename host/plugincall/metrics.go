package plugincall

import (
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpcgate/otpcgate/host/runtime"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// Outcomes of a plugin call, as counted per merchant and op.
const (
	// OutcomeOK: a validated output (success or business decline).
	OutcomeOK = "ok"
	// OutcomeRefusal: the plugin refused with an ErrorResponse member it
	// may choose.
	OutcomeRefusal = "refusal"
	// OutcomeError: the plugin returned an error, refused with a member
	// reserved to the host, or broke the ABI; or the host failed.
	OutcomeError = "error"
	// OutcomeInvalid: the output did not decode or validate.
	OutcomeInvalid = "invalid"
	// OutcomeTrap, OutcomeTimeout, OutcomeLimit: the runtime's kinds.
	OutcomeTrap    = "trap"
	OutcomeTimeout = "timeout"
	OutcomeLimit   = "limit"
	// OutcomeCircuitOpen: not called, the plugin's circuit is open after
	// repeated timeouts (ErrCircuitOpen).
	OutcomeCircuitOpen = "circuit_open"
)

var outcomes = [...]string{OutcomeOK, OutcomeRefusal, OutcomeError, OutcomeInvalid, OutcomeTrap, OutcomeTimeout, OutcomeLimit, OutcomeCircuitOpen}

// outcomeOf classifies a call's final error.
func outcomeOf(err error) string {
	var inv *invalidOutput
	var ref *otpc.Refusal
	switch {
	case err == nil:
		return OutcomeOK
	case errors.As(err, &ref):
		return OutcomeRefusal
	case errors.As(err, &inv):
		return OutcomeInvalid
	case errors.Is(err, ErrCircuitOpen):
		return OutcomeCircuitOpen
	case runtime.IsKind(err, runtime.KindTrap):
		return OutcomeTrap
	case runtime.IsKind(err, runtime.KindTimeout):
		return OutcomeTimeout
	case runtime.IsKind(err, runtime.KindLimit):
		return OutcomeLimit
	}
	return OutcomeError
}

// latencyWindow is how many recent call latencies each version keeps for
// p50/p99: enough for a stable p99, small enough to sort on demand.
const latencyWindow = 2048

// VersionStats are one plugin version's counters since start. A refusal
// is an answer, not an error.
type VersionStats struct {
	Calls    int64   `json:"calls"`
	Errors   int64   `json:"errors"`
	Traps    int64   `json:"traps"`
	Timeouts int64   `json:"timeouts"`
	Limits   int64   `json:"limits"`
	P50Ms    float64 `json:"p50Ms"`
	P99Ms    float64 `json:"p99Ms"`
}

type verKey struct{ plugin, version string }

type verStats struct {
	calls, errors, traps, timeouts, limits int64
	ring                                   [latencyWindow]float64 // seconds
	n                                      int
}

type opKey struct {
	merchant string
	op       otpc.Op
}

// metrics counts calls per version and per merchant/op/outcome. One mutex:
// a call takes it once, for a few increments.
type metrics struct {
	mu   sync.Mutex
	vers map[verKey]*verStats
	ops  map[opKey]*[len(outcomes)]int64
	hist *prometheus.HistogramVec
}

func newMetrics() *metrics {
	return &metrics{
		vers: map[verKey]*verStats{},
		ops:  map[opKey]*[len(outcomes)]int64{},
		hist: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "otpcgate_plugin_call_duration_seconds",
			Help:    "Plugin call latency by plugin and version.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"plugin", "version"}),
	}
}

func (m *metrics) record(merchant, plugin, version string, op otpc.Op, took time.Duration, err error) {
	outcome := outcomeOf(err)
	idx := slices.Index(outcomes[:], outcome)
	if version != "" {
		m.hist.WithLabelValues(plugin, version).Observe(took.Seconds())
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	o := m.ops[opKey{merchant, op}]
	if o == nil {
		o = new([len(outcomes)]int64)
		m.ops[opKey{merchant, op}] = o
	}
	o[idx]++
	if version == "" || outcome == OutcomeCircuitOpen {
		return // no version ran
	}
	s := m.vers[verKey{plugin, version}]
	if s == nil {
		s = &verStats{}
		m.vers[verKey{plugin, version}] = s
	}
	s.calls++
	switch outcome {
	case OutcomeOK, OutcomeRefusal:
	case OutcomeTrap:
		s.errors++
		s.traps++
	case OutcomeTimeout:
		s.errors++
		s.timeouts++
	case OutcomeLimit:
		s.errors++
		s.limits++
	default:
		s.errors++
	}
	s.ring[s.n%latencyWindow] = took.Seconds()
	s.n++
}

func (m *metrics) stats(pluginID, version string) (VersionStats, bool) {
	m.mu.Lock()
	s := m.vers[verKey{pluginID, version}]
	if s == nil {
		m.mu.Unlock()
		return VersionStats{}, false
	}
	vs := VersionStats{Calls: s.calls, Errors: s.errors, Traps: s.traps, Timeouts: s.timeouts, Limits: s.limits}
	lat := slices.Clone(s.ring[:min(s.n, latencyWindow)])
	m.mu.Unlock()
	slices.Sort(lat)
	vs.P50Ms = quantile(lat, 0.50) * 1e3
	vs.P99Ms = quantile(lat, 0.99) * 1e3
	return vs, true
}

func (m *metrics) outcomes(merchant string) map[otpc.Op]map[string]int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[otpc.Op]map[string]int64{}
	for k, o := range m.ops {
		if k.merchant != merchant {
			continue
		}
		byOutcome := make(map[string]int64, len(outcomes))
		for i, name := range outcomes {
			byOutcome[name] = o[i]
		}
		out[k.op] = byOutcome
	}
	return out
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
		"Plugin calls by plugin, version and result (ok, error, trap, timeout, limit); a refusal counts as ok.",
		[]string{"plugin", "version", "result"}, nil)
	descPluginOutcomes = prometheus.NewDesc("otpcgate_plugin_outcomes_total",
		"Plugin calls by merchant, op and outcome (ok, refusal, error, invalid, trap, timeout, limit), from every caller: Google pipeline, merchant API, login page.",
		[]string{"merchant", "op", "outcome"}, nil)
	descShadow = prometheus.NewDesc("otpcgate_plugin_shadow_calls_total",
		"Shadowed calls of a merchant's candidate by op and result (same, different), since its shadow started.",
		[]string{"merchant", "version", "op", "result"}, nil)
	descShadowDropped = prometheus.NewDesc("otpcgate_plugin_shadow_dropped_total",
		"Sampled calls not shadowed (queue full, no free CPU slot), since the shadow started.", []string{"merchant", "version"}, nil)
	descCanary = prometheus.NewDesc("otpcgate_plugin_canary_calls_total",
		"Calls a merchant's canary candidate served, by result (ok, failed, slow), since the canary started.",
		[]string{"merchant", "version", "result"}, nil)
	descCanaryRolledBack = prometheus.NewDesc("otpcgate_plugin_canary_rolled_back",
		"1 while a merchant's canary is rolled back on its own (until the registry drops it).", []string{"merchant", "version"}, nil)
)

// Describe implements prometheus.Collector.
func (s *Service) Describe(ch chan<- *prometheus.Desc) {
	ch <- descPluginCalls
	ch <- descPluginOutcomes
	ch <- descShadow
	ch <- descShadowDropped
	ch <- descCanary
	ch <- descCanaryRolledBack
	s.metrics.hist.Describe(ch)
}

// Collect implements prometheus.Collector.
func (s *Service) Collect(ch chan<- prometheus.Metric) {
	m := s.metrics
	m.mu.Lock()
	for k, s := range m.vers {
		other := s.errors - s.traps - s.timeouts - s.limits
		for _, r := range []struct {
			name string
			v    int64
		}{{"ok", s.calls - s.errors}, {"error", other}, {"trap", s.traps}, {"timeout", s.timeouts}, {"limit", s.limits}} {
			ch <- prometheus.MustNewConstMetric(descPluginCalls, prometheus.CounterValue, float64(r.v), k.plugin, k.version, r.name)
		}
	}
	for k, o := range m.ops {
		for i, name := range outcomes {
			ch <- prometheus.MustNewConstMetric(descPluginOutcomes, prometheus.CounterValue, float64(o[i]), k.merchant, k.op.String(), name)
		}
	}
	m.mu.Unlock()
	m.hist.Collect(ch)
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	s.shadow.mu.Lock()
	for merchant, r := range s.shadow.per {
		for op, o := range r.ByOp {
			counter(descShadow, o.Compared-o.Different, merchant, r.Version, op, "same")
			counter(descShadow, o.Different, merchant, r.Version, op, "different")
		}
		counter(descShadowDropped, r.Dropped, merchant, r.Version)
	}
	s.shadow.mu.Unlock()
	s.canary.mu.Lock()
	for merchant, st := range s.canary.per {
		counter(descCanary, st.Calls-st.Failures, merchant, st.Version, "ok")
		counter(descCanary, st.Failures, merchant, st.Version, "failed")
		counter(descCanary, st.Slow, merchant, st.Version, "slow")
		rolled := 0.0
		if st.RolledBack {
			rolled = 1
		}
		ch <- prometheus.MustNewConstMetric(descCanaryRolledBack, prometheus.GaugeValue, rolled, merchant, st.Version)
	}
	s.canary.mu.Unlock()
}

package runtime

import "sync/atomic"

// Stats are cumulative counters of a Manager, for metrics.
type Stats struct {
	Calls uint64 // calls that reached a version (success or failure)
	// Failures counts failed calls by kind.
	Failures map[Kind]uint64
	// InstancesCreated and InstancesDiscarded count instances made and
	// closed because they broke (not those closed with their version).
	InstancesCreated   uint64
	InstancesDiscarded uint64
	// LogLinesDropped counts plugin log lines dropped because the plugin
	// was over Options.LogBytesPerMinute.
	LogLinesDropped uint64
}

const kindCount = int(KindHost) + 1

type counters struct {
	calls     atomic.Uint64
	failures  [kindCount]atomic.Uint64
	created   atomic.Uint64
	discarded atomic.Uint64
	// logDropped counts plugin log lines dropped over a log budget.
	logDropped atomic.Uint64
}

func (c *counters) failure(k Kind) {
	if int(k) > 0 && int(k) < kindCount {
		c.failures[k].Add(1)
	}
}

// Stats returns a snapshot of the counters.
func (m *Manager) Stats() Stats {
	s := Stats{
		Calls:              m.stats.calls.Load(),
		Failures:           make(map[Kind]uint64),
		InstancesCreated:   m.stats.created.Load(),
		InstancesDiscarded: m.stats.discarded.Load(),
		LogLinesDropped:    m.stats.logDropped.Load(),
	}
	for k := KindTrap; int(k) < kindCount; k++ {
		if n := m.stats.failures[k].Load(); n > 0 {
			s.Failures[k] = n
		}
	}
	return s
}

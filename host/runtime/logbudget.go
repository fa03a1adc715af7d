package runtime

import (
	"sync"
	"time"
)

// DefaultLogBytesPerMinute is each plugin's log volume over time when
// Options.LogBytesPerMinute is zero.
const DefaultLogBytesPerMinute = 1 << 20

// logBudget bounds one plugin's log volume over time, across its versions
// and instances: a bucket of perMinute bytes refilled continuously. A line
// over it is dropped and counted, never failing the call (Limits.MaxLogBytes
// bounds one call); the drops are reported at most once a minute.
type logBudget struct {
	mu        sync.Mutex
	perMinute float64
	tokens    float64
	last      time.Time
	dropped   uint64 // since the last report
	reported  time.Time
}

func newLogBudget(perMinute int, now time.Time) *logBudget {
	return &logBudget{perMinute: float64(perMinute), tokens: float64(perMinute), last: now}
}

// take spends n bytes if the budget has them. When it has not, report is
// the number of lines dropped since the last report if a report is due
// (the first drop, then once a minute), else 0.
func (b *logBudget) take(n int, now time.Time) (ok bool, report uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(b.perMinute, b.tokens+d.Minutes()*b.perMinute)
		b.last = now
	}
	if float64(n) <= b.tokens {
		b.tokens -= float64(n)
		return true, 0
	}
	b.dropped++
	if now.Sub(b.reported) >= time.Minute {
		report, b.dropped, b.reported = b.dropped, 0, now
	}
	return false, report
}

// logBudget returns pluginID's budget, shared by all its versions.
func (m *Manager) logBudget(pluginID string) *logBudget {
	per := m.opts.LogBytesPerMinute
	if per <= 0 {
		per = DefaultLogBytesPerMinute
	}
	b, _ := m.logBudgets.LoadOrStore(pluginID, newLogBudget(per, time.Now()))
	return b.(*logBudget)
}

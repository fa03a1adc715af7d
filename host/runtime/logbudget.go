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
	b, _ := m.logBudgets.LoadOrStore(pluginID, newLogBudget(m.defaultLogRate(), time.Now()))
	return b.(*logBudget)
}

func (m *Manager) defaultLogRate() int {
	if m.opts.LogBytesPerMinute > 0 {
		return m.opts.LogBytesPerMinute
	}
	return DefaultLogBytesPerMinute
}

// DefaultLogBudget returns the log budget of a plugin without one of its
// own, in bytes per minute.
func (m *Manager) DefaultLogBudget() int { return m.defaultLogRate() }

// DefaultMemoryMiB returns the linear memory cap of an instance whose
// version names none, in MiB.
func (m *Manager) DefaultMemoryMiB() int {
	return int(m.opts.Limits.withDefaults().MemoryPages / 16) // 64 KiB pages
}

// SetLogBudget gives pluginID a log budget of its own, in bytes per minute,
// for its loaded versions and later ones; 0 returns it to
// Options.LogBytesPerMinute.
func (m *Manager) SetLogBudget(pluginID string, perMinute int) {
	if perMinute <= 0 {
		perMinute = m.defaultLogRate()
	}
	m.logBudget(pluginID).setRate(perMinute)
}

// LogBudget returns pluginID's log budget in force, in bytes per minute.
func (m *Manager) LogBudget(pluginID string) int {
	b := m.logBudget(pluginID)
	b.mu.Lock()
	defer b.mu.Unlock()
	return int(b.perMinute)
}

// setRate changes the budget; what is left is capped by the new size.
func (b *logBudget) setRate(perMinute int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.perMinute = float64(perMinute)
	b.tokens = min(b.tokens, b.perMinute)
}

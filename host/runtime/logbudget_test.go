package runtime

import (
	"testing"
	"time"
)

// TestLogBudget: a bucket of perMinute bytes refilled continuously; drops
// are reported on the first and then at most once a minute, with the count
// since the last report.
func TestLogBudget(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	b := newLogBudget(600, t0) // 10 bytes a second
	steps := []struct {
		at     time.Duration
		n      int
		ok     bool
		report uint64
	}{
		{0, 400, true, 0},
		{0, 200, true, 0},              // empty now
		{0, 1, false, 1},               // first drop: reported at once
		{time.Second, 20, false, 0},    // 10 bytes back: 20 do not fit, not reported again
		{2 * time.Second, 20, true, 0}, // 20 bytes back
		{30 * time.Second, 500, false, 0},
		{61 * time.Second, 700, false, 3}, // a minute after the first report: 3 since
		{200 * time.Second, 600, true, 0}, // refilled to the cap, not beyond
		{200 * time.Second, 1, false, 1},  // over a minute since the last report
	}
	for i, s := range steps {
		ok, report := b.take(s.n, t0.Add(s.at))
		if ok != s.ok || report != s.report {
			t.Fatalf("step %d (%v, %d bytes): ok %v report %d, want %v %d", i, s.at, s.n, ok, report, s.ok, s.report)
		}
	}
}

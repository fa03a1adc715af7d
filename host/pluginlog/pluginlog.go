// Package pluginlog keeps each merchant's recent plugin log lines and
// failed-call reports in a bounded buffer of its own, so that a merchant can
// read (and follow) what its plugin logged through the admin API, and never
// another merchant's lines.
//
// The buffer is fed by runtime.Options.LogSink. It holds only what the
// plugin itself wrote and the host's short failure reports (kind, op, the
// guest's panic trace); the request's payload is never in it.
package pluginlog

import (
	"context"
	"sync"
	"time"

	"github.com/otpcgate/otpcgate/host/runtime"
)

// Defaults of Config.
const (
	DefaultLines = 1000
	DefaultBytes = 256 << 10
	// maxText bounds one entry's text and stack each, so one line cannot
	// take a merchant's whole buffer.
	maxText = 4 << 10
)

// Config bounds each merchant's buffer.
type Config struct {
	// Lines and Bytes bound the entries kept per merchant (text and stack
	// counted); the oldest go first. Defaults DefaultLines, DefaultBytes.
	Lines, Bytes int
}

// Entry is one kept line. Seq numbers a merchant's entries from 1, in
// order, so a reader asks for what came after the last one it saw.
type Entry struct {
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
	Version   string    `json:"version"`
	RequestID string    `json:"requestId,omitempty"`
	Level     string    `json:"level"`
	Text      string    `json:"text"`
	// Failure, Op and Stack are set on a failed call's report.
	Failure string `json:"failure,omitempty"`
	Op      string `json:"op,omitempty"`
	Stack   string `json:"stack,omitempty"`
}

func (e *Entry) size() int { return len(e.Text) + len(e.Stack) + 64 }

// Buffer holds every merchant's entries. The zero value is not usable; use
// New.
type Buffer struct {
	cfg Config
	mu  sync.Mutex
	m   map[string]*ring
}

// ring is one merchant's entries, oldest first.
type ring struct {
	entries []Entry
	bytes   int
	next    uint64        // Seq of the next entry
	changed chan struct{} // closed and replaced on every Add
}

// New returns an empty buffer.
func New(cfg Config) *Buffer {
	if cfg.Lines <= 0 {
		cfg.Lines = DefaultLines
	}
	if cfg.Bytes <= 0 {
		cfg.Bytes = DefaultBytes
	}
	return &Buffer{cfg: cfg, m: map[string]*ring{}}
}

func (b *Buffer) ring(merchant string) *ring {
	r := b.m[merchant]
	if r == nil {
		r = &ring{next: 1, changed: make(chan struct{})}
		b.m[merchant] = r
	}
	return r
}

// Add keeps l under its plugin's (merchant's) entries; it is a
// runtime.Options.LogSink.
func (b *Buffer) Add(l runtime.LogLine) {
	e := Entry{Time: l.Time.UTC(), Version: l.Version, RequestID: l.RequestID, Level: l.Level.String(),
		Text: clip(l.Text), Failure: l.Failure, Op: l.Op, Stack: clip(l.Stack)}
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.ring(l.Plugin)
	e.Seq = r.next
	r.next++
	r.entries = append(r.entries, e)
	r.bytes += e.size()
	drop := 0
	for len(r.entries)-drop > b.cfg.Lines || r.bytes > b.cfg.Bytes && drop < len(r.entries)-1 {
		r.bytes -= r.entries[drop].size()
		drop++
	}
	if drop > 0 {
		// Copy down rather than reslice, so the array does not grow forever.
		r.entries = append(r.entries[:0], r.entries[drop:]...)
	}
	close(r.changed)
	r.changed = make(chan struct{})
}

// Since returns up to max of merchant's entries with Seq > after, oldest
// first, and the Seq to ask after next time.
func (b *Buffer) Since(merchant string, after uint64, max int) ([]Entry, uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.m[merchant]
	if r == nil {
		return nil, after
	}
	var out []Entry
	for _, e := range r.entries {
		if e.Seq > after {
			if len(out) == max {
				break
			}
			out = append(out, e)
		}
	}
	if len(out) > 0 {
		after = out[len(out)-1].Seq
	}
	return out, after
}

// Wait blocks until merchant has an entry with Seq > after, or ctx ends.
func (b *Buffer) Wait(ctx context.Context, merchant string, after uint64) error {
	for {
		b.mu.Lock()
		r := b.ring(merchant)
		if r.next-1 > after {
			b.mu.Unlock()
			return nil
		}
		ch := r.changed
		b.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Forget drops merchant's entries (the merchant was deleted).
func (b *Buffer) Forget(merchant string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if r := b.m[merchant]; r != nil {
		close(r.changed)
		delete(b.m, merchant)
	}
}

func clip(s string) string {
	if len(s) <= maxText {
		return s
	}
	return s[:maxText]
}

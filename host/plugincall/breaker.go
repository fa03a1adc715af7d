package plugincall

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/otpcgate/otpcgate/host/runtime"
)

// ErrCircuitOpen is the failure of a call not made because the plugin's
// recent calls kept running into their time limit or a resource limit
// (memory, log, KV, output): rather than burn a CPU slot for the whole
// timeout, or grow and throw away a full instance, on every request, the
// plugin is given a cool-down.
// Callers answer it like any failure (503 with Retry-After).
var ErrCircuitOpen = errors.New("plugincall: plugin circuit open after repeated timeouts or resource limits")

// Circuit-breaker defaults (see Config).
const (
	DefaultBreakerTimeouts = 3
	DefaultBreakerCoolDown = 30 * time.Second
)

// breaker counts each plugin's consecutive exhaustions: timeouts and
// resource limits (runtime.KindLimit: memory, log, KV, output; each one
// also costs a new instance). After Timeouts of them
// the circuit opens: calls fail at once with ErrCircuitOpen for CoolDown.
// Then one call goes through as a probe; a probe that does not time out
// closes the circuit, one that does opens it for another CoolDown.
type breaker struct {
	threshold int
	coolDown  time.Duration
	now       func() time.Time

	mu sync.Mutex
	m  map[string]*circuit
}

type circuit struct {
	strikes   int       // consecutive timeouts and resource limits
	openUntil time.Time // zero: closed
	probing   bool      // a probe call is running
	opened    uint64    // times opened, for metrics
}

func newBreaker(threshold int, coolDown time.Duration) *breaker {
	if threshold <= 0 {
		threshold = DefaultBreakerTimeouts
	}
	if coolDown <= 0 {
		coolDown = DefaultBreakerCoolDown
	}
	return &breaker{threshold: threshold, coolDown: coolDown, now: time.Now, m: map[string]*circuit{}}
}

// allow reports whether a call to plugin may run now.
func (b *breaker) allow(plugin string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.m[plugin]
	if c == nil || c.openUntil.IsZero() {
		return nil
	}
	if now := b.now(); now.Before(c.openUntil) || c.probing {
		return fmt.Errorf("%w: plugin %s, %d consecutive timeouts or resource limits, cool-down until %s",
			ErrCircuitOpen, plugin, c.strikes, c.openUntil.UTC().Format(time.RFC3339))
	}
	c.probing = true
	return nil
}

// cooling reports whether plugin's circuit is open and still in its
// cool-down (a call now would be refused; the probe comes after it).
func (b *breaker) cooling(plugin string) (bool, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.m[plugin]
	if c == nil || c.openUntil.IsZero() {
		return false, 0
	}
	left := c.openUntil.Sub(b.now())
	return left > 0, left
}

// record notes how a call that allow let through ended. ctx is the
// caller's context: a call cut short because the caller went away says
// nothing about the plugin.
func (b *breaker) record(ctx context.Context, plugin string, err error) (opened bool) {
	exhausted := (runtime.IsKind(err, runtime.KindTimeout) || runtime.IsKind(err, runtime.KindLimit)) && ctx.Err() == nil
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.m[plugin]
	if !exhausted {
		if c != nil {
			delete(b.m, plugin) // closed and forgotten
		}
		return false
	}
	if c == nil {
		c = &circuit{}
		b.m[plugin] = c
	}
	c.strikes++
	wasProbe := c.probing
	c.probing = false
	if c.strikes >= b.threshold || wasProbe {
		c.openUntil = b.now().Add(b.coolDown)
		c.opened++
		return true
	}
	return false
}

// open lists the plugins whose circuit is open now.
func (b *breaker) open() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	var out []string
	for p, c := range b.m {
		if !c.openUntil.IsZero() && now.Before(c.openUntil) {
			out = append(out, p)
		}
	}
	return out
}

package server

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"
)

// ErrOverloaded is the parent of the limiter's refusals; a caller answers it
// with 503 and a Retry-After header so Google retries later.
var ErrOverloaded = errors.New("server: overloaded")

// ErrQueueFull means the admission queue already held MaxQueue waiters.
var ErrQueueFull = fmt.Errorf("%w: admission queue full", ErrOverloaded)

// ErrQueueTimeout means a waiter was not admitted within MaxWait.
var ErrQueueTimeout = fmt.Errorf("%w: admission wait exceeded", ErrOverloaded)

// LimiterConfig sizes a Limiter.
type LimiterConfig struct {
	// MaxInFlight is how many holders may run at once; <= 0 means
	// runtime.GOMAXPROCS(0), which suits CPU-bound RSA and plugin work.
	MaxInFlight int
	// MaxQueue is how many callers may wait; 0 means none may wait (a
	// caller that finds all slots busy is refused at once).
	MaxQueue int
	// MaxWait bounds a caller's time in the queue; <= 0 means no bound
	// beyond the caller's context.
	MaxWait time.Duration
	// MaxInFlightPerKey is how many slots one key (a merchant) may hold at
	// once, even when others are free, so that one merchant's slow plugin
	// always leaves a slot for the others; <= 0 or above MaxInFlight means
	// MaxInFlight (no reserve).
	MaxInFlightPerKey int
	// MaxQueuePerKey is how many of the queue's places one key may take,
	// so that one merchant's burst cannot fill the queue for everyone;
	// <= 0 or above MaxQueue means MaxQueue.
	MaxQueuePerKey int
}

// Limiter bounds concurrent CPU-heavy work and admits waiters fairly.
// Without it, eight concurrent RSA requests on two cores time-slice against
// each other and the unlucky ones see several times the median latency;
// with it, the work runs at most MaxInFlight wide and the rest wait.
//
// Callers name a key (the merchant). Each key's waiters are served in
// arrival order, and a freed slot goes to the keys with waiters in turn
// (round robin), so a merchant with a burst of slow requests delays another
// merchant by at most one request of its own, not by its whole queue. A key
// never holds more than MaxInFlightPerKey slots nor MaxQueuePerKey places in
// the queue. A caller is admitted at once only if no waiter could take the
// slot instead. The zero value is not usable; use NewLimiter.
type Limiter struct {
	max, maxKey   int
	maxQ, maxQKey int
	maxWait       time.Duration

	mu       sync.Mutex
	inFlight int
	queued   int
	keys     map[string]*keyState // keys holding slots or waiting
	ring     []*keyState          // keys with waiters, in turn order
	next     int                  // the ring index served next
	counts   LimiterCounts
}

// keyState is one key's share of the Limiter.
type keyState struct {
	key        string
	inFlight   int
	queued     int
	head, tail *waiter
}

// LimiterCounts are cumulative counters of a Limiter, for metrics.
type LimiterCounts struct {
	// Admitted counts successful Acquire calls, Queued those that waited.
	Admitted, Queued uint64
	// QueueFull, Timeouts and Cancelled count refusals by cause; KeyQueueFull
	// counts the part of QueueFull refused for the key's own share.
	QueueFull, KeyQueueFull, Timeouts, Cancelled uint64
	// Waited is the total time admitted callers spent queued.
	Waited time.Duration
}

// waiter is one queued caller. ready is closed when it has been given a
// slot; granted is set under Limiter.mu at the same time.
type waiter struct {
	ready      chan struct{}
	granted    bool
	prev, next *waiter
}

// NewLimiter returns a Limiter for cfg. Negative MaxQueue counts as 0.
func NewLimiter(cfg LimiterConfig) *Limiter {
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = runtime.GOMAXPROCS(0)
	}
	if cfg.MaxQueue < 0 {
		cfg.MaxQueue = 0
	}
	if cfg.MaxInFlightPerKey <= 0 || cfg.MaxInFlightPerKey > cfg.MaxInFlight {
		cfg.MaxInFlightPerKey = cfg.MaxInFlight
	}
	if cfg.MaxQueuePerKey <= 0 || cfg.MaxQueuePerKey > cfg.MaxQueue {
		cfg.MaxQueuePerKey = cfg.MaxQueue
	}
	return &Limiter{max: cfg.MaxInFlight, maxKey: cfg.MaxInFlightPerKey, maxQ: cfg.MaxQueue, maxQKey: cfg.MaxQueuePerKey,
		maxWait: cfg.MaxWait, keys: map[string]*keyState{}}
}

// MaxInFlight reports the number of slots.
func (l *Limiter) MaxInFlight() int { return l.max }

// MaxInFlightPerKey reports how many slots one key may hold.
func (l *Limiter) MaxInFlightPerKey() int { return l.maxKey }

// Stats reports the slots in use and the number of waiters, for metrics.
func (l *Limiter) Stats() (inFlight, queued int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inFlight, l.queued
}

// KeyStats reports the slots one key holds and its waiters.
func (l *Limiter) KeyStats(key string) (inFlight, queued int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ks := l.keys[key]; ks != nil {
		return ks.inFlight, ks.queued
	}
	return 0, 0
}

// Counts returns the cumulative counters.
func (l *Limiter) Counts() LimiterCounts {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.counts
}

// RetryAfter is the delay a refused caller should suggest to its client:
// MaxWait rounded up to a whole second, at least one second.
func (l *Limiter) RetryAfter() time.Duration {
	d := l.maxWait.Round(time.Second)
	if d < l.maxWait {
		d += time.Second
	}
	if d < time.Second {
		d = time.Second
	}
	return d
}

// Acquire is AcquireFor with the empty key: callers that share one key are
// admitted strictly in arrival order.
func (l *Limiter) Acquire(ctx context.Context) (release func(), err error) {
	return l.AcquireFor(ctx, "")
}

// AcquireFor waits for a slot for key (see Limiter). On success it returns
// a release function that must be called exactly once when the work is
// done (further calls do nothing). It fails with ErrQueueFull,
// ErrQueueTimeout (both match ErrOverloaded) or the context's error if ctx
// ends while queued; a caller that gives up leaves the queue and holds
// nothing.
func (l *Limiter) AcquireFor(ctx context.Context, key string) (release func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("server: admission: %w", err)
	}
	l.mu.Lock()
	ks := l.keys[key]
	if ks == nil {
		ks = &keyState{key: key}
		l.keys[key] = ks
	}
	// The invariant kept by dispatch: while a slot is free, no waiter
	// could take it (each is held back by its key's share), so a caller
	// under its own share overtakes nobody who could run.
	if l.inFlight < l.max && ks.inFlight < l.maxKey && ks.queued == 0 {
		l.inFlight++
		ks.inFlight++
		l.counts.Admitted++
		l.mu.Unlock()
		return l.releaser(ks), nil
	}
	if l.queued >= l.maxQ || ks.queued >= l.maxQKey {
		l.counts.QueueFull++
		if l.queued < l.maxQ {
			l.counts.KeyQueueFull++
		}
		l.forgetLocked(ks)
		l.mu.Unlock()
		return nil, ErrQueueFull
	}
	w := &waiter{ready: make(chan struct{})}
	l.pushLocked(ks, w)
	l.counts.Queued++
	l.mu.Unlock()
	start := time.Now()

	var timeout <-chan time.Time
	if l.maxWait > 0 {
		t := time.NewTimer(l.maxWait)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-w.ready:
		l.mu.Lock()
		l.counts.Admitted++
		l.counts.Waited += time.Since(start)
		l.mu.Unlock()
		return l.releaser(ks), nil
	case <-ctx.Done():
		err = fmt.Errorf("server: admission: %w", ctx.Err())
	case <-timeout:
		err = ErrQueueTimeout
	}
	l.mu.Lock()
	if err == ErrQueueTimeout {
		l.counts.Timeouts++
	} else {
		l.counts.Cancelled++
	}
	if w.granted {
		// The slot arrived while we were giving up: pass it on.
		l.mu.Unlock()
		l.release(ks)
		return nil, err
	}
	l.removeLocked(ks, w)
	l.forgetLocked(ks)
	l.mu.Unlock()
	return nil, err
}

// releaser returns an idempotent release function for one slot of ks.
func (l *Limiter) releaser(ks *keyState) func() {
	var once sync.Once
	return func() { once.Do(func() { l.release(ks) }) }
}

// release frees one slot of ks and hands what is free to the waiters.
func (l *Limiter) release(ks *keyState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ks.inFlight--
	l.inFlight--
	l.dispatchLocked()
	l.forgetLocked(ks)
}

// dispatchLocked grants free slots to waiting keys in turn, skipping keys
// that hold their whole share.
func (l *Limiter) dispatchLocked() {
	for l.inFlight < l.max && len(l.ring) > 0 {
		granted := false
		for i := range len(l.ring) {
			idx := (l.next + i) % len(l.ring)
			ks := l.ring[idx]
			if ks.inFlight >= l.maxKey {
				continue
			}
			w := ks.head
			l.removeLocked(ks, w)
			ks.inFlight++
			l.inFlight++
			w.granted = true
			close(w.ready)
			if ks.queued > 0 {
				l.next = idx + 1 // ks stays in the ring; the next key's turn
			} else {
				l.next = idx // ks left the ring; the next key moved to idx
			}
			if len(l.ring) > 0 {
				l.next %= len(l.ring)
			} else {
				l.next = 0
			}
			granted = true
			break
		}
		if !granted {
			return
		}
	}
}

// pushLocked queues w behind ks's waiters, putting ks in the ring.
func (l *Limiter) pushLocked(ks *keyState, w *waiter) {
	if ks.queued == 0 {
		// A key that starts waiting takes its turn after those already
		// waiting: insert it just before the next one served.
		l.ring = slices.Insert(l.ring, l.next, ks)
		l.next++
		if l.next >= len(l.ring) {
			l.next = 0
		}
	}
	w.prev = ks.tail
	if ks.tail != nil {
		ks.tail.next = w
	} else {
		ks.head = w
	}
	ks.tail = w
	ks.queued++
	l.queued++
}

// removeLocked takes w out of ks's queue, and ks out of the ring when its
// queue is empty.
func (l *Limiter) removeLocked(ks *keyState, w *waiter) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		ks.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		ks.tail = w.prev
	}
	w.prev, w.next = nil, nil
	ks.queued--
	l.queued--
	if ks.queued == 0 {
		idx := slices.Index(l.ring, ks)
		l.ring = slices.Delete(l.ring, idx, idx+1)
		if l.next > idx {
			l.next--
		}
		if l.next >= len(l.ring) {
			l.next = 0
		}
	}
}

// forgetLocked drops an idle key, so the map holds only active keys.
func (l *Limiter) forgetLocked(ks *keyState) {
	if ks.inFlight == 0 && ks.queued == 0 {
		delete(l.keys, ks.key)
	}
}

// OverloadResponse is the answer for a request the limiter refused: 503
// with an empty body (nothing was decrypted, so nothing can be sealed) and
// Retry-After, so Google retries later (spec §7.2, §7.4).
func (l *Limiter) OverloadResponse() *Response {
	return &Response{Status: 503, RetryAfter: l.RetryAfter()}
}

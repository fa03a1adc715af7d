package server

import (
	"context"
	"errors"
	"fmt"
	"runtime"
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
}

// Limiter bounds concurrent CPU-heavy work and admits waiters strictly in
// arrival order. Without it, eight concurrent RSA requests on two cores
// time-slice against each other and the unlucky ones see several times the
// median latency; with it, the work runs at most MaxInFlight wide and the
// rest wait their turn in a FIFO queue.
//
// A released slot is handed directly to the oldest waiter, so a newcomer can
// never overtake a waiter. The zero value is not usable; use NewLimiter.
type Limiter struct {
	max     int
	maxQ    int
	maxWait time.Duration

	mu       sync.Mutex
	inFlight int
	head     *waiter // oldest waiter
	tail     *waiter
	queued   int
	counts   LimiterCounts
}

// LimiterCounts are cumulative counters of a Limiter, for metrics.
type LimiterCounts struct {
	// Admitted counts successful Acquire calls, Queued those that waited.
	Admitted, Queued uint64
	// QueueFull, Timeouts and Cancelled count refusals by cause.
	QueueFull, Timeouts, Cancelled uint64
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
	return &Limiter{max: cfg.MaxInFlight, maxQ: cfg.MaxQueue, maxWait: cfg.MaxWait}
}

// MaxInFlight reports the number of slots.
func (l *Limiter) MaxInFlight() int { return l.max }

// Stats reports the slots in use and the number of waiters, for metrics.
func (l *Limiter) Stats() (inFlight, queued int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inFlight, l.queued
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

// Acquire waits for a slot in FIFO order. On success it returns a release
// function that must be called exactly once when the work is done (further
// calls do nothing). It fails with ErrQueueFull, ErrQueueTimeout (both
// match ErrOverloaded) or the context's error if ctx ends while queued; a
// caller that gives up leaves the queue and holds nothing.
func (l *Limiter) Acquire(ctx context.Context) (release func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("server: admission: %w", err)
	}
	l.mu.Lock()
	if l.inFlight < l.max && l.head == nil {
		l.inFlight++
		l.counts.Admitted++
		l.mu.Unlock()
		return l.releaser(), nil
	}
	if l.queued >= l.maxQ {
		l.counts.QueueFull++
		l.mu.Unlock()
		return nil, ErrQueueFull
	}
	w := &waiter{ready: make(chan struct{})}
	l.push(w)
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
		return l.releaser(), nil
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
		l.release()
		return nil, err
	}
	l.remove(w)
	l.mu.Unlock()
	return nil, err
}

// releaser returns an idempotent release function for one slot.
func (l *Limiter) releaser() func() {
	var once sync.Once
	return func() { once.Do(l.release) }
}

// release hands the slot to the oldest waiter or frees it.
func (l *Limiter) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if w := l.head; w != nil {
		l.remove(w)
		w.granted = true
		close(w.ready)
		return // the slot moves to w; inFlight is unchanged
	}
	l.inFlight--
}

func (l *Limiter) push(w *waiter) {
	w.prev = l.tail
	if l.tail != nil {
		l.tail.next = w
	} else {
		l.head = w
	}
	l.tail = w
	l.queued++
}

func (l *Limiter) remove(w *waiter) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		l.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		l.tail = w.prev
	}
	w.prev, w.next = nil, nil
	l.queued--
}

// OverloadResponse is the answer for a request the limiter refused: 503
// with an empty body (nothing was decrypted, so nothing can be sealed) and
// Retry-After, so Google retries later (spec §7.2, §7.4).
func (l *Limiter) OverloadResponse() *Response {
	return &Response{Status: 503, RetryAfter: l.RetryAfter()}
}

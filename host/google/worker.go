package google

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/otpcgate/otpcgate/host/ledger"
)

// Defaults of WorkerConfig.
const (
	DefaultPollInterval = time.Second
	DefaultConcurrency  = 4
	DefaultBackoffBase  = time.Second
	DefaultBackoffCap   = 5 * time.Minute
	DefaultMaxAttempts  = 25
	DefaultDrainTimeout = 10 * time.Second
)

// Outbox is the part of the ledger the Worker uses; *ledger.Ledger
// implements it.
type Outbox interface {
	ClaimDue(ctx context.Context, now time.Time, limit int) ([]ledger.OutboxItem, error)
	MarkDelivered(ctx context.Context, id int64, at time.Time) error
	MarkFailed(ctx context.Context, id int64, cause error, nextAttemptAt time.Time) error
	MarkDead(ctx context.Context, id int64, cause error) error
	Depth(ctx context.Context) (int64, error)
}

// Resolver maps an outbox item's merchant and PIAID to the route to
// Google (endpoint of the merchant's environment, envelope codec, keyset).
// The gateway implements it from its registry. An error is retried later
// unless it matches ErrPermanent or ErrInvalidRequest (e.g. the merchant
// was deleted), which dead-letters the item.
type Resolver interface {
	Resolve(ctx context.Context, merchantID, piaid string) (Route, error)
}

// ResolverFunc adapts a function to Resolver.
type ResolverFunc func(ctx context.Context, merchantID, piaid string) (Route, error)

// Resolve calls f.
func (f ResolverFunc) Resolve(ctx context.Context, merchantID, piaid string) (Route, error) {
	return f(ctx, merchantID, piaid)
}

// WorkerConfig tunes a Worker; every field has a default.
type WorkerConfig struct {
	// PollInterval is how often the outbox is scanned when nothing
	// happens; Notify wakes the worker at once. Default DefaultPollInterval.
	PollInterval time.Duration
	// Concurrency bounds the deliveries in flight. Default
	// DefaultConcurrency.
	Concurrency int
	// BackoffBase and BackoffCap shape the delay after the n-th failed
	// attempt: uniform in [0, min(cap, base·2^(n-1))) ("full jitter"),
	// raised to Google's Retry-After if longer (still capped). Defaults
	// DefaultBackoffBase, DefaultBackoffCap.
	BackoffBase, BackoffCap time.Duration
	// MaxAttempts dead-letters an item whose attempt number MaxAttempts
	// failed. Default DefaultMaxAttempts.
	MaxAttempts int
	// DrainTimeout is how long Run waits for deliveries in flight after
	// its context ends before cancelling them (their items are then
	// retried after the ledger's claim lease). Default DefaultDrainTimeout.
	DrainTimeout time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Jitter returns a uniform value in [0, 1). Default math/rand/v2.
	Jitter func() float64
	// Logger receives delivery failures and dead letters (ids, method,
	// error; never payloads). Default slog.Default().
	Logger *slog.Logger
}

// Stats are the Worker's counters since it was created, for metrics.
type Stats struct {
	// Delivered counts items Google answered with 200.
	Delivered uint64
	// Failed counts failed attempts that were scheduled for a retry.
	Failed uint64
	// Dead counts items moved to the dead letters by this worker.
	Dead uint64
	// InFlight is the number of deliveries running now.
	InFlight int64
	// Depth is the number of pending items in the outbox (all workers).
	Depth int64
}

// Worker delivers outbox items to Google. Create it with NewWorker, run it
// with Run, and call Notify after enqueueing so a new item goes out at once.
type Worker struct {
	cfg      WorkerConfig
	outbox   Outbox
	client   *Client
	resolver Resolver
	log      *slog.Logger
	wake     chan struct{}
	active   atomic.Bool

	delivered, failed, dead atomic.Uint64
	inFlight                atomic.Int64
}

// NewWorker returns a Worker that delivers outbox's items with client to
// where resolver says.
func NewWorker(cfg WorkerConfig, outbox Outbox, client *Client, resolver Resolver) (*Worker, error) {
	if outbox == nil || client == nil || resolver == nil {
		return nil, errors.New("google: worker needs an outbox, a client and a resolver")
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.BackoffBase <= 0 {
		cfg.BackoffBase = DefaultBackoffBase
	}
	if cfg.BackoffCap <= 0 {
		cfg.BackoffCap = DefaultBackoffCap
	}
	if cfg.BackoffCap < cfg.BackoffBase {
		cfg.BackoffCap = cfg.BackoffBase
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = DefaultDrainTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Jitter == nil {
		cfg.Jitter = rand.Float64
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Worker{cfg: cfg, outbox: outbox, client: client, resolver: resolver, log: log, wake: make(chan struct{}, 1)}, nil
}

// Notify wakes the worker to claim due items now. It never blocks; call it
// after the transaction that enqueued an item committed.
func (w *Worker) Notify() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Stats returns the counters and the current outbox depth.
func (w *Worker) Stats(ctx context.Context) (Stats, error) {
	s := Stats{Delivered: w.delivered.Load(), Failed: w.failed.Load(), Dead: w.dead.Load(), InFlight: w.inFlight.Load()}
	d, err := w.outbox.Depth(ctx)
	if err != nil {
		return s, fmt.Errorf("google: outbox depth: %w", err)
	}
	s.Depth = d
	return s, nil
}

// Backoff is the full-jitter delay after the attempt-th failed attempt:
// jitter·min(cap, base·2^(attempt-1)) with jitter in [0, 1).
func Backoff(attempt int, base, cap time.Duration, jitter float64) time.Duration {
	d := base
	for i := 1; i < attempt && d < cap; i++ {
		d *= 2
	}
	if d > cap || d <= 0 {
		d = cap
	}
	return time.Duration(jitter * float64(d))
}

// outcome is what a delivery reports back to the loop.
type outcome struct{ next time.Time }

// Run delivers until ctx ends, then waits up to DrainTimeout for the
// deliveries in flight and returns nil. Items claimed but not finished
// (crash, drain timeout) are offered again by the ledger after its claim
// lease, to this or another worker, with the same requestId. Run must not be
// called twice at the same time.
func (w *Worker) Run(ctx context.Context) error {
	if !w.active.CompareAndSwap(false, true) {
		return errors.New("google: worker already running")
	}
	defer w.active.Store(false)
	// Deliveries outlive ctx for DrainTimeout so a shutdown does not cut a
	// request Google may already be processing.
	sendCtx, cancelSends := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSends()
	done := make(chan outcome, w.cfg.Concurrency)
	var wg sync.WaitGroup
	inFlight := 0
	timer := time.NewTimer(0)
	defer timer.Stop()
	var soonest time.Time // earliest retry this worker scheduled
	for {
		if free := w.cfg.Concurrency - inFlight; free > 0 && ctx.Err() == nil {
			now := w.cfg.Now()
			items, err := w.outbox.ClaimDue(ctx, now, free)
			if err != nil && ctx.Err() == nil {
				w.log.Warn("outbox claim failed", slog.String("error", err.Error()))
			}
			for _, it := range items {
				inFlight++
				w.inFlight.Add(1)
				wg.Add(1)
				go func(it ledger.OutboxItem) {
					defer wg.Done()
					defer w.inFlight.Add(-1)
					done <- outcome{next: w.deliver(sendCtx, it)}
				}(it)
			}
		}
		wait := w.cfg.PollInterval
		if !soonest.IsZero() {
			if d := soonest.Sub(w.cfg.Now()); d < wait {
				wait = max(d, time.Millisecond)
			}
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return w.drain(&wg, cancelSends)
		case <-w.wake:
		case <-timer.C:
			if !soonest.IsZero() && !w.cfg.Now().Before(soonest) {
				soonest = time.Time{}
			}
		case o := <-done:
			inFlight--
			if !o.next.IsZero() && (soonest.IsZero() || o.next.Before(soonest)) {
				soonest = o.next
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

func (w *Worker) drain(wg *sync.WaitGroup, cancelSends context.CancelFunc) error {
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(w.cfg.DrainTimeout):
		cancelSends()
		<-finished
	}
	return nil
}

// deliver sends one item and records the outcome in the ledger. It
// returns the next attempt time when it scheduled a retry.
func (w *Worker) deliver(ctx context.Context, it ledger.OutboxItem) time.Time {
	err := w.send(ctx, it)
	// Ledger updates must land even when a shutdown cancelled the send.
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	attrs := []slog.Attr{slog.Int64("item", it.ID), slog.String("method", it.Method),
		slog.String("requestId", it.RequestID), slog.Int("attempt", it.Attempts)}
	if err == nil {
		if merr := w.outbox.MarkDelivered(mctx, it.ID, w.cfg.Now()); merr != nil {
			w.log.LogAttrs(mctx, slog.LevelError, "outbox mark delivered failed", append(attrs, slog.String("error", merr.Error()))...)
			return time.Time{}
		}
		w.delivered.Add(1)
		return time.Time{}
	}
	attrs = append(attrs, slog.String("error", err.Error()))
	if !IsRetryable(err) || it.Attempts >= w.cfg.MaxAttempts {
		if merr := w.outbox.MarkDead(mctx, it.ID, err); merr != nil {
			w.log.LogAttrs(mctx, slog.LevelError, "outbox mark dead failed", append(attrs, slog.String("markError", merr.Error()))...)
			return time.Time{}
		}
		w.dead.Add(1)
		w.log.LogAttrs(mctx, slog.LevelError, "notification to Google dead-lettered", attrs...)
		return time.Time{}
	}
	delay := Backoff(it.Attempts, w.cfg.BackoffBase, w.cfg.BackoffCap, w.cfg.Jitter())
	var ce *CallError
	if errors.As(err, &ce) && ce.RetryAfter > delay {
		delay = min(ce.RetryAfter, w.cfg.BackoffCap)
	}
	next := w.cfg.Now().Add(delay)
	if merr := w.outbox.MarkFailed(mctx, it.ID, err, next); merr != nil {
		w.log.LogAttrs(mctx, slog.LevelError, "outbox mark failed failed", append(attrs, slog.String("markError", merr.Error()))...)
		return time.Time{}
	}
	w.failed.Add(1)
	w.log.LogAttrs(mctx, slog.LevelWarn, "notification to Google failed, will retry",
		append(attrs, slog.Duration("retryIn", delay))...)
	return next
}

func (w *Worker) send(ctx context.Context, it ledger.OutboxItem) error {
	rt, err := w.resolver.Resolve(ctx, it.MerchantID, it.PIAID)
	if err != nil {
		return fmt.Errorf("google: resolve merchant %s: %w", it.MerchantID, err)
	}
	rt.PIAID = it.PIAID
	_, err = w.client.Deliver(ctx, rt, it.Method, it.RequestID, it.Payload)
	return err
}

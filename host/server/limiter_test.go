package server

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitQueued polls until the limiter has n waiters.
func waitQueued(t *testing.T, l *Limiter, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, q := l.Stats(); q == n {
			return
		}
		if time.Now().After(deadline) {
			_, q := l.Stats()
			t.Fatalf("queued = %d, want %d", q, n)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

func TestLimiterFIFO(t *testing.T) {
	const n = 20
	l := NewLimiter(LimiterConfig{MaxInFlight: 1, MaxQueue: n + 5})
	hold, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rel, err := l.Acquire(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			rel()
		}()
		waitQueued(t, l, i+1) // fixes the arrival order
	}
	// Newcomers racing with the release chain must queue behind everyone.
	var late sync.WaitGroup
	for range 5 {
		late.Add(1)
		go func() {
			defer late.Done()
			rel, err := l.Acquire(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, -1)
			mu.Unlock()
			rel()
		}()
	}
	waitQueued(t, l, n+5)
	hold()
	wg.Wait()
	late.Wait()
	for i := range n {
		if order[i] != i {
			t.Fatalf("admission order %v, want 0..%d then latecomers", order, n-1)
		}
	}
	if f, q := l.Stats(); f != 0 || q != 0 {
		t.Fatalf("after all released: inFlight=%d queued=%d", f, q)
	}
}

func TestLimiterRefusals(t *testing.T) {
	tests := []struct {
		name    string
		cfg     LimiterConfig
		queue   int // waiters to park before the probe
		ctx     func() (context.Context, context.CancelFunc)
		wantErr error
		minWait time.Duration
	}{
		{"queue full", LimiterConfig{MaxInFlight: 1, MaxQueue: 2}, 2, nil, ErrQueueFull, 0},
		{"no queue", LimiterConfig{MaxInFlight: 1, MaxQueue: 0}, 0, nil, ErrQueueFull, 0},
		{"max wait", LimiterConfig{MaxInFlight: 1, MaxQueue: 4, MaxWait: 30 * time.Millisecond}, 0, nil, ErrQueueTimeout, 30 * time.Millisecond},
		{"context deadline", LimiterConfig{MaxInFlight: 1, MaxQueue: 4}, 0, func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 20*time.Millisecond)
		}, context.DeadlineExceeded, 20 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := NewLimiter(tc.cfg)
			hold, err := l.Acquire(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			parked, cancelParked := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			for i := range tc.queue {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := l.Acquire(parked); !errors.Is(err, context.Canceled) {
						t.Errorf("parked waiter: %v", err)
					}
				}()
				waitQueued(t, l, i+1)
			}
			// The clock starts before the deadline is set, so the wait
			// measured is never shorter than the one asked for.
			start := time.Now()
			ctx, cancel := context.Background(), context.CancelFunc(func() {})
			if tc.ctx != nil {
				ctx, cancel = tc.ctx()
			}
			defer cancel()
			rel, err := l.Acquire(ctx)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if rel != nil {
				t.Fatal("refused Acquire returned a release func")
			}
			if (tc.wantErr == ErrQueueFull || tc.wantErr == ErrQueueTimeout) && !errors.Is(err, ErrOverloaded) {
				t.Fatalf("%v does not match ErrOverloaded", err)
			}
			if el := time.Since(start); el < tc.minWait {
				t.Fatalf("refused after %v, want >= %v", el, tc.minWait)
			}
			cancelParked()
			wg.Wait()
			if _, q := l.Stats(); q != 0 {
				t.Fatalf("queued = %d after refusals, want 0", q)
			}
			hold()
			if f, _ := l.Stats(); f != 0 {
				t.Fatalf("inFlight = %d after release, want 0", f)
			}
		})
	}
}

func TestLimiterCancelRemovesWaiter(t *testing.T) {
	l := NewLimiter(LimiterConfig{MaxInFlight: 1, MaxQueue: 3})
	hold, _ := l.Acquire(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := l.Acquire(ctx)
		errc <- err
	}()
	waitQueued(t, l, 1)
	// A second waiter behind the cancelled one must get the slot.
	got := make(chan func(), 1)
	go func() {
		rel, err := l.Acquire(context.Background())
		if err != nil {
			t.Error(err)
		}
		got <- rel
	}()
	waitQueued(t, l, 2)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter err = %v", err)
	}
	waitQueued(t, l, 1)
	hold()
	rel := <-got
	if f, q := l.Stats(); f != 1 || q != 0 {
		t.Fatalf("inFlight=%d queued=%d, want 1, 0", f, q)
	}
	rel()
	rel() // idempotent
	if f, _ := l.Stats(); f != 0 {
		t.Fatalf("double release: inFlight=%d, want 0", f)
	}
}

func TestLimiterDefaultsToGOMAXPROCS(t *testing.T) {
	l := NewLimiter(LimiterConfig{})
	if l.MaxInFlight() < 1 {
		t.Fatalf("MaxInFlight = %d", l.MaxInFlight())
	}
	if got := NewLimiter(LimiterConfig{MaxWait: 1500 * time.Millisecond}).RetryAfter(); got != 2*time.Second {
		t.Fatalf("RetryAfter = %v, want 2s", got)
	}
}

// TestLimiterStress mixes holders, timeouts and cancellations; the number
// of concurrent holders never exceeds the limit and nothing leaks.
func TestLimiterStress(t *testing.T) {
	const slots = 3
	l := NewLimiter(LimiterConfig{MaxInFlight: slots, MaxQueue: 16, MaxWait: 2 * time.Millisecond})
	var cur, peak, ok, refused atomic.Int64
	var wg sync.WaitGroup
	for g := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for range 300 {
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(r.IntN(2000))*time.Microsecond)
				rel, err := l.Acquire(ctx)
				cancel()
				if err != nil {
					refused.Add(1)
					continue
				}
				n := cur.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				if r.IntN(4) == 0 {
					time.Sleep(time.Duration(r.IntN(200)) * time.Microsecond)
				}
				cur.Add(-1)
				ok.Add(1)
				rel()
			}
		}()
	}
	wg.Wait()
	if p := peak.Load(); p > slots {
		t.Fatalf("peak holders = %d, limit %d", p, slots)
	}
	if f, q := l.Stats(); f != 0 || q != 0 {
		t.Fatalf("leak: inFlight=%d queued=%d", f, q)
	}
	if ok.Load() == 0 || refused.Load() == 0 {
		t.Fatalf("stress did not exercise both paths: ok=%d refused=%d", ok.Load(), refused.Load())
	}
	// Every slot is still usable.
	var rels []func()
	for range slots {
		rel, err := l.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		rels = append(rels, rel)
	}
	for _, rel := range rels {
		rel()
	}
}

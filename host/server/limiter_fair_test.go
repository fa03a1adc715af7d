package server

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// grantOrder queues the given keys one by one behind a held slot, then
// releases slot after slot and returns the keys in the order they ran.
func grantOrder(t *testing.T, l *Limiter, holder string, keys []string) []string {
	t.Helper()
	hold, err := l.AcquireFor(context.Background(), holder)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []string
	granted := make(chan func(), len(keys))
	for i, k := range keys {
		go func() {
			rel, err := l.AcquireFor(context.Background(), k)
			if err != nil {
				t.Errorf("%s: %v", k, err)
				granted <- func() {}
				return
			}
			mu.Lock()
			order = append(order, k)
			mu.Unlock()
			granted <- rel
		}()
		waitQueued(t, l, i+1)
	}
	hold()
	for range keys {
		(<-granted)() // run one at a time: release the slot for the next
	}
	return order
}

func TestLimiterRoundRobinAcrossKeys(t *testing.T) {
	l := NewLimiter(LimiterConfig{MaxInFlight: 1, MaxQueue: 16})
	// A burst of merchant A, then one request each of B and C.
	got := grantOrder(t, l, "A", []string{"A", "A", "A", "A", "B", "C"})
	want := []string{"A", "B", "C", "A", "A", "A"}
	if len(got) != len(want) {
		t.Fatalf("order %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("grant order %v, want %v: B and C wait for at most one of A's", got, want)
		}
	}
}

func TestLimiterOneKeyIsFIFO(t *testing.T) {
	l := NewLimiter(LimiterConfig{MaxInFlight: 1, MaxQueue: 16})
	hold, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	order := make(chan int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rel, err := l.AcquireFor(context.Background(), "A")
			if err != nil {
				t.Error(err)
				return
			}
			order <- i
			rel()
		}()
		waitQueued(t, l, i+1)
	}
	hold()
	wg.Wait()
	close(order)
	want := 0
	for i := range order {
		if i != want {
			t.Fatalf("waiter %d ran as number %d", i, want)
		}
		want++
	}
}

func TestLimiterPerKeyShare(t *testing.T) {
	l := NewLimiter(LimiterConfig{MaxInFlight: 2, MaxInFlightPerKey: 1, MaxQueue: 4, MaxQueuePerKey: 2, MaxWait: 20 * time.Second})
	ctx := context.Background()
	a1, err := l.AcquireFor(ctx, "A")
	if err != nil {
		t.Fatal(err)
	}
	// A holds its share: its next request waits although a slot is free...
	aDone := make(chan error, 2)
	for range 2 {
		go func() {
			rel, err := l.AcquireFor(ctx, "A")
			if err == nil {
				rel()
			}
			aDone <- err
		}()
	}
	waitQueued(t, l, 2)
	// ...and cannot take more than its share of the queue.
	if _, err := l.AcquireFor(ctx, "A"); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("A's third waiter: %v, want ErrQueueFull", err)
	}
	if c := l.Counts(); c.KeyQueueFull != 1 {
		t.Fatalf("counts %+v", c)
	}
	// B finds the reserved slot at once, and may still queue.
	b1, err := l.AcquireFor(ctx, "B")
	if err != nil {
		t.Fatal(err)
	}
	if in, q := l.KeyStats("B"); in != 1 || q != 0 {
		t.Fatalf("B holds %d, queued %d", in, q)
	}
	bDone := make(chan error, 1)
	go func() {
		rel, err := l.AcquireFor(ctx, "B")
		if err == nil {
			rel()
		}
		bDone <- err
	}()
	waitQueued(t, l, 3)
	b1()
	if err := <-bDone; err != nil {
		t.Fatal(err)
	}
	a1()
	for range 2 {
		if err := <-aDone; err != nil {
			t.Fatal(err)
		}
	}
	if in, q := l.Stats(); in != 0 || q != 0 {
		t.Fatalf("in flight %d, queued %d at the end", in, q)
	}
	if len(l.keys) != 0 {
		t.Fatalf("idle keys kept: %d", len(l.keys))
	}
}

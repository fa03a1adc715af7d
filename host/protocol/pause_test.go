package protocol

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestPauseBoundedPerMerchant: a circuit-open request is held for the
// pause, at most MaxPausedPerMerchant per merchant; one more for the same
// merchant is answered at once while another merchant is still held, and
// a negative pause holds nothing.
func TestPauseBoundedPerMerchant(t *testing.T) {
	const d = 300 * time.Millisecond
	p := &Pipeline{cfg: Config{CircuitOpenPause: d}}
	ctx := context.Background()

	var wg sync.WaitGroup
	for range MaxPausedPerMerchant {
		wg.Add(1)
		go func() { defer wg.Done(); p.pause(ctx, "a") }()
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		p.paused.mu.Lock()
		n := p.paused.n["a"]
		p.paused.mu.Unlock()
		if n == MaxPausedPerMerchant {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d held", n, MaxPausedPerMerchant)
		}
		time.Sleep(time.Millisecond)
	}
	t0 := time.Now()
	p.pause(ctx, "a")
	if el := time.Since(t0); el >= d/2 {
		t.Errorf("merchant a over its bound was held %s, want an answer at once", el)
	}
	t0 = time.Now()
	p.pause(ctx, "b")
	if el := time.Since(t0); el < d {
		t.Errorf("merchant b was held %s, want at least %s: another merchant's held requests must not use up its share", el, d)
	}
	wg.Wait()
	p.paused.mu.Lock()
	left := len(p.paused.n)
	p.paused.mu.Unlock()
	if left != 0 {
		t.Errorf("%d merchants still counted after every pause ended", left)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	t0 = time.Now()
	p.pause(cctx, "a")
	if el := time.Since(t0); el >= d/2 {
		t.Errorf("a cancelled request was held %s", el)
	}
	p.cfg.CircuitOpenPause = -1
	t0 = time.Now()
	p.pause(ctx, "a")
	if el := time.Since(t0); el >= d/2 {
		t.Errorf("pause switched off, still held %s", el)
	}
}

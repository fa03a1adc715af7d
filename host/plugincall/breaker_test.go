package plugincall

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/host/runtime"
	"github.com/otpcgate/otpcgate/host/runtime/runtimetest"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// TestCircuitBreaker drives the real runtime with the adversarial plugin:
// three calls that spin to their time limit open the circuit, so the next
// calls fail at once without running (and without a timeout's cost) while
// another merchant's calls are untouched; after the cool-down one probe
// runs; a probe that times out opens it again, one that answers closes it.
func TestCircuitBreaker(t *testing.T) {
	wasm := runtimetest.Build(t, "../../testdata/plugins/evil")
	m := runtimetest.Manager(t, runtime.Options{Limits: runtime.Limits{CallTimeout: 100 * time.Millisecond}})
	runtimetest.Load(t, m, "a", wasm, nil)
	runtimetest.Load(t, m, "b", wasm, nil)
	s := New(Config{BreakerTimeouts: 3, BreakerCoolDown: time.Hour}, m, noKV{})
	clock := time.Now()
	s.breaker.now = func() time.Time { return clock }
	ctx := context.Background()
	a, b := Target{Merchant: "a"}, Target{Merchant: "b"}

	// A plugin error or trap in between resets the count.
	for _, mode := range []string{"spin", "spin", "panic", "spin", "spin"} {
		if err := s.rawCall(ctx, a, otpc.OpGenerate, []byte(mode)); err == nil || errors.Is(err, ErrCircuitOpen) {
			t.Fatalf("%s: %v", mode, err)
		}
	}
	if open := s.breaker.open(); len(open) != 0 {
		t.Fatalf("open after 2 consecutive timeouts: %v", open)
	}
	if err := s.rawCall(ctx, a, otpc.OpGenerate, []byte("spin")); !runtime.IsKind(err, runtime.KindTimeout) {
		t.Fatalf("third timeout: %v", err)
	}
	start := time.Now()
	for range 5 {
		if err := s.rawCall(ctx, a, otpc.OpGenerate, []byte("ok")); !errors.Is(err, ErrCircuitOpen) {
			t.Fatalf("open circuit: %v", err)
		}
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("5 refused calls took %v; an open circuit must not run the plugin", d)
	}
	if err := s.rawCall(ctx, b, otpc.OpGenerate, []byte("ok")); err != nil {
		t.Fatalf("another merchant: %v", err)
	}
	if got := s.Outcomes("a")[otpc.OpGenerate][OutcomeCircuitOpen]; got != 5 {
		t.Fatalf("circuit_open outcomes %d, want 5", got)
	}
	if st, _ := s.Stats("a", "v1"); st.Calls != 6 {
		t.Fatalf("version calls %d, want 6 (refused calls never ran)", st.Calls)
	}

	// Cool-down over: one probe runs; it spins, so the circuit opens again.
	clock = clock.Add(time.Hour)
	if err := s.rawCall(ctx, a, otpc.OpGenerate, []byte("spin")); !runtime.IsKind(err, runtime.KindTimeout) {
		t.Fatalf("probe: %v", err)
	}
	if err := s.rawCall(ctx, a, otpc.OpGenerate, []byte("ok")); !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("after a failed probe: %v", err)
	}
	// Next cool-down: the probe answers and the circuit closes.
	clock = clock.Add(time.Hour)
	for i := range 3 {
		if err := s.rawCall(ctx, a, otpc.OpGenerate, []byte("ok")); err != nil {
			t.Fatalf("call %d after a good probe: %v", i, err)
		}
	}
	if open := s.breaker.open(); len(open) != 0 {
		t.Fatalf("still open: %v", open)
	}

	// A call cut short by its caller says nothing about the plugin.
	for range 5 {
		cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		err := s.rawCall(cctx, a, otpc.OpGenerate, []byte("spin"))
		cancel()
		if !runtime.IsKind(err, runtime.KindTimeout) {
			t.Fatalf("cancelled call: %v", err)
		}
	}
	if open := s.breaker.open(); len(open) != 0 {
		t.Fatalf("callers' deadlines opened the circuit: %v", open)
	}
}

// TestCircuitBreakerLimits: running into a resource limit (memory, log,
// KV) counts like a timeout — each one also replaces the instance; a
// plugin error or trap in between resets the count.
func TestCircuitBreakerLimits(t *testing.T) {
	wasm := runtimetest.Build(t, "../../testdata/plugins/evil")
	// A long call timeout, so that a memory bomb ends at its memory cap.
	m := runtimetest.Manager(t, runtime.Options{Limits: runtime.Limits{CallTimeout: time.Minute, MemoryPages: 512}})
	runtimetest.Load(t, m, "a", wasm, nil)
	s := New(Config{BreakerTimeouts: 3, BreakerCoolDown: time.Hour}, m, noKV{})
	ctx := context.Background()
	a := Target{Merchant: "a"}
	for _, mode := range []string{"memory", "logflood", "panic", "memory", "kvbytes"} {
		if err := s.rawCall(ctx, a, otpc.OpGenerate, []byte(mode)); err == nil || errors.Is(err, ErrCircuitOpen) {
			t.Fatalf("%s: %v", mode, err)
		}
	}
	if open := s.breaker.open(); len(open) != 0 {
		t.Fatalf("open after 2 consecutive limits: %v", open)
	}
	if err := s.rawCall(ctx, a, otpc.OpGenerate, []byte("memory")); !errors.Is(err, runtime.ErrMemoryLimit) {
		t.Fatalf("memory bomb: %v, want runtime.ErrMemoryLimit", err)
	}
	if err := s.rawCall(ctx, a, otpc.OpGenerate, []byte("ok")); !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("after memory, kvbytes, memory: %v, want an open circuit", err)
	}
}

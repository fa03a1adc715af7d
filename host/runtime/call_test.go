package runtime_test

import (
	"context"
	"errors"
	"log/slog"
	goruntime "runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/host/runtime"
	"github.com/otpcgate/otpcgate/host/runtime/runtimetest"
	"github.com/otpcgate/otpcgate/sdk/otpc"

	"github.com/otpcgate/otpcgate/internal/testenv"
)

func loadEvil(t *testing.T, m *runtime.Manager, id string, pool runtime.PoolConfig) {
	t.Helper()
	if _, err := m.Load(context.Background(), id, runtime.VersionSpec{Version: "v1", Wasm: runtimetest.Build(t, evilDir), Pool: pool}); err != nil {
		t.Fatal(err)
	}
	if err := m.Activate(id, "v1"); err != nil {
		t.Fatal(err)
	}
}

// TestKVReadYourWrites: reads see committed state plus the call's own
// writes; nothing is committed by the runtime; the change set is returned
// in the caller's namespace.
func TestKVReadYourWrites(t *testing.T) {
	m := runtimetest.Manager(t, cached(runtime.Options{}))
	loadEvil(t, m, "evil", runtime.PoolConfig{})
	kv := runtimetest.NewMapKV()
	env := runtime.CallEnv{Namespace: "merchant-a", KV: kv}
	steps := []string{"-,1,-", "-+,1,-", "-++,1,-"}
	for i, want := range steps {
		out, cs, err := m.Call(context.Background(), "evil", otpc.OpGenerate, []byte("kvrw"), env)
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != want {
			t.Fatalf("step %d: saw %q, want %q", i, out, want)
		}
		if cs.Namespace != "merchant-a" || len(cs.Changes) != 3 {
			t.Fatalf("change set %+v", cs)
		}
		// a was put then deleted: one change, a delete, in first-write order.
		if c := cs.Changes[0]; c.Key != "a" || !c.Delete {
			t.Errorf("first change %+v, want delete of a", c)
		}
		if c := cs.Changes[1]; c.Key != "b" || string(c.Value) != "2" || c.Delete {
			t.Errorf("second change %+v, want b=2", c)
		}
		kv.Apply(cs) // commit, as the gateway would
	}
	// Another namespace sees nothing of merchant-a.
	out, _, err := m.Call(context.Background(), "evil", otpc.OpGenerate, []byte("kvrw"), runtime.CallEnv{Namespace: "merchant-b", KV: kv})
	if err != nil || string(out) != "-,1,-" {
		t.Fatalf("other namespace saw %q, %v", out, err)
	}
}

type panicKV struct{}

func (panicKV) Get(context.Context, string, string) ([]byte, bool, error) { panic("kv exploded") }

type failKV struct{}

func (failKV) Get(context.Context, string, string) ([]byte, bool, error) {
	return nil, false, errors.New("database is locked")
}

func TestHostFailures(t *testing.T) {
	m := runtimetest.Manager(t, cached(runtime.Options{}))
	loadEvil(t, m, "evil", runtime.PoolConfig{})
	tests := []struct {
		kv   runtime.KVReader
		want string
	}{
		{panicKV{}, "host function kv_get panicked"},
		{failKV{}, "KV read failed: database is locked"},
	}
	for _, tc := range tests {
		_, _, err := m.Call(context.Background(), "evil", otpc.OpGenerate, []byte("kvrw"), runtime.CallEnv{KV: tc.kv})
		if !runtime.IsKind(err, runtime.KindHost) || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("got %v, want host error %q", err, tc.want)
		}
		if out, err := call(m, "evil", "ok"); err != nil || out != `{"ok":true}` {
			t.Fatalf("next call: %q %v", out, err)
		}
	}
}

func TestContextCancellation(t *testing.T) {
	m := runtimetest.Manager(t, cached(runtime.Options{Limits: runtime.Limits{CallTimeout: 5 * time.Second}}))
	loadEvil(t, m, "evil", runtime.PoolConfig{Max: 1})

	// Cancelling the caller's context stops a running guest.
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, _, err := m.Call(ctx, "evil", otpc.OpGenerate, []byte("loop"), runtime.CallEnv{})
	if !runtime.IsKind(err, runtime.KindTimeout) || time.Since(start) > 2*time.Second {
		t.Fatalf("got %v after %v, want a prompt timeout", err, time.Since(start))
	}

	// An already-cancelled context fails fast and does not cost the
	// (healthy) instance: its call counter keeps going.
	if _, err := call(m, "evil", "count"); err != nil {
		t.Fatal(err)
	}
	done, stop := context.WithCancel(context.Background())
	stop()
	if _, _, err := m.Call(done, "evil", otpc.OpGenerate, []byte("count"), runtime.CallEnv{}); !runtime.IsKind(err, runtime.KindTimeout) {
		t.Fatalf("cancelled context: %v", err)
	}
	if out, err := call(m, "evil", "count"); err != nil || out != "2" {
		t.Fatalf("instance lost to a cancelled context: %q %v", out, err)
	}

	// With the only instance busy, a waiter whose context ends gets a
	// timeout and the busy call is not disturbed.
	var wg sync.WaitGroup
	wg.Add(1)
	var busyErr error
	go func() {
		defer wg.Done()
		_, busyErr = call(m, "evil", "spin")
	}()
	waitBusy(t, m, "evil", "v1") // a waiter times out while the spin runs
	wg.Wait()
	if busyErr != nil {
		t.Fatalf("busy call failed: %v", busyErr)
	}
}

// TestVersionSwitchDrains: a new version is loaded and activated while a
// call runs on the old one; the old call completes, new calls go to the new
// version, and the old version closes when its last call returns.
func TestVersionSwitchDrains(t *testing.T) {
	m := runtimetest.Manager(t, cached(runtime.Options{Limits: runtime.Limits{CallTimeout: 5 * time.Second}}))
	evil := runtimetest.Build(t, evilDir)
	loadEvil(t, m, "p", runtime.PoolConfig{Max: 1})
	done := make(chan error, 1)
	go func() {
		_, err := call(m, "p", "spin")
		done <- err
	}()
	waitBusy(t, m, "p", "v1")
	if _, err := m.Load(context.Background(), "p", runtime.VersionSpec{Version: "v2", Wasm: evil}); err != nil {
		t.Fatal(err)
	}
	if err := m.Activate("p", "v2"); err != nil {
		t.Fatal(err)
	}
	if err := m.Unload("p", "v1"); err != nil {
		t.Fatal(err)
	}
	// v2 answers at once although v1's only instance is still busy.
	if out, err := call(m, "p", "count"); err != nil || out != "1" {
		t.Fatalf("v2: %q %v", out, err)
	}
	if err := <-done; err != nil {
		t.Fatalf("in-flight call on the unloaded version failed: %v", err)
	}
	if _, _, err := m.CallVersion(context.Background(), "p", "v1", otpc.OpGenerate, []byte("ok"), runtime.CallEnv{}); !errors.Is(err, runtime.ErrUnknownVersion) {
		t.Fatalf("unloaded version still callable: %v", err)
	}
	if a, ok := m.Active("p"); !ok || a.Version != "v2" {
		t.Fatalf("active %+v", a)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := call(m, "p", "ok"); !errors.Is(err, runtime.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

func TestLookupErrors(t *testing.T) {
	m := runtimetest.Manager(t, cached(runtime.Options{}))
	if _, err := call(m, "nobody", "ok"); !errors.Is(err, runtime.ErrUnknownPlugin) {
		t.Fatalf("unknown plugin: %v", err)
	}
	wasm := buildWasm(nil, abiFuncs(1), true)
	if _, err := m.Load(context.Background(), "p", runtime.VersionSpec{Version: "v1", Wasm: wasm}); err != nil {
		t.Fatal(err)
	}
	if _, err := call(m, "p", "ok"); !errors.Is(err, runtime.ErrNoActiveVersion) {
		t.Fatalf("no active version: %v", err)
	}
	if _, err := m.Load(context.Background(), "p", runtime.VersionSpec{Version: "v1", Wasm: wasm}); !errors.Is(err, runtime.ErrVersionExists) {
		t.Fatalf("duplicate version: %v", err)
	}
	if err := m.Activate("p", "v9"); !errors.Is(err, runtime.ErrUnknownVersion) {
		t.Fatalf("activate unknown: %v", err)
	}
}

// TestSDKHostServices checks the sdk's guest side of every host import,
// inside wasm, through the bench plugin's remittance op.
func TestSDKHostServices(t *testing.T) {
	var logs strings.Builder
	m := runtimetest.Manager(t, cached(runtime.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))}))
	runtimetest.Load(t, m, "bench", runtimetest.Build(t, benchDir), []byte("cfg-v1"))
	kv := runtimetest.NewMapKV()
	now := time.UnixMilli(1_700_000_000_123)
	for i, counter := range []string{"", "+"} {
		var out otpc.RemittanceOutput
		cs, err := runtimetest.Call(context.Background(), m, "bench", otpc.OpRemittance, &otpc.RemittanceInput{}, &out,
			runtime.CallEnv{Namespace: "m", KV: kv, Now: now, Config: map[bool][]byte{true: []byte("cfg-override")}[i == 1]})
		if err != nil {
			t.Fatal(err)
		}
		cfg := "cfg-v1"
		if i == 1 {
			cfg = "cfg-override"
		}
		want := "big=true;gone=true;counter=" + counter + ";random=true;now=1700000000123;config=" + cfg
		if out.PaymentIntegratorStatementID != want {
			t.Fatalf("call %d saw %q, want %q", i, out.PaymentIntegratorStatementID, want)
		}
		kv.Apply(cs)
	}
	if !strings.Contains(logs.String(), "msg=\"plugin log\" merchant=bench version=v1 request_id=\"\" line=\"host tour\"") {
		t.Fatalf("plugin log line missing: %s", logs.String())
	}
}

// waitBusy returns once a call on the version (pool of one) has to wait for
// its instance, i.e. another call holds it; a waiter's short context must
// then end in a KindTimeout naming the wait.
func waitBusy(t *testing.T, m *runtime.Manager, plugin, ver string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		_, _, err := m.CallVersion(ctx, plugin, ver, otpc.OpGenerate, []byte("ok"), runtime.CallEnv{})
		cancel()
		switch {
		case err == nil:
			time.Sleep(2 * time.Millisecond) // the long call has not started yet
		case runtime.IsKind(err, runtime.KindTimeout) && strings.Contains(err.Error(), "no plugin instance became free"):
			return
		default:
			t.Fatalf("waiter got %v", err)
		}
	}
	t.Fatal("the long call never held the instance")
}

// TestLogBudgetPerPlugin: a plugin that logs flat out gets its log budget
// per minute into the log and the rest dropped and counted (the call itself
// only meets its per-call limit); another plugin's budget is its own.
func TestLogBudgetPerPlugin(t *testing.T) {
	var buf testenv.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	const budget = 8 << 10 // eight of logflood's 1 KiB lines
	m := runtimetest.Manager(t, cached(runtime.Options{LogBytesPerMinute: budget, Logger: logger}))
	for _, id := range []string{"a", "b"} {
		loadEvil(t, m, id, runtime.PoolConfig{})
	}
	lines := func(plugin string) (logged, warnings int) {
		for _, l := range strings.Split(buf.String(), "\n") {
			if !strings.Contains(l, `"merchant":"`+plugin+`"`) {
				continue
			}
			if strings.Contains(l, `"msg":"plugin log"`) {
				logged++
			}
			if strings.Contains(l, "dropped") {
				warnings++
			}
		}
		return
	}
	var dropped uint64
	// b gets a budget of its own, half of a's.
	m.SetLogBudget("b", budget/2)
	if got := m.LogBudget("b"); got != budget/2 {
		t.Fatalf("b's budget %d", got)
	}
	for i, id := range []string{"a", "b"} {
		_, err := call(m, id, "logflood")
		if !runtime.IsKind(err, runtime.KindLimit) {
			t.Fatalf("%s logflood: %v, want the per-call limit", id, err)
		}
		lineBudget := []int{budget / 1024, budget / 2048}[i]
		logged, warnings := lines(id)
		if logged != lineBudget || warnings != 1 {
			t.Fatalf("plugin %s: %d lines logged and %d drop warnings, want %d and 1", id, logged, warnings, lineBudget)
		}
		dropped += uint64(16 - lineBudget) // 16 lines fit the call's 16 KiB
		if got := m.Stats().LogLinesDropped; got != dropped {
			t.Fatalf("after %s: %d lines dropped, want %d", id, got, dropped)
		}
	}
	m.SetLogBudget("b", 0)
	if got := m.LogBudget("b"); got != budget {
		t.Fatalf("b's budget after reset %d, want the default %d", got, budget)
	}
}

// TestLinearMemoryOffHeap: a plugin that grows its memory to the cap does
// not make the host's Go heap allocate that memory (it is a mapping of its
// own), so one merchant's memory bomb does not drive the host's collector.
func TestLinearMemoryOffHeap(t *testing.T) {
	if goruntime.GOOS != "linux" {
		t.Skip("the mapped allocator is Linux only")
	}
	m := runtimetest.Manager(t, cached(runtime.Options{Limits: runtime.Limits{CallTimeout: time.Minute}}))
	loadEvil(t, m, "evil", runtime.PoolConfig{})
	var before, after goruntime.MemStats
	goruntime.ReadMemStats(&before)
	_, err := call(m, "evil", "memory")
	goruntime.ReadMemStats(&after)
	if !errors.Is(err, runtime.ErrMemoryLimit) {
		t.Fatalf("memory bomb: %v, want runtime.ErrMemoryLimit", err)
	}
	// The bomb grew a 64 MiB memory; a new 8 MiB-ish instance replaces it.
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
		t.Fatalf("the host heap allocated %d MiB for a plugin's memory growth", grew>>20)
	}
}

// TestLogSinkAndStack: the sink gets each log line with its merchant,
// version, request id and level, and a failed call's report with its kind
// and, for a panic, the guest's message and goroutine trace (file:line);
// the host log gets the panic's first line only.
func TestLogSinkAndStack(t *testing.T) {
	var buf testenv.Buffer
	var mu sync.Mutex
	var got []runtime.LogLine
	m := runtimetest.Manager(t, cached(runtime.Options{Limits: evilLimits, Logger: slog.New(slog.NewJSONHandler(&buf, nil)),
		LogSink: func(l runtime.LogLine) { mu.Lock(); got = append(got, l); mu.Unlock() }}))
	loadEvil(t, m, "m1", runtime.PoolConfig{})
	env := runtime.CallEnv{Namespace: "m1", Now: time.Now(), RequestID: "req-7"}
	if _, _, err := m.Call(context.Background(), "m1", otpc.OpGenerate, []byte("logflood"), env); !runtime.IsKind(err, runtime.KindLimit) {
		t.Fatalf("logflood: %v", err)
	}
	_, _, err := m.Call(context.Background(), "m1", otpc.OpGenerate, []byte("panic"), env)
	var ce *runtime.CallError
	if !errors.As(err, &ce) || ce.Kind != runtime.KindTrap {
		t.Fatalf("panic: %v", err)
	}
	if !strings.HasPrefix(ce.Stack, "panic: plugin bug: boom") || !strings.Contains(ce.Stack, "goroutine ") || !strings.Contains(ce.Stack, ".go:") {
		t.Fatalf("stack %q, want the panic with its goroutine trace and file:line", ce.Stack)
	}
	mu.Lock()
	defer mu.Unlock()
	var lines, failures, limits int
	for _, l := range got {
		if l.Plugin != "m1" || l.Version != "v1" || l.RequestID != "req-7" {
			t.Fatalf("line without its merchant, version or request id: %+v", l)
		}
		switch {
		case l.Failure == "":
			lines++
			if l.Level != slog.LevelInfo || len(l.Text) != 1024 {
				t.Fatalf("log line %+v", l)
			}
		case l.Failure == "limit":
			limits++
		case l.Failure == "trap":
			failures++
			if l.Stack != ce.Stack || l.Op != "generate" || l.Level != slog.LevelError {
				t.Fatalf("trap report %+v", l)
			}
		}
	}
	if lines != 16 || limits != 1 || failures != 1 {
		t.Fatalf("%d log lines, %d limit and %d trap reports in the sink, want 16 (the 17th breaks the per-call 16 KiB), 1 and 1", lines, limits, failures)
	}
	if host := buf.String(); strings.Contains(host, "goroutine ") || !strings.Contains(host, `"request_id":"req-7"`) {
		t.Fatalf("host log: want the request id and no guest trace:\n%s", host)
	}
}

// TestVersionOps: a version built with the sdk reports the ops it has
// handlers for through its warm-up; a module that reports none (the raw
// evil plugin) has no ops.
func TestVersionOps(t *testing.T) {
	m := runtimetest.Manager(t, cached(runtime.Options{}))
	info, err := m.Load(context.Background(), "b", runtime.VersionSpec{Version: "v1", Wasm: runtimetest.Build(t, benchDir)})
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Ops) == 0 || info.Ops[0] != "generate" {
		t.Fatalf("bench plugin ops %q", info.Ops)
	}
	info, err = m.Load(context.Background(), "e", runtime.VersionSpec{Version: "v1", Wasm: runtimetest.Build(t, evilDir)})
	if err != nil || info.Ops != nil {
		t.Fatalf("evil plugin: ops %q, %v; want none", info.Ops, err)
	}
}

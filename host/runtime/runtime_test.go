package runtime_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/host/runtime"
	"github.com/otpcgate/otpcgate/host/runtime/runtimetest"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

const (
	evilDir       = "../../testdata/plugins/evil"
	badImportsDir = "../../testdata/plugins/badimports"
	benchDir      = "../../testdata/plugins/bench"
	benchJSONDir  = "../../testdata/plugins/benchjson"
)

func TestMain(m *testing.M) {
	// Start the (slow) wasm builds at once, two at a time; tests wait for
	// the ones they need.
	go func() {
		for _, d := range []string{evilDir, benchDir, badImportsDir} {
			_, _ = runtimetest.BuildWasm(d)
		}
	}()
	go func() { _, _ = runtimetest.BuildWasm(benchDir) }()
	dir, err := os.MkdirTemp("", "otpc-runtime-cache-")
	if err != nil {
		panic(err)
	}
	sharedCacheDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// sharedCacheDir holds compiled code for the whole test binary, so each Go
// module is compiled cold once (about a second each, more under -race).
var sharedCacheDir string

// cached adds the shared disk cache to o.
func cached(o runtime.Options) runtime.Options {
	o.CacheDir, o.CacheKey = sharedCacheDir, []byte("test-only shared cache key")
	return o
}

// evilLimits are tight limits so misbehaviour is caught fast. The call
// timeout is only a backstop: under -race on two busy cores, filling 16 MiB
// through the guest's allocator can take seconds, and a memory failure must
// not turn into a timeout. The deadline itself is tested with loopLimits.
var evilLimits = runtime.Limits{
	MemoryPages: 256, // 16 MiB
	CallTimeout: 60 * time.Second,
	MaxOutput:   64 << 10,
	MaxLogBytes: 16 << 10,
	MaxKVOps:    64,
	MaxInput:    128 << 10,
}

func call(m *runtime.Manager, plugin, input string) (string, error) {
	out, _, err := m.Call(context.Background(), plugin, otpc.OpGenerate, []byte(input), runtime.CallEnv{Namespace: "m1", Now: time.Now()})
	return string(out), err
}

// TestAdversarial runs every misbehaviour of the evil plugin while a
// well-behaved plugin is called from other goroutines: each failure must be
// typed, must replace the instance, and must not disturb anything else.
func TestAdversarial(t *testing.T) {
	evil, good := runtimetest.Build(t, evilDir), runtimetest.Build(t, benchDir)
	m := runtimetest.Manager(t, cached(runtime.Options{Limits: evilLimits, Pool: runtime.PoolConfig{Max: 1}}))
	if _, err := m.Load(context.Background(), "evil", runtime.VersionSpec{Version: "v1", Wasm: evil}); err != nil {
		t.Fatal(err)
	}
	if err := m.Activate("evil", "v1"); err != nil {
		t.Fatal(err)
	}
	// The same plugin with a short call timeout, for the endless loop.
	loopLimits := evilLimits
	loopLimits.CallTimeout = 500 * time.Millisecond
	if _, err := m.Load(context.Background(), "evil-loop", runtime.VersionSpec{Version: "v1", Wasm: evil, Limits: loopLimits}); err != nil {
		t.Fatal(err)
	}
	if err := m.Activate("evil-loop", "v1"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Load(context.Background(), "good", runtime.VersionSpec{Version: "v1", Wasm: good, Pool: runtime.PoolConfig{Max: 2}}); err != nil {
		t.Fatal(err)
	}
	if err := m.Activate("good", "v1"); err != nil {
		t.Fatal(err)
	}

	// The well-behaved plugin keeps answering throughout.
	stop := make(chan struct{})
	var okCalls, badCalls atomic.Int64
	var firstBad atomic.Value
	var wg sync.WaitGroup
	goodIn := benchInput(256)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				out, _, err := m.Call(context.Background(), "good", otpc.OpGenerate, goodIn, runtime.CallEnv{Now: time.Now()})
				if err != nil || !strings.Contains(string(out), "barcodeWithPrintableString") {
					badCalls.Add(1)
					firstBad.CompareAndSwap(nil, err)
					continue
				}
				okCalls.Add(1)
				time.Sleep(time.Millisecond)
			}
		}()
	}

	tests := []struct {
		mode   string
		plugin string // default: evil
		input  string // default: mode
		kind   runtime.Kind
		msg    string // substring of the error
		reused bool   // the instance survives (plugin errors only)
	}{
		{mode: "loop", plugin: "evil-loop", kind: runtime.KindTimeout, msg: "deadline"},
		{mode: "memory", kind: runtime.KindLimit, msg: "memory limit"},
		{mode: "recursion", kind: runtime.KindLimit, msg: "memory limit"},
		{mode: "hugeout", kind: runtime.KindLimit, msg: "output of"},
		{mode: "oobout", kind: runtime.KindABI, msg: "outside guest memory"},
		{mode: "ooblen", kind: runtime.KindABI, msg: "outside guest memory"},
		{mode: "emptyframe", kind: runtime.KindABI, msg: "empty output frame"},
		{mode: "badstatus", kind: runtime.KindABI, msg: "unknown output status 9"},
		{mode: "panic", kind: runtime.KindTrap, msg: "plugin bug: boom"},
		{mode: "logflood", kind: runtime.KindLimit, msg: "log bytes"},
		{mode: "stdoutflood", kind: runtime.KindLimit, msg: "stdout/stderr"},
		{mode: "kvflood", kind: runtime.KindLimit, msg: "KV operations"},
		{mode: "kvbig", kind: runtime.KindLimit, msg: "KV value of"},
		{mode: "kvbytes", kind: runtime.KindLimit, msg: "KV bytes put in one call"},
		{mode: "kvoob", kind: runtime.KindABI, msg: "KV value buffer out of guest memory"},
		{mode: "logoob", kind: runtime.KindABI, msg: "log message out of guest memory"},
		{mode: "alloctrap", input: strings.Repeat("x", 77777), kind: runtime.KindTrap, msg: "allocator exploded"},
		{mode: "allocbad", input: strings.Repeat("x", 66666), kind: runtime.KindABI, msg: "otpc_alloc returned"},
		{mode: "toolarge", input: strings.Repeat("x", 200<<10), kind: runtime.KindLimit, msg: "input of", reused: true},
		{mode: "error", kind: runtime.KindPluginError, msg: "declined by evil", reused: true},
	}
	// Warm the instance's counter so a replacement is visible.
	if _, err := call(m, "evil", "count"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			plugin := tc.plugin
			if plugin == "" {
				plugin = "evil"
			}
			before, err := call(m, plugin, "count")
			if err != nil {
				t.Fatalf("count before: %v", err)
			}
			in := tc.input
			if in == "" {
				in = tc.mode
			}
			start := time.Now()
			_, err = call(m, plugin, in)
			var ce *runtime.CallError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v (%T), want *runtime.CallError", err, err)
			}
			if ce.Kind != tc.kind || !strings.Contains(ce.Error(), tc.msg) {
				t.Fatalf("got %v (kind %s), want kind %s containing %q", err, ce.Kind, tc.kind, tc.msg)
			}
			if ce.Plugin != plugin || ce.Version != "v1" || ce.Op != otpc.OpGenerate {
				t.Errorf("error context %q@%q op %v", ce.Plugin, ce.Version, ce.Op)
			}
			t.Logf("%s after %v: %v", tc.mode, time.Since(start).Round(time.Millisecond), err)
			after, err := call(m, plugin, "count")
			if err != nil {
				t.Fatalf("next call failed: %v", err)
			}
			// count returns the number of calls this instance served mod 10.
			fresh := after == "1"
			next := string(rune('0' + (before[0]-'0'+1)%10))
			if tc.reused && after != next {
				t.Errorf("instance replaced after a %s (count %s -> %s)", tc.kind, before, after)
			}
			if !tc.reused && !fresh {
				t.Errorf("instance reused after a %s (count %s -> %s)", tc.kind, before, after)
			}
		})
	}
	close(stop)
	wg.Wait()
	st := m.Stats()
	replaced := 0
	for _, tc := range tests {
		if !tc.reused {
			replaced++
		}
	}
	if st.InstancesDiscarded < uint64(replaced) || st.Failures[runtime.KindLimit] < 8 || st.Failures[runtime.KindABI] < 7 ||
		st.Failures[runtime.KindTrap] < 2 || st.Failures[runtime.KindTimeout] < 1 || st.Failures[runtime.KindPluginError] < 1 {
		t.Errorf("stats %+v, want every failure counted and %d instances discarded", st, replaced)
	}
	if n := badCalls.Load(); n != 0 {
		t.Errorf("well-behaved plugin failed %d times (first: %v)", n, firstBad.Load())
	}
	if okCalls.Load() == 0 {
		t.Error("well-behaved plugin was never called")
	}
	t.Logf("well-behaved plugin answered %d calls meanwhile", okCalls.Load())
}

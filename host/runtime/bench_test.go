package runtime_test

import (
	"context"
	"fmt"
	"os"
	goruntime "runtime"
	"runtime/debug"
	"slices"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/host/runtime"
	"github.com/otpcgate/otpcgate/host/runtime/runtimetest"
	"github.com/otpcgate/otpcgate/sdk"
	"github.com/otpcgate/otpcgate/sdk/otpc"
	"github.com/otpcgate/otpcgate/testdata/plugins/bench/benchlogic"
)

// BenchmarkCall1KiB compares a warm wasm call (1 KiB JSON in, ~1 KiB out,
// decode + logic + encode in the guest) with the same sdk.Handle path and
// logic compiled natively, and reports wasm ns/op ÷ native ns/op as the
// "wasm/native" metric of the wasm sub-benchmarks. The native side runs
// inside the same sub-benchmark, interleaved: after every chunk of
// ratioChunk wasm calls the timer stops and ratioChunk native calls are
// timed, so both sides see the same load. The metric is the median of the
// per-chunk ratios, which a burst of load on another core moves less than
// a ratio of totals; on a loaded machine only the ratio means anything.
// The encoding/json variants have no native twin (their logic lives in a
// wasm-only main package), so they report no ratio.
func BenchmarkCall1KiB(b *testing.B) {
	input := benchInput(800)
	wasmBench := func(b *testing.B, opts runtime.Options, dir string, ratio bool) {
		m := runtimetest.Manager(b, opts)
		runtimetest.Load(b, m, "bench", runtimetest.Build(b, dir), nil)
		env := runtime.CallEnv{Namespace: "m", Now: time.Now()}
		out, _, err := m.Call(context.Background(), "bench", otpc.OpGenerate, input, env)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(input)))
		var ratios []float64
		var nativeTotal time.Duration
		n := 0
		chunkStart := time.Now()
		for b.Loop() {
			if _, _, err := m.Call(context.Background(), "bench", otpc.OpGenerate, input, env); err != nil {
				b.Fatal(err)
			}
			n++
			if ratio && n%ratioChunk == 0 {
				wasm := time.Since(chunkStart)
				b.StopTimer()
				native := nativeRun(b, input, ratioChunk)
				b.StartTimer()
				nativeTotal += native
				ratios = append(ratios, float64(wasm)/float64(native))
				chunkStart = time.Now()
			}
		}
		// Reported after the loop: b.Loop's timer reset drops earlier metrics.
		b.ReportMetric(float64(len(input)), "in-bytes")
		b.ReportMetric(float64(len(out)), "out-bytes")
		if len(ratios) == 0 {
			return
		}
		slices.Sort(ratios)
		b.ReportMetric(float64(nativeTotal.Nanoseconds())/float64(len(ratios)*ratioChunk), "native-ns/op")
		b.ReportMetric(ratios[len(ratios)/2], "wasm/native")
	}
	b.Run("wasm", func(b *testing.B) { wasmBench(b, runtime.Options{}, benchDir, true) })
	// The same without wazero's termination checks (not a production
	// setting: it shows what interruptibility costs a Go guest).
	b.Run("wasm-no-interrupt", func(b *testing.B) {
		wasmBench(b, runtime.WithoutInterruptForBench(runtime.Options{}), benchDir, true)
	})
	// The same logic with encoding/json in the guest: the earlier baseline.
	b.Run("wasm-encoding-json", func(b *testing.B) { wasmBench(b, runtime.Options{}, benchJSONDir, false) })
	b.Run("wasm-encoding-json-no-interrupt", func(b *testing.B) {
		wasmBench(b, runtime.WithoutInterruptForBench(runtime.Options{}), benchJSONDir, false)
	})
	b.Run("native", func(b *testing.B) {
		c := sdk.NewContext(sdk.NewMemHost(time.Now(), nil))
		out := make([]byte, 0, 4096)
		b.SetBytes(int64(len(input)))
		for b.Loop() {
			out = sdk.Handle(&benchlogic.Plugin, c, otpc.OpGenerate, input, out[:0])
			if out[0] != 0 {
				b.Fatal(string(out))
			}
		}
	})
}

// ratioChunk is how many wasm calls, then native calls, BenchmarkCall1KiB
// times back to back for one wasm/native sample.
const ratioChunk = 50

// nativeRun runs the bench plugin's generate natively n times through
// sdk.Handle, the path the guest runs, and returns the time it took.
func nativeRun(b *testing.B, input []byte, n int) time.Duration {
	c := sdk.NewContext(sdk.NewMemHost(time.Now(), nil))
	out := make([]byte, 0, 4096)
	start := time.Now()
	for range n {
		out = sdk.Handle(&benchlogic.Plugin, c, otpc.OpGenerate, input, out[:0])
		if out[0] != 0 {
			b.Fatal(string(out))
		}
	}
	return time.Since(start)
}

// BenchmarkCheckout measures pool checkout + an empty guest call with 1 and
// 16 concurrent callers on a pool of 4 instances.
func BenchmarkCheckout(b *testing.B) {
	for _, par := range []int{1, 16} {
		b.Run(fmt.Sprintf("goroutines=%d", par), func(b *testing.B) {
			m := runtimetest.Manager(b, runtime.Options{Pool: runtime.PoolConfig{Max: 4, Warm: 4}})
			runtimetest.Load(b, m, "p", buildWasm(nil, abiFuncs(1), true), nil)
			b.SetParallelism((par + goruntime.GOMAXPROCS(0) - 1) / goruntime.GOMAXPROCS(0))
			if par == 1 {
				for b.Loop() {
					if _, _, err := m.Call(context.Background(), "p", otpc.OpGenerate, nil, runtime.CallEnv{}); err != nil {
						b.Fatal(err)
					}
				}
				return
			}
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, _, err := m.Call(context.Background(), "p", otpc.OpGenerate, nil, runtime.CallEnv{}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkInstanceCreate measures instantiate + _initialize + ABI check +
// warm-up of one Go guest, and reports the memory one live instance costs
// (resident memory growth for the first 8 live instances, and the guest's
// linear memory size).
func BenchmarkInstanceCreate(b *testing.B) {
	m := runtimetest.Manager(b, runtime.Options{})
	runtimetest.Load(b, m, "bench", runtimetest.Build(b, benchDir), nil)
	var closers []func()
	var mem uint32
	var perInstance []float64
	// Resident memory (Linux /proc/self/statm): wazero maps linear memory
	// outside the Go heap, so the heap alone would miss it.
	heap := func() int64 {
		debug.FreeOSMemory() // return freed pages so they are not counted or reused
		var size, rss int64
		if b, err := os.ReadFile("/proc/self/statm"); err == nil {
			fmt.Sscan(string(b), &size, &rss)
		}
		return rss * int64(os.Getpagesize())
	}
	baseline := heap()
	for b.Loop() {
		size, closeFn, err := runtime.NewInstanceForTest(context.Background(), m, "bench")
		if err != nil {
			b.Fatal(err)
		}
		mem = size
		closers = append(closers, closeFn)
		if len(closers) == 8 {
			b.StopTimer()
			if perInstance == nil { // first batch only: later ones reuse freed pages
				perInstance = append(perInstance, float64(heap()-baseline)/8/(1<<20))
			}
			for _, c := range closers {
				c()
			}
			closers = closers[:0]
			b.StartTimer()
		}
	}
	for _, c := range closers {
		c()
	}
	if len(perInstance) > 0 {
		sum := 0.0
		for _, v := range perInstance {
			sum += v
		}
		b.ReportMetric(sum/float64(len(perInstance)), "rss-MiB/instance")
	}
	b.ReportMetric(float64(mem)/(1<<20), "linear-MiB/instance")
}

// BenchmarkCompile compares a cold compile with one from the verified disk
// cache (reported as compile-ms; Load also warms one instance).
func BenchmarkCompile(b *testing.B) {
	wasm := runtimetest.Build(b, benchDir)
	dir := b.TempDir()
	key := []byte("test-only benchmark cache key")
	for _, mode := range []string{"cold", "disk-cache"} {
		b.Run(mode, func(b *testing.B) {
			opts := runtime.Options{}
			if mode == "disk-cache" {
				opts = runtime.Options{CacheDir: dir, CacheKey: key}
				// Populate the cache once.
				m := runtimetest.Manager(b, opts)
				runtimetest.Load(b, m, "p", wasm, nil)
				_ = m.Close()
			}
			var total time.Duration
			n := 0
			for b.Loop() {
				m, err := runtime.New(opts)
				if err != nil {
					b.Fatal(err)
				}
				info, err := m.Load(context.Background(), "p", runtime.VersionSpec{Version: "v", Wasm: wasm})
				if err != nil {
					b.Fatal(err)
				}
				if mode == "disk-cache" && !info.CacheHit {
					b.Fatal("cache miss")
				}
				total += info.CompileTime
				n++
				_ = m.Close()
			}
			b.ReportMetric(float64(total.Microseconds())/float64(n)/1000, "compile-ms")
		})
	}
}

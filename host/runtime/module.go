package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	goruntime "runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/otpcgate/otpcgate/sdk/abi"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// VersionSpec describes one immutable plugin version to Load.
type VersionSpec struct {
	Version string
	Wasm    []byte
	// SHA256 is the expected hex sha256 of Wasm (as recorded at upload);
	// empty skips the comparison.
	SHA256 string
	// Config is the plugin's configuration JSON (the config import).
	Config []byte
	// Limits and Pool override the Manager's defaults field by field.
	Limits Limits
	Pool   PoolConfig
}

// VersionInfo describes a loaded version.
type VersionInfo struct {
	Plugin      string
	Version     string
	SHA256      string
	Engine      string // "compiler" or "interpreter"
	CompileTime time.Duration
	CacheHit    bool     // machine code came from the verified disk cache
	WASI        []string // the WASI functions the module imports
	// Ops are the ops the plugin has handlers for, as its warm-up call
	// reported them (the sdk does); nil when it reported none.
	Ops []string
}

// version is a loaded plugin version: its own wazero runtime (memory cap,
// cache), compiled module and pool. refs counts the Manager's registration
// plus in-flight calls; the last release closes everything.
type version struct {
	plugin, name string
	lim          Limits
	config       []byte
	logger       *slog.Logger
	sink         func(LogLine)
	ops          atomic.Pointer[warmOps] // what the first warm-up reported
	logs         *logBudget              // the plugin's, shared by its versions
	rt           wazero.Runtime
	cache        wazero.CompilationCache
	cm           wazero.CompiledModule
	pool         *pool
	seq          atomic.Uint64
	refs         atomic.Int64
	info         VersionInfo
	stats        *counters // the Manager's
}

func (v *version) release() {
	if v.refs.Add(-1) == 0 {
		v.close()
	}
}

func (v *version) close() {
	v.pool.close()
	ctx := context.Background()
	_ = v.rt.Close(ctx)
	_ = closeCache(ctx, v.cache)
}

// compilerSupported mirrors where wazero's optimizing compiler runs; other
// platforms fall back to the (about 34x slower) interpreter.
func compilerSupported() bool {
	switch goruntime.GOARCH {
	case "amd64", "arm64":
		switch goruntime.GOOS {
		case "linux", "darwin", "freebsd", "netbsd", "windows":
			return true
		}
	}
	return false
}

// loadVersion verifies, compiles and validates a module and warms its pool.
func loadVersion(ctx context.Context, o *Options, cacheLocks *sync.Map, stats *counters, logs *logBudget, plugin string, spec VersionSpec) (v *version, err error) {
	lerr := func(msg string, err error) error {
		return &LoadError{Plugin: plugin, Version: spec.Version, Msg: msg, Err: err}
	}
	sum := sha256.Sum256(spec.Wasm)
	sumHex := hex.EncodeToString(sum[:])
	if spec.SHA256 != "" && spec.SHA256 != sumHex {
		return nil, lerr("sha256 "+sumHex+" expected "+spec.SHA256, ErrHashMismatch)
	}
	lim := spec.Limits.or(o.Limits.withDefaults())
	if len(spec.Config) > lim.MaxConfigSize {
		return nil, lerr(fmt.Sprintf("config of %d bytes (limit %d)", len(spec.Config), lim.MaxConfigSize), nil)
	}
	poolCfg := spec.Pool
	if poolCfg.Max == 0 {
		poolCfg.Max = o.Pool.Max
	}
	if poolCfg.Warm == 0 {
		poolCfg.Warm = o.Pool.Warm
	}
	poolCfg = poolCfg.withDefaults()

	var rc wazero.RuntimeConfig
	engine := "compiler"
	if compilerSupported() {
		rc = wazero.NewRuntimeConfigCompiler()
	} else {
		rc, engine = wazero.NewRuntimeConfigInterpreter(), "interpreter"
	}
	// Close-on-context-done makes wazero check for cancellation at every
	// loop header and function entry, which is how a runaway guest is
	// stopped at its deadline. It is not free for Go guests (see
	// BenchmarkCall1KiB), but nothing else can interrupt compiled code.
	rc = rc.WithCloseOnContextDone(!o.noInterrupt).WithMemoryLimitPages(lim.MemoryPages)
	var mc *moduleCache
	var cache wazero.CompilationCache
	hit := false
	cacheUnlock := func() {}
	if o.CacheDir != "" {
		l, _ := cacheLocks.LoadOrStore(sum, &sync.Mutex{})
		mu := l.(*sync.Mutex)
		mu.Lock()
		unlock := sync.OnceFunc(mu.Unlock) // released once sealed, or on failure
		defer unlock()
		cacheUnlock = unlock
		mc = newModuleCache(o.CacheDir, o.CacheKey, sum)
		if cache, hit, err = mc.open(); err != nil {
			return nil, lerr("compilation cache", err)
		}
		rc = rc.WithCompilationCache(cache)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, rc)
	v = &version{plugin: plugin, name: spec.Version, lim: lim, config: spec.Config,
		logger: o.Logger, sink: o.LogSink, logs: logs, rt: rt, cache: cache, stats: stats}
	v.refs.Store(1)
	defer func() {
		if err != nil {
			_ = rt.Close(context.Background())
			_ = closeCache(context.Background(), cache)
		}
	}()

	workers := o.CompileWorkers
	if workers <= 0 {
		workers = goruntime.GOMAXPROCS(0)
	}
	start := time.Now()
	cm, err := rt.CompileModule(experimental.WithCompilationWorkers(ctx, workers), spec.Wasm)
	if err != nil {
		return nil, lerr("compile", err)
	}
	compileTime := time.Since(start)
	if mc != nil && !hit {
		if err := mc.seal(); err != nil {
			return nil, lerr("compilation cache", err)
		}
	}
	cacheUnlock() // warming below needs no cache lock
	v.cm = cm
	wasi, err := checkImports(cm)
	if err != nil {
		return nil, lerr("imports", err)
	}
	if err := checkExports(cm); err != nil {
		return nil, lerr("exports", err)
	}
	if err := instantiateHost(ctx, rt); err != nil {
		return nil, lerr("host module", err)
	}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		return nil, lerr("wasi module", err)
	}
	v.pool = newPool(v, poolCfg.Max)
	v.info = VersionInfo{Plugin: plugin, Version: spec.Version, SHA256: sumHex, Engine: engine,
		CompileTime: compileTime, CacheHit: hit, WASI: wasi}
	if err := v.pool.warm(ctx, poolCfg.Warm); err != nil {
		v.pool.close()
		return nil, lerr("instantiate", err)
	}
	v.info.Ops = v.ops.Load().ops
	return v, nil
}

// checkImports refuses any import outside the otpc host module and the
// allowed WASI functions, naming every offending import.
func checkImports(cm wazero.CompiledModule) (wasi []string, err error) {
	var bad []string
	for _, f := range cm.ImportedFunctions() {
		mod, name, _ := f.Import()
		switch {
		case mod == abi.HostModule && hostFunc(name):
		case mod == abi.WASIModule && abi.WASIAllowed(name):
			wasi = append(wasi, name)
		default:
			bad = append(bad, mod+"."+name)
		}
	}
	for _, m := range cm.ImportedMemories() {
		mod, name, _ := m.Import()
		bad = append(bad, "memory "+mod+"."+name)
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		bad = slices.Compact(bad)
		if len(bad) == 1 {
			return nil, fmt.Errorf("import %s is not allowed", bad[0])
		}
		return nil, fmt.Errorf("imports %s are not allowed", strings.Join(bad, ", "))
	}
	slices.Sort(wasi)
	return slices.Compact(wasi), nil
}

// checkExports verifies the ABI's exports and their signatures.
func checkExports(cm wazero.CompiledModule) error {
	i32, i64 := api.ValueTypeI32, api.ValueTypeI64
	want := []struct {
		name            string
		params, results []api.ValueType
	}{
		{abi.ExportInitialize, nil, nil},
		{abi.ExportVersion, nil, []api.ValueType{i32}},
		{abi.ExportAlloc, []api.ValueType{i32}, []api.ValueType{i32}},
		{abi.ExportHandle, []api.ValueType{i32, i32, i32}, []api.ValueType{i64}},
	}
	fns := cm.ExportedFunctions()
	if _, ok := fns[abi.ExportInitialize]; !ok {
		if _, isCommand := fns["_start"]; isCommand {
			// The usual mistake: `go build` without -buildmode=c-shared
			// makes a WASI command, which runs main and exits.
			return fmt.Errorf("missing export %s: this is a WASI command (it exports _start), not a reactor; "+
				"build it with GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared", abi.ExportInitialize)
		}
	}
	for _, w := range want {
		f, ok := fns[w.name]
		if !ok {
			return fmt.Errorf("missing export %s", w.name)
		}
		if !slices.Equal(f.ParamTypes(), w.params) || !slices.Equal(f.ResultTypes(), w.results) {
			return fmt.Errorf("export %s has signature %v -> %v, want %v -> %v",
				w.name, f.ParamTypes(), f.ResultTypes(), w.params, w.results)
		}
	}
	if _, ok := cm.ExportedMemories()[abi.ExportMemory]; !ok {
		return fmt.Errorf("missing export %s", abi.ExportMemory)
	}
	return nil
}

package runtime

import (
	"log/slog"
	"time"
)

// Limits bound what one plugin version may use. Zero fields take the
// defaults of DefaultLimits.
type Limits struct {
	MemoryPages   uint32        // linear memory cap per instance, 64 KiB pages
	CallTimeout   time.Duration // wall clock per call (also capped by the caller's context)
	InitTimeout   time.Duration // wall clock to instantiate, initialise and warm one instance
	MaxInput      int           // input frame bytes
	MaxOutput     int           // output frame bytes
	MaxLogBytes   int           // log + stdout + stderr bytes per call
	MaxKVOps      int           // kv_get + kv_put + kv_delete per call
	MaxKeySize    int           // bytes per KV key
	MaxValueSize  int           // bytes per KV value
	MaxKVBytes    int           // bytes of keys and values put per call
	MaxConfigSize int           // bytes of configuration JSON
}

// DefaultLimits returns the limits used for zero fields.
func DefaultLimits() Limits {
	return Limits{
		MemoryPages:   1024, // 64 MiB; a Go guest uses 4-8 MiB
		CallTimeout:   time.Second,
		InitTimeout:   10 * time.Second,
		MaxInput:      256 << 10,
		MaxOutput:     256 << 10,
		MaxLogBytes:   16 << 10,
		MaxKVOps:      256,
		MaxKeySize:    512,
		MaxValueSize:  64 << 10,
		MaxKVBytes:    1 << 20,
		MaxConfigSize: 64 << 10,
	}
}

func (l Limits) withDefaults() Limits { return l.or(DefaultLimits()) }

// or fills the unset (zero or negative) fields of l from d: a version's
// own limits over the Manager's, the Manager's over DefaultLimits.
func (l Limits) or(d Limits) Limits {
	set := func(v, def int) int {
		if v <= 0 {
			return def
		}
		return v
	}
	if l.MemoryPages == 0 {
		l.MemoryPages = d.MemoryPages
	}
	if l.CallTimeout <= 0 {
		l.CallTimeout = d.CallTimeout
	}
	if l.InitTimeout <= 0 {
		l.InitTimeout = d.InitTimeout
	}
	l.MaxInput = set(l.MaxInput, d.MaxInput)
	l.MaxOutput = set(l.MaxOutput, d.MaxOutput)
	l.MaxLogBytes = set(l.MaxLogBytes, d.MaxLogBytes)
	l.MaxKVOps = set(l.MaxKVOps, d.MaxKVOps)
	l.MaxKeySize = set(l.MaxKeySize, d.MaxKeySize)
	l.MaxValueSize = set(l.MaxValueSize, d.MaxValueSize)
	l.MaxKVBytes = set(l.MaxKVBytes, d.MaxKVBytes)
	l.MaxConfigSize = set(l.MaxConfigSize, d.MaxConfigSize)
	return l
}

// PoolConfig sizes the pool of warm instances of one version.
type PoolConfig struct {
	// Max is the most instances alive at once (idle + busy); callers beyond
	// it wait in FIFO order. Default 4.
	Max int
	// Warm is how many instances Load creates and warms before it returns.
	// Default 1. It is capped by Max.
	Warm int
}

func (p PoolConfig) withDefaults() PoolConfig {
	if p.Max <= 0 {
		p.Max = 4
	}
	if p.Warm <= 0 {
		p.Warm = 1
	}
	if p.Warm > p.Max {
		p.Warm = p.Max
	}
	return p
}

// Options configure a Manager.
type Options struct {
	// CacheDir holds compiled machine code, one sub-directory per wasm
	// sha256. Empty disables the disk cache.
	CacheDir string
	// CacheKey authenticates cache entries (HMAC-SHA256). Required with
	// CacheDir; keep it outside CacheDir (e.g. in the database).
	CacheKey []byte
	// Limits and Pool are the defaults for versions whose VersionSpec leaves
	// them zero.
	Limits Limits
	Pool   PoolConfig
	// CompileWorkers is how many goroutines compile one module (wazero's
	// experimental parallel compiler); 0 means GOMAXPROCS.
	CompileWorkers int
	// LogBytesPerMinute bounds each plugin's log lines over time, across
	// its versions; lines beyond are dropped and counted. Default
	// DefaultLogBytesPerMinute.
	LogBytesPerMinute int
	// Logger receives plugin log lines (with merchant, version, request
	// id and level) and runtime events. Nil discards.
	Logger *slog.Logger
	// LogSink, if set, also receives every plugin log line within the
	// plugin's budget and every failed call, e.g. for a per-merchant
	// buffer the merchant may read. It is called on the calling
	// goroutine and must not block.
	LogSink func(LogLine)

	// noInterrupt compiles without wazero's termination checks. Only the
	// benchmarks set it (export_test.go), to measure what the checks cost;
	// without them a runaway loop could never be stopped.
	noInterrupt bool
}

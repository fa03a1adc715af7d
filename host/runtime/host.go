package runtime

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"time"

	"github.com/otpcgate/otpcgate/sdk/abi"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// callState is the per-call state the host functions work on. It lives in
// its instance and is reset before each call, so the hot path allocates
// nothing for it.
type callState struct {
	lim    *Limits
	ns     string
	kv     KVReader
	now    int64
	config []byte
	logger *slog.Logger
	logs   *logBudget
	sink   func(LogLine)
	reqID  string
	record *Tape
	replay *Tape
	stats  *counters
	plugin string
	ver    string

	logBytes int
	kvOps    int
	kvBytes  int
	ov       overlay
	fail     *CallError // first failure recorded by a host function
	// stdioLimit: fail came from stdout/stderr volume.
	stdioLimit bool
	stderr     []byte // head of the guest's stderr this call, for messages
}

func (st *callState) reset(env *CallEnv, config []byte) {
	st.ns, st.kv, st.now, st.config, st.reqID = env.Namespace, env.KV, env.Now.UnixMilli(), config, env.RequestID
	st.record, st.replay = env.Record, env.Replay
	if env.Config != nil {
		st.config = env.Config
	}
	st.logBytes, st.kvOps, st.kvBytes, st.fail, st.stdioLimit = 0, 0, 0, nil, false
	st.stderr = st.stderr[:0]
	st.ov.reset()
}

// failf records the first failure of the call.
func (st *callState) failf(kind Kind, format string, args ...any) {
	if st.fail == nil {
		st.fail = &CallError{Kind: kind, Msg: fmt.Sprintf(format, args...)}
	}
}

// errAbort is panicked by host functions to stop the guest after recording
// a failure; wazero turns the panic into the guest call's error.
var errAbort = fmt.Errorf("otpc host aborted the call")

type stateKey struct{}

// stateCtx carries the call state without a context.WithValue allocation.
type stateCtx struct {
	context.Context
	st *callState
}

// Value returns the call state for stateKey.
func (c *stateCtx) Value(k any) any {
	if _, ok := k.(stateKey); ok {
		return c.st
	}
	return c.Context.Value(k)
}

func stateOf(ctx context.Context) *callState {
	st, _ := ctx.Value(stateKey{}).(*callState)
	if st == nil {
		panic(errAbort)
	}
	return st
}

// guard turns any panic of a host function (a bug, a panicking KVReader)
// into a recorded failure and stops the guest.
func guard(st *callState, name string) {
	if r := recover(); r != nil {
		if r != errAbort {
			st.failf(KindHost, "host function %s panicked", name)
		}
		panic(errAbort)
	}
}

func read(st *callState, mod api.Module, ptr, n uint32, what string) []byte {
	b, ok := mod.Memory().Read(ptr, n)
	if !ok {
		st.failf(KindABI, "%s out of guest memory (ptr %d len %d)", what, ptr, n)
		panic(errAbort)
	}
	return b
}

func write(st *callState, mod api.Module, ptr uint32, b []byte, what string) {
	if !mod.Memory().Write(ptr, b) {
		st.failf(KindABI, "%s out of guest memory (ptr %d len %d)", what, ptr, len(b))
		panic(errAbort)
	}
}

func countKV(st *callState) {
	st.kvOps++
	if st.kvOps > st.lim.MaxKVOps {
		st.failf(KindLimit, "more than %d KV operations", st.lim.MaxKVOps)
		panic(errAbort)
	}
}

func readKey(st *callState, mod api.Module, ptr, n uint32) []byte {
	if int(n) > st.lim.MaxKeySize || n == 0 {
		st.failf(KindLimit, "KV key of %d bytes (limit 1..%d)", n, st.lim.MaxKeySize)
		panic(errAbort)
	}
	return read(st, mod, ptr, n, "KV key")
}

func hostLog(ctx context.Context, mod api.Module, stack []uint64) {
	st := stateOf(ctx)
	defer guard(st, abi.FuncLog)
	level, ptr, n := int32(stack[0]), uint32(stack[1]), uint32(stack[2])
	st.logBytes += int(n)
	if st.logBytes > st.lim.MaxLogBytes {
		st.failf(KindLimit, "more than %d log bytes", st.lim.MaxLogBytes)
		panic(errAbort)
	}
	msg := read(st, mod, ptr, n, "log message")
	if st.logs != nil {
		if ok, report := st.logs.take(len(msg), time.Now()); !ok {
			if st.stats != nil {
				st.stats.logDropped.Add(1)
			}
			if report > 0 {
				st.logger.LogAttrs(context.Background(), slog.LevelWarn, "plugin log lines dropped: over the plugin's log budget per minute",
					slog.String("merchant", st.plugin), slog.Uint64("dropped", report))
			}
			return
		}
	}
	lvl := slog.LevelInfo
	switch level {
	case abi.LogDebug:
		lvl = slog.LevelDebug
	case abi.LogWarn:
		lvl = slog.LevelWarn
	case abi.LogError:
		lvl = slog.LevelError
	}
	if st.logger.Enabled(context.Background(), lvl) {
		st.logger.LogAttrs(context.Background(), lvl, "plugin log",
			slog.String("merchant", st.plugin), slog.String("version", st.ver),
			slog.String("request_id", st.reqID), slog.String("line", string(msg)))
	}
	if st.sink != nil {
		st.sink(LogLine{Time: time.Now(), Plugin: st.plugin, Version: st.ver, RequestID: st.reqID, Level: lvl, Text: string(msg)})
	}
}

func hostKVGet(ctx context.Context, mod api.Module, stack []uint64) {
	st := stateOf(ctx)
	defer guard(st, abi.FuncKVGet)
	countKV(st)
	key := readKey(st, mod, uint32(stack[0]), uint32(stack[1]))
	vptr, vcap := uint32(stack[2]), uint32(stack[3])
	var val []byte
	found := false
	taped := false
	if c, ok := st.ov.lookup(key); ok {
		val, found = c.Value, !c.Delete
	} else if st.replay != nil {
		val, found, taped = st.replay.read(string(key))
	}
	if _, own := st.ov.lookup(key); !own && !taped && st.kv != nil {
		v, ok, err := st.kv.Get(ctx, st.ns, string(key))
		if err != nil {
			st.failf(KindHost, "KV read failed: %v", err)
			panic(errAbort)
		}
		val, found = v, ok
		if st.record != nil {
			st.record.KV = append(st.record.KV, TapeRead{Key: string(key), Value: append([]byte(nil), v...), Found: ok})
		}
	}
	if !found {
		stack[0] = api.EncodeI32(abi.KVNotFound)
		return
	}
	if len(val) <= int(vcap) {
		write(st, mod, vptr, val, "KV value buffer")
	}
	stack[0] = uint64(uint32(len(val)))
}

func hostKVPut(ctx context.Context, mod api.Module, stack []uint64) {
	st := stateOf(ctx)
	defer guard(st, abi.FuncKVPut)
	countKV(st)
	key := readKey(st, mod, uint32(stack[0]), uint32(stack[1]))
	n := uint32(stack[3])
	if int(n) > st.lim.MaxValueSize {
		st.failf(KindLimit, "KV value of %d bytes (limit %d)", n, st.lim.MaxValueSize)
		panic(errAbort)
	}
	// The change set is copied out of the guest and held until commit:
	// bound its bytes per call, so a flooding plugin fails early instead of
	// making the host allocate (and collect) megabytes per request.
	st.kvBytes += len(key) + int(n)
	if st.kvBytes > st.lim.MaxKVBytes {
		st.failf(KindLimit, "more than %d KV bytes put in one call", st.lim.MaxKVBytes)
		panic(errAbort)
	}
	val := read(st, mod, uint32(stack[2]), n, "KV value")
	st.ov.set(key, append(make([]byte, 0, len(val)), val...), false)
	stack[0] = 0
}

func hostKVDelete(ctx context.Context, mod api.Module, stack []uint64) {
	st := stateOf(ctx)
	defer guard(st, abi.FuncKVDelete)
	countKV(st)
	key := readKey(st, mod, uint32(stack[0]), uint32(stack[1]))
	st.ov.set(key, nil, true)
	stack[0] = 0
}

func hostRandom(ctx context.Context, mod api.Module, stack []uint64) {
	st := stateOf(ctx)
	defer guard(st, abi.FuncRandom)
	n := uint32(stack[1])
	if n > 4096 {
		st.failf(KindLimit, "random request of %d bytes (limit 4096)", n)
		panic(errAbort)
	}
	buf := read(st, mod, uint32(stack[0]), n, "random buffer")
	if st.replay != nil && st.replay.random(buf) {
		return
	}
	_, _ = rand.Read(buf) // crypto/rand never fails on supported platforms
	if st.record != nil {
		st.record.Random = append(st.record.Random, append([]byte(nil), buf...))
	}
}

func hostNow(ctx context.Context, _ api.Module, stack []uint64) {
	st := stateOf(ctx)
	stack[0] = uint64(st.now)
}

func hostConfig(ctx context.Context, mod api.Module, stack []uint64) {
	st := stateOf(ctx)
	defer guard(st, abi.FuncConfig)
	ptr, capacity := uint32(stack[0]), uint32(stack[1])
	if len(st.config) <= int(capacity) && len(st.config) > 0 {
		write(st, mod, ptr, st.config, "config buffer")
	}
	stack[0] = uint64(uint32(len(st.config)))
}

// instantiateHost defines the "otpc" host module in r.
func instantiateHost(ctx context.Context, r wazero.Runtime) error {
	i32, i64 := api.ValueTypeI32, api.ValueTypeI64
	b := r.NewHostModuleBuilder(abi.HostModule)
	def := func(name string, fn api.GoModuleFunc, params, results []api.ValueType) {
		b.NewFunctionBuilder().WithGoModuleFunction(fn, params, results).Export(name)
	}
	def(abi.FuncLog, hostLog, []api.ValueType{i32, i32, i32}, nil)
	def(abi.FuncKVGet, hostKVGet, []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32})
	def(abi.FuncKVPut, hostKVPut, []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32})
	def(abi.FuncKVDelete, hostKVDelete, []api.ValueType{i32, i32}, []api.ValueType{i32})
	def(abi.FuncRandom, hostRandom, []api.ValueType{i32, i32}, nil)
	def(abi.FuncNow, hostNow, nil, []api.ValueType{i64})
	def(abi.FuncConfig, hostConfig, []api.ValueType{i32, i32}, []api.ValueType{i32})
	_, err := b.Instantiate(ctx)
	return err
}

// hostFuncs lists the names of the "otpc" module, for import validation.
func hostFunc(name string) bool {
	switch name {
	case abi.FuncLog, abi.FuncKVGet, abi.FuncKVPut, abi.FuncKVDelete,
		abi.FuncRandom, abi.FuncNow, abi.FuncConfig:
		return true
	}
	return false
}

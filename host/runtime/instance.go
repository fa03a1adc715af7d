package runtime

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/otpcgate/otpcgate/sdk/abi"
	"github.com/otpcgate/otpcgate/sdk/otpc"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"
)

// CallEnv is what the host supplies to one call.
type CallEnv struct {
	// Namespace is the KV namespace (the merchant). The guest cannot name
	// another one.
	Namespace string
	// KV is the committed view; nil behaves as empty.
	KV KVReader
	// Now is the request's time, returned by the now import.
	Now time.Time
	// Config overrides the version's configuration JSON when non-nil.
	Config []byte
	// RequestID names the request the call serves in its log lines.
	RequestID string
	// Record, if set, is filled with the random bytes and committed KV
	// reads the host gives the call (see Tape).
	Record *Tape
	// Replay, if set, answers the call's random and committed KV reads
	// from a recorded call's tape instead (see Tape); what it cannot
	// answer is answered live and counted as a miss.
	Replay *Tape
}

// LogLine is one line of a plugin's log, or the report of one of its
// failed calls (Failure set), as given to Options.LogSink. Text is the
// plugin's own text; the host adds nothing of the request's payload.
type LogLine struct {
	Time      time.Time
	Plugin    string // the plugin (merchant) id
	Version   string
	RequestID string
	Level     slog.Level
	Text      string
	// Failure is the failed call's kind ("trap", "timeout", …) and Stack
	// the guest's panic and goroutine trace, if it printed one.
	Failure string
	Op      string
	Stack   string
}

// instance is one warm guest instance. It is used by one goroutine at a
// time (checked out of its pool) and closed after any failure but a plugin
// error.
type instance struct {
	v      *version
	mod    api.Module
	alloc  api.Function
	handle api.Function
	stack  [3]uint64
	st     callState
	broken bool
}

// maxStderr is how much of a call's stderr is kept: a Go panic's message
// and the top of its goroutine trace (the handler's file:line).
const maxStderr = 4096

// stdio counts the guest's stdout/stderr against the call's log limit and
// keeps the head of stderr for error messages (a Go panic prints there).
type stdio struct {
	in     *instance
	stderr bool
}

func (w stdio) Write(p []byte) (int, error) {
	st := &w.in.st
	if st.lim == nil { // before the first call's state is set
		return len(p), nil
	}
	st.logBytes += len(p)
	if w.stderr && len(st.stderr) < maxStderr {
		st.stderr = append(st.stderr, p[:min(len(p), maxStderr-len(st.stderr))]...)
	}
	if st.logBytes > st.lim.MaxLogBytes {
		// Go's print ignores write errors, so stop the guest: wazero turns
		// this panic inside fd_write into the call's error.
		st.failf(KindLimit, "more than %d log bytes (stdout/stderr)", st.lim.MaxLogBytes)
		st.stdioLimit = true
		panic(errAbort)
	}
	return len(p), nil
}

// newInstance instantiates, initialises, checks and warms one instance.
func (v *version) newInstance(ctx context.Context) (*instance, error) {
	in := &instance{v: v}
	in.st.lim = &v.lim
	in.st.logger, in.st.logs, in.st.sink, in.st.plugin, in.st.ver = v.logger, v.logs, v.sink, v.plugin, v.name
	in.st.stats = v.stats

	ctx, cancel := context.WithTimeout(ctx, v.lim.InitTimeout)
	defer cancel()
	// The instance's linear memory is its own mapping (see mmapAllocator).
	ctx = experimental.WithMemoryAllocator(ctx, mmapAllocator)
	// wazero watches the context from another goroutine, so each call gets
	// its own (immutable) stateCtx.
	sctx := &stateCtx{Context: ctx, st: &in.st}
	env := CallEnv{Now: time.Now()}
	in.st.reset(&env, v.config)

	cfg := wazero.NewModuleConfig().
		WithName("i" + strconv.FormatUint(v.seq.Add(1), 10)).
		WithStartFunctions(). // a reactor: _initialize is called below, under our deadline
		WithStdout(stdio{in: in}).
		WithStderr(stdio{in: in, stderr: true}).
		WithRandSource(rand.Reader).
		WithSysWalltime().
		WithSysNanotime()
	mod, err := v.rt.InstantiateModule(sctx, v.cm, cfg)
	if err != nil {
		return nil, in.classify(ctx, err, "instantiate")
	}
	in.mod = mod
	fail := func(err error) (*instance, error) {
		_ = mod.Close(context.Background())
		return nil, err
	}
	in.alloc, in.handle = mod.ExportedFunction(abi.ExportAlloc), mod.ExportedFunction(abi.ExportHandle)
	if in.alloc == nil || in.handle == nil {
		return fail(&CallError{Kind: KindABI, Msg: "missing otpc_alloc or otpc_handle export"})
	}
	if err := mod.ExportedFunction(abi.ExportInitialize).CallWithStack(sctx, in.stack[:]); err != nil {
		return fail(in.classify(ctx, err, "_initialize"))
	}
	if err := mod.ExportedFunction(abi.ExportVersion).CallWithStack(sctx, in.stack[:]); err != nil {
		return fail(in.classify(ctx, err, "otpc_abi_version"))
	}
	if got := int32(in.stack[0]); got != abi.Version {
		return fail(&CallError{Kind: KindABI, Msg: fmt.Sprintf("ABI version %d, host supports %d", got, abi.Version)})
	}
	// One warm-up call so the first real request does not pay for lazy
	// initialisation inside the guest.
	out, _, err := in.call(ctx, opWarmup, []byte("{}"), &env)
	if err != nil {
		return fail(err)
	}
	if v.ops.Load() == nil {
		v.ops.CompareAndSwap(nil, parseWarmOps(out))
	}
	v.stats.created.Add(1)
	return in, nil
}

const opWarmup = 0

// warmOps is the warm-up's report of the ops a plugin handles.
type warmOps struct {
	ops []string
}

// parseWarmOps reads {"ops":[…]} from a warm-up output; anything else (an
// older sdk's empty output) reports nothing. Only known op names are kept.
func parseWarmOps(out []byte) *warmOps {
	var w struct {
		Ops []string `json:"ops"`
	}
	if len(out) == 0 || json.Unmarshal(out, &w) != nil {
		return &warmOps{}
	}
	var ops []string
	for _, name := range w.Ops {
		for o := otpc.OpGenerate; o.Valid(); o++ {
			if o.String() == name && !slices.Contains(ops, name) {
				ops = append(ops, name)
			}
		}
	}
	return &warmOps{ops: ops}
}

// call runs one op. The output is a fresh copy owned by the caller.
func (in *instance) call(ctx context.Context, op int32, input []byte, env *CallEnv) ([]byte, ChangeSet, error) {
	lim := &in.v.lim
	if len(input) > lim.MaxInput {
		// Refused before touching the guest: the instance stays usable.
		return nil, ChangeSet{}, &CallError{Kind: KindLimit, Msg: fmt.Sprintf("input of %d bytes (limit %d)", len(input), lim.MaxInput)}
	}
	in.st.reset(env, in.v.config)
	ctx, cancel := context.WithTimeout(ctx, lim.CallTimeout)
	defer cancel()
	sctx := &stateCtx{Context: ctx, st: &in.st}

	in.stack[0] = uint64(len(input))
	if err := in.alloc.CallWithStack(sctx, in.stack[:]); err != nil {
		return nil, ChangeSet{}, in.classify(ctx, err, "otpc_alloc")
	}
	ptr := uint32(in.stack[0])
	mem := in.mod.Memory()
	if !mem.Write(ptr, input) {
		return nil, ChangeSet{}, in.broke(&CallError{Kind: KindABI, Msg: fmt.Sprintf("otpc_alloc returned %d, outside memory for %d bytes", ptr, len(input))})
	}
	in.stack[0], in.stack[1], in.stack[2] = uint64(uint32(op)), uint64(ptr), uint64(len(input))
	if err := in.handle.CallWithStack(sctx, in.stack[:]); err != nil {
		return nil, ChangeSet{}, in.classify(ctx, err, "otpc_handle")
	}
	if in.st.fail != nil { // e.g. stdout flood that did not stop the guest
		return nil, ChangeSet{}, in.broke(in.st.fail)
	}
	optr, olen := abi.Unpack(in.stack[0])
	if olen == 0 {
		return nil, ChangeSet{}, in.broke(&CallError{Kind: KindABI, Msg: "empty output frame"})
	}
	frame, ok := mem.Read(optr, olen)
	if !ok {
		return nil, ChangeSet{}, in.broke(&CallError{Kind: KindABI, Msg: fmt.Sprintf("output frame (ptr %d len %d) outside guest memory", optr, olen)})
	}
	if int(olen)-1 > lim.MaxOutput {
		return nil, ChangeSet{}, in.broke(&CallError{Kind: KindLimit, Msg: fmt.Sprintf("output of %d bytes (limit %d)", olen-1, lim.MaxOutput)})
	}
	status, body := abi.Status(frame[0]), frame[1:]
	switch status {
	case abi.StatusOK:
		out := append(make([]byte, 0, len(body)), body...)
		return out, ChangeSet{Namespace: env.Namespace, Changes: in.st.ov.changes}, nil
	case abi.StatusRefusal:
		// An answer the caller validates; the call's KV writes are dropped.
		body := append(make([]byte, 0, len(body)), body...)
		return nil, ChangeSet{}, &CallError{Kind: KindRefusal, Msg: "plugin refused", Refusal: body}
	case abi.StatusError, abi.StatusBadInput, abi.StatusUnsupported:
		// A well-formed refusal: the instance is healthy and goes back.
		return nil, ChangeSet{}, &CallError{Kind: KindPluginError, Msg: status.String() + ": " + clip(body, 256)}
	}
	return nil, ChangeSet{}, in.broke(&CallError{Kind: KindABI, Msg: fmt.Sprintf("unknown output status %d", frame[0])})
}

func (in *instance) broke(e *CallError) *CallError {
	in.broken = true
	return e
}

// classify turns an error of a guest function call into a *CallError.
func (in *instance) classify(ctx context.Context, err error, fn string) *CallError {
	in.broken = true
	// A crashing Go runtime prints a long trace: when the stdio limit was hit
	// by such a trace, the crash is the cause, not the log volume.
	if f := in.st.fail; f != nil && !(in.st.stdioLimit && panicLine(in.st.stderr) != "") {
		return f
	}
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		switch exit.ExitCode() {
		case sys.ExitCodeDeadlineExceeded:
			return &CallError{Kind: KindTimeout, Msg: fn + " exceeded its deadline"}
		case sys.ExitCodeContextCanceled:
			return &CallError{Kind: KindTimeout, Msg: fn + " cancelled", Err: context.Canceled}
		}
	}
	if ctx.Err() != nil {
		return &CallError{Kind: KindTimeout, Msg: fn + " exceeded its deadline", Err: ctx.Err()}
	}
	detail := panicLine(in.st.stderr)
	if bytes.Contains(in.st.stderr, []byte("out of memory")) || in.nearMemoryLimit() {
		return &CallError{Kind: KindLimit, Msg: fmt.Sprintf("%s: memory limit of %d pages reached%s", fn, in.v.lim.MemoryPages, detail),
			Err: ErrMemoryLimit}
	}
	if exit != nil {
		return &CallError{Kind: KindTrap, Msg: fmt.Sprintf("%s: guest exited with code %d%s", fn, exit.ExitCode(), detail), Stack: panicText(in.st.stderr)}
	}
	what := firstLine(err.Error())
	if errors.Is(err, errAbort) {
		what = "guest crashed"
	}
	return &CallError{Kind: KindTrap, Msg: fn + " trapped: " + what + detail, Stack: panicText(in.st.stderr)}
}

func (in *instance) nearMemoryLimit() bool {
	if in.mod == nil {
		return false
	}
	return uint64(in.mod.Memory().Size()) >= uint64(in.v.lim.MemoryPages)*65536-(1<<20)
}

func (in *instance) close() {
	if in.mod != nil {
		_ = in.mod.Close(context.Background())
	}
}

// panicLine extracts "panic: ..." or "fatal error: ..." from stderr: the
// first line, at most 200 bytes, quoted — it is the plugin's text and goes
// into the host's log, so control characters (a forged log line) are
// escaped.
func panicLine(stderr []byte) string {
	for _, pfx := range []string{"panic: ", "fatal error: ", "runtime: "} {
		if i := bytes.Index(stderr, []byte(pfx)); i >= 0 {
			return " (" + strconv.QuoteToGraphic(firstLine(string(stderr[i:]))) + ")"
		}
	}
	return ""
}

// panicText is stderr from its panic on, valid UTF-8, for CallError.Stack.
func panicText(stderr []byte) string {
	for _, pfx := range []string{"panic: ", "fatal error: ", "runtime: "} {
		if i := bytes.Index(stderr, []byte(pfx)); i >= 0 {
			return strings.ToValidUTF8(string(stderr[i:]), "\uFFFD")
		}
	}
	return ""
}

func firstLine(s string) string {
	if i := bytes.IndexByte([]byte(s), '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

func clip(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return string(b)
}

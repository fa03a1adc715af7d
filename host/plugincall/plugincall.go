// Package plugincall is the one way the host calls a merchant's plugin: it
// resolves the plugin that serves the merchant, builds the call's
// environment (the merchant's KV namespace read through the ledger, the
// request's time), runs the runtime, decodes and validates the output,
// and counts every call per merchant, op and outcome and per plugin
// version. The Google pipeline, the merchant API (store payments and
// refund results) and the login page all call through one Service, so all
// of them show in the same plugin metrics.
//
// A call ends in one of three ways: a validated output (success or a
// business decline in the op's result union), an *otpc.Refusal (an
// ErrorResponse member the merchant may choose, answered with its 4xx;
// errors.As finds it) or any other error, which is a failure the caller
// answers as retryable. A refusal with a member reserved to the host
// (otpc.PluginMayRefuseWith) is such a failure, and its error names the
// member.
package plugincall

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/otpcgate/otpcgate/host/ledger"
	"github.com/otpcgate/otpcgate/host/runtime"
	"github.com/otpcgate/otpcgate/internal/reqid"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// Runner runs plugin code; *runtime.Manager implements it.
type Runner interface {
	Call(ctx context.Context, pluginID string, op otpc.Op, input []byte, env runtime.CallEnv) ([]byte, runtime.ChangeSet, error)
	Active(pluginID string) (runtime.VersionInfo, bool)
}

// KV reads the committed plugin KV; *ledger.Ledger implements it.
type KV interface {
	KVGet(ctx context.Context, namespace, key string) ([]byte, bool, error)
}

// Config tunes a Service. The zero value is ready to use.
type Config struct {
	// BreakerTimeouts is how many consecutive calls of a plugin may run
	// into their time limit before its circuit opens (ErrCircuitOpen);
	// 0 means DefaultBreakerTimeouts.
	BreakerTimeouts int
	// BreakerCoolDown is how long an open circuit refuses calls before one
	// probe call is let through; 0 means DefaultBreakerCoolDown.
	BreakerCoolDown time.Duration
	// Logger receives circuit openings; nil discards them.
	Logger *slog.Logger
	// ShadowAdmission, if set, is the admission limiter shadow calls yield
	// to: one runs only while a slot is free and no request waits (see
	// SetShadow); without one, shadow calls run one at a time regardless.
	ShadowAdmission Admission
	// ShadowQueue bounds the shadow calls waiting to run; 0 means
	// DefaultShadowQueue.
	ShadowQueue int
}

// Service calls merchant plugins. It is safe for concurrent use.
type Service struct {
	run     Runner
	kv      runtime.KVReader
	metrics *metrics
	breaker *breaker
	log     *slog.Logger
	shadow  *shadows
	rec     recordings
	canary  canaries

	closeOnce sync.Once
}

// New returns a Service that runs plugins on run and reads their KV from kv.
func New(cfg Config, run Runner, kv KV) *Service {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{run: run, kv: kvReader{kv}, metrics: newMetrics(),
		breaker: newBreaker(cfg.BreakerTimeouts, cfg.BreakerCoolDown), log: log}
	s.shadow = newShadows(run, s.kv, cfg.ShadowAdmission, cfg.ShadowQueue)
	return s
}

// Target names whose plugin a call runs.
type Target struct {
	// Merchant is the merchant id: the KV namespace and the metrics label.
	Merchant string
	// Plugin is the plugin id in the runtime; "" means Merchant.
	Plugin string
}

func (t Target) plugin() string {
	if t.Plugin == "" {
		return t.Merchant
	}
	return t.Plugin
}

// Changes is a call's KV change set, committed by the caller in the same
// transaction as the request's ledger record (or dropped with it).
type Changes struct {
	ns string
	cs runtime.ChangeSet
}

// Empty reports whether the call changed nothing.
func (c Changes) Empty() bool { return c.cs.Empty() }

// Apply commits the change set in tx.
func (c Changes) Apply(tx *ledger.Tx) error {
	if c.cs.Empty() {
		return nil
	}
	changes := make([]ledger.KVChange, len(c.cs.Changes))
	for i, ch := range c.cs.Changes {
		changes[i] = ledger.KVChange{Key: ch.Key, Value: ch.Value, Delete: ch.Delete}
	}
	return tx.ApplyKV(c.ns, changes)
}

// Call runs op on t's plugin with in as the input frame and decodes and
// validates the output frame into out. now is the request's time (what the
// plugin's clock says). On error nothing of the call is to be committed:
// the returned Changes are empty.
//
// The encoded input is zeroed after the call: it may carry a secret (the
// login page's password) that should not linger in a buffer the host owns.
func (s *Service) Call(ctx context.Context, t Target, op otpc.Op, now time.Time, in, out otpc.Message) (Changes, error) {
	input := in.AppendJSON(nil)
	r := s.raw(ctx, t, op, input, now, transaction(in))
	clear(input)
	err := r.err
	var ce *runtime.CallError
	if errors.As(err, &ce) && ce.Kind == runtime.KindRefusal {
		err = refusal(t, op, ce.Refusal)
	} else if err == nil {
		if err = out.UnmarshalJSON(r.out); err != nil {
			err = &invalidOutput{fmt.Errorf("plugincall: plugin %s returned an unreadable %s result: %w", t.plugin(), op, err)}
		} else if err = out.Validate(); err != nil {
			err = &invalidOutput{fmt.Errorf("plugincall: plugin %s returned an invalid %s result: %w", t.plugin(), op, err)}
		}
	}
	s.metrics.record(t.Merchant, r.plugin, r.version, op, r.took, err)
	if r.canary {
		s.canary.record(t.Merchant, r.version, r.took, err)
	}
	if err != nil {
		return Changes{}, err
	}
	return Changes{ns: t.Merchant, cs: r.cs}, nil
}

// refusal validates a refusal frame: a member the plugin may choose is the
// call's answer (*otpc.Refusal); anything else is the plugin's failure.
func refusal(t Target, op otpc.Op, body []byte) error {
	ref, err := otpc.ParseRefusalFrame(body)
	if err != nil {
		return &invalidOutput{fmt.Errorf("plugincall: plugin %s returned an unreadable %s refusal: %w", t.plugin(), op, err)}
	}
	member := ref.Member()
	switch {
	case member == "":
		return &invalidOutput{fmt.Errorf("plugincall: plugin %s refused %s without exactly one errorResponseResult member", t.plugin(), op)}
	case !otpc.PluginMayRefuseWith(member):
		return &invalidOutput{fmt.Errorf("plugincall: plugin %s refused %s with %s, a member only the host may answer with", t.plugin(), op, member)}
	case !refusableOp(op):
		return &invalidOutput{fmt.Errorf("plugincall: plugin %s refused %s with %s, but %s is not a request it may refuse", t.plugin(), op, member, op)}
	}
	return ref
}

// refusableOp reports whether op answers a request a plugin may refuse:
// Google's requests and the merchant API's events. A warmup has no caller
// to refuse.
func refusableOp(op otpc.Op) bool { return op != otpc.OpWarmup && op.Valid() }

// invalidOutput marks a plugin output the host could not accept.
type invalidOutput struct{ err error }

func (e *invalidOutput) Error() string { return e.err.Error() }
func (e *invalidOutput) Unwrap() error { return e.err }

// result is one runtime call, before its output is decoded.
type result struct {
	out             []byte
	cs              runtime.ChangeSet
	err             error
	plugin, version string
	took            time.Duration
	canary          bool // a canary transaction: the candidate ran
}

// raw runs one call on the runtime and notes the version that served it:
// the failing version named by a *runtime.CallError, else the version
// active when the call started (a call racing an activation may be counted
// under the old version; it did run on one of the two).
func (s *Service) raw(ctx context.Context, t Target, op otpc.Op, input []byte, now time.Time, txn string) result {
	r := result{plugin: t.plugin()}
	env := runtime.CallEnv{Namespace: t.Merchant, KV: s.kv, Now: now, RequestID: reqid.From(ctx)}
	if candidate := s.canary.route(t.Merchant, txn); candidate != "" {
		// A canary transaction: the candidate serves it, outside the
		// active version's circuit breaker; the canary's own limits roll
		// it back.
		r.version = candidate
		if vr, ok := s.run.(VersionRunner); ok {
			start := time.Now()
			r.out, r.cs, r.err = vr.CallVersion(ctx, r.plugin, candidate, op, input, env)
			r.took, r.canary = time.Since(start), true
			return r
		}
	}
	if vi, ok := s.run.Active(r.plugin); ok {
		r.version = vi.Version
	}
	if r.err = s.breaker.allow(r.plugin); r.err != nil {
		return r
	}
	candidate, shadowed := s.shadow.sampled(t.Merchant, op)
	sink := s.rec.recording(t.Merchant, op)
	if shadowed || sink != nil {
		env.Record = &runtime.Tape{}
	}
	start := time.Now()
	r.out, r.cs, r.err = s.run.Call(ctx, r.plugin, op, input, env)
	r.took = time.Since(start)
	if sink != nil && !errors.Is(r.err, context.Canceled) {
		sink(newRecording(t, r.version, op, env.RequestID, now, input, env.Record, r.out, r.cs, r.err))
	}
	if shadowed && candidate != r.version {
		// The candidate gets exactly this call's input, time, randomness
		// and KV reads, later and elsewhere; nothing it does is kept.
		s.shadow.enqueue(shadowJob{merchant: t.Merchant, plugin: r.plugin, version: candidate, reqID: env.RequestID, op: op,
			input: bytes.Clone(input), now: now, tape: env.Record, active: Side(r.out, r.cs, r.err), activeCS: r.cs,
			activeOut: Answer(r.out, r.err)})
	}
	if s.breaker.record(ctx, r.plugin, r.err) {
		s.log.Warn("plugin circuit opened: its calls keep running into their time limit; calls fail at once (503) during the cool-down",
			"merchant", t.Merchant, "plugin", r.plugin, "version", r.version, "cool_down", s.breaker.coolDown)
	}
	var ce *runtime.CallError
	if errors.As(r.err, &ce) && ce.Version != "" {
		r.version = ce.Version
	}
	return r
}

// Stats returns a plugin version's counters since start; ok is false if it
// never ran.
func (s *Service) Stats(pluginID, version string) (VersionStats, bool) {
	return s.metrics.stats(pluginID, version)
}

// Outcomes returns the calls since start of one merchant's plugin by op and
// outcome (OutcomeOK, OutcomeRefusal, …).
func (s *Service) Outcomes(merchantID string) map[otpc.Op]map[string]int64 {
	return s.metrics.outcomes(merchantID)
}

type kvReader struct{ kv KV }

func (k kvReader) Get(ctx context.Context, ns, key string) ([]byte, bool, error) {
	return k.kv.KVGet(ctx, ns, key)
}

// CircuitOpen reports whether plugin's calls are refused now by its open
// circuit, and for how much longer: callers can answer 503 before doing
// any work for the call (the pipeline does, before decrypting).
func (s *Service) CircuitOpen(plugin string) (bool, time.Duration) { return s.breaker.cooling(plugin) }

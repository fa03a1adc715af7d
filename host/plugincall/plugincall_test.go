package plugincall

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpcgate/otpcgate/host/runtime"
	"github.com/otpcgate/otpcgate/host/runtime/runtimetest"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// noKV is an empty KV store.
type noKV struct{}

func (noKV) KVGet(context.Context, string, string) ([]byte, bool, error) { return nil, false, nil }

// call is Call without the decoding: the adversarial plugin speaks raw
// modes, not the op's JSON.
func (s *Service) rawCall(ctx context.Context, t Target, op otpc.Op, input []byte) error {
	r := s.raw(ctx, t, op, input, time.Now(), "")
	s.metrics.record(t.Merchant, r.plugin, r.version, op, r.took, r.err)
	return r.err
}

// TestMetrics drives the real runtime with the adversarial plugin:
// successes, plugin errors, traps and timeouts land in the version's
// counters, in the merchant's per-op outcomes and in Prometheus.
func TestMetrics(t *testing.T) {
	wasm := runtimetest.Build(t, "../../testdata/plugins/evil")
	m := runtimetest.Manager(t, runtime.Options{Limits: runtime.Limits{CallTimeout: 200 * time.Millisecond}})
	runtimetest.Load(t, m, "p", wasm, nil)
	s := New(Config{}, m, noKV{})
	ctx := context.Background()
	for _, mode := range []string{"ok", "ok", "ok", "error", "panic", "spin"} {
		err := s.rawCall(ctx, Target{Merchant: "p"}, otpc.OpGenerate, []byte(mode))
		if (err == nil) != (mode == "ok") {
			t.Fatalf("mode %s: %v", mode, err)
		}
	}
	st, ok := s.Stats("p", "v1")
	if !ok {
		t.Fatal("no stats for v1")
	}
	if st.Calls != 6 || st.Errors != 3 || st.Traps != 1 || st.Timeouts != 1 {
		t.Fatalf("stats %+v, want 6 calls, 3 errors, 1 trap, 1 timeout", st)
	}
	if st.P50Ms <= 0 || st.P99Ms < st.P50Ms || st.P99Ms < 150 {
		t.Fatalf("latency p50 %.3f p99 %.3f ms (the timeout took ≥ 200 ms)", st.P50Ms, st.P99Ms)
	}
	if _, ok := s.Stats("p", "v2"); ok {
		t.Fatal("stats for a version that never ran")
	}
	gen := s.Outcomes("p")[otpc.OpGenerate]
	for k, v := range map[string]int64{OutcomeOK: 3, OutcomeError: 1, OutcomeTrap: 1, OutcomeTimeout: 1, OutcomeRefusal: 0} {
		if gen[k] != v {
			t.Errorf("outcome %s = %d, want %d (all %v)", k, gen[k], v, gen)
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(s)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range mt.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			switch mf.GetName() {
			case "otpcgate_plugin_calls_total":
				got[labels["result"]] = mt.GetCounter().GetValue()
			case "otpcgate_plugin_outcomes_total":
				got[labels["merchant"]+"/"+labels["op"]+"/"+labels["outcome"]] = mt.GetCounter().GetValue()
			case "otpcgate_plugin_call_duration_seconds":
				got["histogram"] = float64(mt.GetHistogram().GetSampleCount())
			}
		}
	}
	op := otpc.OpGenerate.String()
	want := map[string]float64{"ok": 3, "error": 1, "trap": 1, "timeout": 1, "limit": 0, "histogram": 6,
		"p/" + op + "/ok": 3, "p/" + op + "/trap": 1, "p/" + op + "/refusal": 0}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("metric %s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
}

func TestQuantile(t *testing.T) {
	xs := make([]float64, 100)
	for i := range xs {
		xs[i] = float64(i + 1)
	}
	for _, tc := range []struct{ q, want float64 }{{0.5, 50}, {0.99, 99}, {1, 100}, {0, 1}} {
		if got := quantile(xs, tc.q); got != tc.want {
			t.Errorf("quantile(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if quantile(nil, 0.5) != 0 {
		t.Error("empty quantile")
	}
}

// BenchmarkPluginCall compares a metered call through the service with the
// same call on the runtime directly (baseline): the metering's cost per
// call.
func BenchmarkPluginCall(b *testing.B) {
	wasm := runtimetest.Build(b, "../../testdata/plugins/evil")
	m := runtimetest.Manager(b, runtime.Options{})
	runtimetest.Load(b, m, "p", wasm, nil)
	s := New(Config{}, m, noKV{})
	env := runtime.CallEnv{Namespace: "p", Now: time.Now()}
	in := []byte("ok")
	ctx := context.Background()
	b.Run("direct", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := m.Call(ctx, "p", otpc.OpGenerate, in, env); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("metered", func(b *testing.B) {
		for b.Loop() {
			if err := s.rawCall(ctx, Target{Merchant: "p"}, otpc.OpGenerate, in); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestOutcomes runs the outcomes test plugin: a validated answer commits
// its KV writes, a refusal with a member a plugin may choose comes back as
// *otpc.Refusal with nothing to commit, and a reserved member, an error, a
// trap or a timeout are failures (never a *otpc.Refusal), the reserved one
// naming its member.
func TestOutcomes(t *testing.T) {
	wasm := runtimetest.Build(t, "../../testdata/plugins/outcomes")
	m := runtimetest.Manager(t, runtime.Options{Limits: runtime.Limits{CallTimeout: 300 * time.Millisecond}})
	runtimetest.Load(t, m, "p", wasm, nil)
	s := New(Config{}, m, noKV{})
	ctx := context.Background()
	for _, tc := range []struct {
		mode    string
		outcome string
		member  string // of a refusal
		errHas  string // of a failure
	}{
		{"success", OutcomeOK, "", ""},
		{"decline", OutcomeOK, "", ""},
		{"refuse", OutcomeRefusal, "invalidFieldValue", ""},
		{"reserved", OutcomeInvalid, "", "idempotencyViolation"},
		{"fail", OutcomeError, "", "merchant backend unavailable"},
		{"trap", OutcomeTrap, "", "trap"},
		{"timeout", OutcomeTimeout, "", "timeout"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			before := s.Outcomes("p")[otpc.OpGenerate][tc.outcome]
			in := &otpc.GenerateInput{Request: otpc.GenerateReferenceNumberRequest{
				RequestHeader: otpc.RequestHeader{RequestID: tc.mode + "-1"}}}
			var out otpc.GenerateOutput
			cs, err := s.Call(ctx, Target{Merchant: "p"}, otpc.OpGenerate, time.Now(), in, &out)
			var ref *otpc.Refusal
			isRef := errors.As(err, &ref)
			switch {
			case tc.outcome == OutcomeOK:
				if err != nil || cs.Empty() {
					t.Fatalf("err %v, changes empty %v", err, cs.Empty())
				}
			case tc.member != "":
				if !isRef || ref.Member() != tc.member || ref.Result.HTTPStatus() != 400 || ref.Description == "" {
					t.Fatalf("want a %s refusal, got %v", tc.member, err)
				}
			default:
				if err == nil || isRef || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("want a failure mentioning %q, got %v (refusal %v)", tc.errHas, err, isRef)
				}
			}
			if err != nil && !cs.Empty() {
				t.Fatal("a refused or failed call returned changes to commit")
			}
			if got := s.Outcomes("p")[otpc.OpGenerate][tc.outcome]; got != before+1 {
				t.Fatalf("outcome %s counted %d → %d", tc.outcome, before, got)
			}
		})
	}
	st, _ := s.Stats("p", "v1")
	if st.Calls != 7 || st.Errors != 4 {
		t.Fatalf("version stats %+v: a refusal is an answer, the other four are errors", st)
	}
}

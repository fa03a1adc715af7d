package plugincall

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpcgate/otpcgate/host/runtime"
	"github.com/otpcgate/otpcgate/internal/testenv"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// TestCanaryRouting: a canary takes about its fraction of transactions,
// chosen by transaction: every op of one transaction (generate by its
// requestId, cancel, refund, store payment and refund result by the code's
// generateRequestId) lands on the same version, every time; inputs outside
// a transaction stay on the active version.
func TestCanaryRouting(t *testing.T) {
	s := New(Config{}, nil, noKV{})
	defer s.Close()
	s.SetCanary("m", "cand", 0.1, CanaryLimits{})
	const n = 10000
	routed := 0
	for i := range n {
		txn := fmt.Sprintf("txn-%d", i)
		code := otpc.CodeInfo{GenerateRequestID: txn}
		ins := []otpc.Message{
			&otpc.GenerateInput{Request: otpc.GenerateReferenceNumberRequest{RequestHeader: otpc.RequestHeader{RequestID: txn}}},
			&otpc.CancelInput{Code: code}, &otpc.RefundInput{Code: code}, &otpc.PaidInput{Code: code}, &otpc.RefundDoneInput{Code: code},
		}
		first := s.canary.route("m", transaction(ins[0]))
		if first != "" {
			routed++
		}
		for _, in := range ins[1:] {
			if got := s.canary.route("m", transaction(in)); got != first {
				t.Fatalf("%s: %T went to %q, its generate to %q", txn, in, got, first)
			}
		}
		if got := s.canary.route("other", txn); got != "" {
			t.Fatalf("another merchant's transaction went to the canary")
		}
	}
	if share := float64(routed) / n; share < 0.08 || share > 0.12 {
		t.Fatalf("%.3f of transactions on the canary, want about 0.10", share)
	}
	// Ids that differ only in their last characters spread as evenly.
	seq := 0
	for i := range 1000 {
		if s.canary.route("m", "trap-"+fmt.Sprint(i)) != "" {
			seq++
		}
	}
	if seq < 60 || seq > 140 {
		t.Fatalf("%d of 1000 sequential ids on the canary, want about 100", seq)
	}
	for _, in := range []otpc.Message{&otpc.AssociateInput{}, &otpc.RemittanceInput{}, &otpc.AuthenticateInput{}} {
		if txn := transaction(in); txn != "" {
			t.Errorf("%T names transaction %q; it belongs to none", in, txn)
		}
	}
	s.SetCanary("m", "", 0, CanaryLimits{})
	if s.canary.route("m", "txn-1") != "" || s.Canary("m").Version != "" {
		t.Fatal("a stopped canary still routes")
	}
}

// TestCanaryRollback: refusals are answers and do not count; failures and
// slow calls up to the limit roll the canary back once, with the reason,
// and every transaction returns to the active version.
func TestCanaryRollback(t *testing.T) {
	tests := []struct {
		name   string
		calls  func(c *canaries)
		reason string
	}{
		{"failures", func(c *canaries) {
			for range 5 {
				c.record("m", "cand", time.Millisecond, otpc.RefusePrecondition("no"))
			}
			for range 3 {
				c.record("m", "cand", time.Millisecond, errors.New("trap"))
			}
		}, "3 failed calls"},
		{"latency", func(c *canaries) {
			for range 3 {
				c.record("m", "cand", time.Second, nil)
			}
		}, "slower than 500ms"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Config{}, nil, noKV{})
			defer s.Close()
			got := make(chan CanaryState, 4)
			s.OnCanaryRollback(func(merchant string, st CanaryState) { got <- st })
			s.SetCanary("m", "cand", 1, CanaryLimits{})
			tc.calls(&s.canary)
			s.canary.record("m", "cand", time.Second, errors.New("after")) // already rolled back: not counted
			select {
			case st := <-got:
				if !st.RolledBack || !strings.Contains(st.Reason, tc.reason) {
					t.Fatalf("rollback %+v, want reason %q", st, tc.reason)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no rollback")
			}
			select {
			case st := <-got:
				t.Fatalf("rolled back twice: %+v", st)
			case <-time.After(50 * time.Millisecond):
			}
			if s.canary.route("m", "any") != "" {
				t.Fatal("a rolled-back canary still routes")
			}
		})
	}
}

// fakeRunner runs nothing; it lets a Service shadow (it is a VersionRunner).
type fakeRunner struct{}

func (fakeRunner) Call(context.Context, string, otpc.Op, []byte, runtime.CallEnv) ([]byte, runtime.ChangeSet, error) {
	return nil, runtime.ChangeSet{}, nil
}
func (fakeRunner) CallVersion(context.Context, string, string, otpc.Op, []byte, runtime.CallEnv) ([]byte, runtime.ChangeSet, error) {
	return nil, runtime.ChangeSet{}, nil
}
func (fakeRunner) Active(string) (runtime.VersionInfo, bool) { return runtime.VersionInfo{}, false }

// TestShadowCanaryMetrics: shadow and canary counters are exported per
// merchant and version.
func TestShadowCanaryMetrics(t *testing.T) {
	s := New(Config{}, fakeRunner{}, noKV{})
	defer s.Close()
	s.SetShadow("m", "cand", 1)
	s.shadow.update("m", "cand", func(r *ShadowReport) {
		r.ByOp["generate"] = ShadowOp{Compared: 5, Different: 2}
		r.Dropped = 1
	})
	s.SetCanary("m", "can", 0.5, CanaryLimits{})
	s.canary.record("m", "can", time.Millisecond, nil)
	s.canary.record("m", "can", time.Millisecond, errors.New("boom"))
	reg := prometheus.NewRegistry()
	reg.MustRegister(s)
	got := testenv.Metrics(t, reg)
	for k, want := range map[string]float64{
		"otpcgate_plugin_shadow_calls_total/m/generate/same/cand":      3,
		"otpcgate_plugin_shadow_calls_total/m/generate/different/cand": 2,
		"otpcgate_plugin_shadow_dropped_total/m/cand":                  1,
		"otpcgate_plugin_canary_calls_total/m/ok/can":                  1,
		"otpcgate_plugin_canary_calls_total/m/failed/can":              1,
		"otpcgate_plugin_canary_rolled_back/m/can":                     0,
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], want, got)
		}
	}
}

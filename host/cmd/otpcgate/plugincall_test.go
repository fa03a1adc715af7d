package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otpcgate/otpcgate/host/runtime/runtimetest"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// TestPluginsCall runs `otpcgate plugins call` on the outcomes plugin in
// the real runtime: a success with its log line and KV change, a refusal
// (an answer, exit 0), a trap with the guest's trace and file:line and a
// timeout (failures, exit non-zero).
func TestPluginsCall(t *testing.T) {
	wasm := filepath.Join(t.TempDir(), "outcomes.wasm")
	if err := os.WriteFile(wasm, runtimetest.Build(t, "../../../testdata/plugins/outcomes"), 0o600); err != nil {
		t.Fatal(err)
	}
	example, err := exampleInput(otpc.OpGenerate, 99, "JPY")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		outcome string
		wantErr bool
		check   func(t *testing.T, r localCall)
	}{
		{"success", false, func(t *testing.T, r localCall) {
			if r.Outcome != "ok" || !strings.Contains(string(r.Output), `"success"`) {
				t.Errorf("output %s", r.Output)
			}
			if len(r.Logs) != 1 || r.Logs[0].Text != "outcome success" || r.Logs[0].Level != "INFO" {
				t.Errorf("logs %+v", r.Logs)
			}
			if len(r.KV) != 1 || r.KV[0].Key != "last" || r.KV[0].Value != "success" {
				t.Errorf("kv %+v", r.KV)
			}
		}},
		{"refuse", false, func(t *testing.T, r localCall) {
			var er otpc.ErrorResponse
			if r.Outcome != "refusal" || json.Unmarshal(r.Refusal, &er) != nil || er.ErrorResponseResult.InvalidFieldValue == nil {
				t.Errorf("refusal %s %s", r.Outcome, r.Refusal)
			}
			if len(r.KV) != 0 {
				t.Errorf("a refusal commits nothing, but KV changes were reported: %+v", r.KV)
			}
		}},
		{"trap", true, func(t *testing.T, r localCall) {
			if r.Outcome != "failure" || r.Kind != "trap" || !strings.HasPrefix(r.Stack, "panic: outcomes: trap requested") ||
				!strings.Contains(r.Stack, "main.go:") {
				t.Errorf("trap %+v", r)
			}
		}},
		{"timeout", true, func(t *testing.T, r localCall) {
			if r.Outcome != "failure" || r.Kind != "timeout" || r.CallMs < 200 {
				t.Errorf("timeout %+v", r)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.outcome, func(t *testing.T) {
			in := strings.Replace(string(example), "local-request-1", tc.outcome+"-1", 1)
			e, out, _ := testEnv(nil)
			root := newRootCmd(e)
			root.SetArgs([]string{"plugins", "call", "generate", "--wasm", wasm, "--input", in, "--json", "--timeout", "200ms"})
			err := root.ExecuteContext(context.Background())
			if tc.wantErr != errors.Is(err, errCallFailed) {
				t.Fatalf("exit error %v, want a failure: %v", err, tc.wantErr)
			}
			var r localCall
			if err := json.Unmarshal(out.Bytes(), &r); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			tc.check(t, r)
		})
	}
	t.Run("bad input", func(t *testing.T) {
		e, _, _ := testEnv(nil)
		root := newRootCmd(e)
		root.SetArgs([]string{"plugins", "call", "generate", "--wasm", wasm, "--input", "{not json"})
		if err := root.ExecuteContext(context.Background()); err == nil || !strings.Contains(err.Error(), "--example") {
			t.Fatalf("bad input: %v, want a hint to --example", err)
		}
		root = newRootCmd(e)
		root.SetArgs([]string{"plugins", "call", "nosuchop", "--wasm", wasm})
		if err := root.ExecuteContext(context.Background()); err == nil || !strings.Contains(err.Error(), "generate") {
			t.Fatalf("unknown op: %v, want the list of ops", err)
		}
	})
}

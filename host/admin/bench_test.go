package admin

import (
	"context"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/host/runtime"
	"github.com/otpcgate/otpcgate/host/runtime/runtimetest"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// BenchmarkPluginCall compares a plugin call through PluginMetrics with
// the same call on the runtime directly (baseline): the instrumentation's
// cost per call.
func BenchmarkPluginCall(b *testing.B) {
	wasm := runtimetest.Build(b, "../../testdata/plugins/evil")
	m := runtimetest.Manager(b, runtime.Options{})
	runtimetest.Load(b, m, "p", wasm, nil)
	pm := NewPluginMetrics(m)
	env := runtime.CallEnv{Namespace: "p", Now: time.Now()}
	in := []byte("ok")
	for _, bc := range []struct {
		name string
		r    Runner
	}{{"direct", m}, {"instrumented", pm}} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			for b.Loop() {
				if _, _, err := bc.r.Call(ctx, "p", otpc.OpGenerate, in, env); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

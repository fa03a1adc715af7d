package gateway

import (
	"context"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/host/admin"
)

// BenchmarkShadowCost measures what a shadow costs the live path: demo-pgp
// gets konbini requests at a steady rate (one every 5 ms) with no shadow,
// then with an identical candidate shadowing every call, then with no
// shadow again, in the same run; "off" is both shadowless phases together,
// so drift over the run (the database growing) does not count as cost. Metrics: p50-ratio and p99-ratio (on ÷ off), the four
// latencies, and shadow-different (must be 0).
//
//	go test -run '^$' -bench ShadowCost -benchtime 1000x ./host/gateway/
func BenchmarkShadowCost(b *testing.B) {
	e := newEnv(b, func(o *Options) { o.Limiter = productionLimiter() })
	defer e.stop()
	ctx := context.Background()
	back := e.g.backend()
	if _, err := back.UploadPlugin(ctx, "demo-pgp", admin.PluginUpload{Version: "same", From: "konbini-test", Config: konbiniConfig}); err != nil {
		b.Fatal(err)
	}
	n := max(b.N, 200)
	const interval = 5 * time.Millisecond
	e.paced(b, e.pgp, e.sealGenerates(b, e.pgp, 50), interval) // warm connections and instances
	off, errs := e.paced(b, e.pgp, e.sealGenerates(b, e.pgp, n/2), interval)
	if errs > 0 {
		b.Fatalf("shadow off: %d errors", errs)
	}
	if _, err := back.StartShadow(ctx, "demo-pgp", "same", 1); err != nil {
		b.Fatal(err)
	}
	e.paced(b, e.pgp, e.sealGenerates(b, e.pgp, 50), interval) // the candidate's instances warm too
	b.ResetTimer()
	on, errs := e.paced(b, e.pgp, e.sealGenerates(b, e.pgp, n), interval)
	b.StopTimer()
	if errs > 0 {
		b.Fatalf("shadow on: %d errors", errs)
	}
	deadline := time.Now().Add(30 * time.Second)
	rep := e.g.Calls.Shadow("demo-pgp")
	for rep.Compared+rep.Dropped < int64(n)+50 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		rep = e.g.Calls.Shadow("demo-pgp")
	}
	if _, err := back.StopShadow(ctx, "demo-pgp"); err != nil {
		b.Fatal(err)
	}
	again, errs := e.paced(b, e.pgp, e.sealGenerates(b, e.pgp, n-n/2), interval)
	if errs > 0 {
		b.Fatalf("shadow off again: %d errors", errs)
	}
	off = append(off, again...)
	b.ReportMetric(float64(percentile(on, 50))/float64(percentile(off, 50)), "p50-ratio")
	b.ReportMetric(float64(percentile(on, 99))/float64(percentile(off, 99)), "p99-ratio")
	b.ReportMetric(ms(percentile(off, 50)), "off-p50-ms")
	b.ReportMetric(ms(percentile(off, 99)), "off-p99-ms")
	b.ReportMetric(ms(percentile(on, 50)), "on-p50-ms")
	b.ReportMetric(ms(percentile(on, 99)), "on-p99-ms")
	b.ReportMetric(float64(rep.Different), "shadow-different")
	b.ReportMetric(float64(rep.Compared), "shadow-compared")
	b.ReportMetric(float64(rep.Dropped), "shadow-dropped")
}

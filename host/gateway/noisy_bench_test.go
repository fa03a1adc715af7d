package gateway

import (
	"context"
	"net/http"
	"os"
	goruntime "runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/host/admin"
	"github.com/otpcgate/otpcgate/host/runtime/runtimetest"
	"github.com/otpcgate/otpcgate/host/server"
	"github.com/otpcgate/otpcgate/host/sim"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// productionLimiter is the admission limiter `otpcgate serve` builds from
// the configuration's defaults (internal/config.Config.LimiterConfig).
func productionLimiter() server.LimiterConfig {
	return server.LimiterConfig{MaxQueue: 64, MaxWait: time.Second,
		MaxInFlightPerKey: max(1, goruntime.GOMAXPROCS(0)-1), MaxQueuePerKey: 32}
}

// paced posts the bodies to tg one after another, one every interval, and
// returns each request's latency and how many were not answered 200.
func (e *env) paced(tb testing.TB, tg *sim.Target, bodies [][]byte, interval time.Duration) ([]time.Duration, int) {
	tb.Helper()
	url := tg.BaseURL + otpc.PathPrefix + otpc.MethodGenerateReferenceNumber
	lat := make([]time.Duration, 0, len(bodies))
	errs := 0
	next := time.Now()
	for _, body := range bodies {
		time.Sleep(time.Until(next)) // a steady rate, not a closed loop
		next = next.Add(interval)
		t0 := time.Now()
		status, err := e.post(url, tg, body)
		lat = append(lat, time.Since(t0))
		if err != nil || status != http.StatusOK {
			errs++
		}
	}
	return lat, errs
}

// flood posts requests to tg from c connections until stop is closed and
// counts them by status.
func (e *env) flood(tg *sim.Target, bodies [][]byte, c int, stop <-chan struct{}) (wait func() map[int]int) {
	url := tg.BaseURL + otpc.PathPrefix + otpc.MethodGenerateReferenceNumber
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	var n atomic.Int64
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				status, _ := e.post(url, tg, bodies[int(n.Add(1))%len(bodies)])
				mu.Lock()
				statuses[status]++
				mu.Unlock()
			}
		}()
	}
	return func() map[int]int { wg.Wait(); return statuses }
}

// BenchmarkNoisyNeighbour runs the real gateway with production admission
// defaults. Merchant A (demo-jose) runs an adversarial plugin at full
// concurrency while merchant B (demo-pgp, konbini) sends requests at a
// steady rate; B's latency is compared with B alone, measured in the same
// sub-benchmark. Metrics: p99-ratio (B's p99 with A noisy ÷ B's p99 alone),
// b-errors (B's requests not answered 200 while A was noisy), db-growth-MB
// (the database file while A was noisy), and B's p50/p99 in both phases.
//
//	go test -run '^$' -bench NoisyNeighbour ./host/gateway/
func BenchmarkNoisyNeighbour(b *testing.B) {
	noisy := runtimetest.Build(b, "../../testdata/plugins/noisy")
	for _, mode := range []string{"spin", "memory", "kvflood", "logflood"} {
		b.Run(mode, func(b *testing.B) {
			e := newEnv(b, func(o *Options) { o.Limiter = productionLimiter() })
			defer e.stop()
			ctx := context.Background()
			if _, err := e.g.backend().UploadPlugin(ctx, "demo-jose", admin.PluginUpload{
				Version: "noisy-" + mode, Wasm: noisy, Config: []byte(`{"mode":"` + mode + `"}`), Activate: true,
			}); err != nil {
				b.Fatal(err)
			}
			n := max(b.N, 100)
			const interval = 10 * time.Millisecond
			bodies := e.sealGenerates(b, e.pgp, 2*n)
			aBodies := e.sealGenerates(b, e.jose, 64)
			e.paced(b, e.pgp, e.sealGenerates(b, e.pgp, 20), interval) // warm connections and instances

			alone, aloneErrs := e.paced(b, e.pgp, bodies[:n], interval)
			if aloneErrs > 0 {
				b.Fatalf("B alone: %d errors", aloneErrs)
			}
			dbBefore := fileSize(b, e.g)
			stop := make(chan struct{})
			wait := e.flood(e.jose, aBodies, 4*goruntime.GOMAXPROCS(0), stop)
			time.Sleep(200 * time.Millisecond) // A's flood is in full swing before B's phase starts
			b.ResetTimer()
			withA, errs := e.paced(b, e.pgp, bodies[n:], interval)
			b.StopTimer()
			close(stop)
			aStatuses := wait()
			growth := float64(fileSize(b, e.g)-dbBefore) / (1 << 20)

			b.ReportMetric(float64(percentile(withA, 99))/float64(percentile(alone, 99)), "p99-ratio")
			b.ReportMetric(float64(errs), "b-errors")
			b.ReportMetric(ms(percentile(alone, 50)), "b-alone-p50-ms")
			b.ReportMetric(ms(percentile(alone, 99)), "b-alone-p99-ms")
			b.ReportMetric(ms(percentile(withA, 50)), "b-noisy-p50-ms")
			b.ReportMetric(ms(percentile(withA, 99)), "b-noisy-p99-ms")
			b.ReportMetric(growth, "db-growth-MB")
			b.Logf("A's answers by status: %v", aStatuses)
		})
	}
}

// fileSize is the size of the gateway's database with its WAL.
func fileSize(tb testing.TB, g *Gateway) int64 {
	tb.Helper()
	var path string
	if err := g.DB.QueryRow(`SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&path); err != nil {
		tb.Fatal(err)
	}
	var n int64
	for _, p := range []string{path, path + "-wal"} {
		if st, err := os.Stat(p); err == nil {
			n += st.Size()
		}
	}
	return n
}

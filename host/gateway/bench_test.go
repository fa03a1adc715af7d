package gateway

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime/metrics"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/host/sim"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// BenchmarkPipeline measures the whole gateway (TLS keep-alive, PGP
// RSA-2048 envelope, idempotency + ledger commit with fsync, konbini plugin)
// against the envelope-only floor in the same run: the same number of
// requests opened and sealed in process by as many goroutines, with no
// TLS, HTTP, ledger or plugin. Requests are sealed before the clock starts
// and answers are not opened, so the load generator costs almost no CPU.
//
//	go test -run '^$' -bench Pipeline -benchtime 2000x ./host/gateway/
//
// Metrics: req/s and floor-req/s, ratio = req/s ÷ floor-req/s, and the
// pipeline's p50 and p99 latency in milliseconds. The ratio splits in two
// factors, both reported: the process CPU each request costs (cpu-ms and
// floor-cpu-ms, the load generator's share included) and the cores each
// phase keeps busy (cores and floor-cores), so that
// ratio = (floor-cpu-ms ÷ cpu-ms) × (cores ÷ floor-cores); sys-ms is the
// kernel's part of cpu-ms (loopback TCP, WAL writes, fsync). batch,
// commit-us and writer-busy describe the ledger's writer, idle-% and gc-%
// are the Go runtime's own estimates (docs/operations.md reads them).
func BenchmarkPipeline(b *testing.B) {
	for _, c := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("c=%d", c), func(b *testing.B) {
			e := newEnv(b)
			tg := e.pgp
			bodies := e.sealGenerates(b, tg, b.N)
			// Alternate floor and pipeline in rounds so that a change in
			// the machine's load hits both alike.
			const rounds = 4
			var floorTime, pipeTime, floorCPU, pipeCPU, pipeSys time.Duration
			var rt cpuClasses
			var lat []time.Duration
			st0 := e.g.Ledger.Stats()
			b.ResetTimer()
			for r := range rounds {
				chunk := bodies[r*len(bodies)/rounds : (r+1)*len(bodies)/rounds]
				if len(chunk) == 0 {
					continue
				}
				b.StopTimer()
				u0, s0 := processCPU()
				floorTime += e.envelopeFloor(b, tg, chunk, c)
				u1, s1 := processCPU()
				rt1 := readCPUClasses()
				b.StartTimer()
				d, l := e.drive(b, tg, chunk, c)
				b.StopTimer()
				u2, s2 := processCPU()
				rt.add(readCPUClasses().minus(rt1))
				b.StartTimer()
				floorCPU += u1 + s1 - u0 - s0
				pipeCPU += u2 + s2 - u1 - s1
				pipeSys += s2 - s1
				pipeTime += d
				lat = append(lat, l...)
			}
			b.StopTimer()
			rate := float64(len(bodies)) / pipeTime.Seconds()
			floor := float64(len(bodies)) / floorTime.Seconds()
			b.ReportMetric(rate, "req/s")
			b.ReportMetric(floor, "floor-req/s")
			b.ReportMetric(rate/floor, "ratio")
			b.ReportMetric(ms(percentile(lat, 50)), "p50-ms")
			b.ReportMetric(ms(percentile(lat, 99)), "p99-ms")
			// The ledger's writer: closures per transaction (the mean
			// group-commit batch), wall time per transaction from BEGIN to
			// the end of COMMIT's fsync, and the share of the pipeline's
			// time the writer was busy.
			st := e.g.Ledger.Stats()
			txs := float64(max(1, st.Transactions-st0.Transactions))
			b.ReportMetric(float64(st.Closures-st0.Closures)/txs, "batch")
			b.ReportMetric(float64((st.Busy-st0.Busy).Microseconds())/txs, "commit-us")
			b.ReportMetric((st.Busy-st0.Busy).Seconds()/pipeTime.Seconds(), "writer-busy")
			n := float64(len(bodies))
			b.ReportMetric(ms(pipeCPU)/n, "cpu-ms")
			b.ReportMetric(ms(floorCPU)/n, "floor-cpu-ms")
			b.ReportMetric(ms(pipeSys)/n, "sys-ms")
			b.ReportMetric(pipeCPU.Seconds()/pipeTime.Seconds(), "cores")
			b.ReportMetric(floorCPU.Seconds()/floorTime.Seconds(), "floor-cores")
			// The Go runtime's own estimate for the pipeline phases: the
			// share of its Ps' time that was idle, and that spent on GC.
			b.ReportMetric(100*rt.idle/rt.total, "idle-%")
			b.ReportMetric(100*rt.gc/rt.total, "gc-%")
		})
	}
}

// processCPU is the user and the system (kernel) CPU time of the whole
// process so far: all goroutines, the GC and the load generator included.
func processCPU() (user, sys time.Duration) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}

// cpuClasses are the Go runtime's CPU-time estimates in seconds
// (runtime/metrics /cpu/classes/...): all of GOMAXPROCS's time, the idle
// part and the GC part.
type cpuClasses struct{ total, idle, gc float64 }

func readCPUClasses() cpuClasses {
	s := []metrics.Sample{{Name: "/cpu/classes/total:cpu-seconds"}, {Name: "/cpu/classes/idle:cpu-seconds"},
		{Name: "/cpu/classes/gc/total:cpu-seconds"}}
	metrics.Read(s)
	return cpuClasses{s[0].Value.Float64(), s[1].Value.Float64(), s[2].Value.Float64()}
}

func (c cpuClasses) minus(o cpuClasses) cpuClasses {
	return cpuClasses{c.total - o.total, c.idle - o.idle, c.gc - o.gc}
}

func (c *cpuClasses) add(o cpuClasses) {
	c.total, c.idle, c.gc = c.total+o.total, c.idle+o.idle, c.gc+o.gc
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func percentile(lat []time.Duration, p int) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}

// sealGenerates seals n distinct generateReferenceNumber requests.
func (e *env) sealGenerates(tb testing.TB, tg *sim.Target, n int) [][]byte {
	tb.Helper()
	ctx := context.Background()
	ks, err := tg.Keyset(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	m := e.merchant(tg)
	out := make([][]byte, n)
	for i := range out {
		req := &otpc.GenerateReferenceNumberRequest{
			RequestHeader:          e.client.Header(tg),
			GooglePaymentToken:     otpc.GooglePaymentToken{IssuerID: otpc.IssuerID{Value: m.DemoIssuer}, Token: m.DemoToken},
			TransactionDescription: "Google - Benchmark purchase of a 1 KiB-ish request body with a description",
			Amount:                 otpc.Amount{AmountMicros: int64(1000+i) * 1_000000, CurrencyCode: "JPY"},
		}
		if out[i], err = tg.Codec.Seal(ctx, ks, req.AppendJSON(nil)); err != nil {
			tb.Fatal(err)
		}
	}
	return out
}

// envelopeFloor opens every body and seals a typical response with the
// gateway's keyset from c goroutines, and returns the time it took.
func (e *env) envelopeFloor(tb testing.TB, tg *sim.Target, bodies [][]byte, c int) time.Duration {
	tb.Helper()
	ctx := context.Background()
	m := e.merchant(tg)
	ks, err := e.g.Keys.Keyset(ctx, m.KeysetID)
	if err != nil {
		tb.Fatal(err)
	}
	s := "81000123456789"
	resp := (&otpc.GenerateReferenceNumberResponse{
		ResponseHeader: otpc.ResponseHeader{ResponseTimestamp: otpc.TimestampOf(time.Now())},
		Result: otpc.GenerateReferenceNumberResult{Success: &otpc.GenerateReferenceNumberSuccess{
			DisplayableReferenceNumber: otpc.DisplayableReferenceNumber{PrintableString: &s}}},
	}).AppendJSON(nil)
	var next atomic.Int64
	var failed atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(bodies) {
					return
				}
				if _, err := tg.Codec.Open(ctx, ks, bodies[i]); err != nil {
					failed.Add(1)
				}
				if _, err := tg.Codec.Seal(ctx, ks, resp); err != nil {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		tb.Fatalf("%d envelope operations failed", failed.Load())
	}
	return time.Since(start)
}

// post sends one sealed body to url and returns the HTTP status, reading
// and discarding the answer so the connection is reused.
func (e *env) post(url string, tg *sim.Target, body []byte) (int, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", tg.Codec.ContentType())
	res, err := e.client.HTTP.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	_, err = io.Copy(io.Discard, res.Body)
	return res.StatusCode, err
}

// drive posts the bodies from c keep-alive connections and returns the time
// it took and each request's latency. Every answer must be a 200.
func (e *env) drive(tb testing.TB, tg *sim.Target, bodies [][]byte, c int) (time.Duration, []time.Duration) {
	tb.Helper()
	return e.driveOn(tb, []string{tg.BaseURL}, tg, bodies, c)
}

// driveOn is drive with request i sent to bases[i % len(bases)]: the
// same merchant on several hosts, as a load balancer spreads it.
func (e *env) driveOn(tb testing.TB, bases []string, tg *sim.Target, bodies [][]byte, c int) (time.Duration, []time.Duration) {
	tb.Helper()
	urls := make([]string, len(bases))
	for i, b := range bases {
		urls[i] = b + otpc.PathPrefix + otpc.MethodGenerateReferenceNumber
	}
	lat := make([]time.Duration, len(bodies))
	var next atomic.Int64
	var failed atomic.Int64
	var firstErr atomic.Value
	start := time.Now()
	var wg sync.WaitGroup
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(bodies) {
					return
				}
				t0 := time.Now()
				status, err := e.post(urls[i%len(urls)], tg, bodies[i])
				if err == nil && status != http.StatusOK {
					err = fmt.Errorf("status %d", status)
				}
				lat[i] = time.Since(t0)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if n := failed.Load(); n > 0 {
		tb.Fatalf("%d of %d requests failed, first: %v", n, len(bodies), firstErr.Load())
	}
	return elapsed, lat
}

// TestLoadShort is the pipeline under a short concurrent load as a test:
// every request answers 200 and the answers open and check as Google
// would (the benchmark skips that to keep the load generator cheap).
func TestLoadShort(t *testing.T) {
	e := newEnv(t)
	bodies := e.sealGenerates(t, e.jose, 64)
	_, lat := e.drive(t, e.jose, bodies, 8)
	if len(lat) != 64 {
		t.Fatalf("%d latencies", len(lat))
	}
	var n int
	if err := e.g.DB.QueryRow(`SELECT COUNT(*) FROM codes WHERE piaid = ?`, e.jose.PIAID).Scan(&n); err != nil || n != 64 {
		t.Fatalf("%d codes committed (%v), want 64", n, err)
	}
}

package server

import (
	"cmp"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkAdmissionTail runs a CPU-bound handler (one RSA-2048 PKCS#1
// v1.5 signature, the dominant cost of a request) from 8 concurrent
// closed-loop callers, alternating rounds without and with a Limiter of
// GOMAXPROCS slots, and reports p50/p99 latency of both and their ratios.
// Latency includes the time spent queued in the limiter.
func BenchmarkAdmissionTail(b *testing.B) {
	const workers, round = 8, 64
	key := rsaTestKey()
	digest := sha256.Sum256([]byte("otpcgate"))
	work := func() {
		if _, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:]); err != nil {
			b.Error(err)
		}
	}
	lim := NewLimiter(LimiterConfig{MaxQueue: workers})
	var free, limited []time.Duration
	run := func(ops int, l *Limiter) []time.Duration {
		lat := make([][]time.Duration, workers)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < ops; i += workers {
					start := time.Now()
					if l != nil {
						rel, err := l.Acquire(context.Background())
						if err != nil {
							b.Error(err)
							return
						}
						work()
						rel()
					} else {
						work()
					}
					lat[w] = append(lat[w], time.Since(start))
				}
			}()
		}
		wg.Wait()
		return slices.Concat(lat...)
	}
	var freeT, limT time.Duration
	b.ResetTimer()
	for done := 0; done < b.N; done += 2 * round {
		t0 := time.Now()
		free = append(free, run(round, nil)...)
		t1 := time.Now()
		limited = append(limited, run(round, lim)...)
		freeT, limT = freeT+t1.Sub(t0), limT+time.Since(t1)
	}
	b.StopTimer()
	b.ReportMetric(float64(len(limited))/limT.Seconds()/(float64(len(free))/freeT.Seconds()), "lim/free-throughput")
	fp50, fp99 := percentiles(free)
	lp50, lp99 := percentiles(limited)
	b.ReportMetric(ms(fp50), "free-p50-ms")
	b.ReportMetric(ms(fp99), "free-p99-ms")
	b.ReportMetric(ms(lp50), "lim-p50-ms")
	b.ReportMetric(ms(lp99), "lim-p99-ms")
	b.ReportMetric(float64(fp99)/float64(fp50), "free-p99/p50")
	b.ReportMetric(float64(lp99)/float64(lp50), "lim-p99/p50")
	b.ReportMetric(float64(lp99)/float64(fp99), "lim/free-p99")
}

func percentiles(d []time.Duration) (p50, p99 time.Duration) {
	if len(d) == 0 {
		return 0, 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)*50/100], s[min(len(s)-1, len(s)*99/100)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkServerTail is BenchmarkAdmissionTail through the real HTTPS
// server: 8 keep-alive clients POST to a gateway that signs with RSA-2048,
// alternating rounds against a server without and one with
// Options.Limiter (GOMAXPROCS slots). The clients run in a child process
// (this test binary, see TestMain), so they compete for the two cores as a
// separate load generator would, not inside the server's Go scheduler.
func BenchmarkServerTail(b *testing.B) {
	const workers, round = 8, 64
	key := rsaTestKey()
	digest := sha256.Sum256([]byte("otpcgate"))
	gw := GatewayFunc(func(ctx context.Context, r *Request) *Response {
		sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
		if err != nil {
			return &Response{Status: 500}
		}
		return &Response{Body: sig}
	})
	dir := b.TempDir()
	cf, kf := writeECDSACert(b, dir, "bench.test")
	start := func(lim *Limiter) string {
		s, err := New(Config{CertFile: cf, KeyFile: kf, Routes: []Route{{BasePath: "", MerchantID: "m"}}}, gw, Options{Limiter: lim})
		if err != nil {
			b.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Serve(ctx, ln) }()
		b.Cleanup(func() { cancel(); <-done })
		return "https://" + ln.Addr().String() + "/" + APIPathSegment + "/echo"
	}
	freeURL := start(nil)
	limURL := start(NewLimiter(LimiterConfig{MaxQueue: workers}))
	rounds := (b.N + 2*round - 1) / (2 * round)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		benchClientEnv+"=1",
		"BENCH_CA="+cf, "BENCH_URLS="+freeURL+","+limURL,
		"BENCH_WORKERS="+strconv.Itoa(workers), "BENCH_ROUND="+strconv.Itoa(round), "BENCH_ROUNDS="+strconv.Itoa(rounds))
	cmd.Stderr = os.Stderr
	b.ResetTimer()
	out, err := cmd.Output()
	b.StopTimer()
	if err != nil {
		b.Fatalf("client process: %v", err)
	}
	var res benchClientResult
	if err := json.Unmarshal(out, &res); err != nil {
		b.Fatalf("client output: %v", err)
	}
	free, limited := res.Latencies[0], res.Latencies[1]
	fp50, fp99 := percentiles(free)
	lp50, lp99 := percentiles(limited)
	b.ReportMetric(ms(fp50), "free-p50-ms")
	b.ReportMetric(ms(fp99), "free-p99-ms")
	b.ReportMetric(ms(lp50), "lim-p50-ms")
	b.ReportMetric(ms(lp99), "lim-p99-ms")
	b.ReportMetric(float64(fp99)/float64(fp50), "free-p99/p50")
	b.ReportMetric(float64(lp99)/float64(lp50), "lim-p99/p50")
	b.ReportMetric(float64(lp99)/float64(fp99), "lim/free-p99")
	b.ReportMetric(float64(len(limited))/res.Elapsed[1].Seconds()/(float64(len(free))/res.Elapsed[0].Seconds()), "lim/free-throughput")
}

// benchClientEnv makes the test binary act as BenchmarkServerTail's client.
const benchClientEnv = "OTPCGATE_SERVER_BENCH_CLIENT"

// benchClientResult is the client process's report: per target, the
// request latencies and the total time of its rounds.
type benchClientResult struct {
	Latencies [][]time.Duration
	Elapsed   []time.Duration
}

func TestMain(m *testing.M) {
	if os.Getenv(benchClientEnv) != "" {
		if err := benchClient(); err != nil {
			fmt.Fprintln(os.Stderr, "bench client:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// benchClient runs closed-loop keep-alive clients against BENCH_URLS,
// alternating rounds between the targets, and prints a benchClientResult.
func benchClient() error {
	pemBytes, err := os.ReadFile(os.Getenv("BENCH_CA"))
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)
	urls := strings.Split(os.Getenv("BENCH_URLS"), ",")
	workers, _ := strconv.Atoi(os.Getenv("BENCH_WORKERS"))
	round, _ := strconv.Atoi(os.Getenv("BENCH_ROUND"))
	rounds, _ := strconv.Atoi(os.Getenv("BENCH_ROUNDS"))
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}, MaxIdleConnsPerHost: workers}
	c := &http.Client{Transport: tr}
	var mu sync.Mutex
	var firstErr error
	run := func(ops int, url string) []time.Duration {
		lat := make([][]time.Duration, workers)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < ops; i += workers {
					t0 := time.Now()
					resp, err := c.Post(url, MediaTypeJOSE, strings.NewReader("x"))
					if err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != 200 {
							err = fmt.Errorf("status %d", resp.StatusCode)
						}
					}
					if err != nil {
						mu.Lock()
						firstErr = cmp.Or(firstErr, err)
						mu.Unlock()
						return
					}
					lat[w] = append(lat[w], time.Since(t0))
				}
			}()
		}
		wg.Wait()
		return slices.Concat(lat...)
	}
	res := benchClientResult{Latencies: make([][]time.Duration, len(urls)), Elapsed: make([]time.Duration, len(urls))}
	for _, u := range urls {
		run(2*workers, u) // open the keep-alive connections
	}
	for range rounds {
		for i, u := range urls {
			t0 := time.Now()
			res.Latencies[i] = append(res.Latencies[i], run(round, u)...)
			res.Elapsed[i] += time.Since(t0)
		}
	}
	if firstErr != nil {
		return firstErr
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

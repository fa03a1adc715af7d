package server

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
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
// Options.Limiter (GOMAXPROCS slots). Clients share the two cores, as the
// measured prototype's load generator did.
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
	start := func(lim *Limiter) (url string, c *http.Client, stop func()) {
		dir := b.TempDir()
		cf, kf := writeECDSACert(b, dir, "bench.test")
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
		pool := x509.NewCertPool()
		pemBytes, _ := os.ReadFile(cf)
		pool.AppendCertsFromPEM(pemBytes)
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}, MaxIdleConnsPerHost: workers}
		return "https://" + ln.Addr().String() + "/" + APIPathSegment + "/echo", &http.Client{Transport: tr}, func() {
			tr.CloseIdleConnections()
			cancel()
			<-done
		}
	}
	freeURL, freeC, stopFree := start(nil)
	defer stopFree()
	limURL, limC, stopLim := start(NewLimiter(LimiterConfig{MaxQueue: workers}))
	defer stopLim()
	run := func(ops int, url string, c *http.Client) []time.Duration {
		lat := make([][]time.Duration, workers)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < ops; i += workers {
					t0 := time.Now()
					resp, err := c.Post(url, MediaTypeJOSE, strings.NewReader("x"))
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
					lat[w] = append(lat[w], time.Since(t0))
				}
			}()
		}
		wg.Wait()
		return slices.Concat(lat...)
	}
	run(workers*2, freeURL, freeC) // open the keep-alive connections
	run(workers*2, limURL, limC)
	var free, limited []time.Duration
	var freeT, limT time.Duration
	b.ResetTimer()
	for done := 0; done < b.N; done += 2 * round {
		t0 := time.Now()
		free = append(free, run(round, freeURL, freeC)...)
		t1 := time.Now()
		limited = append(limited, run(round, limURL, limC)...)
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

package server

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"slices"
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
	b.ResetTimer()
	for done := 0; done < b.N; done += 2 * round {
		free = append(free, run(round, nil)...)
		limited = append(limited, run(round, lim)...)
	}
	b.StopTimer()
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

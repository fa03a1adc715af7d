package gateway

import (
	"testing"
	"time"
)

// BenchmarkStorageEngines runs the same load (generateReferenceNumber over
// the PGP envelope, konbini plugin, c=8 keep-alive connections, requests
// sealed beforehand) against one host on SQLite, one host on PostgreSQL
// and two hosts on one PostgreSQL database with the requests spread over
// both, in one run:
//
//	go test -run '^$' -bench StorageEngines -benchtime 2000x ./host/gateway/
//
// Metrics: req/s, p50 and p99 latency, and db-ms/req: the ledger writers'
// busy time (BEGIN to acknowledged COMMIT, summed over the hosts) per
// committed request — the part of a request the single write lock
// serialises. On PostgreSQL the throwaway test cluster runs with fsync
// off (internal/pgtest), so its commit cost is the protocol and the lock,
// not the disk; SQLite fsyncs every commit.
func BenchmarkStorageEngines(b *testing.B) {
	for _, tc := range []struct {
		name  string
		pg    bool
		hosts int
	}{{"sqlite-1host", false, 1}, {"postgres-1host", true, 1}, {"postgres-2hosts", true, 2}} {
		b.Run(tc.name, func(b *testing.B) {
			e := newEnvOn(b, tc.pg)
			hosts := []*env{e}
			if tc.hosts == 2 {
				hosts = append(hosts, e.newPeer(b))
			}
			bases := make([]string, len(hosts))
			for i, h := range hosts {
				bases[i] = h.pgp.BaseURL
			}
			bodies := e.sealGenerates(b, e.pgp, b.N)
			busy := func() (time.Duration, int64) {
				var d time.Duration
				var n int64
				for _, h := range hosts {
					st := h.g.Ledger.Stats()
					d += st.Busy
					n += st.Closures
				}
				return d, n
			}
			busy0, n0 := busy()
			b.ResetTimer()
			elapsed, lat := e.driveOn(b, bases, e.pgp, bodies, 8)
			b.StopTimer()
			busy1, n1 := busy()
			b.ReportMetric(float64(len(bodies))/elapsed.Seconds(), "req/s")
			b.ReportMetric(ms(percentile(lat, 50)), "p50-ms")
			b.ReportMetric(ms(percentile(lat, 99)), "p99-ms")
			if n := n1 - n0; n > 0 {
				b.ReportMetric(ms(busy1-busy0)/float64(n), "db-ms/req")
			}
		})
	}
}

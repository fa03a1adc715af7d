package ledger

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// BenchmarkFsync measures the floor every durable commit pays on this disk:
// one 4 KiB write plus fsync (what a WAL commit with synchronous=FULL does
// at least once).
func BenchmarkFsync(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "fsync"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	page := make([]byte, 4096)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := f.WriteAt(page, int64(i%256)*4096); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "fsyncs/s")
}

// commitWork is the write of a typical generateReferenceNumber: the
// idempotency record, the code and one plugin KV change.
func commitWork(l *Ledger, id string) func(tx *Tx) error {
	return func(tx *Tx) error {
		if err := tx.PutRecord(Record{PIAID: testPIAID, RequestID: id, Method: "generateReferenceNumber",
			Hash: hashOf(id), Status: StatusOK, Body: []byte(`{"result":{"success":{"displayableReferenceNumber":{"printableString":"` + id + `"}}}}`)}); err != nil {
			return err
		}
		c := newCode(id)
		if err := tx.CreateCode(c); err != nil {
			return err
		}
		return tx.ApplyKV(testMerchant, []KVChange{{Key: "last", Value: []byte(id)}})
	}
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runCommits performs n commits from conc goroutines and returns the wall
// time and the process CPU time they took.
func runCommits(b *testing.B, l *Ledger, seq *atomic.Int64, n, conc int) (elapsed, cpu time.Duration) {
	ctx := context.Background()
	conc = min(conc, n)
	cpu0 := cpuTime()
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for g := 0; g < conc; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				id := fmt.Sprintf("b%d", seq.Add(1))
				if err := l.Apply(ctx, commitWork(l, id)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(start), cpuTime() - cpu0
}

// BenchmarkGroupCommit compares one transaction (one fsync) per commit with
// group commit, in the same run, at several concurrencies. Each op is one
// commit in each mode. The disk is shared, so the modes alternate in short
// rounds to expose them to the same load. Metrics: commits/s of the single
// baseline, of group commit and of group commit with a 100 µs window, the
// speedups over the baseline, mean closures per transaction and process CPU
// per commit.
func BenchmarkGroupCommit(b *testing.B) {
	type mode struct {
		name  string
		opts  Options
		l     *Ledger
		seq   atomic.Int64
		el    time.Duration
		cpu   time.Duration
		tx, n int64
	}
	for _, conc := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("c=%d", conc), func(b *testing.B) {
			modes := []*mode{
				{name: "single", opts: Options{MaxBatch: 1}},
				{name: "group", opts: Options{}},
				{name: "window", opts: Options{GroupWindow: 100 * time.Microsecond}},
			}
			for _, m := range modes {
				m.l, _ = openTest(b, m.opts)
				// Warm up: statements prepared, pages cached.
				runCommits(b, m.l, &m.seq, 50, conc)
			}
			b.ResetTimer()
			// Short alternating rounds so load bursts on the shared disk hit
			// all modes alike.
			const round = 64
			for done := 0; done < b.N; done += round {
				n := min(round, b.N-done)
				for _, m := range modes {
					before := m.l.Stats()
					el, cpu := runCommits(b, m.l, &m.seq, n, conc)
					after := m.l.Stats()
					m.el, m.cpu = m.el+el, m.cpu+cpu
					m.tx += after.Transactions - before.Transactions
					m.n += after.Closures - before.Closures
				}
			}
			n := float64(b.N)
			base := modes[0].el.Seconds()
			for _, m := range modes {
				b.ReportMetric(n/m.el.Seconds(), m.name+"-commits/s")
				b.ReportMetric(float64(m.cpu.Microseconds())/n, m.name+"-cpu-us/commit")
				if m != modes[0] {
					b.ReportMetric(base/m.el.Seconds(), m.name+"-speedup")
					b.ReportMetric(float64(m.n)/float64(m.tx), m.name+"-closures/tx")
				}
			}
		})
	}
}

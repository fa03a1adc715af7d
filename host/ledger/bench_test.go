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
// commit in each mode. The disk is shared, so the modes alternate in rounds
// to expose both to the same load; see the single/group commits/s metrics,
// speedup, mean closures per transaction and process CPU per commit.
func BenchmarkGroupCommit(b *testing.B) {
	for _, conc := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("c=%d", conc), func(b *testing.B) {
			single, _ := openTest(b, Options{MaxBatch: 1})
			group, _ := openTest(b, Options{})
			var seqS, seqG atomic.Int64
			// Warm up both: statements prepared, pages cached.
			runCommits(b, single, &seqS, 50, conc)
			runCommits(b, group, &seqG, 50, conc)
			b.ResetTimer()
			var sEl, gEl, sCPU, gCPU time.Duration
			var gClosures, gTx int64
			// Short alternating rounds so load bursts on the shared disk hit
			// both modes alike.
			const round = 64
			for done := 0; done < b.N; done += round {
				n := min(round, b.N-done)
				el, cpu := runCommits(b, single, &seqS, n, conc)
				sEl, sCPU = sEl+el, sCPU+cpu
				before := group.Stats()
				el, cpu = runCommits(b, group, &seqG, n, conc)
				gEl, gCPU = gEl+el, gCPU+cpu
				after := group.Stats()
				gClosures += after.Closures - before.Closures
				gTx += after.Transactions - before.Transactions
			}
			n := float64(b.N)
			b.ReportMetric(n/sEl.Seconds(), "single-commits/s")
			b.ReportMetric(n/gEl.Seconds(), "group-commits/s")
			b.ReportMetric(sEl.Seconds()/gEl.Seconds(), "speedup")
			b.ReportMetric(float64(gClosures)/float64(gTx), "closures/tx")
			b.ReportMetric(float64(sCPU.Microseconds())/n, "single-cpu-us/commit")
			b.ReportMetric(float64(gCPU.Microseconds())/n, "group-cpu-us/commit")
		})
	}
}

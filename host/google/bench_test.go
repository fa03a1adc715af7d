package google_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/host/google"
	"github.com/otpcgate/otpcgate/host/ledger"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// parallel runs fn(i) for i in [0, n) on conc goroutines and returns the
// elapsed time.
func parallel(n, conc int, fn func(i int) error) (time.Duration, error) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	next := make(chan int)
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return time.Since(start), first
}

// BenchmarkDelivery measures, in one run and at the same concurrency (4),
// per notification:
//   - floor: the envelope crypto of one exchange alone (we seal, Google
//     opens and seals, we open), no HTTP, no ledger;
//   - direct: Client.Deliver over TLS loopback to the simulated Google
//     (both sides' crypto in this process);
//   - outbox (ns/op): the Worker draining b.N enqueued items, i.e. direct
//     plus claim and MarkDelivered commits in SQLite (WAL, synchronous=FULL).
//
// It reports floor/direct and direct/outbox: how much of the time HTTP+TLS
// adds over the crypto, and the ledger over the direct call.
func BenchmarkDelivery(b *testing.B) {
	const conc = 4
	ins := integrations(b)
	for _, in := range ins {
		b.Run(string(in.format), func(b *testing.B) {
			ctx := context.Background()
			gs := startGoogle(b, ins...)
			c := newClient(b, gs.srv, nil)
			rt := in.route(gs.endpoint)
			b.StopTimer()

			ours, err := fixtures.store.Keyset(ctx, in.merchant)
			if err != nil {
				b.Fatal(err)
			}
			theirs, err := fixtures.store.Keyset(ctx, in.google)
			if err != nil {
				b.Fatal(err)
			}
			floor, err := parallel(b.N, conc, func(i int) error {
				n := paid(in, fmt.Sprint("floor-", i), "txn")
				body, err := in.codec.Seal(ctx, ours, n.Request.AppendJSON(nil))
				if err != nil {
					return err
				}
				opened, err := in.codec.Open(ctx, theirs, body)
				if err != nil {
					return err
				}
				resp, err := in.codec.Seal(ctx, theirs, opened.Plaintext)
				if err != nil {
					return err
				}
				_, err = in.codec.Open(ctx, ours, resp)
				return err
			})
			if err != nil {
				b.Fatal(err)
			}

			direct, err := parallel(b.N, conc, func(i int) error {
				it, err := google.OutboxItem(paid(in, fmt.Sprint("direct-", i), "txn"))
				if err != nil {
					return err
				}
				_, err = c.Deliver(ctx, rt, it.Method, it.RequestID, it.Payload)
				return err
			})
			if err != nil {
				b.Fatal(err)
			}

			l := openLedger(b, filepath.Join(b.TempDir(), "ledger.db"), 0)
			if err := l.Apply(ctx, func(tx *ledger.Tx) error {
				for i := range b.N {
					it, err := google.OutboxItem(paid(in, fmt.Sprint("outbox-", i), fmt.Sprint("txn-", i)))
					if err != nil {
						return err
					}
					if _, err := tx.Enqueue(it); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				b.Fatal(err)
			}
			waitCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
			defer cancel()
			b.StartTimer()
			start := time.Now()
			w, stop := startWorker(b, l, c, resolver(gs.endpoint, ins...), func(cfg *google.WorkerConfig) { cfg.Concurrency = conc })
			if _, err := gs.sim.WaitCalls(waitCtx, 2*b.N, otpc.MethodReferenceNumberPaidNotification); err != nil {
				b.Fatal(err)
			}
			for {
				if d, err := l.Depth(ctx); err != nil || d == 0 {
					break
				}
				time.Sleep(time.Millisecond)
			}
			outbox := time.Since(start)
			b.StopTimer()
			stop()
			if s, _ := w.Stats(ctx); s.Delivered != uint64(b.N) {
				b.Fatalf("delivered %d of %d", s.Delivered, b.N)
			}
			per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(b.N) }
			b.ReportMetric(per(floor), "floor-ns/op")
			b.ReportMetric(per(direct), "direct-ns/op")
			b.ReportMetric(per(floor)/per(direct), "floor/direct")
			b.ReportMetric(per(direct)/per(outbox), "direct/outbox")
		})
	}
}

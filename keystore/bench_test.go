package keystore

import (
	"database/sql"
	"sync"
	"testing"
)

// benchKeyset is a PGP keyset with two self keys and one peer key, the
// shape of a keyset during a rotation.
func benchKeyset(b *testing.B) (*testEnv, string) {
	e := newTestStore(b)
	ks := e.keyset(b, KindPGP)
	e.mustImport(b, ks, OwnerSelf, pgpSecret(b, 0), ImportOptions{})
	e.mustImport(b, ks, OwnerSelf, pgpSecret(b, 1), ImportOptions{})
	e.mustImport(b, ks, OwnerPeer, pgpPublic(b, 2), ImportOptions{})
	return e, ks
}

// BenchmarkKeysetCached is the request path: the snapshot from the cache.
func BenchmarkKeysetCached(b *testing.B) {
	e, ks := benchKeyset(b)
	if _, err := e.s.Keyset(e.ctx, ks); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.s.Keyset(e.ctx, ks); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkKeysetBuild is the baseline: what every request would pay
// without the cache (read rows, unwrap with the KEK, parse keys).
func BenchmarkKeysetBuild(b *testing.B) {
	e, ks := benchKeyset(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		tx, err := e.db.BeginTx(e.ctx, &sql.TxOptions{ReadOnly: true})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := e.s.buildKeyset(e.ctx, tx, ks); err != nil {
			b.Fatal(err)
		}
		tx.Rollback()
	}
}

// BenchmarkCountersRecord is Counters.Record from all cores on one key.
func BenchmarkCountersRecord(b *testing.B) {
	var c Counters
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Record("D5507658642E660E04A278FFAE80EF2D67E3BFDF", UseDecrypt)
		}
	})
}

// BenchmarkCountersMutexBaseline is the obvious alternative: a map under a
// mutex.
func BenchmarkCountersMutexBaseline(b *testing.B) {
	var mu sync.Mutex
	m := map[string]*UseCounts{}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			mu.Lock()
			uc := m["D5507658642E660E04A278FFAE80EF2D67E3BFDF"]
			if uc == nil {
				uc = new(UseCounts)
				m["D5507658642E660E04A278FFAE80EF2D67E3BFDF"] = uc
			}
			uc[UseDecrypt]++
			mu.Unlock()
		}
	})
}

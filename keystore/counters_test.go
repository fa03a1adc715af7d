package keystore

import (
	"sync"
	"testing"
)

func TestCounters(t *testing.T) {
	var c Counters
	const workers, per = 8, 1000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				c.Record("A", UseDecrypt)
				if i%10 == 0 {
					c.Record("B", Use(w%int(numUses)))
				}
			}
		}()
	}
	wg.Wait()
	c.Record("A", Use(99)) // ignored
	if got := c.Get("A"); got[UseDecrypt] != workers*per || got[UseSign] != 0 {
		t.Fatalf("A: %v", got)
	}
	snap := c.Snapshot()
	var sumB uint64
	for _, n := range snap["B"] {
		sumB += n
	}
	if len(snap) != 2 || sumB != workers*per/10 {
		t.Fatalf("snapshot %v", snap)
	}
	if c.Get("never") != (UseCounts{}) {
		t.Fatal("unknown key has counts")
	}
	for u := range numUses {
		if u.String() == "unknown" {
			t.Fatalf("use %d has no name", u)
		}
	}
}

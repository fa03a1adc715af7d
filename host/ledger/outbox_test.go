package ledger

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestOutbox(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	l, _ := openTest(t, Options{Now: func() time.Time { return t0 }, ClaimLease: time.Minute})
	enqueue := func(reqID, key string) int64 {
		var id int64
		mustApply(t, l, func(tx *Tx) (err error) {
			id, err = tx.Enqueue(OutboxItem{MerchantID: testMerchant, PIAID: testPIAID, Method: "m",
				RequestID: reqID, Payload: []byte(`{"x":"` + reqID + `"}`), OrderingKey: key})
			return err
		})
		return id
	}
	paidA := enqueue("paid-A", "A")
	refundA := enqueue("refund-A", "A")
	paidB := enqueue("paid-B", "B")
	if err := l.Apply(ctx, func(tx *Tx) error {
		_, err := tx.Enqueue(OutboxItem{MerchantID: testMerchant, PIAID: testPIAID, Method: "m", RequestID: "paid-A", Payload: []byte(`{}`)})
		return err
	}); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("duplicate request id: %v", err)
	}
	ids := func(items []OutboxItem) []int64 {
		var out []int64
		for _, it := range items {
			out = append(out, it.ID)
		}
		return out
	}
	claim := func(at time.Time) []int64 {
		t.Helper()
		items, err := l.ClaimDue(ctx, at, 10)
		if err != nil {
			t.Fatal(err)
		}
		return ids(items)
	}
	equal := func(got []int64, want ...int64) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("claimed %v, want %v", got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("claimed %v, want %v", got, want)
			}
		}
	}
	// Only the oldest item of each key is offered.
	equal(claim(t0), paidA, paidB)
	// Claimed items are leased: not offered again until the lease ends.
	equal(claim(t0.Add(time.Second)))
	// B is delivered; A fails and is retried later; refund-A keeps waiting
	// behind it (order per key).
	if err := l.MarkDelivered(ctx, paidB, t0); err != nil {
		t.Fatal(err)
	}
	if err := l.MarkFailed(ctx, paidA, errors.New("HTTP 503"), t0.Add(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	equal(claim(t0.Add(5 * time.Second)))
	equal(claim(t0.Add(10*time.Second)), paidA)
	// A worker that crashed: the lease ends and the item is offered again.
	items, err := l.ClaimDue(ctx, t0.Add(2*time.Minute), 10)
	if err != nil || len(items) != 1 || items[0].ID != paidA || items[0].Attempts != 3 || items[0].LastError != "HTTP 503" {
		t.Fatalf("after lease: %+v, %v", items, err)
	}
	if string(items[0].Payload) != `{"x":"paid-A"}` || items[0].RequestID != "paid-A" {
		t.Fatalf("payload/request id changed: %+v", items[0])
	}
	// Dead letters stop blocking their key.
	if err := l.MarkDead(ctx, paidA, errors.New("permanent")); err != nil {
		t.Fatal(err)
	}
	equal(claim(t0.Add(3*time.Minute)), refundA)
	if d, err := l.Depth(ctx); err != nil || d != 1 {
		t.Fatalf("depth %d, %v; want 1", d, err)
	}
	dead, err := l.DeadLetters(ctx, 10)
	if err != nil || len(dead) != 1 || dead[0].ID != paidA || dead[0].State != OutboxDead || dead[0].LastError != "permanent" {
		t.Fatalf("DeadLetters = %+v, %v", dead, err)
	}
	// Marks need the right state.
	if err := l.MarkDelivered(ctx, paidA, t0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delivering a dead item: %v", err)
	}
	if err := l.MarkDead(ctx, paidB, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("killing a delivered item: %v", err)
	}
	if err := l.Requeue(ctx, paidA, t0.Add(4*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if it, err := l.OutboxItem(ctx, paidA); err != nil || it.State != OutboxPending {
		t.Fatalf("requeued item %+v, %v", it, err)
	}
	if it, _ := l.OutboxItem(ctx, paidB); it.State != OutboxDelivered || !it.DeliveredAt.Equal(t0) {
		t.Fatalf("delivered item %+v", it)
	}
}

func TestOutboxClaimLimit(t *testing.T) {
	ctx := context.Background()
	l, _ := openTest(t, Options{})
	mustApply(t, l, func(tx *Tx) error {
		for _, k := range []string{"k1", "k2", "k3"} {
			if _, err := tx.Enqueue(OutboxItem{MerchantID: testMerchant, PIAID: testPIAID, Method: "m", RequestID: k, Payload: []byte(`{}`), OrderingKey: k}); err != nil {
				return err
			}
		}
		return nil
	})
	items, err := l.ClaimDue(ctx, time.Now(), 2)
	if err != nil || len(items) != 2 || items[0].RequestID != "k1" {
		t.Fatalf("ClaimDue(limit 2) = %+v, %v", items, err)
	}
}

// TestOutboxClaimsAcrossHosts: two ledgers on one database (two hosts)
// claim from the same outbox at once. Every item is claimed exactly once
// and each ordering key's items are claimed in order, one after the other's
// delivery: leases and the write lock split the work without a coordinator.
func TestOutboxClaimsAcrossHosts(t *testing.T) {
	ctx := context.Background()
	a, target := openTest(t, Options{})
	b, err := Open(ctx, target, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const keys, perKey = 20, 5
	mustApply(t, a, func(tx *Tx) error {
		for i := range keys * perKey {
			k := fmt.Sprintf("k%d", i%keys)
			if _, err := tx.Enqueue(OutboxItem{MerchantID: testMerchant, PIAID: testPIAID, Method: "m",
				RequestID: fmt.Sprintf("r%d", i), Payload: []byte(`{}`), OrderingKey: k}); err != nil {
				return err
			}
		}
		return nil
	})
	var mu sync.Mutex
	claimed := map[int64]int{}
	lastClaimed := map[string]int64{}
	var wg sync.WaitGroup
	for _, l := range []*Ledger{a, b, a, b} {
		wg.Go(func() {
			for {
				items, err := l.ClaimDue(ctx, time.Now(), 3)
				if err != nil {
					t.Error(err)
					return
				}
				if len(items) == 0 {
					mu.Lock()
					done := len(claimed) == keys*perKey
					mu.Unlock()
					if done {
						return
					}
					time.Sleep(time.Millisecond)
					continue
				}
				for _, it := range items {
					// An item is recorded before it is delivered, and the
					// next of its key cannot be claimed before that
					// delivery commits: per key, claims must come in
					// enqueue (id) order.
					mu.Lock()
					claimed[it.ID]++
					if prev := lastClaimed[it.OrderingKey]; prev >= it.ID {
						t.Errorf("ordering key %s: item %d claimed after item %d", it.OrderingKey, it.ID, prev)
					}
					lastClaimed[it.OrderingKey] = it.ID
					mu.Unlock()
					if err := l.MarkDelivered(ctx, it.ID, time.Now()); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	if len(claimed) != keys*perKey {
		t.Fatalf("%d items claimed, want %d", len(claimed), keys*perKey)
	}
	for id, n := range claimed {
		if n != 1 {
			t.Fatalf("item %d claimed %d times", id, n)
		}
	}
}

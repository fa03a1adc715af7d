package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func genRequest(id string) Request {
	return Request{PIAID: testPIAID, RequestID: id, Method: "generateReferenceNumber", Hash: hashOf("body-" + id)}
}

// genProcess creates the code and answers with a body naming it; calls
// counts how often it ran.
func genProcess(txID string, calls *atomic.Int64) func(context.Context) (Outcome, error) {
	return func(context.Context) (Outcome, error) {
		calls.Add(1)
		body := []byte(fmt.Sprintf(`{"result":{"success":{"displayableReferenceNumber":{"printableString":"P-%s"}}}}`, txID))
		return Outcome{Body: body, Apply: func(tx *Tx) error { return tx.CreateCode(newCode(txID)) }}, nil
	}
}

func TestIdempotencyReplayAndViolation(t *testing.T) {
	ctx := context.Background()
	l, _ := openTest(t, Options{})
	var calls atomic.Int64
	req := genRequest("r1")
	first, replayed, err := l.Do(ctx, req, genProcess("r1", &calls))
	if err != nil || replayed {
		t.Fatalf("first Do: replayed=%v err=%v", replayed, err)
	}
	tests := []struct {
		name     string
		req      Request
		wantErr  error
		replayed bool
	}{
		{"same request replays", req, nil, true},
		{"different hash is 412", Request{PIAID: testPIAID, RequestID: "r1", Method: req.Method, Hash: hashOf("other")}, ErrIdempotencyViolation, false},
		{"different method is 412", Request{PIAID: testPIAID, RequestID: "r1", Method: "refund", Hash: req.Hash}, ErrIdempotencyViolation, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec, replayed, err := l.Do(ctx, tc.req, genProcess("r1", &calls))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if replayed != tc.replayed {
				t.Fatalf("replayed = %v", replayed)
			}
			if tc.replayed && (!bytes.Equal(rec.Body, first.Body) || rec.Status != StatusOK) {
				t.Fatalf("replayed body %q, want %q", rec.Body, first.Body)
			}
		})
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("process ran %d times, want 1", n)
	}
	// The same requestId under another PIAID is a different key.
	mustApply(t, l, func(tx *Tx) error { return tx.AddPIAID("PIAID_2", testMerchant) })
	other := req
	other.PIAID = "PIAID_2"
	if _, replayed, err := l.Do(ctx, other, func(context.Context) (Outcome, error) { return Outcome{Body: []byte(`{}`)}, nil }); err != nil || replayed {
		t.Fatalf("other PIAID: replayed=%v err=%v", replayed, err)
	}
}

func TestIdempotencyNon200NotStored(t *testing.T) {
	ctx := context.Background()
	l, _ := openTest(t, Options{})
	req := genRequest("r2")
	unavailable := errors.New("plugin unavailable (503)")
	_, _, err := l.Do(ctx, req, func(context.Context) (Outcome, error) { return Outcome{}, unavailable })
	if !errors.Is(err, unavailable) {
		t.Fatalf("got %v", err)
	}
	if _, err := l.Record(ctx, testPIAID, "r2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("failed outcome stored: %v", err)
	}
	// A failing ledger mutation stores nothing either, not even the record.
	_, _, err = l.Do(ctx, req, func(context.Context) (Outcome, error) {
		return Outcome{Body: []byte(`{}`), Apply: func(tx *Tx) error {
			_, err := tx.Cancel(testPIAID, "no-such-code")
			return err
		}}, nil
	})
	if !errors.Is(err, ErrUnknownTransaction) {
		t.Fatalf("got %v", err)
	}
	if _, err := l.Record(ctx, testPIAID, "r2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("record stored with failed mutation: %v", err)
	}
	// The retry is re-evaluated and may now succeed.
	var calls atomic.Int64
	if _, replayed, err := l.Do(ctx, req, genProcess("r2", &calls)); err != nil || replayed || calls.Load() != 1 {
		t.Fatalf("retry: replayed=%v err=%v calls=%d", replayed, err, calls.Load())
	}
	// Only 200 may be stored.
	err = l.Apply(ctx, func(tx *Tx) error {
		return tx.PutRecord(Record{PIAID: testPIAID, RequestID: "r3", Method: "m", Hash: hashOf("x"), Status: 503, Body: []byte(`{}`)})
	})
	if err == nil {
		t.Fatal("stored a 503 record")
	}
}

func TestIdempotencyConcurrentDuplicates(t *testing.T) {
	ctx := context.Background()
	l, _ := openTest(t, Options{})
	const n = 16
	var calls atomic.Int64
	req := genRequest("dup")
	var wg sync.WaitGroup
	bodies := make([][]byte, n)
	replays := make([]bool, n)
	errs := make([]error, n)
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			rec, replayed, err := l.Do(ctx, req, func(ctx context.Context) (Outcome, error) {
				time.Sleep(5 * time.Millisecond) // a slow plugin widens the race
				return genProcess("dup", &calls)(ctx)
			})
			bodies[i], replays[i], errs[i] = rec.Body, replayed, err
		}(i)
	}
	close(start)
	wg.Wait()
	winners := 0
	for i := 0; i < n; i++ {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if !replays[i] {
			winners++
		}
		if !bytes.Equal(bodies[i], bodies[0]) {
			t.Fatalf("caller %d got %q, caller 0 %q", i, bodies[i], bodies[0])
		}
	}
	if winners != 1 || calls.Load() != 1 {
		t.Fatalf("%d winners, process ran %d times; want 1 and 1", winners, calls.Load())
	}
}

// Two Ledger instances on one file share no in-process lock, like two
// processes: the UNIQUE key makes the loser return the winner's record and
// roll back its own mutation.
func TestIdempotencyCrossInstanceGuard(t *testing.T) {
	ctx := context.Background()
	a, path := openTest(t, Options{})
	b, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	req := genRequest("x1")
	inA := make(chan struct{})
	releaseA := make(chan struct{})
	done := make(chan Record, 1)
	go func() {
		rec, _, err := a.Do(ctx, req, func(context.Context) (Outcome, error) {
			close(inA)
			<-releaseA // b commits while a is "processing"
			return Outcome{Body: []byte(`{"from":"a"}`), Apply: func(tx *Tx) error {
				return tx.ApplyKV(testMerchant, []KVChange{{Key: "winner", Value: []byte("a")}})
			}}, nil
		})
		if err != nil {
			t.Error(err)
		}
		done <- rec
	}()
	<-inA
	recB, replayed, err := b.Do(ctx, req, func(context.Context) (Outcome, error) {
		return Outcome{Body: []byte(`{"from":"b"}`), Apply: func(tx *Tx) error {
			return tx.ApplyKV(testMerchant, []KVChange{{Key: "winner", Value: []byte("b")}})
		}}, nil
	})
	if err != nil || replayed {
		t.Fatalf("b: replayed=%v err=%v", replayed, err)
	}
	close(releaseA)
	recA := <-done
	if string(recA.Body) != `{"from":"b"}` || string(recB.Body) != `{"from":"b"}` {
		t.Fatalf("a got %s, b got %s; want b's answer for both", recA.Body, recB.Body)
	}
	v, _, err := a.KVGet(ctx, testMerchant, "winner")
	if err != nil || string(v) != "b" {
		t.Fatalf("loser's KV change survived: %q, %v", v, err)
	}
}

func TestRecordSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	l, path := openTest(t, Options{})
	var calls atomic.Int64
	first, _, err := l.Do(ctx, genRequest("keep"), genProcess("keep", &calls))
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	l2, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	rec, replayed, err := l2.Do(ctx, genRequest("keep"), genProcess("keep", &calls))
	if err != nil || !replayed || !bytes.Equal(rec.Body, first.Body) || calls.Load() != 1 {
		t.Fatalf("after reopen: replayed=%v err=%v body=%q calls=%d", replayed, err, rec.Body, calls.Load())
	}
}

func TestPurgeRecords(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := now
	l, _ := openTest(t, Options{Now: func() time.Time { return clock }, Retention: 10 * 24 * time.Hour})
	put := func(id string) {
		mustApply(t, l, func(tx *Tx) error {
			return tx.PutRecord(Record{PIAID: testPIAID, RequestID: id, Method: "echo", Hash: hashOf(id), Status: StatusOK, Body: []byte(`{}`)})
		})
	}
	put("old")
	clock = now.Add(5 * 24 * time.Hour)
	put("young")
	n, err := l.PurgeRecords(ctx, now.Add(11*24*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("purged %d, %v; want 1", n, err)
	}
	if _, err := l.Record(ctx, testPIAID, "old"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("old record kept: %v", err)
	}
	if _, err := l.Record(ctx, testPIAID, "young"); err != nil {
		t.Fatalf("young record purged: %v", err)
	}
	if DefaultRetention != 400*24*time.Hour {
		t.Fatalf("default retention %v", DefaultRetention)
	}
}

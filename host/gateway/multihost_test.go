package gateway

import (
	"bytes"
	"context"
	"fmt"

	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/host/admin"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// newPeer starts a second host on e's database — its own listener, plugin
// pools, caches and ledger writer — as a second machine behind the load
// balancer would be. (On SQLite both hosts share the file, which one
// machine's processes can; several machines need PostgreSQL.)
func (e *env) newPeer(t testing.TB, mutate ...func(*Options)) *env {
	t.Helper()
	p := &env{t: t, dir: e.dir, info: e.info, database: e.database}
	p.start(mutate...)
	t.Cleanup(p.stop)
	return p
}

func fastSync(o *Options) { o.SyncInterval = 50 * time.Millisecond }

// TestHostsAnswerOnce: the same request sent to two hosts at the same
// moment is one transaction with one answer: both hosts return the same
// response and the ledger holds one code and one idempotency record.
func TestHostsAnswerOnce(t *testing.T) {
	a := newEnv(t)
	b := a.newPeer(t)
	ctx := context.Background()
	const n = 12
	for i := range n {
		for _, tgs := range [][2]string{{"pgp", "pgp"}, {"jose", "jose"}} {
			ta, tb := a.pgp, b.pgp
			if tgs[0] == "jose" {
				ta, tb = a.jose, b.jose
			}
			m := a.merchant(ta)
			req := &otpc.GenerateReferenceNumberRequest{
				RequestHeader:          a.client.Header(ta),
				GooglePaymentToken:     otpc.GooglePaymentToken{IssuerID: otpc.IssuerID{Value: m.DemoIssuer}, Token: m.DemoToken},
				TransactionDescription: fmt.Sprintf("Google - two hosts %d", i),
				Amount:                 otpc.Amount{AmountMicros: int64(100+i) * 1_000000, CurrencyCode: "JPY"},
			}
			var answers [2][]byte
			var wg sync.WaitGroup
			wg.Go(func() { answers[0] = a.callStripped(t, ta, otpc.MethodGenerateReferenceNumber, req) })
			wg.Go(func() { answers[1] = b.callStripped(t, tb, otpc.MethodGenerateReferenceNumber, req) })
			wg.Wait()
			if !bytes.Equal(answers[0], answers[1]) {
				t.Fatalf("request %s: the hosts answered differently:\n%s\n%s", req.RequestHeader.RequestID, answers[0], answers[1])
			}
			var codes, records int
			if err := a.g.DB.QueryRowContext(ctx, `SELECT
				(SELECT COUNT(*) FROM codes WHERE piaid = ? AND transaction_id = ?),
				(SELECT COUNT(*) FROM idempotency WHERE piaid = ? AND request_id = ?)`,
				ta.PIAID, req.RequestHeader.RequestID, ta.PIAID, req.RequestHeader.RequestID).Scan(&codes, &records); err != nil {
				t.Fatal(err)
			}
			if codes != 1 || records != 1 {
				t.Fatalf("request %s: %d codes and %d records, want 1 and 1", req.RequestHeader.RequestID, codes, records)
			}
		}
	}
}

// TestAdminChangeReachesEveryHost: a merchant disabled through one host's
// admin API is refused by the other host within a few sync intervals, and
// enabled again the same way.
func TestAdminChangeReachesEveryHost(t *testing.T) {
	a := newAdminEnv(t, admin.Config{}, fastSync)
	b := a.newPeer(t, fastSync)
	b.generate(b.jose, 150_000000) // host B serves the merchant
	status := func() int {
		m := b.merchant(b.jose)
		req := &otpc.GenerateReferenceNumberRequest{RequestHeader: b.client.Header(b.jose),
			GooglePaymentToken:     otpc.GooglePaymentToken{IssuerID: otpc.IssuerID{Value: m.DemoIssuer}, Token: m.DemoToken},
			TransactionDescription: "Google - sync", Amount: otpc.Amount{AmountMicros: 150_000000, CurrencyCode: "JPY"}}
		res, err := b.client.Call(context.Background(), b.jose, otpc.MethodGenerateReferenceNumber, req, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res.Status
	}
	for _, step := range []struct {
		path string
		want int
	}{{"disable", http.StatusForbidden}, {"enable", http.StatusOK}} {
		var m admin.Merchant
		if err := a.client(a.operator).Do(context.Background(), http.MethodPost, admin.MerchantPath("demo-jose", step.path), nil, &m); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		// Both: host B's own directory snapshot (what the sync reloads)
		// and its answer.
		disabled := func() bool { m, _ := b.g.dir.Merchant("demo-jose"); return m != nil && m.Disabled }
		for disabled() != (step.path == "disable") || status() != step.want {
			if time.Since(start) > 5*time.Second {
				t.Fatalf("%s through host A: host B still answers otherwise after %s", step.path, time.Since(start))
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Logf("%s through host A in force on host B after %s", step.path, time.Since(start).Round(time.Millisecond))
	}
}

// TestAdminLimitsSharedByHosts: with shared limits (what a gateway on
// PostgreSQL sets), a token's requests count on every host: after the
// burst is spent on host A, host B answers 429 with Retry-After.
func TestAdminLimitsSharedByHosts(t *testing.T) {
	cfg := admin.Config{Rate: 1, Burst: 3, SharedLimits: true}
	a := newAdminEnv(t, cfg)
	b := a.newPeer(t)
	_, urlB := serveAdmin(t, b.g, cfg, nil)
	onB := &admin.Client{BaseURL: urlB, Token: a.operator, HTTP: &http.Client{Timeout: time.Minute}}
	for i := range 3 {
		if err := a.client(a.operator).Do(context.Background(), http.MethodGet, "/v1/whoami", nil, nil); err != nil {
			t.Fatalf("request %d on host A: %v", i+1, err)
		}
	}
	err := onB.Do(context.Background(), http.MethodGet, "/v1/whoami", nil, nil)
	if status(err) != http.StatusTooManyRequests {
		t.Fatalf("4th request, on host B: %v, want 429", err)
	}
}

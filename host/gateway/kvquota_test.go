package gateway

import (
	"context"
	"maps"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpcgate/otpcgate/host/admin"
	"github.com/otpcgate/otpcgate/host/ledger"
	"github.com/otpcgate/otpcgate/internal/testenv"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// TestKVQuotaThroughGateway: konbini stores one KV key per code (plus its
// sequence). With a quota of 5 keys, demo-jose's fifth code would take it
// to 6: that request gets 503 with Retry-After and leaves nothing behind
// (no code, no record, usage unchanged), again on retry; demo-pgp, with its
// own quota, is not affected. A quota of demo-jose's own lets the request
// through; it shows in the merchant view and the metrics.
func TestKVQuotaThroughGateway(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.KVQuota = ledger.KVQuota{MaxKeys: 5} })
	ctx := context.Background()
	for range 4 {
		e.generate(e.jose, 1000_000000)
	}
	m := e.merchant(e.jose)
	req := &otpc.GenerateReferenceNumberRequest{RequestHeader: e.client.Header(e.jose),
		GooglePaymentToken:     otpc.GooglePaymentToken{IssuerID: otpc.IssuerID{Value: m.DemoIssuer}, Token: m.DemoToken},
		TransactionDescription: "Google - Test", Amount: otpc.Amount{AmountMicros: 1000_000000, CurrencyCode: "JPY"}}
	for attempt := range 2 {
		res, err := e.client.Call(ctx, e.jose, otpc.MethodGenerateReferenceNumber, req, nil)
		if err != nil || res.Status != http.StatusServiceUnavailable || res.RetryAfter == "" {
			t.Fatalf("attempt %d over the quota: %v, status %d, Retry-After %q", attempt, err, res.Status, res.RetryAfter)
		}
	}
	u, err := e.g.Ledger.KVUsage(ctx, "demo-jose")
	if err != nil || u.Keys != 5 {
		t.Fatalf("usage %+v %v, want 5 keys", u, err)
	}
	var codes int
	if err := e.g.DB.QueryRow(`SELECT COUNT(*) FROM codes WHERE piaid = ?`, e.jose.PIAID).Scan(&codes); err != nil || codes != 4 {
		t.Fatalf("%d codes (%v), want 4", codes, err)
	}
	if _, err := e.g.Ledger.Record(ctx, e.jose.PIAID, req.RequestHeader.RequestID); err == nil {
		t.Fatal("the refused request was stored")
	}
	e.generate(e.pgp, 1000_000000)

	// Usage and quota show in the merchant view and in the metrics.
	back := e.g.backend()
	am, err := back.Merchant(ctx, "demo-jose")
	if err != nil || am.KV == nil || am.KV.Keys != 5 || am.KV.QuotaKeys != 5 || am.KV.Bytes != u.Bytes || am.Quotas != nil {
		t.Fatalf("merchant view KV %+v %+v %v", am.KV, am.Quotas, err)
	}

	// demo-jose gets a quota of its own: the same request now goes through.
	if _, err := back.UpdateMerchant(ctx, "demo-jose", admin.MerchantUpdate{Quotas: &admin.Quotas{KVMaxKeys: 10}}); err != nil {
		t.Fatal(err)
	}
	if _, err := back.UpdateMerchant(ctx, "demo-jose", admin.MerchantUpdate{Quotas: &admin.Quotas{KVMaxKeys: -1}}); err == nil {
		t.Fatal("a negative quota was accepted")
	}
	req.RequestHeader = e.client.Header(e.jose)
	if res, err := e.client.Call(ctx, e.jose, otpc.MethodGenerateReferenceNumber, req, nil); err != nil || res.Status != http.StatusOK {
		t.Fatalf("with its own quota of 10 keys: %v %+v", err, res)
	}
	if am, err = back.Merchant(ctx, "demo-jose"); err != nil || am.KV.QuotaKeys != 10 || am.Quotas == nil || am.Quotas.KVMaxKeys != 10 {
		t.Fatalf("merchant view with its own quota: %+v %+v %v", am.KV, am.Quotas, err)
	}
	if u, err = e.g.Ledger.KVUsage(ctx, "demo-jose"); err != nil || u.Keys != 6 {
		t.Fatalf("usage %+v %v, want 6 keys", u, err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(admin.NewCollector(admin.Sources{Ledger: e.g.Ledger}))
	got := testenv.Metrics(t, reg)
	if got["otpcgate_plugin_kv_keys/demo-jose"] != 6 || got["otpcgate_plugin_kv_quota_keys/"] != 5 ||
		got["otpcgate_plugin_kv_quota_keys/demo-jose"] != 10 || got["otpcgate_plugin_kv_quota_keys/demo-pgp"] != 5 ||
		got["otpcgate_plugin_kv_bytes/demo-jose"] != float64(u.Bytes) || got["otpcgate_plugin_kv_keys/demo-pgp"] < 1 {
		t.Fatalf("kv metrics %v", got)
	}
}

// TestQuotaMetrics: every per-merchant quota is a metric — the host's
// defaults under merchant="" and the limits in force for a merchant with
// limits of its own — so an operator can alert on them.
func TestQuotaMetrics(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	back := e.g.backend()
	if _, err := back.UpdateMerchant(ctx, "demo-jose", admin.MerchantUpdate{Quotas: &admin.Quotas{LogBytesPerMinute: 4096, PluginMemoryMiB: 32}}); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	if _, err := e.g.AdminServer(ctx, admin.Config{MaxPluginVersions: 7}, reg); err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for k, v := range testenv.Metrics(t, reg) {
		if q, ok := strings.CutPrefix(k, "otpcgate_merchant_quota"); ok {
			got[q] = v
		}
	}
	want := map[string]float64{
		"//log_bytes_per_minute": 1 << 20, "//plugin_versions": 7, "//plugin_bytes": admin.DefaultMaxPluginBytes, "//plugin_memory_mib": 64,
		"/demo-jose/log_bytes_per_minute": 4096, "/demo-jose/plugin_versions": 7,
		"/demo-jose/plugin_bytes": admin.DefaultMaxPluginBytes, "/demo-jose/plugin_memory_mib": 32,
	}
	if !maps.Equal(got, want) {
		t.Fatalf("otpcgate_merchant_quota by merchant/quota:\n got %v\nwant %v", got, want)
	}
}

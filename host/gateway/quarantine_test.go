package gateway

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpcgate/otpcgate/host/admin"
	"github.com/otpcgate/otpcgate/host/ledger"
	"github.com/otpcgate/otpcgate/host/runtime/runtimetest"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// TestQuarantineAtStart: a plugin version that passed its warm-up at upload
// and fails at the next start (a time bomb) no longer stops the gateway.
// demo-pgp falls back to its earlier version and keeps answering; demo-jose,
// whose only stored version is the bomb, answers 503 with Retry-After for
// plugin-backed methods while echo works; both are logged, audited and in
// the metrics; activating the earlier version through the admin backend
// (what `plugins rollback` does) ends the quarantine, also across a restart.
func TestQuarantineAtStart(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	bomb := runtimetest.Build(t, "../../testdata/plugins/timebomb")
	b := e.g.backend()

	// Upload and activate the bomb on both merchants, set to go off a
	// moment later; on a machine too slow for the margin, try a larger one.
	var at time.Time
	var version string
	for margin := 2 * time.Second; ; margin *= 2 {
		if margin > time.Minute {
			t.Fatal("could not upload the time bomb before it went off")
		}
		at, version = time.Now().Add(margin), fmt.Sprintf("bomb-%d", margin/time.Second)
		cfg := []byte(fmt.Sprintf(`{"explode_after_ms": %d}`, at.UnixMilli()))
		var err error
		for _, m := range []string{"demo-pgp", "demo-jose"} {
			if _, err = b.UploadPlugin(ctx, m, admin.PluginUpload{Version: version, Wasm: bomb, Config: cfg, Activate: true}); err != nil {
				break
			}
		}
		if err == nil && time.Now().Before(at) {
			break
		}
		t.Logf("margin %v too short: %v", margin, err)
	}
	// demo-jose never had another version.
	if _, err := e.g.DB.ExecContext(ctx, `DELETE FROM plugin_versions WHERE merchant_id = 'demo-jose' AND version <> ?`, version); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(at) + 10*time.Millisecond)

	e.restart() // failed with "load plugin ... exploded" before quarantine
	got := e.g.Deploy.Quarantined()
	if len(got) != 2 || got[0].Merchant != "demo-jose" || got[0].Fallback != "" || got[1].Merchant != "demo-pgp" ||
		got[1].Fallback != "konbini-test" || got[1].Version != version || !strings.Contains(got[1].Err, "exploded") {
		t.Fatalf("quarantined %+v", got)
	}
	e.generate(e.pgp, 1000_000000) // served on the fallback
	req := &otpc.GenerateReferenceNumberRequest{RequestHeader: e.client.Header(e.jose),
		GooglePaymentToken:     otpc.GooglePaymentToken{IssuerID: otpc.IssuerID{Value: e.merchant(e.jose).DemoIssuer}, Token: e.merchant(e.jose).DemoToken},
		TransactionDescription: "Google - Test", Amount: otpc.Amount{AmountMicros: 1000_000000, CurrencyCode: "JPY"}}
	res, err := e.client.Call(ctx, e.jose, otpc.MethodGenerateReferenceNumber, req, nil)
	if err != nil || res.Status != http.StatusServiceUnavailable || res.RetryAfter == "" {
		t.Fatalf("quarantined merchant without fallback: %v, status %d, Retry-After %q", err, res.Status, res.RetryAfter)
	}
	if res, err := e.client.Call(ctx, e.jose, otpc.MethodEcho, &otpc.EchoRequest{RequestHeader: e.client.Header(e.jose), ClientMessage: "up"}, nil); err != nil || res.Status != http.StatusOK {
		t.Fatalf("echo of the quarantined merchant: %v %+v", err, res)
	}

	audit, err := e.g.Ledger.AuditLog(ctx, ledger.AuditQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	audited := map[string]string{}
	for _, a := range audit {
		if a.Action == "plugin.quarantine" {
			audited[a.Subject] = string(a.After)
		}
	}
	if audited["demo-pgp"] != `{"fallback":"konbini-test"}` || audited["demo-jose"] != `{"fallback":""}` {
		t.Fatalf("audit %v", audited)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(e.g.Deploy)
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 1 || len(mfs[0].GetMetric()) != 2 {
		t.Fatalf("metrics %v %v", mfs, err)
	}

	// A reload (another merchant's change) neither retries nor re-audits.
	if err := e.g.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	// Roll demo-pgp back through the admin backend: quarantine over, and
	// the next start runs the earlier version without a word.
	if _, err := e.g.backend().ActivatePlugin(ctx, "demo-pgp", "konbini-test"); err != nil {
		t.Fatal(err)
	}
	if got := e.g.Deploy.Quarantined(); len(got) != 1 || got[0].Merchant != "demo-jose" {
		t.Fatalf("after rollback quarantined %+v", got)
	}
	e.restart()
	if got := e.g.Deploy.Quarantined(); len(got) != 1 || got[0].Merchant != "demo-jose" {
		t.Fatalf("after restart quarantined %+v", got)
	}
	e.generate(e.pgp, 1000_000000)
	audit, err = e.g.Ledger.AuditLog(ctx, ledger.AuditQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, a := range audit {
		if a.Action == "plugin.quarantine" && a.Subject == "demo-pgp" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("demo-pgp quarantined %d times in the audit log, want 1", n)
	}
}

package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/otpcgate/otpcgate/host/admin"
	"github.com/otpcgate/otpcgate/host/plugincall"
	"github.com/otpcgate/otpcgate/host/runtime/runtimetest"
	"github.com/otpcgate/otpcgate/internal/testenv"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// TestCanary: a canary at 10 % serves about a tenth of demo-pgp's new
// transactions, and every later op of a transaction (here its cancel) runs
// on the version that generated it; promote makes the candidate active.
func TestCanary(t *testing.T) {
	a := newAdminEnv(t, admin.Config{})
	ctx := context.Background()
	op := a.client(a.operator)
	mt := a.client(a.issue(t, "demo-pgp").Secret)
	if err := op.Do(ctx, http.MethodPost, admin.MerchantPath("demo-pgp", "plugins"), admin.PluginUpload{Version: "prefix-83", From: "konbini-test",
		Config: bytes.Replace(konbiniConfig, []byte(`"prefix": "81"`), []byte(`"prefix": "83"`), 1)}, nil); err != nil {
		t.Fatal(err)
	}
	var st plugincall.CanaryState
	if err := mt.Do(ctx, http.MethodPut, "/v1/merchants/demo-pgp/plugin-canary", admin.CanaryRequest{Version: "prefix-83", Fraction: 0.1}, &st); err != nil || st.Version != "prefix-83" {
		t.Fatalf("start canary: %v %+v", err, st)
	}
	calls := func(version string) int64 { s, _ := a.g.Calls.Stats("demo-pgp", version); return s.Calls }
	base81 := calls("konbini-test")
	const n = 300
	var on83 int64
	var txns []string
	for range n {
		hdr, resp := a.env.generate(a.pgp, 1500_000000)
		if strings.HasPrefix(printable(resp.Result.Success.DisplayableReferenceNumber), "83") {
			on83++
		}
		txns = append(txns, hdr.RequestID)
	}
	if on83 < n*3/100 || on83 > n*20/100 { // 30 expected; the bounds are 4 and 6 standard deviations away
		t.Fatalf("%d of %d transactions on the 10%% canary", on83, n)
	}
	for _, txn := range txns {
		req := &otpc.CancelReferenceNumberRequest{RequestHeader: a.env.client.Header(a.pgp), GenerateReferenceNumberRequestID: txn}
		var resp otpc.CancelReferenceNumberResponse
		if res, err := a.env.client.Call(ctx, a.pgp, otpc.MethodCancelReferenceNumber, req, &resp); err != nil || res.Status != http.StatusOK || resp.Result.Success == nil {
			t.Fatalf("cancel %s: %v %+v", txn, err, res)
		}
	}
	// Each version ran a generate and a cancel per transaction it holds.
	if got83, got81 := calls("prefix-83"), calls("konbini-test")-base81; got83 != 2*on83 || got81 != 2*(n-on83) {
		t.Fatalf("calls: candidate %d, active %d; want %d and %d (generate and cancel on one version)", got83, got81, 2*on83, 2*(n-on83))
	}
	if err := mt.Do(ctx, http.MethodPost, "/v1/merchants/demo-pgp/plugin-canary/promote", nil, &st); err != nil || st.Calls != 2*on83 {
		t.Fatalf("promote: %v %+v", err, st)
	}
	for range 5 {
		if _, resp := a.env.generate(a.pgp, 1500_000000); !strings.HasPrefix(printable(resp.Result.Success.DisplayableReferenceNumber), "83") {
			t.Fatal("after promote a code came from the old version")
		}
	}
	if err := mt.Do(ctx, http.MethodGet, "/v1/merchants/demo-pgp/plugin-canary", nil, &st); err != nil || st.Version != "" {
		t.Fatalf("after promote: %v %+v", err, st)
	}
}

// TestCanaryRollsBackUnderTraffic: a canary that traps is rolled back on
// its own after its limit (3 failed calls) while traffic runs: the only
// failed requests are those 3 canary transactions, which succeed on the
// active version when Google retries them; the audit log says why.
func TestCanaryRollsBackUnderTraffic(t *testing.T) {
	a := newAdminEnv(t, admin.Config{})
	ctx := context.Background()
	op := a.client(a.operator)
	mt := a.client(a.issue(t, "demo-pgp").Secret)
	// The outcomes plugin traps on a requestId starting "trap-"; konbini
	// ignores it.
	wasm := runtimetest.Build(t, "../../testdata/plugins/outcomes")
	if err := op.Do(ctx, http.MethodPost, admin.MerchantPath("demo-pgp", "plugins"), admin.PluginUpload{Version: "trapper", Wasm: wasm}, nil); err != nil {
		t.Fatal(err)
	}
	if err := mt.Do(ctx, http.MethodPut, "/v1/merchants/demo-pgp/plugin-canary", admin.CanaryRequest{Version: "trapper", Fraction: 0.1}, nil); err != nil {
		t.Fatal(err)
	}
	m := a.env.merchant(a.pgp)
	send := func(id string) int {
		hdr := a.env.client.Header(a.pgp)
		hdr.RequestID = id
		req := &otpc.GenerateReferenceNumberRequest{RequestHeader: hdr, TransactionDescription: "Google - Test",
			GooglePaymentToken: otpc.GooglePaymentToken{IssuerID: otpc.IssuerID{Value: m.DemoIssuer}, Token: m.DemoToken},
			Amount:             otpc.Amount{AmountMicros: 1500_000000, CurrencyCode: "JPY"}}
		res, err := a.env.client.Call(ctx, a.pgp, otpc.MethodGenerateReferenceNumber, req, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res.Status
	}
	var failed []string
	for i := range 200 {
		id := "trap-" + strconv.Itoa(i)
		switch s := send(id); s {
		case http.StatusOK:
		case http.StatusServiceUnavailable:
			failed = append(failed, id)
		default:
			t.Fatalf("request %s: status %d", id, s)
		}
	}
	if len(failed) != plugincall.DefaultCanaryMaxFailures {
		t.Fatalf("%d failed requests, want exactly the canary's %d before its rollback: %v", len(failed), plugincall.DefaultCanaryMaxFailures, failed)
	}
	for _, id := range failed {
		if s := send(id); s != http.StatusOK {
			t.Fatalf("Google's retry of %s after the rollback: %d, want 200 on the active version", id, s)
		}
	}
	var reason string
	testenv.WaitFor(t, func() string {
		var events []admin.AuditEntry
		if err := mt.Do(ctx, http.MethodGet, "/v1/merchants/demo-pgp/events", nil, &events); err != nil {
			return err.Error()
		}
		for _, e := range events {
			if e.Action == "plugin.canary_rollback" {
				var after struct{ Reason string }
				_ = json.Unmarshal(e.After, &after)
				reason = after.Reason
				return ""
			}
		}
		return "no plugin.canary_rollback in the audit log"
	})
	if !strings.Contains(reason, "3 failed calls") {
		t.Fatalf("rollback reason %q", reason)
	}
	var st plugincall.CanaryState
	if err := mt.Do(ctx, http.MethodGet, "/v1/merchants/demo-pgp/plugin-canary", nil, &st); err != nil || st.Version != "" {
		t.Fatalf("after the rollback the canary still runs: %v %+v", err, st)
	}
}

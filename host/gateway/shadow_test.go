package gateway

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/host/admin"
	"github.com/otpcgate/otpcgate/host/plugincall"
	"github.com/otpcgate/otpcgate/internal/testenv"
)

// TestShadow runs candidates beside demo-pgp's active konbini on real
// Google traffic. A candidate whose one rule differs (a maximum of 2,000
// JPY) is reported on exactly the requests above it, active success vs
// candidate refusal; a candidate that would write other KV keys commits
// none of them; an identical candidate differs on none of 1,000 requests.
// The merchant starts, reads and stops its shadow with its own token.
func TestShadow(t *testing.T) {
	a := newAdminEnv(t, admin.Config{})
	ctx := context.Background()
	op := a.client(a.operator)
	mt := a.client(a.issue(t, "demo-pgp").Secret)
	upload := func(version string, cfg []byte) {
		t.Helper()
		if err := op.Do(ctx, http.MethodPost, admin.MerchantPath("demo-pgp", "plugins"),
			admin.PluginUpload{Version: version, From: "konbini-test", Config: cfg}, nil); err != nil {
			t.Fatal(err)
		}
	}
	upload("max-2000", bytes.Replace(konbiniConfig, []byte(`"maxAmountMicros": 300000000000`), []byte(`"maxAmountMicros": 2000000000`), 1))
	upload("prefix-83", bytes.Replace(konbiniConfig, []byte(`"prefix": "81"`), []byte(`"prefix": "83"`), 1))
	upload("same", konbiniConfig)

	start := func(version string) {
		t.Helper()
		var rep plugincall.ShadowReport
		if err := mt.Do(ctx, http.MethodPut, "/v1/merchants/demo-pgp/plugin-shadow", admin.ShadowRequest{Version: version}, &rep); err != nil || rep.Version != version {
			t.Fatalf("start shadow %s: %v %+v", version, err, rep)
		}
	}
	// settled waits until every sampled call of n has been compared.
	settled := func(n int64) plugincall.ShadowReport {
		t.Helper()
		var rep plugincall.ShadowReport
		testenv.WaitFor(t, func() string {
			if err := mt.Do(ctx, http.MethodGet, "/v1/merchants/demo-pgp/plugin-shadow", nil, &rep); err != nil {
				return err.Error()
			}
			if rep.Compared+rep.Dropped < n {
				return "shadow calls still queued"
			}
			return ""
		})
		if rep.Dropped != 0 || rep.Compared != n {
			t.Fatalf("%d compared, %d dropped; want all %d compared", rep.Compared, rep.Dropped, n)
		}
		return rep
	}

	// One rule differs: exactly the requests above 2,000 JPY.
	start("max-2000")
	above := 0
	for i := range 40 {
		micros := int64(1500_000000)
		if i%4 == 0 {
			micros, above = 5000_000000, above+1
		}
		a.env.generate(a.pgp, micros)
	}
	rep := settled(40)
	if rep.Different != int64(above) || rep.ByOp["generate"].Different != int64(above) || len(rep.Samples) != above {
		t.Fatalf("one rule: %d different (%+v), want exactly the %d requests above 2,000 JPY", rep.Different, rep.ByOp, above)
	}
	for _, s := range rep.Samples {
		if s.Active.Outcome != "ok" || s.Candidate.Outcome != "refusal" || !strings.Contains(s.Candidate.Output, "amount outside") ||
			!strings.Contains(s.Active.Output, `"5000000000"`) && !strings.Contains(s.Active.Output, "printableString") || s.Misses != 0 {
			t.Fatalf("divergence %+v: want the active success against the candidate's refusal", s)
		}
	}

	// A candidate that would write other keys (codes with prefix 83):
	// every call differs, nothing of it is committed.
	start("prefix-83")
	for range 5 {
		_, resp := a.env.generate(a.pgp, 1500_000000)
		if p := printable(resp.Result.Success.DisplayableReferenceNumber); !strings.HasPrefix(p, "81") {
			t.Fatalf("Google got %q: the active version must answer", p)
		}
	}
	if rep := settled(5); rep.Different != 5 {
		t.Fatalf("prefix-83: %d of 5 different", rep.Different)
	}
	var n83 int
	if err := a.g.DB.QueryRow(`SELECT COUNT(*) FROM kv WHERE namespace = 'demo-pgp' AND key LIKE 'code/83%'`).Scan(&n83); err != nil {
		t.Fatal(err)
	}
	var n81 int
	if err := a.g.DB.QueryRow(`SELECT COUNT(*) FROM kv WHERE namespace = 'demo-pgp' AND key LIKE 'code/81%'`).Scan(&n81); err != nil {
		t.Fatal(err)
	}
	if n83 != 0 || n81 < 45 {
		t.Fatalf("KV keys: %d of the shadow candidate's (want 0), %d of the active version's (want >= 45)", n83, n81)
	}

	// Identical: 0 differences over 1,000 requests.
	start("same")
	tr := startTraffic(a.env, a.pgp, 3)
	tr.waitOK(t, 1000)
	tr.halt()
	if f := tr.failed.Load(); f != 0 {
		t.Fatalf("%d requests failed with the shadow on: %s", f, tr.firstErr)
	}
	rep = settled(tr.ok.Load())
	if rep.Different != 0 || rep.Compared < 1000 || rep.CandidateFailures != 0 {
		t.Fatalf("identical candidate: %d of %d different, %d candidate failures: %+v", rep.Different, rep.Compared, rep.CandidateFailures, rep.Samples)
	}
	t.Logf("identical candidate: %d compared, 0 different", rep.Compared)

	// Stopped: the report is returned, the shadow is gone, the candidate
	// may be deleted again.
	if err := op.Do(ctx, http.MethodDelete, admin.MerchantPath("demo-pgp", "plugins", "same"), nil, nil); status(err) != http.StatusConflict {
		t.Fatalf("deleting the shadowed version: %v, want 409", err)
	}
	var last plugincall.ShadowReport
	if err := mt.Do(ctx, http.MethodDelete, "/v1/merchants/demo-pgp/plugin-shadow", nil, &last); err != nil || last.Version != "same" {
		t.Fatalf("stop: %v %+v", err, last)
	}
	a.env.generate(a.pgp, 1500_000000)
	time.Sleep(50 * time.Millisecond)
	if err := mt.Do(ctx, http.MethodGet, "/v1/merchants/demo-pgp/plugin-shadow", nil, &rep); err != nil || rep.Version != "" || rep.Compared != 0 {
		t.Fatalf("after stop: %v %+v", err, rep)
	}
	if err := op.Do(ctx, http.MethodDelete, admin.MerchantPath("demo-pgp", "plugins", "same"), nil, nil); err != nil {
		t.Fatalf("deleting the former candidate: %v", err)
	}
	if err := a.client(a.issue(t, "demo-jose").Secret).Do(ctx, http.MethodGet, "/v1/merchants/demo-pgp/plugin-shadow", nil, nil); status(err) != http.StatusForbidden {
		t.Fatalf("another merchant reading the shadow: %v, want 403", err)
	}
}

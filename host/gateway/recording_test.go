package gateway

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/otpcgate/otpcgate/host/admin"
	"github.com/otpcgate/otpcgate/internal/testenv"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// TestRecordAndReplay records demo-pgp's plugin calls under Google traffic
// (sealed at rest: the payment token is nowhere in the database in the
// clear), replays them on the recorded version — every answer byte for
// byte as recorded — and on a version with one rule changed (a maximum of
// 2,000 JPY), which differs on exactly the recordings above it. Another
// merchant can neither read nor replay them.
func TestRecordAndReplay(t *testing.T) {
	a := newAdminEnv(t, admin.Config{})
	ctx := context.Background()
	op := a.client(a.operator)
	mt := a.client(a.issue(t, "demo-pgp").Secret)
	generateCalls := func() int64 { return sum(a.g.Calls.Outcomes("demo-pgp")[otpc.OpGenerate]) }
	before := generateCalls()
	var st admin.RecordingState
	if err := mt.Do(ctx, http.MethodPut, "/v1/merchants/demo-pgp/plugin-recording", admin.RecordingRequest{On: true, Retention: "1h"}, &st); err != nil || !st.On {
		t.Fatalf("start recording: %v %+v", err, st)
	}
	above := 0
	for i := range 20 {
		micros := int64(1500_000000)
		if i%2 == 0 {
			micros, above = 5000_000000, above+1
		}
		a.env.generate(a.pgp, micros)
	}
	tr := startTraffic(a.env, a.pgp, 3)
	tr.waitOK(t, 1000)
	tr.halt()
	if f := tr.failed.Load(); f != 0 {
		t.Fatalf("%d requests failed while recording: %s", f, tr.firstErr)
	}
	// Every plugin call is recorded, and a request may take more than one:
	// when two codes collide the protocol asks the plugin again.
	total := generateCalls() - before
	if total < 20+tr.ok.Load() {
		t.Fatalf("%d generate calls for %d answered requests", total, 20+tr.ok.Load())
	}
	testenv.WaitFor(t, func() string {
		if err := mt.Do(ctx, http.MethodGet, "/v1/merchants/demo-pgp/plugin-recording", nil, &st); err != nil {
			return err.Error()
		}
		if st.Recorded+st.Dropped < total {
			return "recordings still being written"
		}
		return ""
	})
	if st.Dropped != 0 || st.Recorded != total {
		t.Fatalf("%d recorded, %d dropped; want all %d", st.Recorded, st.Dropped, total)
	}
	token := []byte(a.env.merchant(a.pgp).DemoToken)
	rows, err := a.g.DB.Query(`SELECT sealed FROM plugin_recordings`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var sealed []byte
		if err := rows.Scan(&sealed); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(sealed, token) || bytes.Contains(sealed, []byte("generateReferenceNumber")) || bytes.Contains(sealed, []byte(`"requestHeader"`)) {
			t.Fatal("a recording holds the request in the clear")
		}
	}
	rows.Close()

	replay := func(version string) admin.ReplayReport {
		t.Helper()
		var rep admin.ReplayReport
		if err := mt.Do(ctx, http.MethodPost, "/v1/merchants/demo-pgp/plugin-replay", admin.ReplayRequest{Version: version}, &rep); err != nil {
			t.Fatal(err)
		}
		return rep
	}
	if rep := replay("konbini-test"); rep.Replayed != total || rep.Different != 0 || rep.Same != total {
		t.Fatalf("the recorded version: %d replayed, %d same, %d different: %+v", rep.Replayed, rep.Same, rep.Different, rep.Differences)
	}
	if err := op.Do(ctx, http.MethodPost, admin.MerchantPath("demo-pgp", "plugins"), admin.PluginUpload{Version: "max-2000", From: "konbini-test",
		Config: bytes.Replace(konbiniConfig, []byte(`"maxAmountMicros": 300000000000`), []byte(`"maxAmountMicros": 2000000000`), 1)}, nil); err != nil {
		t.Fatal(err)
	}
	rep := replay("max-2000")
	if rep.Replayed != total || rep.Different != int64(above) || len(rep.Differences) != above {
		t.Fatalf("max-2000: %d replayed, %d different, want exactly the %d above 2,000 JPY", rep.Replayed, rep.Different, above)
	}
	for _, d := range rep.Differences {
		if d.Recorded.Outcome != "ok" || d.Replayed.Outcome != "refusal" || !strings.Contains(d.Replayed.Output, "amount outside") || d.RecordedVersion != "konbini-test" {
			t.Fatalf("difference %+v", d)
		}
	}

	jose := a.client(a.issue(t, "demo-jose").Secret)
	if err := jose.Do(ctx, http.MethodPost, "/v1/merchants/demo-pgp/plugin-replay", admin.ReplayRequest{Version: "konbini-test"}, nil); status(err) != http.StatusForbidden {
		t.Fatalf("another merchant replaying: %v, want 403", err)
	}
	if err := mt.Do(ctx, http.MethodPut, "/v1/merchants/demo-pgp/plugin-recording", admin.RecordingRequest{On: false}, &st); err != nil || st.On {
		t.Fatalf("stop recording: %v %+v", err, st)
	}
	a.env.generate(a.pgp, 1500_000000)
	if err := mt.Do(ctx, http.MethodGet, "/v1/merchants/demo-pgp/plugin-recording", nil, &st); err != nil || st.Recorded != total {
		t.Fatalf("after stop: %v %+v, want still %d", err, st, total)
	}
}

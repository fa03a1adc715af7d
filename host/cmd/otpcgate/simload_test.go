package main

import (
	"context"
	"encoding/json"
	"syscall"
	"testing"

	"github.com/otpcgate/otpcgate/host/devenv"
	"github.com/otpcgate/otpcgate/internal/db"
)

// TestSimLoad drives a real otpcgate dev with `sim load`: every request is
// answered and committed, the figures are consistent, the gateway's CPU is
// read from /proc, a paced run takes as long as its rate says, and bad
// flags are refused.
func TestSimLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin, err := testBinary()
	if err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	proc := startDev(t, bin, dataDir, freeAddr(t), freeAddr(t))
	defer proc.stop(syscall.SIGTERM)
	info, err := devenv.Read(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	codes := func() int {
		d, err := db.Open(ctx, info.DBPath)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		var n int
		if err := d.QueryRowContext(ctx, `SELECT COUNT(*) FROM codes WHERE merchant_id = 'demo-pgp'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := codes()
	e, _, stderr := testEnv(nil)
	rep, err := simLoad(ctx, e, loadOptions{dataDir: dataDir, merchant: "demo-pgp", concurrency: 4, requests: 120,
		gatewayPID: proc.cmd.Process.Pid})
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if rep.Sent != 120 || rep.OK != 120 || len(rep.Errors) != 0 {
		t.Fatalf("report %+v", rep)
	}
	if got := codes() - before; got != 120 {
		t.Fatalf("%d codes committed, want 120", got)
	}
	if !(rep.ReqPerSec > 0 && rep.P50ms > 0 && rep.P50ms <= rep.P90ms && rep.P90ms <= rep.P99ms && rep.P99ms <= rep.MaxMs) {
		t.Fatalf("inconsistent figures %+v", rep)
	}
	if rep.GatewayCPUms <= 0 || rep.LoadCPUms <= 0 {
		t.Fatalf("CPU per request not measured: %+v", rep)
	}
	t.Logf("sim load, 120 requests at concurrency 4: %.0f req/s, p50 %.1f ms, p99 %.1f ms, gateway %.2f ms CPU/request, load generator %.2f",
		rep.ReqPerSec, rep.P50ms, rep.P99ms, rep.GatewayCPUms, rep.LoadCPUms)

	// Paced: 40 requests at 40/s take about a second.
	rep, err = simLoad(ctx, e, loadOptions{dataDir: dataDir, merchant: "demo-jose", concurrency: 2, requests: 40, rate: 40})
	if err != nil || rep.OK != 40 {
		t.Fatalf("paced run: %v %+v", err, rep)
	}
	if rep.Seconds < 0.9 {
		t.Fatalf("40 requests at 40/s took %.2f s", rep.Seconds)
	}

	// The command line, with JSON out.
	e2, out, errb := testEnv(nil)
	if code := execute(ctx, []string{"sim", "load", "--data-dir", dataDir, "--requests", "10", "--concurrency", "2", "--json"}, e2); code != 0 {
		t.Fatalf("exit %d\n%s", code, errb)
	}
	var js LoadReport
	if err := json.Unmarshal(out.Bytes(), &js); err != nil || js.OK != 10 {
		t.Fatalf("JSON report %q: %v", out, err)
	}
	for _, bad := range [][]string{
		{"--concurrency", "0"}, {"--requests", "0"}, {"--rate", "-1"}, {"--merchant", "nobody"},
	} {
		e3, _, errb := testEnv(nil)
		args := append([]string{"sim", "load", "--data-dir", dataDir}, bad...)
		if code := execute(ctx, args, e3); code == 0 || errb.Len() == 0 {
			t.Errorf("%v: exit %d, stderr %q", bad, code, errb)
		}
	}
}

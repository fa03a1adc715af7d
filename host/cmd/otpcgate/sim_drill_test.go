package main

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/otpcgate/otpcgate/host/sim"
)

// TestSimDrillLive runs the key-rotation drill the way an operator does
// before launch: the real binary serves `otpcgate dev` on a fresh data
// directory, and `otpcgate sim drill --data-dir DIR` (another process's
// view: its own keystore handle on the shared SQLite file) rotates both
// sides' keys under traffic. The report table goes to the test log; the
// test asserts zero failed requests, one key rotated per side per
// merchant, the old keys refused, and that the installation keeps working
// on the new keys (the other suites with a JSON report, sim smoke) and
// that failures give a non-zero exit.
func TestSimDrillLive(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := filepath.Join(t.TempDir(), "otpcgate")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dataDir := t.TempDir()
	proc := startDev(t, bin, dataDir, freeAddr(t))
	stopped := false
	stopDev := func() {
		if !stopped {
			stopped = true
			proc.Process.Signal(syscall.SIGTERM)
			proc.Wait()
		}
	}
	defer stopDev()
	ctx := context.Background()

	e, out, errb := testEnv(nil)
	code := execute(ctx, []string{"sim", "drill", "--data-dir", dataDir}, e)
	t.Logf("otpcgate sim drill --data-dir DIR (exit %d):\n%s", code, out.String())
	if code != 0 {
		t.Fatalf("sim drill failed: %s", errb.String())
	}
	m := regexp.MustCompile(`KEY-ROTATION DRILL PASSED: (\d+) requests sent, 0 failed; keys rotated: ours 2, Google's 2; old keys refused afterwards: 4 checks`).
		FindStringSubmatch(out.String())
	if m == nil || m[1] == "0" {
		t.Fatalf("drill summary missing or wrong:\n%s", out.String())
	}

	// After the drill the installation runs on the new keys: the other
	// suites pass, with the merchant-event steps skipped and saying why.
	e, out, errb = testEnv(nil)
	suites := "happy,idempotency,errors,clock-skew,notifications"
	if code := execute(ctx, []string{"sim", "run", "--suite", suites, "--json", "--data-dir", dataDir}, e); code != 0 {
		t.Fatalf("sim run --suite %s after the drill: exit %d\n%s\n%s", suites, code, out.String(), errb.String())
	}
	var rep sim.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("JSON report: %v\n%s", err, out.String())
	}
	if rep.Failed != 0 || rep.Passed < 40 || rep.Skipped == 0 {
		t.Fatalf("suites after the drill: %d passed %d failed %d skipped", rep.Passed, rep.Failed, rep.Skipped)
	}
	if got := strings.Join(rep.Suites(), ","); got != "clock-skew,errors,happy,idempotency,notifications" {
		t.Fatalf("suites that ran: %s", got)
	}
	t.Logf("after the drill, %s: %d passed, 0 failed, %d skipped (no merchant API yet)", suites, rep.Passed, rep.Skipped)
	for _, s := range rep.Steps {
		if s.Status == sim.Skip && !strings.Contains(s.Detail, "merchant API not reachable") && !strings.Contains(s.Detail, "serves no web login page") {
			t.Errorf("step %s skipped without saying why: %q", s.Name, s.Detail)
		}
	}

	// sim smoke still works, on the new keys.
	e, out, errb = testEnv(nil)
	if code := execute(ctx, []string{"sim", "smoke", "--data-dir", dataDir}, e); code != 0 || !strings.Contains(out.String(), "all checks passed") {
		t.Fatalf("sim smoke after the drill: exit %d\n%s\n%s", code, out.String(), errb.String())
	}

	// An unknown suite and a gateway that is gone both exit non-zero.
	e, _, errb = testEnv(nil)
	if code := execute(ctx, []string{"sim", "run", "--suite", "nonsense", "--data-dir", dataDir}, e); code == 0 || !strings.Contains(errb.String(), "unknown suite") {
		t.Fatalf("unknown suite: exit %d %s", code, errb.String())
	}
	stopDev()
	e, out, _ = testEnv(nil)
	if code := execute(ctx, []string{"sim", "run", "--suite", "clock-skew", "--data-dir", dataDir}, e); code == 0 || !strings.Contains(out.String(), "FAIL") {
		t.Fatalf("gateway stopped: exit %d\n%s", code, out.String())
	}
}

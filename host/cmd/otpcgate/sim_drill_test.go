package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/host/devenv"
	"github.com/otpcgate/otpcgate/host/sim"
	"github.com/otpcgate/otpcgate/internal/testenv"
)

// TestSimDrillLive runs the key-rotation drill the way an operator does
// before launch: the real binary serves `otpcgate dev` on a fresh data
// directory, and `otpcgate sim drill --data-dir DIR` (another process's
// view: its own keystore handle on the shared SQLite file) rotates both
// sides' keys under traffic. The report table goes to the test log; the
// test asserts zero failed requests, one key rotated per side per
// merchant, the old keys refused, and that the installation keeps working
// on the new keys (the other suites with a JSON report, sim smoke) and
// that failures give a non-zero exit. The notifications suite runs for
// real: sim reports merchant events over dev's merchant API (admin.addr on
// a free port, as dev gets it from the environment) with dev.json's
// merchant tokens and watches dev's simulated Google through its hooks.
func TestSimDrillLive(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin, err := testBinary()
	if err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	// The child inherits the environment: dev's admin API on a free port,
	// and sim (in-process) reads the same setting.
	adminVars := map[string]string{"OTPCGATE_ADMIN_ADDR": freeAddr(t)}
	t.Setenv("OTPCGATE_ADMIN_ADDR", adminVars["OTPCGATE_ADMIN_ADDR"])
	proc := startDev(t, bin, dataDir, freeAddr(t), adminVars["OTPCGATE_ADMIN_ADDR"])
	stopped := false
	stopDev := func() {
		if !stopped {
			stopped = true
			_ = proc.stop(syscall.SIGTERM)
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
	// suites pass, notifications included; only steps that say why skip.
	e, out, errb = testEnv(adminVars)
	suites := "happy,idempotency,errors,clock-skew,notifications"
	if code := execute(ctx, []string{"sim", "run", "--suite", suites, "--json", "--data-dir", dataDir}, e); code != 0 {
		t.Fatalf("sim run --suite %s after the drill: exit %d\n%s\n%s", suites, code, out.String(), errb.String())
	}
	var rep sim.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("JSON report: %v\n%s", err, out.String())
	}
	if rep.Failed != 0 || rep.Passed < 40 {
		t.Fatalf("suites after the drill: %d passed %d failed %d skipped", rep.Passed, rep.Failed, rep.Skipped)
	}
	if got := strings.Join(rep.Suites(), ","); got != "clock-skew,errors,happy,idempotency,notifications" {
		t.Fatalf("suites that ran: %s", got)
	}
	t.Logf("after the drill, %s: %d passed, 0 failed, %d skipped", suites, rep.Passed, rep.Skipped)
	notified := 0
	for _, s := range rep.Steps {
		if s.Suite == "notifications" {
			if s.Status != sim.Pass {
				t.Errorf("notifications step %s/%s: %s %q", s.Merchant, s.Name, s.Status, s.Detail)
			}
			notified++
		}
		if s.Status == sim.Skip && !strings.Contains(s.Detail, "serves no web login page") {
			t.Errorf("step %s skipped: %q", s.Name, s.Detail)
		}
	}
	if notified != 6 { // three notifications per demo merchant
		t.Errorf("notifications suite ran %d steps, want 6", notified)
	}

	// dev.json's key files followed the rotation: an external client with
	// nothing but those files and gpg still gets a verified echo.
	info, err := devenv.Read(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := info.GoogleTransport()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range info.Merchants {
		if m.Envelope == "pgp" {
			testenv.GPGEcho(t, &http.Client{Transport: tr, Timeout: 30 * time.Second}, "https://"+info.Addr+m.BasePath, m.PIAID,
				m.GooglePrivateKeys, m.OurPublicKeys)
		}
	}

	// Older and newer dev.json files.
	simNotificationsDevJSON(t, dataDir, adminVars["OTPCGATE_ADMIN_ADDR"])

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
	e, out, _ = testEnv(adminVars)
	if code := execute(ctx, []string{"sim", "run", "--suite", "clock-skew", "--data-dir", dataDir}, e); code == 0 || !strings.Contains(out.String(), "FAIL") {
		t.Fatalf("gateway stopped: exit %d\n%s", code, out.String())
	}
}

// simNotificationsDevJSON runs the notifications suite on copies of
// dataDir's dev.json (the gateway's other files are shared): one from
// before merchant tokens still works, every step skipping with the reason,
// as when nothing listens at admin.addr; one recording the admin URL (devenv.RecordAdmin) needs no admin.addr
// setting at all.
func simNotificationsDevJSON(t *testing.T, dataDir, adminAddr string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, devenv.File))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name        string
		stripTokens bool
		recordAdmin bool
		vars        map[string]string
		pass        int
		skip        string
	}{
		{"without merchant tokens", true, false, map[string]string{"OTPCGATE_ADMIN_ADDR": adminAddr}, 0, "no merchant tokens"},
		{"admin URL recorded, admin.addr empty", false, true, map[string]string{"OTPCGATE_ADMIN_ADDR": ""}, 6, ""},
		{"nothing listening at admin.addr", false, false, map[string]string{"OTPCGATE_ADMIN_ADDR": freeAddr(t)}, 0, "merchant API not reachable at http://"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var info map[string]any
			if err := json.Unmarshal(b, &info); err != nil {
				t.Fatal(err)
			}
			// Each case starts from a dev.json that does not record the
			// admin URL (as one written before dev recorded it).
			delete(info, "adminUrl")
			if tc.stripTokens {
				for _, m := range info["merchants"].([]any) {
					delete(m.(map[string]any), "merchantToken")
				}
			}
			out, err := json.Marshal(info)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, devenv.File), out, 0o600); err != nil {
				t.Fatal(err)
			}
			if tc.recordAdmin {
				if _, err := devenv.RecordAdmin(dir, adminAddr); err != nil {
					t.Fatal(err)
				}
			}
			e, stdout, errb := testEnv(tc.vars)
			if code := execute(context.Background(), []string{"sim", "run", "--suite", "notifications", "--json", "--data-dir", dir}, e); code != 0 {
				t.Fatalf("exit %d\n%s\n%s", code, stdout.String(), errb.String())
			}
			var rep sim.Report
			if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
				t.Fatal(err)
			}
			if rep.Failed != 0 || rep.Passed != tc.pass || (tc.skip == "") != (rep.Skipped == 0) {
				t.Fatalf("%d passed %d failed %d skipped, want %d passed", rep.Passed, rep.Failed, rep.Skipped, tc.pass)
			}
			for _, s := range rep.Steps {
				if s.Status == sim.Skip && !strings.Contains(s.Detail, tc.skip) {
					t.Errorf("step %s skipped: %q, want %q", s.Name, s.Detail, tc.skip)
				}
			}
		})
	}
}

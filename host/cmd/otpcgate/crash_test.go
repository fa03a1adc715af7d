package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/host/devenv"
	"github.com/otpcgate/otpcgate/host/sim"
	"github.com/otpcgate/otpcgate/internal/testenv"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// TestCrashDurability runs the real binary (otpcgate dev) under load, kills
// it with SIGKILL, restarts it on the same data directory and checks that
// every request that was answered 200 before the kill replays with the same
// answer: nothing acknowledged is lost.
func TestCrashDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin, err := testBinary()
	if err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	addr, adminAddr := freeAddr(t), freeAddr(t)

	proc := startDev(t, bin, dataDir, addr, adminAddr)
	info, err := devenv.Read(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	targets, client, closeFn, err := devTargets(ctx, info)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()

	type answered struct {
		target *sim.Target
		req    *otpc.GenerateReferenceNumberRequest
		resp   []byte
	}
	var mu sync.Mutex
	var acked []answered
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w, m := range append(info.Merchants, info.Merchants...) {
		tg := targets[m.ID]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				req := &otpc.GenerateReferenceNumberRequest{
					RequestHeader:          client.Header(tg),
					GooglePaymentToken:     otpc.GooglePaymentToken{IssuerID: otpc.IssuerID{Value: m.DemoIssuer}, Token: m.DemoToken},
					TransactionDescription: "Google - crash test",
					Amount:                 otpc.Amount{AmountMicros: int64(100+w*1000+i) * 1_000000, CurrencyCode: "JPY"},
				}
				var resp otpc.GenerateReferenceNumberResponse
				res, err := client.Call(ctx, tg, otpc.MethodGenerateReferenceNumber, req, &resp)
				if err != nil || res.Status != 200 {
					continue // the kill cuts requests off; only 200s count
				}
				resp.ResponseHeader = otpc.ResponseHeader{}
				mu.Lock()
				acked = append(acked, answered{tg, req, resp.AppendJSON(nil)})
				mu.Unlock()
			}
		}()
	}
	// Kill it under load, once a good number of requests were answered.
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 200 || time.Now().After(deadline) {
			break
		}
		if proc.exited() {
			out, _ := os.ReadFile(proc.log)
			t.Fatalf("otpcgate dev exited under load (%v):\n%s", proc.err, out)
		}
	}
	if err := proc.stop(syscall.SIGKILL); err == nil {
		t.Fatal("otpcgate dev exited cleanly before the kill")
	}
	close(stop)
	wg.Wait()
	if len(acked) == 0 {
		t.Fatal("no request was answered before the kill")
	}

	proc = startDev(t, bin, dataDir, addr, adminAddr)
	defer proc.stop(syscall.SIGTERM)
	client.HTTP.CloseIdleConnections()
	for _, a := range acked {
		a.req.RequestHeader.RequestTimestamp = otpc.TimestampOf(time.Now())
		var resp otpc.GenerateReferenceNumberResponse
		res, err := client.Call(ctx, a.target, otpc.MethodGenerateReferenceNumber, a.req, &resp)
		if err != nil || res.Status != 200 {
			t.Fatalf("request %s acknowledged before the kill: after restart %v status %d", a.req.RequestHeader.RequestID, err, res.Status)
		}
		resp.ResponseHeader = otpc.ResponseHeader{}
		if got := resp.AppendJSON(nil); !bytes.Equal(got, a.resp) {
			t.Fatalf("request %s replays differently:\nbefore %s\nafter  %s", a.req.RequestHeader.RequestID, a.resp, got)
		}
	}
	t.Logf("%d requests acknowledged before SIGKILL; all replay identically after restart", len(acked))
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// devProcess is a running otpcgate dev child.
type devProcess struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the child has exited
	err  error         // cmd.Wait's result, set before done is closed
	log  string        // the child's stdout and stderr
}

// stop sends sig and waits for the child to exit.
func (p *devProcess) stop(sig os.Signal) error {
	_ = p.cmd.Process.Signal(sig)
	<-p.done
	return p.err
}

// logs returns what the child has written so far.
func (p *devProcess) logs() string { b, _ := os.ReadFile(p.log); return string(b) }

// exited reports whether the child has exited.
func (p *devProcess) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// startDev starts otpcgate dev with both listeners on the given addresses
// (never the defaults, so a developer's own dev does not collide) and waits
// until /healthz answers. A child that exits during start fails the test at
// once with its output. The child is killed when the test ends.
func startDev(t *testing.T, bin, dataDir, addr, adminAddr string) *devProcess {
	t.Helper()
	return startChild(t, exec.Command(bin, "dev", "--data-dir", dataDir, "--addr", addr, "--admin-addr", adminAddr,
		"--plugin", "../../../plugins/konbini", "--log-level", "warn"), addr)
}

// startChild starts cmd (otpcgate dev or serve) with its output in a log
// file and waits until https://addr/healthz answers, as startDev says.
func startChild(t *testing.T, cmd *exec.Cmd, addr string) *devProcess {
	t.Helper()
	logf, err := os.Create(filepath.Join(t.TempDir(), "child.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &devProcess{cmd: cmd, done: make(chan struct{}), log: logf.Name()}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		if !p.exited() {
			_ = p.stop(syscall.SIGKILL)
		}
	})
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	defer hc.CloseIdleConnections()
	// Generous: the first start builds the plugin, slow under load.
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		if res, err := hc.Get("https://" + addr + "/healthz"); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return p
			}
		}
		select {
		case <-p.done:
			out, _ := os.ReadFile(p.log)
			t.Fatalf("%s exited during start (%v):\n%s", cmd.Args[1], p.err, out)
		case <-time.After(100 * time.Millisecond):
		}
	}
	_ = p.stop(syscall.SIGKILL)
	out, _ := os.ReadFile(p.log)
	t.Fatalf("%s did not become healthy in 3 minutes:\n%s", cmd.Args[1], out)
	return nil
}

// TestDevBannerAndBusyPort: dev prints its banner once it serves, with the
// admin API and login page on the addresses it really uses; a second dev
// on the same port fails at once with a hint and no banner; a restart says
// it reuses the data and warns that a different --addr is ignored.
func TestDevBannerAndBusyPort(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin, err := testBinary()
	if err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	addr, adminAddr := freeAddr(t), freeAddr(t)
	proc := startDev(t, bin, dataDir, addr, adminAddr)
	banner, err := os.ReadFile(proc.log)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"otpcgate dev is up: data created", "https://" + addr + "/demo-pgp/authenticate",
		"Admin and merchant API: http://" + adminAddr, "https://" + addr + devenv.SimGooglePath, "demo-password"} {
		if !bytes.Contains(banner, []byte(want)) {
			t.Fatalf("banner lacks %q:\n%s", want, banner)
		}
	}

	out, err := exec.Command(bin, "dev", "--data-dir", t.TempDir(), "--addr", addr, "--admin-addr", freeAddr(t),
		"--plugin", "../../../plugins/konbini", "--log-level", "warn").CombinedOutput()
	if err == nil || !bytes.Contains(out, []byte("already in use")) || bytes.Contains(out, []byte("is up")) {
		t.Fatalf("second dev on a busy port: %v\n%s", err, out)
	}

	if err := proc.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("dev did not stop cleanly: %v", err)
	}
	cmd := exec.Command(bin, "dev", "--data-dir", dataDir, "--addr", freeAddr(t), "--admin-addr", adminAddr,
		"--plugin", "../../../plugins/konbini", "--log-level", "warn")
	logf := filepath.Join(t.TempDir(), "restart.log")
	f, err := os.Create(logf)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait(); f.Close() }()
	testenv.WaitFor(t, func() string {
		b, _ := os.ReadFile(logf)
		if !bytes.Contains(b, []byte("otpcgate dev is up: data reused")) {
			return "restart banner not printed yet:\n" + string(b)
		}
		if !bytes.Contains(b, []byte("reusing the development data")) || !bytes.Contains(b, []byte("is ignored")) {
			return "restart says neither that it reuses the data nor that --addr is ignored:\n" + string(b)
		}
		return ""
	})
}

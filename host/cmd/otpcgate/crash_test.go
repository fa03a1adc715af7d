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

	"github.com/otpcgate/otpcgate/host/gateway"
	"github.com/otpcgate/otpcgate/host/sim"
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
	addr := freeAddr(t)

	proc := startDev(t, bin, dataDir, addr)
	info, err := gateway.ReadDevInfo(dataDir)
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
	time.Sleep(2 * time.Second)
	if err := proc.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	proc.Wait()
	close(stop)
	wg.Wait()
	if len(acked) == 0 {
		t.Fatal("no request was answered before the kill")
	}

	proc = startDev(t, bin, dataDir, addr)
	defer func() {
		proc.Process.Signal(syscall.SIGTERM)
		proc.Wait()
	}()
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

// startDev starts otpcgate dev and waits until /healthz answers.
func startDev(t *testing.T, bin, dataDir, addr string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "dev", "--data-dir", dataDir, "--addr", addr, "--plugin", "../../../plugins/konbini", "--log-level", "warn")
	logf, err := os.Create(filepath.Join(t.TempDir(), "dev.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		res, err := hc.Get("https://" + addr + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return cmd
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	out, _ := os.ReadFile(logf.Name())
	t.Fatalf("otpcgate dev did not become healthy:\n%s", out)
	return nil
}

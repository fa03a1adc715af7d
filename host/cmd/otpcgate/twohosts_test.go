package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/host/devenv"
	"github.com/otpcgate/otpcgate/host/merchant"
	"github.com/otpcgate/otpcgate/host/sim"
	"github.com/otpcgate/otpcgate/host/sim/googlesim"
	"github.com/otpcgate/otpcgate/internal/db"
	"github.com/otpcgate/otpcgate/internal/pgtest"
	"github.com/otpcgate/otpcgate/internal/wasmbuild"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// startServe runs `otpcgate serve --config cfg` with env added to this
// process's environment and waits for its listener at addr.
func startServe(t *testing.T, bin, cfg, addr string, env ...string) *devProcess {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--config", cfg)
	cmd.Env = append(os.Environ(), env...)
	return startChild(t, cmd, addr)
}

// TestTwoHostsOnPostgres runs two `otpcgate serve` processes on one
// PostgreSQL database, as two machines behind a load balancer, with
// Google's traffic spread over both:
//   - 8 copies of one request, split over the hosts at once, make one code
//     and 8 identical answers;
//   - the key-rotation drill (new keys on both sides, made in the shared
//     database) runs through host B while traffic goes to host A too: no
//     request fails on either;
//   - host A is killed with SIGKILL mid-burst: every request either host
//     acknowledged replays identically through host B.
func TestTwoHostsOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary twice on a PostgreSQL server")
	}
	bin, err := testBinary()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dir := t.TempDir()
	addrA, addrB := freeAddr(t), freeAddr(t)
	wasm, err := wasmbuild.Build(ctx, "../../../plugins/konbini")
	if err != nil {
		t.Fatal(err)
	}
	info, err := devenv.Provision(ctx, dir, addrA, devenv.Plugin{Version: "v1", Wasm: wasm, Config: devenv.KonbiniConfig}, nil)
	if err != nil {
		t.Fatal(err)
	}
	url := pgtest.NewDatabase(t)
	if out, err := exec.Command(bin, "db", "migrate", "--data-dir", dir, "--db-path", info.DBPath,
		"--to", url).CombinedOutput(); err != nil {
		t.Fatalf("db migrate: %v\n%s", err, out)
	}
	// Google's view, with its keys read from the shared database and
	// followed as the drill changes them.
	info.DBPath = url
	s, err := openDevSession(ctx, info)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go s.store.Watch(wctx, 100*time.Millisecond)
	d, err := db.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	// A simulated Google that receives the hosts' notifications over TLS
	// (the dev certificate, trusted by the hosts through SSL_CERT_FILE),
	// set as every merchant's endpoint before the hosts start.
	accounts := make([]googlesim.DevAccount, len(info.Merchants))
	for i, m := range info.Merchants {
		accounts[i] = googlesim.DevAccount{PIAID: m.PIAID, Envelope: m.Envelope, KeysetID: m.SimKeysetID}
	}
	google, err := googlesim.NewDev(googlesim.Config{Logger: slog.New(slog.DiscardHandler)}, s.store, accounts)
	if err != nil {
		t.Fatal(err)
	}
	googleSrv := httptest.NewUnstartedServer(googlesim.DevHandler(devenv.SimGooglePath, google))
	cert, err := tls.LoadX509KeyPair(info.CertFile, info.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	googleSrv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	googleSrv.StartTLS()
	defer googleSrv.Close()
	_, googlePort, _ := net.SplitHostPort(googleSrv.Listener.Addr().String())
	if _, err := d.ExecContext(ctx, `UPDATE integrations SET google_endpoint = ?`,
		"https://localhost:"+googlePort+devenv.SimGooglePath); err != nil {
		t.Fatal(err)
	}
	adminA, adminB := freeAddr(t), freeAddr(t)
	adminOf := map[string]string{addrA: adminA, addrB: adminB}
	config := func(name, addr string) string {
		b, _ := json.Marshal(map[string]any{
			"data_dir": filepath.Join(dir, name), "db_url": url, "kek_file": info.KEKFile,
			"listen": map[string]any{"addr": addr, "cert_file": info.CertFile, "key_file": info.KeyFile},
			"admin":  map[string]any{"addr": adminOf[addr]},
			"log":    map[string]any{"level": "warn", "format": "json"},
		})
		path := filepath.Join(dir, name+".json")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	// Go reads extra roots from SSL_CERT_FILE: the hosts trust the
	// stand-in Google's certificate as they would a real CA's.
	trust := "SSL_CERT_FILE=" + info.CertFile
	hostA := startServe(t, bin, config("a", addrA), addrA, trust)
	hostB := startServe(t, bin, config("b", addrB), addrB, trust)
	onHost := func(m *sim.Merchant, addr string) *sim.Target {
		tg := *m.Target
		tg.BaseURL = strings.Replace(tg.BaseURL, addrA, addr, 1)
		return &tg
	}
	request := func(m *sim.Merchant, micros int64) *otpc.GenerateReferenceNumberRequest {
		return &otpc.GenerateReferenceNumberRequest{
			RequestHeader:          s.client.Header(m.Target),
			GooglePaymentToken:     otpc.GooglePaymentToken{IssuerID: otpc.IssuerID{Value: m.DemoIssuer}, Token: m.DemoToken},
			TransactionDescription: "Google - two hosts",
			Amount:                 otpc.Amount{AmountMicros: micros, CurrencyCode: "JPY"},
		}
	}
	call := func(tg *sim.Target, req *otpc.GenerateReferenceNumberRequest) ([]byte, int, error) {
		var resp otpc.GenerateReferenceNumberResponse
		res, err := s.client.Call(ctx, tg, otpc.MethodGenerateReferenceNumber, req, &resp)
		if err != nil {
			return nil, 0, err
		}
		resp.ResponseHeader = otpc.ResponseHeader{}
		return resp.AppendJSON(nil), res.Status, nil
	}
	t.Run("duplicates split over the hosts", func(t *testing.T) {
		for _, m := range s.merchants {
			req := request(m, 120_000000)
			answers := make([][]byte, 8)
			var wg sync.WaitGroup
			for i := range answers {
				tg := onHost(m, addrA)
				if i%2 == 1 {
					tg = onHost(m, addrB)
				}
				wg.Go(func() {
					body, status, err := call(tg, req)
					if err != nil || status != 200 {
						t.Errorf("copy %d: %v status %d", i, err, status)
					}
					answers[i] = body
				})
			}
			wg.Wait()
			for i := range answers {
				if !bytes.Equal(answers[i], answers[0]) {
					t.Fatalf("%s: copy %d answered differently:\n%s\n%s", m.ID, i, answers[0], answers[i])
				}
			}
			var codes int
			if err := d.QueryRowContext(ctx, `SELECT COUNT(*) FROM codes WHERE piaid = ? AND transaction_id = ?`,
				m.Target.PIAID, req.RequestHeader.RequestID).Scan(&codes); err != nil || codes != 1 {
				t.Fatalf("%s: %d codes (%v), want 1", m.ID, codes, err)
			}
		}
	})

	t.Run("payments reported to both hosts, each notified once", func(t *testing.T) {
		tokens := map[string]string{}
		for _, m := range info.Merchants {
			tokens[m.ID] = m.MerchantToken
		}
		const n = 24
		paid := map[string]bool{}
		for i := range n {
			m := s.merchants[i%len(s.merchants)]
			addr := addrA
			if i%4 >= 2 {
				addr = addrB
			}
			req := request(m, int64(300+i)*1_000000)
			var resp otpc.GenerateReferenceNumberResponse
			res, err := s.client.Call(ctx, onHost(m, addr), otpc.MethodGenerateReferenceNumber, req, &resp)
			if err != nil || res.Status != 200 || resp.Result.Success == nil {
				t.Fatalf("generate %d: %v %v", i, err, res)
			}
			d := resp.Result.Success.DisplayableReferenceNumber
			printable := ""
			if d.PrintableString != nil {
				printable = *d.PrintableString
			} else if d.BarcodeWithPrintableString != nil {
				printable = d.BarcodeWithPrintableString.PrintableString
			}
			// Reported through the other host's merchant API than the
			// one that generated it.
			other := adminB
			if addr == addrB {
				other = adminA
			}
			ev := &sim.RemoteMerchantEvents{BaseURL: "http://" + other, Tokens: tokens, HTTP: s.client.HTTP}
			pr, err := ev.ReportPayment(ctx, m.ID, merchant.Payment{Key: "two-hosts-" + req.RequestHeader.RequestID,
				Printable: printable, Amount: req.Amount, StoreID: "store-1"})
			if err != nil || !pr.Accepted {
				t.Fatalf("payment %d: %v %+v", i, err, pr)
			}
			paid[req.RequestHeader.RequestID] = true
		}
		wait, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if _, err := google.WaitCalls(wait, n, otpc.MethodReferenceNumberPaidNotification); err != nil {
			t.Fatalf("notifications: %v (%d calls so far)", err, len(google.Calls()))
		}
		// Both hosts' workers keep polling: give a duplicate time to come.
		time.Sleep(2 * time.Second)
		seen := map[string]int{}
		for _, c := range google.Calls() {
			if c.Method != otpc.MethodReferenceNumberPaidNotification {
				continue
			}
			seen[c.Request.(*otpc.ReferenceNumberPaidNotificationRequest).GenerateReferenceNumberRequestID]++
		}
		for id := range paid {
			if seen[id] != 1 {
				t.Errorf("payment of %s notified %d times, want once", id, seen[id])
			}
		}
		if len(seen) != n {
			t.Errorf("%d codes notified, %d paid", len(seen), n)
		}
		var delivered, other int
		if err := d.QueryRowContext(ctx, `SELECT
			(SELECT COUNT(*) FROM outbox WHERE method = ? AND state = 'delivered'),
			(SELECT COUNT(*) FROM outbox WHERE state <> 'delivered')`, otpc.MethodReferenceNumberPaidNotification).Scan(&delivered, &other); err != nil {
			t.Fatal(err)
		}
		if delivered != n || other != 0 {
			t.Errorf("outbox: %d delivered, %d not, want %d and 0", delivered, other, n)
		}
	})

	t.Run("key rotation drill through host B, traffic on both", func(t *testing.T) {
		// dev.json of a second directory sends the drill to host B and
		// its keys to the shared database.
		drillInfo := *info
		drillInfo.Merchants = append([]devenv.Merchant(nil), info.Merchants...)
		for i := range drillInfo.Merchants {
			drillInfo.Merchants[i].BaseURL = strings.Replace(drillInfo.Merchants[i].BaseURL, addrA, addrB, 1)
		}
		drillDir := t.TempDir()
		b, _ := json.MarshalIndent(&drillInfo, "", "  ")
		if err := os.WriteFile(filepath.Join(drillDir, devenv.File), b, 0o600); err != nil {
			t.Fatal(err)
		}
		var sent, failed atomic.Int64
		var firstErr atomic.Value
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w, m := range s.merchants {
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					_, status, err := call(onHost(m, addrA), request(m, int64(200+w*10000+i)*1_000000))
					sent.Add(1)
					if err != nil || status != 200 {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, fmt.Sprintf("%s on host A: %v status %d", m.ID, err, status))
					}
				}
			})
		}
		e, out, errb := testEnv(nil)
		err := simRun(ctx, e, drillDir, "", "drill", false, 2500*time.Millisecond, 2)
		close(stop)
		wg.Wait()
		if err != nil {
			t.Fatalf("drill through host B: %v\n%s\n%s\nhost B log:\n%s", err, out, errb, hostB.logs())
		}
		if failed.Load() > 0 {
			t.Fatalf("%d of %d requests to host A failed during the drill; first: %v\nhost A log:\n%s", failed.Load(), sent.Load(), firstErr.Load(), hostA.logs())
		}
		t.Logf("drill through host B passed; host A answered all %d requests meanwhile\n%s", sent.Load(), out)
	})

	t.Run("SIGKILL one host mid-burst", func(t *testing.T) {
		type answered struct {
			m    *sim.Merchant
			req  *otpc.GenerateReferenceNumberRequest
			resp []byte
		}
		var mu sync.Mutex
		var acked []answered
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := range 4 {
			m := s.merchants[w%len(s.merchants)]
			addr := addrA
			if w >= 2 {
				addr = addrB
			}
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					req := request(m, int64(500+w*10000+i)*1_000000)
					body, status, err := call(onHost(m, addr), req)
					if err != nil || status != 200 {
						continue // the kill cuts requests off; only 200s count
					}
					mu.Lock()
					acked = append(acked, answered{m, req, body})
					mu.Unlock()
				}
			})
		}
		for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(10 * time.Millisecond) {
			mu.Lock()
			n := len(acked)
			mu.Unlock()
			if n >= 200 || time.Now().After(deadline) {
				break
			}
		}
		if err := hostA.stop(syscall.SIGKILL); err == nil {
			t.Fatal("host A exited cleanly before the kill")
		}
		time.Sleep(200 * time.Millisecond) // host B keeps serving meanwhile
		close(stop)
		wg.Wait()
		if len(acked) < 100 {
			t.Fatalf("only %d requests acknowledged before the kill", len(acked))
		}
		s.client.HTTP.CloseIdleConnections()
		for _, a := range acked {
			a.req.RequestHeader.RequestTimestamp = otpc.TimestampOf(time.Now())
			body, status, err := call(onHost(a.m, addrB), a.req)
			if err != nil || status != 200 {
				t.Fatalf("request %s acknowledged before the kill: through host B %v status %d", a.req.RequestHeader.RequestID, err, status)
			}
			if !bytes.Equal(body, a.resp) {
				t.Fatalf("request %s replays differently through host B:\nbefore %s\nafter  %s", a.req.RequestHeader.RequestID, a.resp, body)
			}
		}
		t.Logf("%d requests acknowledged by the two hosts before host A was killed; all replay identically through host B", len(acked))
	})
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/otpcgate/otpcgate/host/devenv"
	"github.com/otpcgate/otpcgate/host/sim"
	"github.com/otpcgate/otpcgate/keystore"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// loadOptions are the flags of `sim load`.
type loadOptions struct {
	dataDir     string
	merchant    string
	concurrency int
	rate        float64
	requests    int
	duration    time.Duration
	gatewayPID  int
	asJSON      bool
	// preseal seals every request before the clock starts (count mode),
	// so the load generator takes no CPU while it measures.
	preseal bool
}

// LoadReport is the outcome of `sim load`, printed as a table or JSON.
type LoadReport struct {
	Merchant    string         `json:"merchant"`
	Method      string         `json:"method"`
	Concurrency int            `json:"concurrency"`
	Rate        float64        `json:"targetRate,omitempty"`
	Presealed   bool           `json:"presealed"`
	Sent        int            `json:"sent"`
	OK          int            `json:"ok"`
	Errors      map[string]int `json:"errors"`
	Seconds     float64        `json:"seconds"`
	ReqPerSec   float64        `json:"reqPerSec"`
	P50ms       float64        `json:"p50Ms"`
	P90ms       float64        `json:"p90Ms"`
	P99ms       float64        `json:"p99Ms"`
	MaxMs       float64        `json:"maxMs"`
	// GatewayCPUms is the gateway process's CPU time (user + system) per
	// answered request, read from /proc when --gateway-pid is given.
	GatewayCPUms float64 `json:"gatewayCpuMsPerRequest,omitempty"`
	// LoadCPUms is this process's CPU per request (sealing included), to
	// tell how much of the machine the load generator itself took.
	LoadCPUms float64 `json:"loadCpuMsPerRequest"`
}

func newSimLoadCmd(e env) *cobra.Command {
	var o loadOptions
	cmd := &cobra.Command{
		Use:   "load",
		Short: "Drive a running gateway with generateReferenceNumber at a fixed concurrency or rate and report req/s and latency",
		Long: "load plays Google from this process against the gateway of an otpcgate dev installation (or a serve\n" +
			"on the same database: dev.json names the base URLs and keys). Requests are sealed ahead of sending by\n" +
			"background goroutines (each a new requestId), sent over keep-alive connections from --concurrency\n" +
			"workers, as fast as they are answered or at --rate requests per second (latency then counts from the\n" +
			"scheduled send, so a slow gateway is not hidden by a waiting client). Answers must be 200; anything\n" +
			"else is counted by status. With --gateway-pid the gateway's CPU per request is read from /proc.\n" +
			"Run it from another machine to size a host; on the same machine it shares the cores (its own CPU\n" +
			"per request is reported).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rep, err := simLoad(cmd.Context(), e, o)
			if err != nil {
				return err
			}
			if o.asJSON {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			rep.writeTable(e.stdout)
			if rep.OK < rep.Sent {
				return fmt.Errorf("%d of %d requests were not answered 200", rep.Sent-rep.OK, rep.Sent)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.dataDir, "data-dir", filepath.Join("data", "dev"), "data directory of otpcgate dev (dev.json)")
	f.StringVar(&o.merchant, "merchant", "all", "the demo merchant to call, or all of them in turn")
	f.IntVar(&o.concurrency, "concurrency", 8, "requests in flight at once (keep-alive connections)")
	f.Float64Var(&o.rate, "rate", 0, "requests per second; 0 sends as fast as the gateway answers")
	f.IntVar(&o.requests, "requests", 2000, "requests to send (ignored with --duration)")
	f.DurationVar(&o.duration, "duration", 0, "send for this long instead of a number of requests")
	f.IntVar(&o.gatewayPID, "gateway-pid", 0, "the gateway's process id, to report its CPU per request (Linux /proc)")
	f.BoolVar(&o.asJSON, "json", false, "print the report as JSON")
	f.BoolVar(&o.preseal, "preseal", true, "with --requests: seal every request before sending the first (keep the run under the gateway's ±60 s timestamp skew)")
	return cmd
}

// sealed is one request ready to send.
type sealed struct {
	body             []byte
	url, contentType string
	at               time.Time // scheduled send time (rate mode), else zero
}

func simLoad(ctx context.Context, e env, o loadOptions) (*LoadReport, error) {
	if o.concurrency < 1 || o.concurrency > 1024 {
		return nil, errors.New("--concurrency must be between 1 and 1024")
	}
	if o.duration <= 0 && o.requests < 1 {
		return nil, errors.New("--requests must be at least 1 (or give --duration)")
	}
	if o.rate < 0 {
		return nil, errors.New("--rate must not be negative")
	}
	if o.duration > 0 {
		o.preseal = false
	}
	info, err := devenv.Read(o.dataDir)
	if err != nil {
		return nil, fmt.Errorf("%w (start otpcgate dev first)", err)
	}
	s, err := openDevSession(ctx, info)
	if err != nil {
		return nil, err
	}
	defer s.close()
	// The merchants to call, in turn: one, or all of them ("all"), as
	// Google's traffic spreads over a host's merchants (each holds at
	// most all admission slots but one).
	type loadTarget struct {
		m   *sim.Merchant
		ks  *keystore.Keyset
		url string
	}
	var targets []loadTarget
	for _, x := range s.merchants {
		if x.ID != o.merchant && o.merchant != "all" {
			continue
		}
		ks, err := x.Target.Keyset(ctx)
		if err != nil {
			return nil, err
		}
		targets = append(targets, loadTarget{m: x, ks: ks, url: x.Target.BaseURL + otpc.PathPrefix + otpc.MethodGenerateReferenceNumber})
	}
	if len(targets) == 0 {
		return nil, fmt.Errorf("no merchant %q in %s", o.merchant, filepath.Join(o.dataDir, devenv.File))
	}
	tr := s.client.HTTP.Transport.(*http.Transport)
	tr.MaxIdleConnsPerHost = o.concurrency
	tr.MaxConnsPerHost = o.concurrency

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Sealers stay a little ahead of the workers: a request's timestamp
	// must be within the gateway's skew when it arrives.
	capacity := 4 * o.concurrency
	if o.preseal {
		capacity = o.requests // everything sealed before the clock starts
	}
	queue := make(chan sealed, capacity)
	var produced atomic.Int64
	limit := int64(o.requests)
	if o.duration > 0 {
		limit = 1 << 62
	}
	var sealErr atomic.Value
	var sealers sync.WaitGroup
	for range max(1, runtime.GOMAXPROCS(0)) {
		sealers.Go(func() {
			for {
				n := produced.Add(1)
				if n > limit {
					return
				}
				tg := &targets[n%int64(len(targets))]
				m := tg.m
				req := &otpc.GenerateReferenceNumberRequest{
					RequestHeader:          s.client.Header(m.Target),
					GooglePaymentToken:     otpc.GooglePaymentToken{IssuerID: otpc.IssuerID{Value: m.DemoIssuer}, Token: m.DemoToken},
					TransactionDescription: "Google - otpcgate sim load",
					Amount:                 otpc.Amount{AmountMicros: (1000 + n%100000) * 1_000000, CurrencyCode: "JPY"},
				}
				body, err := m.Target.Codec.Seal(ctx, tg.ks, req.AppendJSON(nil))
				if err != nil {
					sealErr.CompareAndSwap(nil, err)
					cancel()
					return
				}
				select {
				case queue <- sealed{body: body, url: tg.url, contentType: m.Target.Codec.ContentType()}:
				case <-ctx.Done():
					return
				}
			}
		})
	}
	go func() { sealers.Wait(); close(queue) }()
	if o.preseal {
		fmt.Fprintf(e.stderr, "sim load: sealing %d requests before the clock starts\n", o.requests)
		sealers.Wait()
		if ctx.Err() != nil {
			if err, _ := sealErr.Load().(error); err != nil {
				return nil, fmt.Errorf("sealing requests: %w", err)
			}
			return nil, ctx.Err()
		}
	}

	// With --rate, a pacer stamps each request with its scheduled time.
	work := queue
	if o.rate > 0 {
		paced := make(chan sealed, o.concurrency)
		go func() {
			defer close(paced)
			interval := time.Duration(float64(time.Second) / o.rate)
			next := time.Now()
			for r := range queue {
				if d := time.Until(next); d > 0 {
					select {
					case <-time.After(d):
					case <-ctx.Done():
						return
					}
				}
				r.at = next
				next = next.Add(interval)
				select {
				case paced <- r:
				case <-ctx.Done():
					return
				}
			}
		}()
		work = paced
	}

	cpu0, cpuErr := procCPU(o.gatewayPID)
	self0 := selfCPU()
	var mu sync.Mutex
	var lat []time.Duration
	errs := map[string]int{}
	var sent, ok atomic.Int64
	start := time.Now()
	stopAt := time.Time{}
	if o.duration > 0 {
		stopAt = start.Add(o.duration)
	}
	progressDone := progressLine(ctx, e.stderr, start, &sent, &ok)
	var workers sync.WaitGroup
	for range o.concurrency {
		workers.Go(func() {
			for r := range work {
				if !stopAt.IsZero() && time.Now().After(stopAt) {
					cancel()
					return
				}
				t0 := r.at
				if t0.IsZero() {
					t0 = time.Now()
				}
				status, err := post(s.client.HTTP, r.url, r.contentType, r.body)
				d := time.Since(t0)
				sent.Add(1)
				mu.Lock()
				switch {
				case err != nil:
					errs["transport"]++
				case status != http.StatusOK:
					errs[strconv.Itoa(status)]++
				default:
					ok.Add(1)
					lat = append(lat, d)
				}
				mu.Unlock()
			}
		})
	}
	workers.Wait()
	elapsed := time.Since(start)
	progressDone()
	cancel()
	if err, _ := sealErr.Load().(error); err != nil {
		return nil, fmt.Errorf("sealing requests: %w", err)
	}
	if ctxErr := context.Cause(ctx); sent.Load() == 0 && ctxErr != nil && !errors.Is(ctxErr, context.Canceled) {
		return nil, ctxErr
	}
	rep := &LoadReport{Merchant: o.merchant, Method: otpc.MethodGenerateReferenceNumber, Concurrency: o.concurrency, Rate: o.rate, Presealed: o.preseal,
		Sent: int(sent.Load()), OK: int(ok.Load()), Errors: errs, Seconds: elapsed.Seconds()}
	rep.ReqPerSec = float64(rep.OK) / elapsed.Seconds()
	slices.Sort(lat)
	pct := func(p int) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[(len(lat)-1)*p/100]) / float64(time.Millisecond)
	}
	rep.P50ms, rep.P90ms, rep.P99ms, rep.MaxMs = pct(50), pct(90), pct(99), pct(100)
	if rep.OK > 0 {
		if cpuErr == nil && o.gatewayPID > 0 {
			if cpu1, err := procCPU(o.gatewayPID); err == nil {
				rep.GatewayCPUms = float64(cpu1-cpu0) / float64(time.Millisecond) / float64(rep.OK)
			}
		}
		rep.LoadCPUms = float64(selfCPU()-self0) / float64(time.Millisecond) / float64(rep.OK)
	}
	if cpuErr != nil && o.gatewayPID > 0 {
		fmt.Fprintf(e.stderr, "sim load: gateway CPU not measured: %v\n", cpuErr)
	}
	return rep, nil
}

func post(c *http.Client, url, contentType string, body []byte) (int, error) {
	res, err := c.Post(url, contentType, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	_, err = io.Copy(io.Discard, res.Body)
	return res.StatusCode, err
}

// progressLine reports progress every second on a terminal (one redrawn
// line) or every five seconds elsewhere, until the returned func is
// called.
func progressLine(ctx context.Context, w io.Writer, start time.Time, sent, ok *atomic.Int64) (done func()) {
	term := isTerminal(w)
	every := time.Second
	if !term {
		every = 5 * time.Second
	}
	stop := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		last, lastAt := int64(0), start
		for {
			select {
			case <-stop:
				if term {
					fmt.Fprintln(w)
				}
				return
			case <-ctx.Done():
			case now := <-t.C:
				n := ok.Load()
				line := fmt.Sprintf("sim load: %s, %d sent, %d ok, %.0f req/s now",
					now.Sub(start).Round(time.Second), sent.Load(), n, float64(n-last)/now.Sub(lastAt).Seconds())
				last, lastAt = n, now
				if term {
					fmt.Fprintf(w, "\r%-70s", line)
				} else {
					fmt.Fprintln(w, line)
				}
			}
		}
	}()
	return func() { close(stop); <-finished }
}

// procCPU returns the user+system CPU time of process pid from
// /proc/pid/stat (fields 14 and 15, in clock ticks of 1/100 s on Linux).
func procCPU(pid int) (time.Duration, error) {
	if pid <= 0 {
		return 0, errors.New("no --gateway-pid")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after it start
	// past its closing parenthesis.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc stat format")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("unexpected /proc stat format")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

// selfCPU is this process's user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (r *LoadReport) writeTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	rate := "as fast as answered"
	if r.Rate > 0 {
		rate = fmt.Sprintf("%.0f req/s target", r.Rate)
	}
	sealing := "sealed while sending"
	if r.Presealed {
		sealing = "sealed before the clock"
	}
	fmt.Fprintf(tw, "merchant\t%s (%s, concurrency %d, %s, %s)\n", r.Merchant, r.Method, r.Concurrency, rate, sealing)
	fmt.Fprintf(tw, "requests\t%d sent, %d ok in %.1f s\n", r.Sent, r.OK, r.Seconds)
	fmt.Fprintf(tw, "throughput\t%.1f req/s\n", r.ReqPerSec)
	fmt.Fprintf(tw, "latency ms\tp50 %.1f  p90 %.1f  p99 %.1f  max %.1f\n", r.P50ms, r.P90ms, r.P99ms, r.MaxMs)
	if len(r.Errors) > 0 {
		keys := slices.Sorted(maps.Keys(r.Errors))
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s: %d", k, r.Errors[k]))
		}
		fmt.Fprintf(tw, "errors\t%s\n", strings.Join(parts, ", "))
	} else {
		fmt.Fprintf(tw, "errors\tnone\n")
	}
	if r.GatewayCPUms > 0 {
		fmt.Fprintf(tw, "gateway CPU\t%.2f ms per request\n", r.GatewayCPUms)
	}
	fmt.Fprintf(tw, "load generator CPU\t%.2f ms per request while sending\n", r.LoadCPUms)
	tw.Flush()
}

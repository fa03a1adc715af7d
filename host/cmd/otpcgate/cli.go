package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/otpcgate/otpcgate/host/admin"
	"github.com/otpcgate/otpcgate/internal/tlsutil"
)

// Environment variables of the admin CLI commands.
const (
	adminURLEnv   = "OTPCGATE_ADMIN_URL"
	adminTokenEnv = "OTPCGATE_ADMIN_TOKEN"
)

// apiFlags are the flags every admin API command shares.
type apiFlags struct {
	url, token, caFile string
	json               bool
	timeout            time.Duration
}

// addAPIFlags registers the admin API flags on a command group.
func addAPIFlags(cmd *cobra.Command, f *apiFlags) {
	fs := cmd.PersistentFlags()
	fs.StringVar(&f.url, "admin-url", "", "admin API base URL (env "+adminURLEnv+"; default: admin.addr of --config, else http://127.0.0.1:8444)")
	fs.StringVar(&f.token, "token", "", "admin bearer token (env "+adminTokenEnv+")")
	fs.StringVar(&f.caFile, "admin-ca-file", "", "PEM certificate(s) to trust for an https admin URL")
	fs.BoolVar(&f.json, "json", false, "print JSON instead of tables")
	fs.DurationVar(&f.timeout, "admin-timeout", 5*time.Minute, "time limit per API call")
	addSettingFlags(fs, "admin.addr")
}

// client builds the API client from flags, then the environment, then the
// configuration (--config or OTPCGATE_CONFIG: the admin address the server
// listens on), then the default address.
func (f *apiFlags) client(cmd *cobra.Command, e env) (*admin.Client, error) {
	look := func(k string) string {
		if e.lookup == nil {
			return ""
		}
		v, _ := e.lookup(k)
		return v
	}
	c := &admin.Client{BaseURL: f.url, Token: f.token}
	if c.BaseURL == "" {
		c.BaseURL = look(adminURLEnv)
	}
	if c.BaseURL == "" {
		cfg, err := loadConfig(cmd, e)
		if err != nil {
			return nil, err
		}
		if cfg.Admin.Addr == "" {
			return nil, errors.New("the configuration disables the admin API (admin.addr is empty)\n  next: pass --admin-url or set " + adminURLEnv)
		}
		scheme := "https://" // the admin API requires TLS off loopback
		if admin.IsLoopback(cfg.Admin.Addr) {
			scheme = "http://"
		}
		c.BaseURL = scheme + cfg.Admin.Addr
	}
	if c.Token == "" {
		c.Token = look(adminTokenEnv)
	}
	if c.Token == "" {
		return nil, errors.New("no admin token\n  next: pass --token or set " + adminTokenEnv +
			"; the first operator token comes from `otpcgate tokens bootstrap --config FILE`")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if f.caFile != "" {
		pool, err := tlsutil.ReadCertPool(f.caFile)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	c.HTTP = &http.Client{Transport: tr, Timeout: f.timeout}
	return c, nil
}

// call runs one API call with the command's context.
func (f *apiFlags) call(cmd *cobra.Command, e env, method, path string, body, out any) error {
	c, err := f.client(cmd, e)
	if err != nil {
		return err
	}
	return c.Do(cmd.Context(), method, path, body, out)
}

// resolveMerchant fills an empty --merchant from a merchant token (the
// API tells whose it is), so a merchant's own tooling need not repeat its
// id; an operator token serves every merchant and needs the flag.
func (f *apiFlags) resolveMerchant(cmd *cobra.Command, e env, merchant *string) error {
	if *merchant != "" {
		return nil
	}
	var t admin.Token
	if err := f.call(cmd, e, http.MethodGet, "/v1/whoami", nil, &t); err != nil {
		return fmt.Errorf("--merchant is required: %w", err)
	}
	if t.Scope != admin.ScopeMerchant || t.MerchantID == "" {
		return errors.New("--merchant is required with an operator token\n  next: list merchants with `otpcgate merchants list`")
	}
	*merchant = t.MerchantID
	return nil
}

// print writes v as JSON with --json, else calls table.
func (f *apiFlags) print(w io.Writer, v any, table func(tw *tabwriter.Writer)) error {
	if f.json {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

// progressReader reports bytes read to w as a percentage line. Read runs
// on the HTTP transport's goroutine; it stops writing to w before it closes
// sent, so the caller may use w from then on.
type progressReader struct {
	r        io.Reader
	total, n int64
	w        io.Writer
	label    string
	last     int64
	finished bool
	// lines, when w is not a terminal (a log, a CI job), writes a line per
	// quarter instead of redrawing one line per percent.
	lines bool
	// sent, if set, is closed once every byte was read.
	sent chan struct{}
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if p.finished {
		return n, err
	}
	switch pct := p.n * 100 / max(p.total, 1); {
	case p.lines:
		if pct/25 != p.last/25 || p.n >= p.total {
			p.last = pct
			fmt.Fprintf(p.w, "%s %3d%% (%s of %s)\n", p.label, pct, mib(p.n), mib(p.total))
		}
	case pct != p.last || p.n >= p.total:
		p.last = pct
		fmt.Fprintf(p.w, "\r%s %3d%% (%s of %s)", p.label, pct, mib(p.n), mib(p.total))
	}
	if p.n >= p.total {
		p.finished = true
		if p.sent != nil {
			close(p.sent)
		}
	}
	return n, err
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// isTerminal reports whether w is a character device, where redrawing a
// line with \r makes sense.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// spinner prints elapsed time for a server-side phase until stop is called;
// on anything but a terminal it writes one line at the start and one at the
// end.
func spinner(ctx context.Context, w io.Writer, label string) (stop func()) {
	start := time.Now()
	if !isTerminal(w) {
		fmt.Fprintf(w, "%s ...\n", label)
		return func() { fmt.Fprintf(w, "%s done in %s\n", label, time.Since(start).Round(time.Millisecond)) }
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		frames := `|/-\`
		for i := 0; ; i++ {
			fmt.Fprintf(w, "\r%s %c %s", label, frames[i%len(frames)], time.Since(start).Round(time.Second))
			select {
			case <-ctx.Done():
				fmt.Fprintf(w, "\r%s done in %s\n", label, time.Since(start).Round(time.Millisecond))
				return
			case <-t.C:
			}
		}
	}()
	return func() { cancel(); <-done }
}

func short(id string) string {
	if len(id) > 16 {
		return id[:16] + "…"
	}
	return id
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}

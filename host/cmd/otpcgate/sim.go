package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/otpcgate/otpcgate/host/admin"
	"github.com/otpcgate/otpcgate/host/devenv"
	"github.com/otpcgate/otpcgate/host/envelope"
	"github.com/otpcgate/otpcgate/host/sim"
	"github.com/otpcgate/otpcgate/host/sim/googlesim"
	"github.com/otpcgate/otpcgate/host/weblogin"
	"github.com/otpcgate/otpcgate/internal/db"
	"github.com/otpcgate/otpcgate/internal/tlsutil"
	"github.com/otpcgate/otpcgate/keystore"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

func newSimCmd(e env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Play Google against a gateway",
		Long: "Plays Google against a running otpcgate dev installation: smoke checks, the " +
			"scenario suites with a pass/fail report, and the key-rotation drill to run " +
			"before launch. Only the data directory is needed (dev.json describes the rest). " +
			"`sim echo` calls any gateway, serve included, with a stand-in Google key.",
	}
	var dataDir string
	smoke := &cobra.Command{
		Use:   "smoke",
		Short: "Echo, generate and cancel a code on every demo merchant of an otpcgate dev installation",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return simSmoke(cmd.Context(), e, dataDir)
		},
	}
	smoke.Flags().StringVar(&dataDir, "data-dir", filepath.Join("data", "dev"), "data directory of otpcgate dev")
	cmd.AddCommand(smoke, newSimRunCmd(e, "run"), newSimRunCmd(e, "drill"), newSimEchoCmd(e), newSimLoadCmd(e), newSimCallCmd(e))
	return cmd
}

// newSimRunCmd builds `sim run` (any suite) or `sim drill` (the rotation
// drill only).
func newSimRunCmd(e env, use string) *cobra.Command {
	var dataDir, suite string
	var asJSON bool
	var keyWait time.Duration
	var workers int
	cmd := &cobra.Command{
		Use:   use,
		Short: "Run the scenario suites against a running otpcgate dev and report pass/fail",
		Long: "Runs the scenario suites against a running otpcgate dev: happy (every method), " +
			"idempotency (replays, 412, concurrent duplicates), errors (each error member), " +
			"refusals (what a merchant says no to is a 4xx, never a 503: amount and currency out of range, " +
			"refund above the remaining amount, unknown token), " +
			"clock-skew (±59 s accepted, ±61 s refused), notifications (merchant events " +
			"reported over dev's merchant API with dev.json's merchant tokens, at dev.json's " +
			"adminUrl or else admin.addr as configured for dev; Google's side observed through " +
			"the dev listener's /sim-google hooks; skipped, saying why, when unavailable) and drill (the key-rotation drill: under traffic, new keys on both sides, " +
			"exchanged, promoted, old keys retired and disabled, zero failures allowed, old " +
			"keys refused afterwards; it leaves the installation on the new keys). Prints a " +
			"table, or JSON with --json; exits non-zero if any step failed.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd, e)
			if err != nil {
				return err
			}
			return simRun(cmd.Context(), e, dataDir, cfg.Admin.Addr, suite, asJSON, keyWait, workers)
		},
	}
	if use == "drill" {
		cmd.Short = "Run the key-rotation drill against a running otpcgate dev (the check to pass before launch)"
		suite = "drill"
	} else {
		cmd.Flags().StringVar(&suite, "suite", "all", "all, or a comma-separated list of happy, idempotency, errors, refusals, clock-skew, notifications, drill")
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", filepath.Join("data", "dev"), "data directory of otpcgate dev")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	cmd.Flags().DurationVar(&keyWait, "key-wait", 2500*time.Millisecond,
		"drill: wait after each key change for the gateway to pick it up (otpcgate polls its keystore every second)")
	cmd.Flags().IntVar(&workers, "workers", 2, "drill: traffic goroutines per merchant")
	addSettingFlags(cmd.Flags(), "admin.addr")
	return cmd
}

// authCallback is the gspCallbackUrl the simulator sends to the login
// page: Google's callback prefix, so a production-like allow-list passes
// it. The redirect is checked, never followed.
const authCallback = "https://payments.google.com/payments/apis-secure/otpcgate-sim-callback"

// errSimFailed is returned when a sim run has failed steps.
var errSimFailed = errors.New("sim: checks failed")

// simRun runs the selected suites against the dev installation in dataDir.
// adminAddr (admin.addr of the configuration) locates the merchant API when
// dev.json does not record it.
func simRun(ctx context.Context, e env, dataDir, adminAddr, suite string, asJSON bool, keyWait time.Duration, workers int) error {
	scenarios, err := sim.SuitesByName(suite)
	if err != nil {
		return err
	}
	info, err := devenv.Read(dataDir)
	if err != nil {
		return fmt.Errorf("%w (start otpcgate dev first)", err)
	}
	s, err := openDevSession(ctx, info)
	if err != nil {
		return err
	}
	defer s.close()
	events, google, missing := devLevers(ctx, info, s, adminAddr)
	senv := &sim.Env{
		Client:    s.client,
		Merchants: s.merchants,
		Keys:      s.store,
		// Without the merchant API, merchant events (and so notifications,
		// refunds of paid codes) are skipped, not failed.
		Events:        events,
		EventsMissing: missing,
		Google:        google,
		// associateAccount logs in on the merchant's web login page as the
		// dev plugin's demo account (see devenv.KonbiniConfig); a
		// gateway that serves no page makes the step SKIP.
		AuthSession:    sim.WebLoginSession(s.client, weblogin.DefaultPath, authCallback, "demo-account-1", "demo-password"),
		KeyPropagation: keyWait,
		DrillWorkers:   workers,
		Progress: func(format string, args ...any) {
			fmt.Fprintf(e.stderr, format+"\n", args...)
		},
	}
	rep := sim.Run(ctx, senv, scenarios...)
	// The drill leaves the installation on new keys: dev.json's key files
	// follow, so external clients reading them keep working.
	if err := devenv.RefreshKeyFiles(ctx, info, s.store); err != nil {
		return fmt.Errorf("sim: the run is over, but dev.json's key files were not refreshed: %w", err)
	}
	if asJSON {
		err = rep.WriteJSON(e.stdout)
	} else {
		err = rep.WriteTable(e.stdout)
	}
	if err != nil {
		return err
	}
	if !rep.OK() {
		return fmt.Errorf("%w: %d of %d steps", errSimFailed, rep.Failed, len(rep.Steps))
	}
	return nil
}

// devLevers returns the merchant API (with dev.json's merchant tokens) and
// the dev gateway's simulated Google, each nil when it cannot be used, and
// why the merchant API is missing. dev.json's adminUrl wins over adminAddr.
func devLevers(ctx context.Context, info *devenv.Info, s *devSession, adminAddr string) (sim.MerchantEvents, sim.GoogleView, string) {
	var google sim.GoogleView
	rg := googlesim.NewRemote("https://"+info.Addr+devenv.SimGooglePath, s.client.HTTP)
	if rg.Ping(ctx) == nil {
		google = rg
	}
	tokens := map[string]string{}
	for _, m := range info.Merchants {
		if m.MerchantToken == "" {
			return nil, google, "merchant API not reachable: dev.json has no merchant tokens (provisioned by an older otpcgate dev; recreate the data directory)"
		}
		tokens[m.ID] = m.MerchantToken
	}
	url := info.AdminURL
	if url == "" {
		if adminAddr == "" {
			return nil, google, "merchant API not reachable: admin.addr is empty"
		}
		url = "https://" + adminAddr
		if admin.IsLoopback(adminAddr) {
			url = "http://" + adminAddr
		}
	}
	ev := &sim.RemoteMerchantEvents{BaseURL: url, Tokens: tokens, HTTP: s.client.HTTP}
	if len(info.Merchants) > 0 {
		// Any merchant token may ask who it is: proves address and token.
		c := &admin.Client{BaseURL: url, Token: tokens[info.Merchants[0].ID], HTTP: s.client.HTTP}
		if err := c.Do(ctx, http.MethodGet, "/v1/whoami", nil, nil); err != nil {
			msg, _, _ := strings.Cut(err.Error(), "\n") // the client's hint is for CLI users
			return nil, google, fmt.Sprintf("merchant API not reachable at %s (set admin.addr as for otpcgate dev): %s", url, msg)
		}
	}
	return ev, google, ""
}

// devSession is Google's view of a dev installation from another process:
// the targets, a client trusting the dev certificate and the keystore
// opened on the shared database file.
type devSession struct {
	targets   map[string]*sim.Target
	merchants []*sim.Merchant
	client    *sim.Client
	store     *keystore.Store
	close     func()
}

// devTargets opens the dev installation's keys (read-only use) and returns
// Google's view of each demo merchant.
func devTargets(ctx context.Context, info *devenv.Info) (map[string]*sim.Target, *sim.Client, func(), error) {
	s, err := openDevSession(ctx, info)
	if err != nil {
		return nil, nil, nil, err
	}
	return s.targets, s.client, s.close, nil
}

// openDevSession opens the dev installation's keystore on its database
// file (the gateway follows changes made here within a second) and builds
// Google's view of each demo merchant.
func openDevSession(ctx context.Context, info *devenv.Info) (*devSession, error) {
	kek, err := keystore.ReadKEKFile(info.KEKFile)
	if err != nil {
		return nil, err
	}
	pool, err := tlsutil.ReadCertPool(info.CertFile)
	if err != nil {
		return nil, err
	}
	d, err := db.Open(ctx, info.DBPath)
	if err != nil {
		return nil, err
	}
	store, err := keystore.Open(ctx, d, kek)
	if err != nil {
		d.Close()
		return nil, err
	}
	store.SetLogger(slog.New(slog.DiscardHandler))
	s := &devSession{targets: map[string]*sim.Target{}, store: store, close: func() { d.Close() },
		client: &sim.Client{HTTP: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12},
			MaxIdleConnsPerHost: 16,
		}}}}
	for _, m := range info.Merchants {
		codec, err := envelope.New(m.Envelope, envelope.Config{})
		if err != nil {
			d.Close()
			return nil, err
		}
		ksID := m.SimKeysetID
		tg := &sim.Target{BaseURL: m.BaseURL, PIAID: m.PIAID, Codec: codec,
			Keyset: func(ctx context.Context) (*keystore.Keyset, error) { return store.Keyset(ctx, ksID) }}
		s.targets[m.ID] = tg
		s.merchants = append(s.merchants, &sim.Merchant{ID: m.ID, Target: tg, KeysetID: m.KeysetID, SimKeysetID: m.SimKeysetID,
			DemoIssuer: m.DemoIssuer, DemoToken: m.DemoToken})
	}
	return s, nil
}

func simSmoke(ctx context.Context, e env, dataDir string) error {
	info, err := devenv.Read(dataDir)
	if err != nil {
		return fmt.Errorf("%w (start otpcgate dev first)", err)
	}
	targets, client, closeFn, err := devTargets(ctx, info)
	if err != nil {
		return err
	}
	defer closeFn()
	failed := 0
	check := func(merchant, step string, res *sim.Result, err error, ok bool) {
		status := "PASS"
		detail := ""
		switch {
		case err != nil:
			status, detail = "FAIL", err.Error()
		case !ok:
			status, detail = "FAIL", fmt.Sprintf("HTTP %d %s", res.Status, res.Member())
		}
		if status == "FAIL" {
			failed++
		}
		fmt.Fprintf(e.stdout, "%-10s %-26s %s %s\n", merchant, step, status, detail)
	}
	for _, m := range info.Merchants {
		tg := targets[m.ID]
		var echo otpc.EchoResponse
		res, err := client.Call(ctx, tg, otpc.MethodEcho, &otpc.EchoRequest{RequestHeader: client.Header(tg), ClientMessage: "smoke"}, &echo)
		check(m.ID, "echo", res, err, err == nil && res.Status == 200 && echo.ClientMessage == "smoke")

		gen := &otpc.GenerateReferenceNumberRequest{RequestHeader: client.Header(tg),
			GooglePaymentToken:     otpc.GooglePaymentToken{IssuerID: otpc.IssuerID{Value: m.DemoIssuer}, Token: m.DemoToken},
			TransactionDescription: "Google - Smoke test", Amount: otpc.Amount{AmountMicros: 1500_000000, CurrencyCode: "JPY"}}
		var genResp otpc.GenerateReferenceNumberResponse
		res, err = client.Call(ctx, tg, otpc.MethodGenerateReferenceNumber, gen, &genResp)
		check(m.ID, "generateReferenceNumber", res, err, err == nil && res.Status == 200 && genResp.Result.Success != nil)

		var cancel otpc.CancelReferenceNumberResponse
		res, err = client.Call(ctx, tg, otpc.MethodCancelReferenceNumber, &otpc.CancelReferenceNumberRequest{
			RequestHeader: client.Header(tg), GenerateReferenceNumberRequestID: gen.RequestHeader.RequestID}, &cancel)
		check(m.ID, "cancelReferenceNumber", res, err, err == nil && res.Status == 200 && cancel.Result.Success != nil)
	}
	if failed > 0 {
		return errors.New(fmt.Sprint(failed, " checks failed"))
	}
	fmt.Fprintln(e.stdout, "all checks passed")
	return nil
}

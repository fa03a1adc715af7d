package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/otpcgate/otpcgate/host/admin"
	"github.com/otpcgate/otpcgate/host/plugincall"
	"github.com/otpcgate/otpcgate/host/pluginlog"
)

// newPluginsCmd: otpcgate plugins — write and run a plugin locally (new,
// call), and through the admin API list, upload, activate, roll back,
// delete, read logs, shadow, canary, record and replay.
func newPluginsCmd(e env) *cobra.Command {
	var f apiFlags
	var merchant string
	cmd := &cobra.Command{Use: "plugins", Short: "Write and run plugins locally; upload, activate, try (shadow, canary, replay) and roll them back (admin API)"}
	addAPIFlags(cmd, &f)
	cmd.PersistentFlags().StringVar(&merchant, "merchant", "", "merchant id (default: the merchant of a merchant token)")
	table := func(vs []admin.PluginVersion) func(*tabwriter.Writer) {
		return func(tw *tabwriter.Writer) {
			fmt.Fprintln(tw, "VERSION\tACTIVE\tLOADED\tSIZE\tSHA256\tCREATED\tCALLS\tERRORS\tTRAPS\tTIMEOUTS\tP50\tP99")
			for _, v := range vs {
				act := ""
				if v.Active {
					act = "*"
				}
				st := admin.CallStats{}
				if v.Stats != nil {
					st = *v.Stats
				}
				fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%.2fms\t%.2fms\n", v.Version, act, v.Loaded, mib(int64(v.Size)),
					v.SHA256[:min(12, len(v.SHA256))], v.Created.Format(time.RFC3339), st.Calls, st.Errors, st.Traps, st.Timeouts, st.P50Ms, st.P99Ms)
			}
		}
	}
	list := &cobra.Command{Use: "list", Short: "List plugin versions with their counters", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.resolveMerchant(cmd, e, &merchant); err != nil {
				return err
			}
			var vs []admin.PluginVersion
			if err := f.call(cmd, e, http.MethodGet, admin.MerchantPath(merchant, "plugins"), nil, &vs); err != nil {
				return err
			}
			return f.print(cmd.OutOrStdout(), vs, table(vs))
		}}
	var file, version, sum, configFile, from string
	var activate bool
	upload := &cobra.Command{Use: "upload", Short: "Upload a plugin: checked, compiled and warmed before it is stored or activated", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.resolveMerchant(cmd, e, &merchant); err != nil {
				return err
			}
			if (file == "") == (from == "") {
				return errors.New("give the module as --file FILE, or --from VERSION to store a stored version's module under a new version (e.g. with another --config-file)")
			}
			if from != "" && version == "" {
				return errors.New("--from needs --version: the new version's name (versions never change)")
			}
			var wasm []byte
			if file != "" {
				var err error
				if wasm, err = os.ReadFile(file); err != nil {
					return fmt.Errorf("read plugin: %w\n  next: build it with `task plugins` or GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared", err)
				}
			}
			var err error
			up := admin.PluginUpload{Version: version, SHA256: sum, Wasm: wasm, From: from, Activate: activate}
			if version == "" {
				h := sha256.Sum256(wasm)
				up.Version = "sha-" + hex.EncodeToString(h[:6])
			}
			if configFile != "" {
				if up.Config, err = os.ReadFile(configFile); err != nil {
					return err
				}
				if !json.Valid(up.Config) {
					return fmt.Errorf("%s is not valid JSON", configFile)
				}
			}
			body, err := json.Marshal(up)
			if err != nil {
				return err
			}
			c, err := f.client(cmd, e)
			if err != nil {
				return err
			}
			stderr := cmd.ErrOrStderr()
			pr := &progressReader{r: bytes.NewReader(body), total: int64(len(body)), w: stderr, label: "uploading", lines: !isTerminal(stderr)}
			// The answer comes after compilation and warm-up; show that
			// phase once the body is sent.
			sent := make(chan struct{})
			pr.sent = sent
			stop := func() {}
			var pv admin.PluginVersion
			errc := make(chan error, 1)
			go func() { errc <- c.Do(cmd.Context(), http.MethodPost, admin.MerchantPath(merchant, "plugins"), pr, &pv) }()
			select {
			case err = <-errc:
			case <-sent:
				if !pr.lines {
					fmt.Fprintln(stderr)
				}
				stop = spinner(cmd.Context(), stderr, "checking, compiling and warming")
				err = <-errc
			}
			stop()
			if err != nil {
				return err
			}
			if err := f.print(cmd.OutOrStdout(), pv, table([]admin.PluginVersion{pv})); err != nil || f.json {
				return err
			}
			printOps(cmd.OutOrStdout(), pv.Ops)
			return nil
		}}
	uf := upload.Flags()
	uf.StringVar(&file, "file", "", "the plugin's .wasm file")
	uf.StringVar(&from, "from", "", "instead of --file: the module of this stored version (to change the configuration, store it under a new --version)")
	uf.StringVar(&version, "version", "", "version name (default: sha- and the first 12 hex digits of its sha256)")
	uf.StringVar(&sum, "sha256", "", "refuse the upload unless the module has this sha256 (hex)")
	uf.StringVar(&configFile, "config-file", "", "plugin configuration JSON (validated by the plugin's warm-up call)")
	uf.BoolVar(&activate, "activate", false, "switch traffic to the version once it is warm")
	activateCmd := &cobra.Command{Use: "activate VERSION", Short: "Switch traffic to an uploaded version (atomic, no request lost)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.resolveMerchant(cmd, e, &merchant); err != nil {
				return err
			}
			var pv admin.PluginVersion
			if err := f.call(cmd, e, http.MethodPost, admin.MerchantPath(merchant, "plugins", args[0], "activate"), nil, &pv); err != nil {
				return err
			}
			return f.print(cmd.OutOrStdout(), pv, table([]admin.PluginVersion{pv}))
		}}
	var to string
	rollback := &cobra.Command{Use: "rollback", Short: "Go back to the version active before (or --to VERSION) in one step", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.resolveMerchant(cmd, e, &merchant); err != nil {
				return err
			}
			var pv admin.PluginVersion
			if err := f.call(cmd, e, http.MethodPost, admin.MerchantPath(merchant, "plugins", "rollback"),
				map[string]string{"version": to}, &pv); err != nil {
				return err
			}
			return f.print(cmd.OutOrStdout(), pv, table([]admin.PluginVersion{pv}))
		}}
	rollback.Flags().StringVar(&to, "to", "", "version to go back to (default: the one active before the active one)")
	del := &cobra.Command{Use: "delete VERSION", Short: "Delete a stored version that is not active (stored versions are capped per merchant)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.resolveMerchant(cmd, e, &merchant); err != nil {
				return err
			}
			var pv admin.PluginVersion
			if err := f.call(cmd, e, http.MethodDelete, admin.MerchantPath(merchant, "plugins", args[0]), nil, &pv); err != nil {
				return err
			}
			if f.json {
				return f.print(cmd.OutOrStdout(), pv, nil)
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "deleted version %s of %s (sha256 %s)\n", pv.Version, merchant, pv.SHA256)
			return err
		}}
	cmd.AddCommand(list, upload, activateCmd, rollback, del, newPluginLogsCmd(e, &f, &merchant), newPluginShowCmd(e, &f, &merchant, table),
		localCmd(newPluginCallCmd()), localCmd(newPluginNewCmd()), newPluginShadowCmd(e, &f, &merchant), newPluginDiffCmd(e, &f, &merchant),
		newPluginRecordCmd(e, &f, &merchant), newPluginReplayCmd(e, &f, &merchant), newPluginCanaryCmd(e, &f, &merchant))
	return cmd
}

// opNeeds says what fails for a merchant whose plugin has no handler for
// an op.
var opNeeds = []struct{ op, needed string }{
	{"generate", "Google's generateReferenceNumber"},
	{"cancel", "Google's cancelReferenceNumber"},
	{"refund", "Google's refund"},
	{"asyncRefund", "Google's asynchronousRefund"},
	{"associate", "Google's associateAccount"},
	{"authenticate", "the login page (web-redirect authentication before associateAccount)"},
	{"remittance", "Google's remittanceStatementNotification"},
	{"paid", "payments reported at stores (merchant API)"},
	{"refundDone", "asynchronous refund results (merchant API)"},
}

// printOps says which ops an uploaded plugin handles and warns about the
// flows that fail (503) without the others.
func printOps(w io.Writer, ops []string) {
	if len(ops) == 0 {
		fmt.Fprintln(w, "\nthe plugin did not report its handlers (built with an older sdk?)")
		return
	}
	fmt.Fprintf(w, "\nhandles: %s\n", strings.Join(ops, ", "))
	for _, n := range opNeeds {
		if !slices.Contains(ops, n.op) {
			fmt.Fprintf(w, "warning: no %s handler: %s will fail (503) for this merchant\n", n.op, n.needed)
		}
	}
}

// printLogEntry writes one plugin log entry as a line (its stack, if any,
// indented below it).
func printLogEntry(w io.Writer, en pluginlog.Entry) {
	rid := en.RequestID
	if rid == "" {
		rid = "-"
	}
	text := en.Text
	if en.Failure != "" {
		text = en.Failure + " in " + en.Op + ": " + text
	}
	fmt.Fprintf(w, "%s %-5s %s %s %s\n", en.Time.Format("2006-01-02T15:04:05.000Z"), en.Level, en.Version, rid, text)
	for _, l := range strings.Split(strings.TrimRight(en.Stack, "\n"), "\n") {
		if l != "" {
			fmt.Fprintf(w, "    %s\n", l)
		}
	}
}

// newPluginLogsCmd: otpcgate plugins logs [--follow].
func newPluginLogsCmd(e env, f *apiFlags, merchant *string) *cobra.Command {
	var follow, failures bool
	var version string
	var after uint64
	cmd := &cobra.Command{Use: "logs", Short: "Show (or --follow) the merchant's recent plugin log lines and failed calls", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.resolveMerchant(cmd, e, merchant); err != nil {
				return err
			}
			c, err := f.client(cmd, e)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			enc := json.NewEncoder(out)
			for {
				q := url.Values{"after": {strconv.FormatUint(after, 10)}, "limit": {"1000"}}
				if version != "" {
					q.Set("version", version)
				}
				if failures {
					q.Set("failures", "true")
				}
				if follow {
					q.Set("wait", "30s")
				}
				var pl admin.PluginLogs
				if err := c.Do(cmd.Context(), http.MethodGet, admin.MerchantPath(*merchant, "plugin-logs")+"?"+q.Encode(), nil, &pl); err != nil {
					return err
				}
				for _, en := range pl.Entries {
					if f.json {
						if err := enc.Encode(en); err != nil {
							return err
						}
						continue
					}
					printLogEntry(out, en)
				}
				full := pl.Next > after && len(pl.Entries) == 1000
				after = pl.Next
				if !follow && !full {
					return nil
				}
			}
		}}
	fl := cmd.Flags()
	fl.BoolVarP(&follow, "follow", "f", false, "keep printing new lines as they come (until interrupted)")
	fl.BoolVar(&failures, "failures", false, "only failed calls (trap, timeout, limit, …) with the guest's panic trace")
	fl.StringVar(&version, "version", "", "only this plugin version's lines")
	fl.Uint64Var(&after, "after", 0, "only lines after this sequence number")
	return cmd
}

// newPluginShowCmd: otpcgate plugins show VERSION — the version's row and
// its last failed calls.
func newPluginShowCmd(e env, f *apiFlags, merchant *string, table func([]admin.PluginVersion) func(*tabwriter.Writer)) *cobra.Command {
	return &cobra.Command{Use: "show VERSION", Short: "One plugin version: counters and its last failed calls with their traces", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.resolveMerchant(cmd, e, merchant); err != nil {
				return err
			}
			var vs []admin.PluginVersion
			if err := f.call(cmd, e, http.MethodGet, admin.MerchantPath(*merchant, "plugins"), nil, &vs); err != nil {
				return err
			}
			i := slices.IndexFunc(vs, func(v admin.PluginVersion) bool { return v.Version == args[0] })
			if i < 0 {
				return fmt.Errorf("merchant %s has no plugin version %q\n  next: `otpcgate plugins list`", *merchant, args[0])
			}
			q := url.Values{"version": {args[0]}, "failures": {"true"}, "limit": {"1000"}}
			var pl admin.PluginLogs
			if err := f.call(cmd, e, http.MethodGet, admin.MerchantPath(*merchant, "plugin-logs")+"?"+q.Encode(), nil, &pl); err != nil {
				return err
			}
			last := pl.Entries[max(0, len(pl.Entries)-10):]
			if f.json {
				return f.print(cmd.OutOrStdout(), struct {
					admin.PluginVersion
					LastFailures []pluginlog.Entry `json:"lastFailures"`
				}{vs[i], last}, nil)
			}
			w := cmd.OutOrStdout()
			if err := f.print(w, vs[i], table(vs[i:i+1])); err != nil {
				return err
			}
			if len(last) == 0 {
				_, err := fmt.Fprintln(w, "\nno failed calls kept for this version")
				return err
			}
			fmt.Fprintf(w, "\nlast %d failed calls:\n", len(last))
			for _, en := range last {
				printLogEntry(w, en)
			}
			return nil
		}}
}

// newPluginShadowCmd: otpcgate plugins shadow VERSION [--sample F] | --stop.
func newPluginShadowCmd(e env, f *apiFlags, merchant *string) *cobra.Command {
	var sample float64
	var stop bool
	cmd := &cobra.Command{Use: "shadow [VERSION]",
		Short: "Run a stored version beside the active one on live calls and compare (nothing of it is kept or sent); --stop ends it",
		Long: "Runs VERSION beside the active version on a sample of the merchant's live plugin calls, with exactly the\n" +
			"active call's input, time, random bytes and KV reads, off the request's path. Its answers are compared\n" +
			"with the active version's and never committed or sent. `otpcgate plugins diff` shows where they differ.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.resolveMerchant(cmd, e, merchant); err != nil {
				return err
			}
			var rep plugincall.ShadowReport
			path := admin.MerchantPath(*merchant, "plugin-shadow")
			switch {
			case stop && len(args) == 0:
				if err := f.call(cmd, e, http.MethodDelete, path, nil, &rep); err != nil {
					return err
				}
			case !stop && len(args) == 1:
				if err := f.call(cmd, e, http.MethodPut, path, admin.ShadowRequest{Version: args[0], Sample: sample}, &rep); err != nil {
					return err
				}
			default:
				return errors.New("give a VERSION to shadow, or --stop")
			}
			return printShadow(cmd.OutOrStdout(), f, rep)
		}}
	cmd.Flags().Float64Var(&sample, "sample", 1, "share of calls to shadow, 0 < sample <= 1")
	cmd.Flags().BoolVar(&stop, "stop", false, "stop the shadow (its last report is printed)")
	return cmd
}

// newPluginDiffCmd: otpcgate plugins diff — the shadow's report.
func newPluginDiffCmd(e env, f *apiFlags, merchant *string) *cobra.Command {
	return &cobra.Command{Use: "diff", Short: "Where the shadowed candidate's answers differ from the active version's", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.resolveMerchant(cmd, e, merchant); err != nil {
				return err
			}
			var rep plugincall.ShadowReport
			if err := f.call(cmd, e, http.MethodGet, admin.MerchantPath(*merchant, "plugin-shadow"), nil, &rep); err != nil {
				return err
			}
			return printShadow(cmd.OutOrStdout(), f, rep)
		}}
}

func printShadow(w io.Writer, f *apiFlags, rep plugincall.ShadowReport) error {
	if f.json {
		return f.print(w, rep, nil)
	}
	if rep.Version == "" {
		_, err := fmt.Fprintln(w, "no shadow runs\n  next: `otpcgate plugins shadow VERSION`")
		return err
	}
	fmt.Fprintf(w, "shadow of %s on %.0f%% of calls since %s: %d compared, %d different, %d dropped, %d candidate failures\n",
		rep.Version, rep.Sample*100, rep.Since.Format(time.RFC3339), rep.Compared, rep.Different, rep.Dropped, rep.CandidateFailures)
	ops := make([]string, 0, len(rep.ByOp))
	for op := range rep.ByOp {
		ops = append(ops, op)
	}
	slices.Sort(ops)
	for _, op := range ops {
		fmt.Fprintf(w, "  %-12s %d compared, %d different\n", op, rep.ByOp[op].Compared, rep.ByOp[op].Different)
	}
	for _, d := range rep.Samples {
		fmt.Fprintf(w, "\n%s %s %s\n  active:    %s %s\n  candidate: %s %s\n", d.Time.Format(time.RFC3339), d.Op, d.RequestID,
			d.Active.Outcome, d.Active.Output, d.Candidate.Outcome, d.Candidate.Output)
		if strings.Join(d.Active.KV, ",") != strings.Join(d.Candidate.KV, ",") {
			fmt.Fprintf(w, "  kv: active %v, candidate %v\n", d.Active.KV, d.Candidate.KV)
		}
	}
	return nil
}

// newPluginRecordCmd: otpcgate plugins record --on|--off.
func newPluginRecordCmd(e env, f *apiFlags, merchant *string) *cobra.Command {
	var on, off bool
	var retention string
	var maxRecords int
	cmd := &cobra.Command{Use: "record", Short: "Record the merchant's plugin calls for replay (--on, --off; no flag shows the state)",
		Long: "Records each plugin call with what it needs to run again on any version: its input, time, random bytes\n" +
			"and KV reads, and the answer. Recordings are sealed with a key derived from the KEK (they hold the\n" +
			"request's payload), kept for --retention (recording stops then too) and at most --max of them.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.resolveMerchant(cmd, e, merchant); err != nil {
				return err
			}
			if on && off {
				return errors.New("--on or --off, not both")
			}
			var st admin.RecordingState
			path := admin.MerchantPath(*merchant, "plugin-recording")
			var err error
			if on || off {
				err = f.call(cmd, e, http.MethodPut, path, admin.RecordingRequest{On: on, Retention: retention, Max: maxRecords}, &st)
			} else {
				err = f.call(cmd, e, http.MethodGet, path, nil, &st)
			}
			if err != nil {
				return err
			}
			if f.json {
				return f.print(cmd.OutOrStdout(), st, nil)
			}
			state := "off"
			if st.On {
				state = fmt.Sprintf("on until %s (retention %s, at most %d)", st.Until.Format(time.RFC3339), st.Retention, st.Max)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "recording %s: %d recordings kept, %d dropped\n", state, st.Recorded, st.Dropped)
			return err
		}}
	fl := cmd.Flags()
	fl.BoolVar(&on, "on", false, "start recording")
	fl.BoolVar(&off, "off", false, "stop recording (the recordings stay until their retention ends)")
	fl.StringVar(&retention, "retention", "", "how long recordings are kept and recording runs (default 24h, at most 720h)")
	fl.IntVar(&maxRecords, "max", 0, "recordings kept, the oldest go first (default 10000)")
	return cmd
}

// newPluginReplayCmd: otpcgate plugins replay --version V.
func newPluginReplayCmd(e env, f *apiFlags, merchant *string) *cobra.Command {
	var version string
	var limit int
	cmd := &cobra.Command{Use: "replay", Short: "Run a stored version on the recorded calls and list where it answers otherwise",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.resolveMerchant(cmd, e, merchant); err != nil {
				return err
			}
			var rep admin.ReplayReport
			if err := f.call(cmd, e, http.MethodPost, admin.MerchantPath(*merchant, "plugin-replay"),
				admin.ReplayRequest{Version: version, Limit: limit}, &rep); err != nil {
				return err
			}
			if f.json {
				return f.print(cmd.OutOrStdout(), rep, nil)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "replayed %d recordings on %s: %d as recorded, %d different\n", rep.Replayed, rep.Version, rep.Same, rep.Different)
			for _, d := range rep.Differences {
				fmt.Fprintf(w, "\nrecording %s (%s, recorded on %s) %s %s\n  recorded: %s %s\n  replayed: %s %s\n", d.Recording,
					d.At.Format(time.RFC3339), d.RecordedVersion, d.Op, d.RequestID, d.Recorded.Outcome, d.Recorded.Output,
					d.Replayed.Outcome, d.Replayed.Output)
			}
			return nil
		}}
	cmd.Flags().StringVar(&version, "version", "", "the stored version to replay on (required)")
	cmd.Flags().IntVar(&limit, "limit", 0, "replay at most this many recordings, oldest first (default all)")
	_ = cmd.MarkFlagRequired("version")
	return cmd
}

// newPluginCanaryCmd: otpcgate plugins canary [VERSION --fraction F] | --stop | --promote.
func newPluginCanaryCmd(e env, f *apiFlags, merchant *string) *cobra.Command {
	var fraction float64
	var maxFailures int
	var maxLatency string
	var stop, promote bool
	cmd := &cobra.Command{Use: "canary [VERSION]",
		Short: "Send a fraction of new transactions to a stored version, rolled back on its own if it fails; --promote, --stop",
		Long: "Sends --fraction of the merchant's new transactions to VERSION, chosen by transaction so that each\n" +
			"transaction's generate, cancel, refunds and payment run on one version. After --max-failures failed\n" +
			"calls (or as many slower than --max-latency) the canary is rolled back on its own and the audit log\n" +
			"says why. --promote makes VERSION the active version; --stop ends the canary. No argument shows it.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.resolveMerchant(cmd, e, merchant); err != nil {
				return err
			}
			var st plugincall.CanaryState
			path := admin.MerchantPath(*merchant, "plugin-canary")
			var err error
			switch {
			case len(args) == 1 && !stop && !promote:
				err = f.call(cmd, e, http.MethodPut, path, admin.CanaryRequest{Version: args[0], Fraction: fraction,
					MaxFailures: maxFailures, MaxLatency: maxLatency}, &st)
			case len(args) == 0 && stop && !promote:
				err = f.call(cmd, e, http.MethodDelete, path, nil, &st)
			case len(args) == 0 && promote && !stop:
				err = f.call(cmd, e, http.MethodPost, path+"/promote", nil, &st)
			case len(args) == 0 && !stop && !promote:
				err = f.call(cmd, e, http.MethodGet, path, nil, &st)
			default:
				return errors.New("give a VERSION to start a canary, or one of --stop and --promote")
			}
			if err != nil {
				return err
			}
			if f.json {
				return f.print(cmd.OutOrStdout(), st, nil)
			}
			w := cmd.OutOrStdout()
			if st.Version == "" {
				_, err := fmt.Fprintln(w, "no canary runs")
				return err
			}
			verb := "runs"
			if stop || promote {
				verb = "ended"
			}
			fmt.Fprintf(w, "canary %s %s on %.0f%% of new transactions since %s: %d calls, %d failed, %d slow (limits: %d, %s)\n",
				st.Version, verb, st.Fraction*100, st.Since.Format(time.RFC3339), st.Calls, st.Failures, st.Slow, st.Limits.MaxFailures, st.Limits.MaxLatency)
			if promote {
				fmt.Fprintf(w, "%s is the active version\n", st.Version)
			}
			return nil
		}}
	fl := cmd.Flags()
	fl.Float64Var(&fraction, "fraction", 0.1, "share of new transactions the candidate serves, 0 < fraction <= 1")
	fl.IntVar(&maxFailures, "max-failures", 0, "failed (or slow) calls before the automatic rollback (default 3)")
	fl.StringVar(&maxLatency, "max-latency", "", "a call slower than this counts against the limit (default 500ms)")
	fl.BoolVar(&stop, "stop", false, "end the canary: every transaction on the active version")
	fl.BoolVar(&promote, "promote", false, "make the candidate the active version and end the canary")
	return cmd
}

// localCmd hides the admin API's flags from the help of a subcommand that
// runs locally and never uses them.
func localCmd(cmd *cobra.Command) *cobra.Command {
	cmd.SetHelpFunc(func(c *cobra.Command, args []string) {
		c.InheritedFlags().VisitAll(func(f *pflag.Flag) {
			if f.Name != "help" {
				f.Hidden = true
			}
		})
		c.Parent().HelpFunc()(c, args)
	})
	return cmd
}

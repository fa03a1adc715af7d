package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/otpcgate/otpcgate/host/runtime"
	"github.com/otpcgate/otpcgate/internal/wasmbuild"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// localNamespace is the KV namespace (merchant) of a local call.
const localNamespace = "local"

// errCallFailed makes `plugins call` exit 1 after it printed a failure.
var errCallFailed = errors.New("the plugin call failed")

// localCall is what `plugins call` prints.
type localCall struct {
	Op       string          `json:"op"`
	Outcome  string          `json:"outcome"` // ok, refusal or failure
	Output   json.RawMessage `json:"output,omitempty"`
	Refusal  json.RawMessage `json:"refusal,omitempty"`
	Kind     string          `json:"kind,omitempty"` // the failure's kind: trap, timeout, limit, …
	Error    string          `json:"error,omitempty"`
	Stack    string          `json:"stack,omitempty"`
	Logs     []localLog      `json:"logs"`
	KV       []localKV       `json:"kv"`
	LoadMs   float64         `json:"loadMs"`
	CallMs   float64         `json:"callMs"`
	Limits   runtime.Limits  `json:"-"`
	Version  string          `json:"version"`
	WasmSize int             `json:"wasmBytes"`
}

type localLog struct {
	Level string `json:"level"`
	Text  string `json:"text"`
}

type localKV struct {
	Key    string `json:"key"`
	Value  string `json:"value,omitempty"`
	Delete bool   `json:"delete,omitempty"`
}

// mapKV is the committed KV a local call reads: --kv's object.
type mapKV map[string][]byte

func (m mapKV) Get(_ context.Context, ns, key string) ([]byte, bool, error) {
	if ns != localNamespace {
		return nil, false, nil
	}
	v, ok := m[key]
	return v, ok, nil
}

// newPluginCallCmd: otpcgate plugins call — one op on a plugin in the real
// runtime with production limits, no gateway needed.
func newPluginCallCmd() *cobra.Command {
	var wasmFile, dir, input, configFile, kvFile, now, currency string
	var amount float64
	var example, asJSON bool
	var timeout time.Duration
	var memoryMiB int
	ops := make([]string, 0, 9)
	for o := otpc.OpGenerate; o.Valid(); o++ {
		ops = append(ops, o.String())
	}
	cmd := &cobra.Command{
		Use:   "call OP",
		Short: "Run one op of a plugin (a .wasm or a plugin directory) in the real runtime with production limits; no gateway needed",
		Long: "Run one op of a plugin in the real runtime with the production limits, and print its output (or refusal, or\n" +
			"failure with the guest's panic trace), its log lines, its KV changes and the time taken.\n\n" +
			"OP is one of: " + strings.Join(ops, ", ") + ".\n" +
			"The input is the op's plugin input JSON (see `--example`); without --input an example input is used,\n" +
			"with --amount and --currency applied. The plugin reads the KV given by --kv and nothing is stored.",
		Example: "  otpcgate plugins call generate --dir ./plugins/konbini --config-file config.json --amount 99\n" +
			"  otpcgate plugins call cancel --wasm plugin.wasm --input @cancel.json --kv @kv.json\n" +
			"  otpcgate plugins call refund --example",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			op, ok := parseOp(args[0])
			if !ok {
				return fmt.Errorf("unknown op %q\n  next: one of %s", args[0], strings.Join(ops, ", "))
			}
			in, err := exampleInput(op, amount, currency)
			if err != nil {
				return err
			}
			if example {
				return printJSON(cmd.OutOrStdout(), in)
			}
			if input != "" {
				if in, err = readArg(cmd.InOrStdin(), input); err != nil {
					return fmt.Errorf("--input: %w", err)
				}
				if !json.Valid(in) {
					return errors.New("--input is not JSON\n  next: `otpcgate plugins call " + op.String() + " --example` prints a valid input")
				}
			}
			if (wasmFile == "") == (dir == "") {
				return errors.New("give the plugin as --wasm FILE or --dir DIR (a Go plugin package, built here for wasip1)")
			}
			var wasm []byte
			if dir != "" {
				if wasm, err = wasmbuild.Build(cmd.Context(), dir); err != nil {
					return err
				}
			} else if wasm, err = os.ReadFile(wasmFile); err != nil {
				return err
			}
			var config []byte
			if configFile != "" {
				if config, err = os.ReadFile(configFile); err != nil {
					return err
				}
			}
			kv := mapKV{}
			if kvFile != "" {
				raw, err := readArg(cmd.InOrStdin(), kvFile)
				if err != nil {
					return fmt.Errorf("--kv: %w", err)
				}
				var m map[string]string
				if err := json.Unmarshal(raw, &m); err != nil {
					return fmt.Errorf("--kv must be a JSON object of string values: %w", err)
				}
				for k, v := range m {
					kv[k] = []byte(v)
				}
			}
			at := time.Now()
			if now != "" {
				if at, err = time.Parse(time.RFC3339, now); err != nil {
					return fmt.Errorf("--now: %w", err)
				}
			}
			lim := runtime.DefaultLimits()
			if timeout > 0 {
				lim.CallTimeout = timeout
			}
			if memoryMiB > 0 {
				lim.MemoryPages = uint32(memoryMiB) * 16 // 64 KiB pages
			}
			res, err := runLocal(cmd.Context(), wasm, config, op, in, kv, at, lim)
			if err != nil {
				return err
			}
			if asJSON {
				if err := printJSON(cmd.OutOrStdout(), res); err != nil {
					return err
				}
			} else {
				printLocal(cmd.OutOrStdout(), res)
			}
			if res.Outcome == "failure" {
				return errCallFailed
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&wasmFile, "wasm", "", "the plugin module (.wasm)")
	fl.StringVar(&dir, "dir", "", "a Go plugin package to build for wasip1 first")
	fl.StringVar(&input, "input", "", "the op's input JSON: inline, @FILE, or - for stdin (default: an example input)")
	fl.StringVar(&configFile, "config-file", "", "the plugin's configuration JSON, as uploaded with it")
	fl.StringVar(&kvFile, "kv", "", "the KV the plugin reads: a JSON object of string values, inline, @FILE or -")
	fl.StringVar(&now, "now", "", "the request time the plugin sees, RFC 3339 (default: now)")
	fl.Float64Var(&amount, "amount", 1000, "the example input's amount in major units (e.g. 99 for 99 JPY)")
	fl.StringVar(&currency, "currency", "JPY", "the example input's currency")
	fl.BoolVar(&example, "example", false, "print the example input of OP and exit")
	fl.BoolVar(&asJSON, "json", false, "print the result as JSON")
	fl.DurationVar(&timeout, "timeout", 0, "the call's time limit (default: the production limit)")
	fl.IntVar(&memoryMiB, "memory-mib", 0, "the instance's memory cap in MiB (default: the production limit)")
	return cmd
}

// parseOp maps an op name (as otpc.Op.String spells it) to the op.
func parseOp(name string) (otpc.Op, bool) {
	for o := otpc.OpGenerate; o.Valid(); o++ {
		if strings.EqualFold(o.String(), name) {
			return o, true
		}
	}
	return 0, false
}

// readArg reads an argument given inline, as @FILE, or as - (stdin).
func readArg(stdin io.Reader, v string) ([]byte, error) {
	switch {
	case v == "-":
		return io.ReadAll(io.LimitReader(stdin, 16<<20))
	case strings.HasPrefix(v, "@"):
		return os.ReadFile(v[1:])
	}
	return []byte(v), nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// runLocal loads wasm in a fresh runtime (its warm-up call included, as at
// upload) and runs one op.
func runLocal(ctx context.Context, wasm, config []byte, op otpc.Op, in []byte, kv mapKV, now time.Time, lim runtime.Limits) (*localCall, error) {
	res := &localCall{Op: op.String(), Logs: []localLog{}, KV: []localKV{}, Version: "local", WasmSize: len(wasm), Limits: lim}
	var mu sync.Mutex
	m, err := runtime.New(runtime.Options{Limits: lim, Pool: runtime.PoolConfig{Max: 1},
		LogSink: func(l runtime.LogLine) {
			if l.Failure != "" {
				return // reported as the call's error
			}
			mu.Lock()
			res.Logs = append(res.Logs, localLog{Level: l.Level.String(), Text: l.Text})
			mu.Unlock()
		}})
	if err != nil {
		return nil, err
	}
	defer m.Close()
	t0 := time.Now()
	if _, err := m.Load(ctx, localNamespace, runtime.VersionSpec{Version: res.Version, Wasm: wasm, Config: config}); err != nil {
		return nil, fmt.Errorf("the plugin does not load: %w", err)
	}
	if err := m.Activate(localNamespace, res.Version); err != nil {
		return nil, err
	}
	res.LoadMs = ms(time.Since(t0))
	mu.Lock()
	res.Logs = res.Logs[:0] // the warm-up's lines are not this call's
	mu.Unlock()
	t0 = time.Now()
	out, cs, err := m.Call(ctx, localNamespace, op, in, runtime.CallEnv{Namespace: localNamespace, KV: kv, Now: now, RequestID: "local"})
	res.CallMs = ms(time.Since(t0))
	var ce *runtime.CallError
	switch {
	case err == nil:
		res.Outcome, res.Output = "ok", json.RawMessage(out)
		if !json.Valid(out) {
			res.Output = nil
			res.Outcome, res.Kind, res.Error = "failure", "abi", "output is not JSON"
		}
	case errors.As(err, &ce) && ce.Kind == runtime.KindRefusal:
		res.Outcome, res.Refusal = "refusal", json.RawMessage(ce.Refusal)
	case errors.As(err, &ce):
		res.Outcome, res.Kind, res.Error, res.Stack = "failure", ce.Kind.String(), ce.Msg, ce.Stack
	default:
		return nil, err
	}
	for _, c := range cs.Changes {
		res.KV = append(res.KV, localKV{Key: c.Key, Value: string(c.Value), Delete: c.Delete})
	}
	return res, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// printLocal writes a local call's result for a person.
func printLocal(w io.Writer, r *localCall) {
	indent := func(raw []byte) string {
		var b bytes.Buffer
		if json.Indent(&b, raw, "  ", "  ") != nil {
			return string(raw)
		}
		return b.String()
	}
	switch r.Outcome {
	case "ok":
		fmt.Fprintf(w, "%s: ok\n  %s\n", r.Op, indent(r.Output))
	case "refusal":
		fmt.Fprintf(w, "%s: refusal (an answer: Google gets the member's 4xx, nothing is stored)\n  %s\n", r.Op, indent(r.Refusal))
	default:
		fmt.Fprintf(w, "%s: failure, %s (Google gets 503 and retries)\n  %s\n", r.Op, r.Kind, r.Error)
		for _, l := range strings.Split(strings.TrimRight(r.Stack, "\n"), "\n") {
			if l != "" {
				fmt.Fprintf(w, "    %s\n", l)
			}
		}
	}
	fmt.Fprintf(w, "logs (%d):\n", len(r.Logs))
	for _, l := range r.Logs {
		fmt.Fprintf(w, "  %-5s %s\n", l.Level, l.Text)
	}
	fmt.Fprintf(w, "kv changes (%d):\n", len(r.KV))
	kv := slices.Clone(r.KV)
	for _, c := range kv {
		if c.Delete {
			fmt.Fprintf(w, "  delete %q\n", c.Key)
		} else {
			fmt.Fprintf(w, "  put    %q = %q\n", c.Key, c.Value)
		}
	}
	fmt.Fprintf(w, "time: call %.3f ms, load and warm-up %.1f ms (%d-byte module; limits: %s, %d MiB)\n",
		r.CallMs, r.LoadMs, r.WasmSize, r.Limits.CallTimeout, r.Limits.MemoryPages/16)
}

// exampleInput is a plausible input for op, for a first call and for
// --example: an amount of amount major units of currency.
func exampleInput(op otpc.Op, amount float64, currency string) ([]byte, error) {
	now := otpc.TimestampOf(time.Now())
	created := otpc.TimestampOf(time.Now().Add(-time.Minute))
	money := otpc.Amount{AmountMicros: int64(amount * 1e6), CurrencyCode: currency}
	hdr := otpc.RequestHeader{RequestID: "local-request-1", RequestTimestamp: now,
		ProtocolVersion: otpc.Version{Major: 2}, PaymentIntegratorAccountID: "LOCAL_PIAID"}
	code := otpc.CodeInfo{GenerateRequestID: "local-generate-1", AccountID: "local-account", Amount: money,
		PrintableString: "1234-5678-9012", State: otpc.CodeStateIssued, CreatedAt: &created}
	paid := code
	paid.State, paid.PaidMicros, paid.PaidAt = otpc.CodeStatePaid, money.AmountMicros, &now
	var v interface{ AppendJSON([]byte) []byte }
	switch op {
	case otpc.OpGenerate:
		v = &otpc.GenerateInput{AccountID: "local-account", Request: otpc.GenerateReferenceNumberRequest{RequestHeader: hdr,
			GooglePaymentToken:     otpc.GooglePaymentToken{IssuerID: otpc.IssuerID{Value: "local-issuer"}, Token: "local-gpt"},
			TransactionDescription: "Google - Test", Amount: money}}
	case otpc.OpCancel:
		v = &otpc.CancelInput{Code: code, Request: otpc.CancelReferenceNumberRequest{RequestHeader: hdr,
			GenerateReferenceNumberRequestID: code.GenerateRequestID}}
	case otpc.OpRefund, otpc.OpAsyncRefund:
		v = &otpc.RefundInput{Code: paid, Request: otpc.RefundRequest{RequestHeader: hdr,
			TransactionID: code.GenerateRequestID, RefundAmount: money}}
	case otpc.OpAssociate:
		v = &otpc.AssociateInput{AccountID: "local-account", Request: otpc.AssociateAccountRequest{RequestHeader: hdr,
			GooglePaymentToken:      otpc.GooglePaymentToken{IssuerID: otpc.IssuerID{Value: "local-issuer"}, Token: "local-gpt"},
			AuthenticationRequestID: "local-auth-1", AssociationID: "local-association-1"}}
	case otpc.OpRemittance:
		v = &otpc.RemittanceInput{Request: otpc.RemittanceStatementNotificationRequest{RequestHeader: hdr,
			RemittanceStatementSummary: otpc.RemittanceStatementSummary{StatementDate: now, DateDue: now,
				BillingPeriod: otpc.BillingPeriod{StartDate: created, EndDate: now}, TotalDueByIntegrator: money, TotalEvents: 1}}}
	case otpc.OpPaid:
		v = &otpc.PaidInput{Code: code, Amount: money, PaidAt: now, StoreID: "store-1"}
	case otpc.OpRefundDone:
		v = &otpc.RefundDoneInput{RefundRequestID: "local-refund-1", Code: paid, Amount: money, Success: true}
	case otpc.OpAuthenticate:
		v = &otpc.AuthenticateInput{AccountID: "demo", Secret: "demo", AssociationID: "local-association-1"}
	default:
		return nil, fmt.Errorf("no example input for op %s", op)
	}
	return v.AppendJSON(nil), nil
}

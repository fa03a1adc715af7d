package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/otpcgate/otpcgate/host/devenv"
	"github.com/otpcgate/otpcgate/host/sim"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// simCallMethods are the Google methods `sim call` sends, with what each
// needs besides the merchant.
var simCallMethods = []string{otpc.MethodEcho, otpc.MethodGenerateReferenceNumber, otpc.MethodCancelReferenceNumber,
	otpc.MethodRefund, otpc.MethodAsynchronousRefund}

// simCallResult is what `sim call --json` prints.
type simCallResult struct {
	Method    string          `json:"method"`
	Merchant  string          `json:"merchant"`
	RequestID string          `json:"requestId"`
	Status    int             `json:"status"`
	Member    string          `json:"member,omitempty"`
	Answer    json.RawMessage `json:"answer,omitempty"`
	// RetryAfter is set on a 503: Google would retry.
	RetryAfter string `json:"retryAfter,omitempty"`
}

// newSimCallCmd: otpcgate sim call METHOD — one chosen Google request to a
// running dev gateway, with the HTTP status and the opened answer.
func newSimCallCmd(e env) *cobra.Command {
	var dataDir, merchant, currency, transaction, requestID string
	var amount float64
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "call METHOD",
		Short: "Send one chosen Google request to a running otpcgate dev and print the status and the opened answer",
		Long: "Sends one request as Google would (sealed with the merchant's envelope and keys, over TLS) to a running\n" +
			"otpcgate dev, and prints the HTTP status and the opened answer. METHOD is one of: " + strings.Join(simCallMethods, ", ") + ".\n" +
			"cancelReferenceNumber, refund and asynchronousRefund name the code by --transaction (the requestId of its\n" +
			"generateReferenceNumber, printed by that call). Exits 0 when an answer came back, whatever its status.",
		Example: "  otpcgate sim call generateReferenceNumber --amount 99 --merchant demo-pgp\n" +
			"  otpcgate sim call cancelReferenceNumber --transaction 3f9c… --merchant demo-pgp",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			method := args[0]
			if !slices.Contains(simCallMethods, method) {
				return fmt.Errorf("unknown method %q\n  next: one of %s", method, strings.Join(simCallMethods, ", "))
			}
			if method != otpc.MethodEcho && method != otpc.MethodGenerateReferenceNumber && transaction == "" {
				return errors.New(method + " needs --transaction: the requestId of the code's generateReferenceNumber")
			}
			info, err := devenv.Read(dataDir)
			if err != nil {
				return fmt.Errorf("%w (start otpcgate dev first)", err)
			}
			s, err := openDevSession(cmd.Context(), info)
			if err != nil {
				return err
			}
			defer s.close()
			i := slices.IndexFunc(s.merchants, func(m *sim.Merchant) bool { return m.ID == merchant })
			if i < 0 {
				ids := make([]string, 0, len(s.merchants))
				for _, m := range s.merchants {
					ids = append(ids, m.ID)
				}
				return fmt.Errorf("no demo merchant %q in %s\n  next: one of %s", merchant, dataDir, strings.Join(ids, ", "))
			}
			m := s.merchants[i]
			hdr := s.client.Header(m.Target)
			if requestID != "" {
				hdr.RequestID = requestID
			}
			money := otpc.Amount{AmountMicros: int64(amount * 1e6), CurrencyCode: currency}
			var req sim.Message
			switch method {
			case otpc.MethodEcho:
				req = &otpc.EchoRequest{RequestHeader: hdr, ClientMessage: "otpcgate sim call"}
			case otpc.MethodGenerateReferenceNumber:
				req = &otpc.GenerateReferenceNumberRequest{RequestHeader: hdr,
					GooglePaymentToken:     otpc.GooglePaymentToken{IssuerID: otpc.IssuerID{Value: m.DemoIssuer}, Token: m.DemoToken},
					TransactionDescription: "Google - otpcgate sim call", Amount: money}
			case otpc.MethodCancelReferenceNumber:
				req = &otpc.CancelReferenceNumberRequest{RequestHeader: hdr, GenerateReferenceNumberRequestID: transaction}
			default:
				req = &otpc.RefundRequest{RequestHeader: hdr, TransactionID: transaction, RefundAmount: money}
			}
			res, err := s.client.Call(cmd.Context(), m.Target, method, req, nil)
			if err != nil {
				return err
			}
			out := simCallResult{Method: method, Merchant: merchant, RequestID: hdr.RequestID, Status: res.Status,
				Member: res.Member(), RetryAfter: res.RetryAfter}
			if json.Valid(res.Plaintext) {
				out.Answer = res.Plaintext
			}
			if asJSON {
				return printJSON(e.stdout, out)
			}
			fmt.Fprintf(e.stdout, "%s to %s (requestId %s): HTTP %d", method, merchant, hdr.RequestID, res.Status)
			switch {
			case out.Member != "":
				fmt.Fprintf(e.stdout, " %s", out.Member)
			case res.RetryAfter != "":
				fmt.Fprintf(e.stdout, ", Retry-After %s (a failure: Google retries)", res.RetryAfter)
			}
			fmt.Fprintln(e.stdout)
			if out.Answer != nil {
				var b bytes.Buffer
				_ = json.Indent(&b, out.Answer, "  ", "  ")
				fmt.Fprintf(e.stdout, "  %s\n", b.String())
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data-dir", filepath.Join("data", "dev"), "data directory of otpcgate dev")
	f.StringVar(&merchant, "merchant", "demo-pgp", "the demo merchant to call")
	f.Float64Var(&amount, "amount", 1500, "amount in major units (generateReferenceNumber, refund)")
	f.StringVar(&currency, "currency", "JPY", "currency of --amount")
	f.StringVar(&transaction, "transaction", "", "the code's transaction: the requestId of its generateReferenceNumber")
	f.StringVar(&requestID, "request-id", "", "requestId to send (default: a fresh one); the same id again is a replay")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

// Package googlesim is a stand-in for Google's side of OTPC v2: it serves
// the Google-hosted methods (notifications, statements) to a gateway, with
// Google's keys, records what it receives and injects faults. `otpcgate
// dev` mounts it on the gateway's own listener (see DevHandler and Hooks);
// tests run it in-process; package sim's scenarios observe it, in-process
// or through Remote.
package googlesim

// This file plays Google's side of the Google-hosted methods (spec §6): an
// http.Handler that opens and checks the integrator's requests, records
// them, answers with sealed responses, and injects faults for tests and
// drills.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/otpcgate/otpcgate/host/envelope"
	"github.com/otpcgate/otpcgate/keystore"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// GenericErrorText is the body Google sends when a detailed error could
// help an attacker (spec §6).
const GenericErrorText = "There was an error. Please try again later."

// Account is one integrator account the simulated Google knows.
type Account struct {
	// PIAID is the account id at the end of every request path.
	PIAID string
	// Codec is the account's envelope.
	Codec envelope.Codec
	// Keyset returns Google's keyset for the account: Google's private keys
	// as OwnerSelf and the integrator's public keys as OwnerPeer.
	Keyset func(ctx context.Context) (*keystore.Keyset, error)
}

// Config tunes a simulated Google. The zero value is valid.
type Config struct {
	// Now is the clock for timestamps. Default time.Now.
	Now func() time.Time
	// Skew is the accepted requestTimestamp distance. Default 60 s.
	Skew time.Duration
	// MaxBodyBytes bounds request bodies. Default 1 MiB.
	MaxBodyBytes int64
	// Logger gets one debug line per refused request. Default slog.Default().
	Logger *slog.Logger
}

// Fault changes how the simulated Google answers, for tests and
// drills. Set it with Google.SetFault.
type Fault struct {
	// Times is how many matching requests the fault affects; 0 means until
	// ClearFault.
	Times int
	// Method limits the fault to one method; "" means every method.
	Method string
	// Delay holds the answer back (a slow Google); it ends early if the
	// client gives up.
	Delay time.Duration
	// Drop closes the connection without an answer (the client sees a
	// network error), before the request is processed.
	Drop bool
	// Status, if set, answers with this status and Body (text/plain; may
	// be empty) without processing the request.
	Status int
	// Body is the plain-text body sent with Status.
	Body string
	// The fields below tamper with the answer of a request that is
	// processed (and recorded) normally.

	// ResponseSkew shifts the responseTimestamp.
	ResponseSkew time.Duration
	// MutateResponse rewrites the response plaintext before sealing.
	MutateResponse func(plaintext []byte) []byte
	// SealWith seals the response with another keyset (e.g. a key the
	// integrator does not trust).
	SealWith func(ctx context.Context) (*keystore.Keyset, error)

	// Next is installed when this fault's Times are used up, to script a
	// sequence (e.g. 503 three times, then dropped connections, then
	// answers that fail the client's checks). Nil means no fault.
	Next *Fault
}

// Fault helpers for the usual failures.

// FaultUnavailable answers n requests with 503 and the generic text.
func FaultUnavailable(n int) Fault {
	return Fault{Times: n, Status: http.StatusServiceUnavailable, Body: GenericErrorText}
}

// FaultPlainText answers n requests with status and the generic text.
func FaultPlainText(status, n int) Fault {
	return Fault{Times: n, Status: status, Body: GenericErrorText}
}

// FaultEmpty404 answers n requests with 404 and an empty body.
func FaultEmpty404(n int) Fault { return Fault{Times: n, Status: http.StatusNotFound} }

// FaultDrop drops the connection of n requests.
func FaultDrop(n int) Fault { return Fault{Times: n, Drop: true} }

// FaultSlow delays n answers by d.
func FaultSlow(d time.Duration, n int) Fault { return Fault{Times: n, Delay: d} }

// Event is one event of a registered statement.
type Event struct {
	// Kind is the event array: "capture" (default), "refund",
	// "reverseRefund", "chargeback", "reverseChargeback" or "adjustment".
	Kind string
	// Event is the event.
	Event otpc.Event
}

// Statement is a remittance statement served by
// remittanceStatementDetails.
type Statement struct {
	// Summary is returned with every page.
	Summary otpc.RemittanceStatementSummary
	// Events are paged in this order.
	Events []Event
}

// Call is one notification or call Google processed (first time
// only: replays of a requestId are not recorded again).
type Call struct {
	Method    string
	PIAID     string
	RequestID string
	// Request is the parsed request, e.g.
	// *otpc.ReferenceNumberPaidNotificationRequest.
	Request otpc.Message
	// Plaintext is the opened request body.
	Plaintext []byte
	// At is when it was processed.
	At time.Time
}

// Google is the simulated Google: an http.Handler serving
// .../refundable-one-time-payment-code-v2/{method}/{PIAID} under any
// prefix. It is safe for concurrent use.
type Google struct {
	cfg Config
	log *slog.Logger

	mu         sync.Mutex
	accounts   map[string]Account
	fault      *Fault
	faultLeft  int
	hits       int
	calls      []Call
	changed    chan struct{}
	records    map[string]*googleRecord // PIAID|requestId
	refunds    map[string][]byte        // PIAID|refundRequestId → result JSON
	statements map[string]Statement
	accepted   map[string]string // PIAID|statementId → method
}

// googleRecord is the idempotency record of a processed request.
type googleRecord struct {
	fingerprint []byte
	resp        googleResponse
}

type googleResponse struct {
	msg    otpc.Message
	header *otpc.ResponseHeader
}

// New returns a simulated Google without accounts.
func New(cfg Config) *Google {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Skew <= 0 {
		cfg.Skew = 60 * time.Second
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Google{cfg: cfg, log: log, accounts: map[string]Account{}, changed: make(chan struct{}),
		records: map[string]*googleRecord{}, refunds: map[string][]byte{}, statements: map[string]Statement{},
		accepted: map[string]string{}}
}

// AddAccount registers (or replaces) an integrator account.
func (g *Google) AddAccount(a Account) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.accounts[a.PIAID] = a
}

// AddStatement registers a statement for remittanceStatementDetails and
// acceptRemittanceStatement[WithModifications].
func (g *Google) AddStatement(piaid, statementID string, st Statement) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.statements[piaid+"|"+statementID] = st
}

// Accepted reports whether the statement was accepted, and with which
// method.
func (g *Google) Accepted(piaid, statementID string) (method string, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	method, ok = g.accepted[piaid+"|"+statementID]
	return method, ok
}

// SetFault installs f, replacing any earlier fault.
func (g *Google) SetFault(f Fault) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.fault, g.faultLeft = &f, f.Times
}

// ClearFault removes the fault.
func (g *Google) ClearFault() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.fault = nil
}

// Hits is the number of HTTP requests received, faults and replays
// included.
func (g *Google) Hits() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.hits
}

// Calls returns the processed calls in order.
func (g *Google) Calls() []Call {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]Call(nil), g.calls...)
}

// WaitCalls waits until at least n calls of method ("" for any) were
// processed and returns them, or returns ctx's error with those so far.
func (g *Google) WaitCalls(ctx context.Context, n int, method string) ([]Call, error) {
	for {
		g.mu.Lock()
		var got []Call
		for _, c := range g.calls {
			if method == "" || c.Method == method {
				got = append(got, c)
			}
		}
		ch := g.changed
		g.mu.Unlock()
		if len(got) >= n {
			return got, nil
		}
		select {
		case <-ctx.Done():
			return got, ctx.Err()
		case <-ch:
		}
	}
}

// ServeHTTP answers one request the way Google's endpoint would.
func (g *Google) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	i := strings.Index(r.URL.Path, otpc.PathPrefix)
	if i < 0 {
		http.NotFound(w, r)
		return
	}
	method, piaid, ok := strings.Cut(r.URL.Path[i+len(otpc.PathPrefix):], "/")
	fault := g.takeFault(method)
	if fault != nil {
		if fault.Delay > 0 {
			t := time.NewTimer(fault.Delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		if fault.Drop {
			panic(http.ErrAbortHandler) // net/http closes the connection silently
		}
		if fault.Status != 0 {
			writePlain(w, fault.Status, fault.Body)
			return
		}
	}
	if !ok || piaid == "" || strings.Contains(piaid, "/") || !isGoogleMethod(method) {
		writePlain(w, http.StatusNotFound, "")
		return
	}
	if r.Method != http.MethodPost {
		writePlain(w, http.StatusMethodNotAllowed, "")
		return
	}
	g.mu.Lock()
	acct, known := g.accounts[piaid]
	g.mu.Unlock()
	if !known {
		writePlain(w, http.StatusNotFound, "") // unknown PIAID: empty 404 (spec §6)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, g.cfg.MaxBodyBytes+1))
	if err != nil || int64(len(body)) > g.cfg.MaxBodyBytes {
		writePlain(w, http.StatusRequestEntityTooLarge, GenericErrorText)
		return
	}
	ctx := r.Context()
	ks, err := acct.Keyset(ctx)
	if err != nil {
		writePlain(w, http.StatusServiceUnavailable, GenericErrorText)
		return
	}
	opened, err := acct.Codec.Open(ctx, ks, body)
	if err != nil {
		// Unknown encryption or signing key: the generic empty 404.
		g.log.Debug("sim google: request did not open", slog.String("method", method), slog.String("error", err.Error()))
		writePlain(w, http.StatusNotFound, "")
		return
	}
	status, resp := g.process(method, piaid, opened.Plaintext)
	g.answer(ctx, w, acct, ks, fault, status, resp)
}

// takeFault returns the fault that applies to this request, counting it.
func (g *Google) takeFault(method string) *Fault {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.hits++
	f := g.fault
	if f == nil || (f.Method != "" && f.Method != method) {
		return nil
	}
	if f.Times > 0 {
		g.faultLeft--
		if g.faultLeft <= 0 {
			g.fault = f.Next
			if f.Next != nil {
				g.faultLeft = f.Next.Times
			}
		}
	}
	return f
}

// process checks and runs one opened request and returns the status and
// the response message (an *otpc.ErrorResponse for non-200).
func (g *Google) process(method, piaid string, plaintext []byte) (int, googleResponse) {
	req := otpc.NewGoogleRequest(method) // ServeHTTP checked isGoogleMethod
	hdr := req.Header()
	if err := req.UnmarshalJSON(plaintext); err != nil {
		return errorResponse(&otpc.ErrorResponseResult{InvalidDecryptedRequest: &otpc.Empty{}}, "request did not parse")
	}
	if err := req.Validate(); err != nil {
		var fe *otpc.FieldError
		if errors.As(err, &fe) && len(fe.Missing) > 0 {
			return errorResponse(&otpc.ErrorResponseResult{MissingRequiredField: &otpc.MissingRequiredField{MissingFieldNames: fe.Missing}}, "missing fields")
		}
		ifv := &otpc.InvalidFieldValue{}
		if fe != nil && len(fe.InvalidPaths()) > 0 {
			ifv.InvalidFieldName = fe.InvalidPaths()[0]
		}
		return errorResponse(&otpc.ErrorResponseResult{InvalidFieldValue: ifv}, err.Error())
	}
	if hdr.ProtocolVersion.Major != otpc.ProtocolMajor {
		return errorResponse(&otpc.ErrorResponseResult{InvalidAPIVersion: &otpc.InvalidAPIVersion{
			RequestVersion: hdr.ProtocolVersion, ExpectedVersion: otpc.Version{Major: otpc.ProtocolMajor}}}, "")
	}
	if hdr.PaymentIntegratorAccountID != piaid {
		return errorResponse(&otpc.ErrorResponseResult{InvalidIdentifier: &otpc.InvalidIdentifier{
			InvalidIdentifierType: "paymentIntegratorAccountId"}}, "header PIAID differs from the path")
	}
	now := g.cfg.Now()
	if d := now.Sub(hdr.RequestTimestamp.Time()); d > g.cfg.Skew || d < -g.cfg.Skew {
		return errorResponse(&otpc.ErrorResponseResult{RequestTimestampOutOfRange: &otpc.RequestTimestampOutOfRange{}}, "")
	}
	// Idempotency (spec §7.4): the fingerprint is the request without its
	// requestTimestamp.
	ts := hdr.RequestTimestamp
	hdr.RequestTimestamp = otpc.Timestamp{}
	fingerprint := req.AppendJSON(nil)
	hdr.RequestTimestamp = ts
	key := piaid + "|" + hdr.RequestID

	g.mu.Lock()
	defer g.mu.Unlock()
	if rec, ok := g.records[key]; ok {
		if !bytes.Equal(rec.fingerprint, fingerprint) {
			return errorResponse(&otpc.ErrorResponseResult{IdempotencyViolation: &otpc.Empty{}}, "requestId reused with different content")
		}
		return http.StatusOK, rec.resp
	}
	resp, status, eresp := g.run(piaid, req)
	if status != http.StatusOK {
		return status, eresp // non-200 answers are never replayed
	}
	g.records[key] = &googleRecord{fingerprint: fingerprint, resp: resp}
	g.calls = append(g.calls, Call{Method: method, PIAID: piaid, RequestID: hdr.RequestID, Request: req,
		Plaintext: append([]byte(nil), plaintext...), At: now})
	close(g.changed)
	g.changed = make(chan struct{})
	return http.StatusOK, resp
}

// run executes the method. g.mu is held.
func (g *Google) run(piaid string, req otpc.Message) (googleResponse, int, googleResponse) {
	success := otpc.SuccessResult{Success: &otpc.Empty{}}
	switch m := req.(type) {
	case *otpc.EchoRequest:
		r := &otpc.EchoResponse{ClientMessage: m.ClientMessage, ServerMessage: "otpcgate simulated Google"}
		return googleResponse{r, &r.ResponseHeader}, http.StatusOK, googleResponse{}
	case *otpc.ReferenceNumberPaidNotificationRequest:
		r := &otpc.ReferenceNumberPaidNotificationResponse{Result: success}
		return googleResponse{r, &r.ResponseHeader}, http.StatusOK, googleResponse{}
	case *otpc.RefundResultNotificationRequest:
		// The result of a refund cannot change (spec §6.3).
		k := piaid + "|" + m.RefundRequestID
		result := m.Result.AppendJSON(nil)
		if prev, ok := g.refunds[k]; ok && !bytes.Equal(prev, result) {
			s, e := errorResponse(&otpc.ErrorResponseResult{PreconditionViolation: &otpc.Empty{}},
				"a different result was already reported for this refund")
			return googleResponse{}, s, e
		}
		g.refunds[k] = result
		r := &otpc.RefundResultNotificationResponse{Result: success}
		return googleResponse{r, &r.ResponseHeader}, http.StatusOK, googleResponse{}
	case *otpc.RemittanceStatementDetailsRequest:
		st, ok := g.statements[piaid+"|"+m.StatementID]
		if !ok {
			s, e := unknownStatement()
			return googleResponse{}, s, e
		}
		r := statementPage(st, m)
		return googleResponse{r, &r.ResponseHeader}, http.StatusOK, googleResponse{}
	case *otpc.AcceptRemittanceStatementRequest:
		if _, ok := g.statements[piaid+"|"+m.StatementID]; !ok {
			s, e := unknownStatement()
			return googleResponse{}, s, e
		}
		g.accepted[piaid+"|"+m.StatementID] = otpc.MethodAcceptRemittanceStatement
		r := &otpc.AcceptRemittanceStatementResponse{Result: success}
		return googleResponse{r, &r.ResponseHeader}, http.StatusOK, googleResponse{}
	case *otpc.AcceptRemittanceStatementWithModificationsRequest:
		st, ok := g.statements[piaid+"|"+m.StatementID]
		if !ok {
			s, e := unknownStatement()
			return googleResponse{}, s, e
		}
		g.accepted[piaid+"|"+m.StatementID] = otpc.MethodAcceptRemittanceStatementWithModifications
		r := &otpc.AcceptRemittanceStatementWithModificationsResponse{Result: success}
		rate := int64(0)
		if x := m.SettlementExchangeRateModification; x != nil {
			rate = x.ExchangeRateInMicros
		} else if x := m.FeeToVatAndSettlementExchangeRateModification; x != nil {
			rate = x.ExchangeRateInMicros
		}
		if rate > 0 {
			due := st.Summary.TotalDueByIntegrator
			r.ModifiedTotalDueByIntegrator = &otpc.Amount{AmountMicros: due.AmountMicros / 1_000_000 * rate, CurrencyCode: due.CurrencyCode}
		}
		return googleResponse{r, &r.ResponseHeader}, http.StatusOK, googleResponse{}
	}
	s, e := errorResponse(&otpc.ErrorResponseResult{InvalidDecryptedRequest: &otpc.Empty{}}, "unsupported method")
	return googleResponse{}, s, e
}

func unknownStatement() (int, googleResponse) {
	return errorResponse(&otpc.ErrorResponseResult{InvalidIdentifier: &otpc.InvalidIdentifier{InvalidIdentifierType: "statementId"}},
		"unknown statement")
}

// statementPage returns one page (spec §6.4): at most numberOfEvents
// (default and maximum 1000) from eventOffset, nextEventOffset absent on
// the last page.
func statementPage(st Statement, m *otpc.RemittanceStatementDetailsRequest) *otpc.RemittanceStatementDetailsResponse {
	n := int(m.NumberOfEvents)
	if n <= 0 || n > 1000 {
		n = 1000
	}
	total := len(st.Events)
	off := min(int(m.EventOffset), total)
	end := min(off+n, total)
	r := &otpc.RemittanceStatementDetailsResponse{RemittanceStatementSummary: st.Summary,
		EventOffset: int32(off), TotalEvents: int32(total)}
	if end < total {
		r.NextEventOffset = int32(end)
	}
	for _, e := range st.Events[off:end] {
		switch e.Kind {
		case "refund":
			r.RefundEvents = append(r.RefundEvents, e.Event)
		case "reverseRefund":
			r.ReverseRefundEvents = append(r.ReverseRefundEvents, e.Event)
		case "chargeback":
			r.ChargebackEvents = append(r.ChargebackEvents, e.Event)
		case "reverseChargeback":
			r.ReverseChargebackEvents = append(r.ReverseChargebackEvents, e.Event)
		case "adjustment":
			r.AdjustmentEvents = append(r.AdjustmentEvents, e.Event)
		default:
			r.CaptureEvents = append(r.CaptureEvents, e.Event)
		}
	}
	return r
}

func errorResponse(res *otpc.ErrorResponseResult, desc string) (int, googleResponse) {
	e := &otpc.ErrorResponse{ErrorDescription: desc, ErrorResponseResult: res}
	return res.HTTPStatus(), googleResponse{e, &e.ResponseHeader}
}

// answer seals resp with a fresh responseTimestamp and writes it.
func (g *Google) answer(ctx context.Context, w http.ResponseWriter, acct Account, ks *keystore.Keyset,
	fault *Fault, status int, resp googleResponse) {
	ts := g.cfg.Now()
	if fault != nil {
		ts = ts.Add(fault.ResponseSkew)
	}
	// Stored replies are shared between replays: encode under the lock.
	g.mu.Lock()
	resp.header.ResponseTimestamp = otpc.TimestampOf(ts)
	plaintext := resp.msg.AppendJSON(nil)
	g.mu.Unlock()
	if fault != nil && fault.MutateResponse != nil {
		plaintext = fault.MutateResponse(plaintext)
	}
	if fault != nil && fault.SealWith != nil {
		other, err := fault.SealWith(ctx)
		if err != nil {
			writePlain(w, http.StatusInternalServerError, GenericErrorText)
			return
		}
		ks = other
	}
	body, err := acct.Codec.Seal(ctx, ks, plaintext)
	if err != nil {
		writePlain(w, http.StatusInternalServerError, GenericErrorText)
		return
	}
	w.Header().Set("Content-Type", acct.Codec.ContentType())
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writePlain(w http.ResponseWriter, status int, body string) {
	if body != "" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func isGoogleMethod(method string) bool {
	_, ok := otpc.LookupMethod(otpc.Google, method)
	return ok
}

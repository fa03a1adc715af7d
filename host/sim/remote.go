package sim

// This file observes a simulated Google and reports merchant events in
// another process: the levers the notification scenarios need when the
// gateway under test is `otpcgate dev` running elsewhere.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/otpcgate/otpcgate/host/admin"
	"github.com/otpcgate/otpcgate/host/merchant"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// ErrRemote is wrapped by the errors of RemoteGoogle.
var ErrRemote = errors.New("sim: remote simulated Google")

// remoteTimeout bounds one hook call: GoogleView's methods take no context.
const remoteTimeout = 10 * time.Second

// RemoteGoogle is a GoogleView of a simulated Google served by another
// process through GoogleHooks (a dev gateway's /sim-google). It caches
// the calls seen so far (they are append-only) and fetches only new ones.
type RemoteGoogle struct {
	base string
	hc   *http.Client

	mu    sync.Mutex
	calls []GoogleCall
	err   error
}

// NewRemoteGoogle observes the simulated Google mounted at baseURL (e.g.
// "https://127.0.0.1:8443/sim-google") with hc (which must trust the
// listener's certificate).
func NewRemoteGoogle(baseURL string, hc *http.Client) *RemoteGoogle {
	return &RemoteGoogle{base: strings.TrimRight(baseURL, "/"), hc: hc}
}

// Ping checks that the hooks are served.
func (r *RemoteGoogle) Ping(ctx context.Context) error {
	_, err := r.fetchCalls(ctx, 1<<30)
	return err
}

// Err returns the last error of Calls, AddStatement or Accepted (the
// GoogleView methods return no error), or nil.
func (r *RemoteGoogle) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Calls returns the calls processed so far. On error it returns those
// already seen and records the error (see Err).
func (r *RemoteGoogle) Calls() []GoogleCall {
	ctx, cancel := context.WithTimeout(context.Background(), remoteTimeout)
	defer cancel()
	r.mu.Lock()
	since := len(r.calls)
	r.mu.Unlock()
	fresh, err := r.fetchCalls(ctx, since)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.err = err
	if err == nil && len(r.calls) == since { // no concurrent Calls appended meanwhile
		r.calls = append(r.calls, fresh...)
	}
	return append([]GoogleCall(nil), r.calls...)
}

func (r *RemoteGoogle) fetchCalls(ctx context.Context, since int) ([]GoogleCall, error) {
	var recs []CallRecord
	if err := r.do(ctx, http.MethodGet, HookCalls+"?since="+strconv.Itoa(since), nil, &recs); err != nil {
		return nil, err
	}
	out := make([]GoogleCall, 0, len(recs))
	for _, rec := range recs {
		req, _ := newGoogleRequest(rec.Method)
		if req == nil {
			return nil, fmt.Errorf("%w: unknown method %q in calls", ErrRemote, rec.Method)
		}
		if err := req.UnmarshalJSON(rec.Request); err != nil {
			return nil, fmt.Errorf("%w: %s request %s: %w", ErrRemote, rec.Method, rec.RequestID, err)
		}
		out = append(out, GoogleCall{Method: rec.Method, PIAID: rec.PIAID, RequestID: rec.RequestID,
			Request: req, Plaintext: []byte(rec.Request), At: rec.At})
	}
	return out, nil
}

// AddStatement registers a statement with the remote simulated Google;
// an error is recorded (see Err) and shows later as an unknown statement.
func (r *RemoteGoogle) AddStatement(piaid, statementID string, st GoogleStatement) {
	ctx, cancel := context.WithTimeout(context.Background(), remoteTimeout)
	defer cancel()
	rec := StatementRecord{PIAID: piaid, StatementID: statementID, Summary: st.Summary}
	for _, e := range st.Events {
		rec.Events = append(rec.Events, EventRecord{Kind: e.Kind, Event: e.Event})
	}
	err := r.do(ctx, http.MethodPost, HookStatements, rec, nil)
	r.mu.Lock()
	r.err = err
	r.mu.Unlock()
}

// Accepted reports whether the remote simulated Google saw the statement
// accepted, and with which method; false on error (see Err).
func (r *RemoteGoogle) Accepted(piaid, statementID string) (string, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), remoteTimeout)
	defer cancel()
	var out AcceptedRecord
	err := r.do(ctx, http.MethodGet, HookAccepted+"?"+url.Values{"piaid": {piaid}, "statement": {statementID}}.Encode(), nil, &out)
	r.mu.Lock()
	r.err = err
	r.mu.Unlock()
	return out.Method, err == nil && out.Accepted
}

func (r *RemoteGoogle) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrRemote, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.base+path, rd)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrRemote, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrRemote, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrRemote, err)
	}
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%w: %s %s: HTTP %d %s", ErrRemote, method, path, resp.StatusCode, bytes.TrimSpace(data))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%w: %s %s: %w", ErrRemote, method, path, err)
	}
	return nil
}

// RemoteMerchantEvents reports merchant events over the merchant HTTP API
// of the admin listener, with one merchant-scoped token per merchant.
type RemoteMerchantEvents struct {
	// BaseURL is the admin API, e.g. "http://127.0.0.1:8444".
	BaseURL string
	// Tokens maps a merchant id to its merchant token's secret.
	Tokens map[string]string
	// HTTP is the client; nil means http.DefaultClient.
	HTTP *http.Client
}

var _ MerchantEvents = (*RemoteMerchantEvents)(nil)

func (r *RemoteMerchantEvents) client(merchantID string) *admin.Client {
	return &admin.Client{BaseURL: r.BaseURL, Token: r.Tokens[merchantID], HTTP: r.HTTP}
}

// ReportPayment posts a payment at a store.
func (r *RemoteMerchantEvents) ReportPayment(ctx context.Context, merchantID string, p merchant.Payment) (merchant.PaymentResult, error) {
	var res merchant.PaymentResult
	err := r.client(merchantID).Do(ctx, http.MethodPost, admin.MerchantPath(merchantID, "payments"), p, &res)
	return res, err
}

// ReportRefundResult posts an asynchronous refund's outcome.
func (r *RemoteMerchantEvents) ReportRefundResult(ctx context.Context, merchantID string, o merchant.RefundOutcome) (merchant.RefundOutcomeResult, error) {
	var res merchant.RefundOutcomeResult
	err := r.client(merchantID).Do(ctx, http.MethodPost, admin.MerchantPath(merchantID, "refund-results"), o, &res)
	return res, err
}

// AcceptStatement accepts a statement, with modifications when
// a.Modification is set.
func (r *RemoteMerchantEvents) AcceptStatement(ctx context.Context, merchantID string, a merchant.Acceptance) (merchant.AcceptanceResult, error) {
	var res merchant.AcceptanceResult
	var body any
	if a.Modification != nil {
		body = map[string]any{"modification": a.Modification}
	}
	err := r.client(merchantID).Do(ctx, http.MethodPost, admin.MerchantPath(merchantID, "statements", a.PIAID, a.StatementID, "accept"), body, &res)
	return res, err
}

// StatementDetails fetches one page of a statement's events from Google
// through the gateway.
func (r *RemoteMerchantEvents) StatementDetails(ctx context.Context, merchantID, piaid, statementID string, offset, count int32) (*otpc.RemittanceStatementDetailsResponse, error) {
	var res otpc.RemittanceStatementDetailsResponse
	q := url.Values{"offset": {strconv.Itoa(int(offset))}, "count": {strconv.Itoa(int(count))}}
	err := r.client(merchantID).Do(ctx, http.MethodGet, admin.MerchantPath(merchantID, "statements", piaid, statementID)+"?"+q.Encode(), nil, &res)
	if err != nil {
		return nil, err
	}
	return &res, nil
}

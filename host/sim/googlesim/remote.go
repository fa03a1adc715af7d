package googlesim

// This file observes a simulated Google served in another process (by
// `otpcgate dev`) through its hooks.

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

	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// ErrRemote is wrapped by the errors of Remote.
var ErrRemote = errors.New("googlesim: remote simulated Google")

// remoteTimeout bounds one hook call: GoogleView's methods take no context.
const remoteTimeout = 10 * time.Second

// Remote is a GoogleView of a simulated Google served by another
// process through GoogleHooks (a dev gateway's /sim-google). It caches
// the calls seen so far (they are append-only) and fetches only new ones.
type Remote struct {
	base string
	hc   *http.Client

	mu    sync.Mutex
	calls []Call
	err   error
}

// NewRemote observes the simulated Google mounted at baseURL (e.g.
// "https://127.0.0.1:8443/sim-google") with hc (which must trust the
// listener's certificate).
func NewRemote(baseURL string, hc *http.Client) *Remote {
	return &Remote{base: strings.TrimRight(baseURL, "/"), hc: hc}
}

// Ping checks that the hooks are served.
func (r *Remote) Ping(ctx context.Context) error {
	_, err := r.fetchCalls(ctx, 1<<30)
	return err
}

// Err returns the last error of Calls, AddStatement or Accepted (the
// GoogleView methods return no error), or nil.
func (r *Remote) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Calls returns the calls processed so far. On error it returns those
// already seen and records the error (see Err).
func (r *Remote) Calls() []Call {
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
	return append([]Call(nil), r.calls...)
}

func (r *Remote) fetchCalls(ctx context.Context, since int) ([]Call, error) {
	var recs []CallRecord
	if err := r.do(ctx, http.MethodGet, HookCalls+"?since="+strconv.Itoa(since), nil, &recs); err != nil {
		return nil, err
	}
	out := make([]Call, 0, len(recs))
	for _, rec := range recs {
		req := otpc.NewGoogleRequest(rec.Method)
		if req == nil {
			return nil, fmt.Errorf("%w: unknown method %q in calls", ErrRemote, rec.Method)
		}
		if err := req.UnmarshalJSON(rec.Request); err != nil {
			return nil, fmt.Errorf("%w: %s request %s: %w", ErrRemote, rec.Method, rec.RequestID, err)
		}
		out = append(out, Call{Method: rec.Method, PIAID: rec.PIAID, RequestID: rec.RequestID,
			Request: req, Plaintext: []byte(rec.Request), At: rec.At})
	}
	return out, nil
}

// AddStatement registers a statement with the remote simulated Google;
// an error is recorded (see Err) and shows later as an unknown statement.
func (r *Remote) AddStatement(piaid, statementID string, st Statement) {
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
func (r *Remote) Accepted(piaid, statementID string) (string, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), remoteTimeout)
	defer cancel()
	var out AcceptedRecord
	err := r.do(ctx, http.MethodGet, HookAccepted+"?"+url.Values{"piaid": {piaid}, "statement": {statementID}}.Encode(), nil, &out)
	r.mu.Lock()
	r.err = err
	r.mu.Unlock()
	return out.Method, err == nil && out.Accepted
}

func (r *Remote) do(ctx context.Context, method, path string, body, out any) error {
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

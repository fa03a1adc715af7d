package googlesim

// This file serves the simulated Google's observation hooks to another
// process (`otpcgate sim run` against `otpcgate dev`): what Google
// received, statements to serve, statements accepted. RemoteGoogle is the
// client side.

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// Paths of the observation hooks, relative to where the simulated Google
// is mounted.
const (
	HookCalls      = "/_calls"
	HookStatements = "/_statements"
	HookAccepted   = "/_accepted"
)

// CallRecord is the JSON form of a Call served by the hooks.
type CallRecord struct {
	Method    string    `json:"method"`
	PIAID     string    `json:"piaid"`
	RequestID string    `json:"requestId"`
	At        time.Time `json:"at"`
	// Request is the opened request JSON.
	Request json.RawMessage `json:"request"`
}

// StatementRecord registers a statement through the hooks.
type StatementRecord struct {
	PIAID       string                          `json:"piaid"`
	StatementID string                          `json:"statementId"`
	Summary     otpc.RemittanceStatementSummary `json:"summary"`
	Events      []EventRecord                   `json:"events,omitempty"`
}

// EventRecord is the JSON form of a Event.
type EventRecord struct {
	Kind  string     `json:"kind,omitempty"`
	Event otpc.Event `json:"event"`
}

// AcceptedRecord answers HookAccepted.
type AcceptedRecord struct {
	Accepted bool   `json:"accepted"`
	Method   string `json:"method,omitempty"`
}

// maxHookBody bounds a registered statement.
const maxHookBody = 1 << 20

// Hooks returns the observation hooks of g: GET HookCalls[?since=N]
// lists the processed calls from index N, POST HookStatements registers a
// StatementRecord, GET HookAccepted?piaid=&statement= reports an
// acceptance. They are unauthenticated test hooks: mount them only on a
// development listener, never in production.
func Hooks(g *Google) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+HookCalls, func(w http.ResponseWriter, r *http.Request) {
		since := 0
		if v := r.URL.Query().Get("since"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				http.Error(w, "since must be a non-negative integer", http.StatusBadRequest)
				return
			}
			since = n
		}
		calls := g.Calls()
		out := make([]CallRecord, 0, max(len(calls)-since, 0))
		for _, c := range calls[min(since, len(calls)):] {
			out = append(out, CallRecord{Method: c.Method, PIAID: c.PIAID, RequestID: c.RequestID, At: c.At,
				Request: json.RawMessage(c.Plaintext)})
		}
		writeJSON(w, out)
	})
	mux.HandleFunc("POST "+HookStatements, func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(io.LimitReader(r.Body, maxHookBody+1))
		if err != nil || len(b) > maxHookBody {
			http.Error(w, "statement too large", http.StatusRequestEntityTooLarge)
			return
		}
		var st StatementRecord
		if err := json.Unmarshal(b, &st); err != nil || st.PIAID == "" || st.StatementID == "" {
			http.Error(w, "want a statement with piaid and statementId", http.StatusBadRequest)
			return
		}
		gs := Statement{Summary: st.Summary}
		for _, e := range st.Events {
			gs.Events = append(gs.Events, Event{Kind: e.Kind, Event: e.Event})
		}
		g.AddStatement(st.PIAID, st.StatementID, gs)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET "+HookAccepted, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		method, ok := g.Accepted(q.Get("piaid"), q.Get("statement"))
		writeJSON(w, AcceptedRecord{Accepted: ok, Method: method})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encoding failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

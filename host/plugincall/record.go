package plugincall

import (
	"bytes"
	"sync"
	"time"

	"github.com/otpcgate/otpcgate/host/runtime"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// Recording is one plugin call as it ran: everything needed to run it
// again on any version (input, time, the host's answers on its tape) and
// what the version that served it answered. It holds the request's
// payload: whoever keeps it keeps it encrypted.
type Recording struct {
	Merchant  string             `json:"merchant"`
	Version   string             `json:"version"`
	Op        otpc.Op            `json:"op"`
	RequestID string             `json:"requestId,omitempty"`
	Now       time.Time          `json:"now"`
	Input     []byte             `json:"input"`
	Tape      *runtime.Tape      `json:"tape"`
	Outcome   string             `json:"outcome"`
	Output    []byte             `json:"output,omitempty"`
	KV        []runtime.KVChange `json:"kv,omitempty"`
}

// recordings routes recorded calls of the merchants that record to sink.
type recordings struct {
	mu   sync.Mutex
	on   map[string]bool
	sink func(Recording)
}

// SetRecorder sets where recorded calls go. sink is called on the calling
// goroutine after the call and must not block (queue, or drop).
func (s *Service) SetRecorder(sink func(Recording)) {
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	s.rec.sink = sink
}

// SetRecording turns recording of merchant's plugin calls on or off. The
// login page's calls are never recorded: their input holds a password.
func (s *Service) SetRecording(merchant string, on bool) {
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	if s.rec.on == nil {
		s.rec.on = map[string]bool{}
	}
	if on {
		s.rec.on[merchant] = true
	} else {
		delete(s.rec.on, merchant)
	}
}

// recording returns the sink if merchant's op is recorded.
func (r *recordings) recording(merchant string, op otpc.Op) func(Recording) {
	if op == otpc.OpAuthenticate || op == otpc.OpWarmup {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sink == nil || !r.on[merchant] {
		return nil
	}
	return r.sink
}

// newRecording describes a finished call for a sink.
func newRecording(t Target, version string, op otpc.Op, reqID string, now time.Time, input []byte, tape *runtime.Tape,
	out []byte, cs runtime.ChangeSet, err error) Recording {
	return Recording{Merchant: t.Merchant, Version: version, Op: op, RequestID: reqID, Now: now, Input: bytes.Clone(input),
		Tape: tape, Outcome: Side(out, cs, err).Outcome, Output: bytes.Clone(Answer(out, err)), KV: cs.Changes}
}

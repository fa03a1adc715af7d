package plugincall

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/otpcgate/otpcgate/host/runtime"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// VersionRunner runs a named version of a plugin, active or not;
// *runtime.Manager implements it. Shadow calls need it.
type VersionRunner interface {
	CallVersion(ctx context.Context, pluginID, ver string, op otpc.Op, input []byte, env runtime.CallEnv) ([]byte, runtime.ChangeSet, error)
}

// Shadow defaults (see Config).
const (
	// DefaultShadowQueue bounds the shadow calls waiting to run; beyond
	// it a shadow call is dropped (counted), never delaying a request.
	DefaultShadowQueue = 256
	// maxShadowSamples bounds the divergences kept per merchant.
	maxShadowSamples = 100
	// maxSampleOutput bounds each output kept in a divergence sample.
	maxSampleOutput = 4 << 10
)

// ShadowOp counts one op's shadow calls.
type ShadowOp struct {
	// Compared calls ran on both versions; Different of them differed in
	// outcome, output or KV changes.
	Compared  int64 `json:"compared"`
	Different int64 `json:"different"`
}

// ShadowSide is what one version answered to a shadowed call.
type ShadowSide struct {
	// Outcome is "ok", "refusal" or the failure's kind (trap, timeout, …).
	Outcome string `json:"outcome"`
	// Output is the output or refusal frame's JSON (at most 4 KiB), or the
	// failure's message.
	Output string `json:"output,omitempty"`
	// KV is the call's KV changes, "put key" / "delete key" per change.
	KV []string `json:"kv,omitempty"`
}

// ShadowDiff is one call on which the candidate differed from the active
// version. The request itself is never kept: only the two answers.
type ShadowDiff struct {
	Time      time.Time  `json:"time"`
	Op        string     `json:"op"`
	RequestID string     `json:"requestId,omitempty"`
	Active    ShadowSide `json:"active"`
	Candidate ShadowSide `json:"candidate"`
	// Misses counts host calls the candidate made that the active call's
	// tape could not answer (other keys read, more randomness).
	Misses int `json:"misses,omitempty"`
}

// ShadowReport is a merchant's shadow run since it started.
type ShadowReport struct {
	// Version is the candidate; "" when no shadow runs.
	Version string    `json:"version"`
	Sample  float64   `json:"sample"`
	Since   time.Time `json:"since"`
	// Compared and Different sum ByOp; Dropped counts sampled calls not
	// compared (queue full, no CPU slot in time); CandidateFailures counts
	// the candidate's failures (trap, timeout, limit, error).
	Compared          int64               `json:"compared"`
	Different         int64               `json:"different"`
	Dropped           int64               `json:"dropped"`
	CandidateFailures int64               `json:"candidateFailures"`
	ByOp              map[string]ShadowOp `json:"byOp"`
	// Samples are the latest divergences, oldest first (at most 100).
	Samples []ShadowDiff `json:"samples"`
}

// shadowJob is one sampled call waiting for its candidate run.
type shadowJob struct {
	merchant, plugin, version, reqID string
	op                               otpc.Op
	input                            []byte
	now                              time.Time
	tape                             *runtime.Tape
	active                           ShadowSide
	activeCS                         runtime.ChangeSet
	activeOut                        []byte
}

// shadows runs candidates beside the active versions. Sampled calls are
// queued and run by one worker, off the requests' latency path, each
// taking a CPU slot of its merchant's fair share when an Admission is set.
type shadows struct {
	run   VersionRunner
	kv    runtime.KVReader // answers what a tape cannot
	adm   Admission
	queue chan shadowJob
	stop  chan struct{}
	done  chan struct{}

	mu  sync.Mutex
	per map[string]*ShadowReport // by merchant
}

func newShadows(run Runner, kv runtime.KVReader, adm Admission, queue int) *shadows {
	vr, _ := run.(VersionRunner)
	if queue <= 0 {
		queue = DefaultShadowQueue
	}
	s := &shadows{run: vr, kv: kv, adm: adm, queue: make(chan shadowJob, queue), stop: make(chan struct{}), done: make(chan struct{}),
		per: map[string]*ShadowReport{}}
	go s.work()
	return s
}

// SetShadow runs version beside merchant's active version on a sample
// (0 < sample <= 1) of its calls; an empty version stops it. A new version
// or sample starts a new report.
func (s *Service) SetShadow(merchant, version string, sample float64) {
	sh := s.shadow
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if version == "" || sh.run == nil {
		delete(sh.per, merchant)
		return
	}
	if r := sh.per[merchant]; r != nil && r.Version == version && r.Sample == sample {
		return
	}
	sh.per[merchant] = &ShadowReport{Version: version, Sample: min(max(sample, 0), 1), Since: time.Now().UTC(),
		ByOp: map[string]ShadowOp{}}
}

// Shadow returns merchant's shadow report; Version is "" if none runs.
func (s *Service) Shadow(merchant string) ShadowReport {
	sh := s.shadow
	sh.mu.Lock()
	defer sh.mu.Unlock()
	r := sh.per[merchant]
	if r == nil {
		return ShadowReport{ByOp: map[string]ShadowOp{}, Samples: []ShadowDiff{}}
	}
	out := *r
	out.ByOp = make(map[string]ShadowOp, len(r.ByOp))
	for k, v := range r.ByOp {
		out.ByOp[k] = v
	}
	out.Samples = append([]ShadowDiff{}, r.Samples...)
	return out
}

// Close stops the shadow worker; queued shadow calls are dropped.
func (s *Service) Close() {
	s.closeOnce.Do(func() {
		close(s.shadow.stop)
		<-s.shadow.done
	})
}

// sampled reports the candidate to shadow a call of merchant's op with,
// if this call is sampled. The login page's op is never shadowed: its
// input holds the user's password, which must not wait in a queue.
func (sh *shadows) sampled(merchant string, op otpc.Op) (string, bool) {
	if op == otpc.OpAuthenticate || op == otpc.OpWarmup {
		return "", false
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	r := sh.per[merchant]
	if r == nil || r.Sample <= 0 || r.Sample < 1 && rand.Float64() >= r.Sample {
		return "", false
	}
	return r.Version, true
}

// enqueue queues a sampled call, or drops it when the queue is full.
func (sh *shadows) enqueue(j shadowJob) {
	select {
	case sh.queue <- j:
	default:
		clear(j.input)
		sh.update(j.merchant, j.version, func(r *ShadowReport) { r.Dropped++ })
	}
}

// update applies f to merchant's report if it still shadows version.
func (sh *shadows) update(merchant, version string, f func(*ShadowReport)) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if r := sh.per[merchant]; r != nil && r.Version == version {
		f(r)
	}
}

func (sh *shadows) work() {
	defer close(sh.done)
	for {
		select {
		case <-sh.stop:
			return
		case j := <-sh.queue:
			sh.compare(j)
		}
	}
}

// compare runs j's call on the candidate with the active call's tape and
// records the comparison.
func (sh *shadows) compare(j shadowJob) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	defer clear(j.input) // the request's payload does not outlive the job
	if !sh.idleSlot() {
		sh.update(j.merchant, j.version, func(r *ShadowReport) { r.Dropped++ })
		return
	}
	out, cs, err := sh.run.CallVersion(ctx, j.plugin, j.version, j.op, j.input,
		runtime.CallEnv{Namespace: j.merchant, KV: sh.kv, Now: j.now, RequestID: j.reqID, Replay: j.tape})
	cand := Side(out, cs, err)
	same := Agree(j.active.Outcome, j.activeOut, j.activeCS.Changes, cand.Outcome, Answer(out, err), cs.Changes)
	misses := j.tape.Misses()
	sh.update(j.merchant, j.version, func(r *ShadowReport) {
		op := r.ByOp[j.op.String()]
		op.Compared++
		r.Compared++
		if cand.Outcome != "ok" && cand.Outcome != "refusal" {
			r.CandidateFailures++
		}
		if !same {
			op.Different++
			r.Different++
			if len(r.Samples) == maxShadowSamples {
				r.Samples = append(r.Samples[:0], r.Samples[1:]...)
			}
			r.Samples = append(r.Samples, ShadowDiff{Time: time.Now().UTC(), Op: j.op.String(), RequestID: j.reqID,
				Active: j.active, Candidate: cand, Misses: misses})
		}
		r.ByOp[j.op.String()] = op
	})
}

// idler is what an Admission may also tell: its slots in use and waiters
// (*server.Limiter does).
type idler interface {
	Stats() (inFlight, queued int)
	MaxInFlight() int
}

// idleSlot waits, up to shadowWait, until the admission has a slot free
// that no request waits for. A shadow call never takes a slot: it runs
// only on CPU the live requests leave, one at a time, so it never queues
// a request behind it.
func (sh *shadows) idleSlot() bool {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-sh.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return WaitIdle(ctx, sh.adm, shadowWait)
}

// WaitIdle waits, up to wait, until a has a slot free that no request
// waits for, for background work (shadow calls, replays) that must only
// use CPU the live requests leave. An Admission that cannot tell (or nil)
// is taken as idle.
func WaitIdle(ctx context.Context, a Admission, wait time.Duration) bool {
	id, ok := a.(idler)
	if !ok {
		return true
	}
	deadline := time.Now().Add(wait)
	for {
		if inFlight, queued := id.Stats(); inFlight < id.MaxInFlight() && queued == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-time.After(time.Millisecond):
		case <-ctx.Done():
			return false
		}
	}
}

// shadowWait bounds how long a shadow call waits for a free slot before it
// is dropped: under sustained full load, shadowing yields entirely.
const shadowWait = time.Second

// Agree reports whether two runs of a call answered alike: the same
// outcome and, for an output or a refusal, the same bytes and KV changes.
// Failures agree by kind only: their messages name the version.
func Agree(outcomeA string, answerA []byte, kvA []runtime.KVChange, outcomeB string, answerB []byte, kvB []runtime.KVChange) bool {
	if outcomeA != outcomeB {
		return false
	}
	if outcomeA != "ok" && outcomeA != "refusal" {
		return true
	}
	return bytes.Equal(answerA, answerB) && sameChanges(kvA, kvB)
}

// Side describes one run's answer as the runtime returned it, before the
// host's decoding (the same bytes for two versions that agree).
func Side(out []byte, cs runtime.ChangeSet, err error) ShadowSide {
	var s ShadowSide
	var ce *runtime.CallError
	switch {
	case err == nil:
		s.Outcome, s.Output = "ok", clipOutput(out)
	case errors.As(err, &ce) && ce.Kind == runtime.KindRefusal:
		s.Outcome, s.Output = "refusal", clipOutput(ce.Refusal)
	case errors.As(err, &ce):
		s.Outcome, s.Output = ce.Kind.String(), ce.Msg
	default:
		s.Outcome, s.Output = "host", err.Error()
	}
	for _, c := range cs.Changes {
		if c.Delete {
			s.KV = append(s.KV, "delete "+c.Key)
		} else {
			s.KV = append(s.KV, "put "+c.Key)
		}
	}
	return s
}

// Answer is the bytes a run answered with: the output, or the refusal
// frame's body; nil for a failure.
func Answer(out []byte, err error) []byte {
	var ce *runtime.CallError
	if errors.As(err, &ce) {
		if ce.Kind == runtime.KindRefusal {
			return ce.Refusal
		}
		return nil
	}
	return out
}

// clipOutput bounds an output kept in a report.
func clipOutput(b []byte) string {
	if len(b) > maxSampleOutput {
		b = b[:maxSampleOutput]
	}
	return string(b)
}

func sameChanges(a, b []runtime.KVChange) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Key != y.Key || x.Delete != y.Delete || !bytes.Equal(x.Value, y.Value) {
			return false
		}
	}
	return true
}

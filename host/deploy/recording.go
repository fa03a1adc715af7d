package deploy

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/otpcgate/otpcgate/host/admin"
	"github.com/otpcgate/otpcgate/host/directory"
	"github.com/otpcgate/otpcgate/host/plugincall"
	"github.com/otpcgate/otpcgate/host/runtime"
)

// Recording defaults (admin.RecordingRequest).
const (
	DefaultRecordingRetention = 24 * time.Hour
	DefaultRecordingMax       = 10_000
	maxRecordingMax           = 100_000
	// recordQueue bounds recorded calls waiting to be written; beyond it
	// they are dropped (counted), never delaying a request.
	recordQueue = 1024
)

// recorder writes the recorded plugin calls of the merchants that record,
// sealed with a key derived from the KEK: a recording holds the request's
// payload. One goroutine writes, in batches, off the requests' path.
type recorder struct {
	dir   *directory.Store
	log   *slog.Logger
	aead  cipher.AEAD
	queue chan plugincall.Recording
	stop  chan struct{}
	done  chan struct{}

	mu      sync.Mutex
	dropped map[string]int64
}

func newRecorder(dir *directory.Store, log *slog.Logger, key []byte) (*recorder, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	r := &recorder{dir: dir, log: log, aead: aead, queue: make(chan plugincall.Recording, recordQueue), stop: make(chan struct{}),
		done: make(chan struct{}), dropped: map[string]int64{}}
	go r.run()
	return r, nil
}

// add queues a recorded call (plugincall's sink).
func (r *recorder) add(rec plugincall.Recording) {
	select {
	case r.queue <- rec:
	default:
		r.mu.Lock()
		r.dropped[rec.Merchant]++
		r.mu.Unlock()
	}
}

func (r *recorder) close() {
	close(r.stop)
	<-r.done
}

func (r *recorder) run() {
	defer close(r.done)
	for {
		select {
		case <-r.stop:
			return
		case rec := <-r.queue:
			batch := []plugincall.Recording{rec}
			for len(batch) < 64 {
				select {
				case rec := <-r.queue:
					batch = append(batch, rec)
					continue
				default:
				}
				break
			}
			if err := r.write(batch); err != nil {
				r.log.Error("plugin recordings not written", "n", len(batch), "err", err)
			}
		}
	}
}

// aad binds a sealed recording to its merchant, so a row moved to
// another merchant does not open.
func aad(merchant string) []byte { return []byte("otpcgate plugin recording\x00" + merchant) }

func (r *recorder) seal(rec plugincall.Recording) ([]byte, error) {
	plain, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, r.aead.NonceSize(), r.aead.NonceSize()+len(plain)+r.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	sealed := r.aead.Seal(nonce, nonce, plain, aad(rec.Merchant))
	clear(plain)
	return sealed, nil
}

func (r *recorder) open(merchant string, sealed []byte) (plugincall.Recording, error) {
	var rec plugincall.Recording
	n := r.aead.NonceSize()
	if len(sealed) < n {
		return rec, errors.New("deploy: recording too short")
	}
	plain, err := r.aead.Open(nil, sealed[:n], sealed[n:], aad(merchant))
	if err != nil {
		return rec, fmt.Errorf("deploy: recording does not open: %w", err)
	}
	err = json.Unmarshal(plain, &rec)
	clear(plain)
	return rec, err
}

// write seals a batch and stores it; the directory applies each
// merchant's bounds.
func (r *recorder) write(batch []plugincall.Recording) error {
	recs := make([]directory.NewRecording, 0, len(batch))
	for _, rec := range batch {
		sealed, err := r.seal(rec)
		if err != nil {
			return err
		}
		recs = append(recs, directory.NewRecording{MerchantID: rec.Merchant, Version: rec.Version, Op: int(rec.Op), At: rec.Now, Sealed: sealed})
	}
	return r.dir.AddRecordings(context.Background(), recs)
}

// recordingOf reports a merchant's recording state for the admin API.
func (s *Service) recordingOf(ctx context.Context, merchantID string) (admin.RecordingState, error) {
	settings, err := s.dir.RecordingSettings(ctx)
	if err != nil {
		return admin.RecordingState{}, err
	}
	var out admin.RecordingState
	if st, ok := settings[merchantID]; ok && time.Now().Before(st.Until) {
		out.On, out.Until, out.Retention, out.Max = true, st.Until.UTC(), st.Retention.String(), st.Max
	}
	n, err := s.dir.RecordingCount(ctx, merchantID)
	if err != nil {
		return out, err
	}
	out.Recorded = n
	s.rec.mu.Lock()
	out.Dropped = s.rec.dropped[merchantID]
	s.rec.mu.Unlock()
	return out, nil
}

// SetRecording starts or stops recording a merchant's plugin calls
// (admin.Backend).
func (s *Service) SetRecording(ctx context.Context, merchantID string, req admin.RecordingRequest) (admin.RecordingState, error) {
	if _, err := s.dir.Integration(ctx, merchantID); err != nil {
		return admin.RecordingState{}, fmt.Errorf("%w: merchant %s", admin.ErrNotFound, merchantID)
	}
	if !req.On {
		if err := s.dir.SetRecording(ctx, merchantID, nil); err != nil {
			return admin.RecordingState{}, err
		}
	} else {
		st := directory.RecordingSettings{Retention: DefaultRecordingRetention, Max: DefaultRecordingMax}
		if req.Retention != "" {
			d, err := time.ParseDuration(req.Retention)
			if err != nil || d <= 0 || d > 30*24*time.Hour {
				return admin.RecordingState{}, fmt.Errorf("%w: retention must be a duration up to 720h, got %q", admin.ErrInvalid, req.Retention)
			}
			st.Retention = d
		}
		if req.Max != 0 {
			if req.Max < 1 || req.Max > maxRecordingMax {
				return admin.RecordingState{}, fmt.Errorf("%w: max must be 1..%d, got %d", admin.ErrInvalid, maxRecordingMax, req.Max)
			}
			st.Max = req.Max
		}
		st.Until = time.Now().Add(st.Retention)
		if err := s.dir.SetRecording(ctx, merchantID, &st); err != nil {
			return admin.RecordingState{}, err
		}
	}
	if err := s.reload(ctx); err != nil {
		return admin.RecordingState{}, err
	}
	return s.recordingOf(ctx, merchantID)
}

// Recording reports a merchant's recording (admin.Backend).
func (s *Service) Recording(ctx context.Context, merchantID string) (admin.RecordingState, error) {
	if _, err := s.dir.Integration(ctx, merchantID); err != nil {
		return admin.RecordingState{}, fmt.Errorf("%w: merchant %s", admin.ErrNotFound, merchantID)
	}
	return s.recordingOf(ctx, merchantID)
}

// Replay runs a stored version on a merchant's recorded calls, with each
// call's own input, time and tape, and compares its answers with the ones
// recorded (admin.Backend). Nothing it does is kept; it yields to live
// requests like a shadow.
func (s *Service) Replay(ctx context.Context, merchantID string, req admin.ReplayRequest) (admin.ReplayReport, error) {
	if req.Version == "" {
		return admin.ReplayReport{}, fmt.Errorf("%w: version is required", admin.ErrInvalid)
	}
	if _, err := s.version(ctx, merchantID, req.Version); err != nil {
		return admin.ReplayReport{}, err
	}
	limit := req.Limit
	if limit <= 0 || limit > maxRecordingMax {
		limit = maxRecordingMax
	}
	pin := merchantID + "\x00" + req.Version
	s.mu.Lock()
	n, _ := s.replaying.LoadOrStore(pin, new(atomic.Int64))
	n.(*atomic.Int64).Add(1)
	err := s.ensureLoaded(ctx, merchantID, req.Version)
	s.mu.Unlock()
	defer n.(*atomic.Int64).Add(-1)
	if err != nil {
		return admin.ReplayReport{}, fmt.Errorf("%w: the version does not load: %v", admin.ErrPluginRefused, err)
	}
	defer func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		_ = s.trimLoaded(context.Background(), merchantID) // unload it again unless it is needed
	}()
	all, err := s.dir.Recordings(ctx, merchantID, limit)
	if err != nil {
		return admin.ReplayReport{}, err
	}
	rep := admin.ReplayReport{Version: req.Version, Differences: []admin.ReplayDiff{}}
	for _, r := range all {
		rec, err := s.rec.open(merchantID, r.Sealed)
		if err != nil {
			rep.Unreadable++
			continue
		}
		if !plugincall.WaitIdle(ctx, s.admission, time.Minute) {
			return rep, fmt.Errorf("%w: no CPU slot free of live requests for a minute; replay later", admin.ErrConflict)
		}
		rec.Tape.Rewind()
		out, cs, err := s.rt.CallVersion(ctx, merchantID, req.Version, rec.Op, rec.Input,
			runtime.CallEnv{Namespace: merchantID, Now: rec.Now, RequestID: rec.RequestID, Replay: rec.Tape})
		clear(rec.Input)
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
		rep.Replayed++
		got := plugincall.Side(out, cs, err)
		if plugincall.Agree(rec.Outcome, rec.Output, rec.KV, got.Outcome, plugincall.Answer(out, err), cs.Changes) {
			rep.Same++
			continue
		}
		rep.Different++
		if len(rep.Differences) < 100 {
			rep.Differences = append(rep.Differences, admin.ReplayDiff{Recording: strconv.FormatInt(r.ID, 10), RecordedVersion: r.Version,
				Op: rec.Op.String(), RequestID: rec.RequestID, At: rec.Now.UTC(),
				Recorded: plugincall.ShadowSide{Outcome: rec.Outcome, Output: string(rec.Output[:min(len(rec.Output), 4<<10)])}, Replayed: got,
				Misses: rec.Tape.Misses()})
		}
	}
	return rep, nil
}

// loadRecording applies a merchant's recording settings to the plugin-call
// service.
func (s *Service) loadRecording(merchantID string, st directory.RecordingSettings, ok bool) {
	s.calls.SetRecording(merchantID, ok && time.Now().Before(st.Until))
}

package runtime

import "sync"

// Tape holds what the host gave one call beyond its input and time: the
// random bytes, in order, and the values it read from the committed KV
// view. A call made with CallEnv.Record fills it; a call made with
// CallEnv.Replay is given the same answers, so another version of the
// plugin runs on exactly the inputs the recorded call had — no noise from
// randomness or from KV changed since.
//
// A tape is filled by one call and then only read; it is not for
// concurrent writers.
type Tape struct {
	// Random is each random call's bytes, in order.
	Random [][]byte `json:"random,omitempty"`
	// KV is each committed-view read, in order: key, value and whether
	// the key existed.
	KV []TapeRead `json:"kv,omitempty"`

	mu sync.Mutex
	// misses counts host calls of a replay the tape could not answer (the
	// replayed version asked for more randomness, or for a key the
	// recorded call never read); those were answered live instead.
	misses int
	next   int // the replay's next Random entry
}

// TapeRead is one KV read of a taped call.
type TapeRead struct {
	Key   string `json:"key"`
	Value []byte `json:"value,omitempty"`
	Found bool   `json:"found"`
}

// Misses reports how many host calls a replay made that the tape could
// not answer (answered live instead): a replayed version that reads other
// keys or more randomness than the recorded one.
func (t *Tape) Misses() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.misses
}

// Rewind readies a tape for another replay.
func (t *Tape) Rewind() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.next, t.misses = 0, 0
}

// random fills buf from the tape's next entry; false if it has none of
// that length (a miss).
func (t *Tape) random(buf []byte) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.next < len(t.Random) && len(t.Random[t.next]) == len(buf) {
		copy(buf, t.Random[t.next])
		t.next++
		return true
	}
	t.misses++
	return false
}

// read answers a KV read from the tape: the first recorded read of key.
func (t *Tape) read(key string) (value []byte, found, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range t.KV {
		if r.Key == key {
			return r.Value, r.Found, true
		}
	}
	t.misses++
	return nil, false, false
}

package keystore

import (
	"sync"
	"sync/atomic"
)

// Use is one way traffic used a key, counted per key.
type Use int

// Key uses counted by Counters.
const (
	UseDecrypt       Use = iota // a self key decrypted a message
	UseSign                     // a self key signed a message
	UseVerify                   // a peer key verified a signature
	UseVerifyFailure            // a signature by a peer key failed to verify
	UseEncryptTo                // a message was encrypted to a peer key
	numUses
)

// String names the use as a metric label.
func (u Use) String() string {
	switch u {
	case UseDecrypt:
		return "decrypt"
	case UseSign:
		return "sign"
	case UseVerify:
		return "verify"
	case UseVerifyFailure:
		return "verify_failure"
	case UseEncryptTo:
		return "encrypt_to"
	}
	return "unknown"
}

// UseCounts holds one key's counters, indexed by Use.
type UseCounts [numUses]uint64

// Counters counts key uses per key id. Record is lock-free once a key has
// been seen (one sync.Map load and an atomic add); the zero value is ready.
type Counters struct {
	m sync.Map // key id → *[numUses]atomic.Uint64
}

// Record adds one use of key id. Unknown uses are ignored.
func (c *Counters) Record(keyID string, u Use) {
	if u < 0 || u >= numUses {
		return
	}
	v, ok := c.m.Load(keyID)
	if !ok {
		v, _ = c.m.LoadOrStore(keyID, new([numUses]atomic.Uint64))
	}
	v.(*[numUses]atomic.Uint64)[u].Add(1)
}

// Get returns the counters of one key (zeros if never used).
func (c *Counters) Get(keyID string) UseCounts {
	var out UseCounts
	if v, ok := c.m.Load(keyID); ok {
		for i := range out {
			out[i] = v.(*[numUses]atomic.Uint64)[i].Load()
		}
	}
	return out
}

// Snapshot returns every key's counters, for metrics export. Each key's
// values are read atomically one by one, not as a single instant.
func (c *Counters) Snapshot() map[string]UseCounts {
	out := map[string]UseCounts{}
	c.m.Range(func(k, v any) bool {
		var uc UseCounts
		for i := range uc {
			uc[i] = v.(*[numUses]atomic.Uint64)[i].Load()
		}
		out[k.(string)] = uc
		return true
	})
	return out
}

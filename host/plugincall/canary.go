package plugincall

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// Canary limits' defaults (CanaryLimits).
const (
	DefaultCanaryMaxFailures = 3
	DefaultCanaryMaxLatency  = 500 * time.Millisecond
)

// CanaryLimits say when a canary is rolled back on its own: after
// MaxFailures failed calls of the candidate (a trap, a timeout, a broken
// limit, an error, an invalid output; a refusal is an answer), or
// MaxFailures calls slower than MaxLatency.
type CanaryLimits struct {
	MaxFailures int           `json:"maxFailures,omitempty"`
	MaxLatency  time.Duration `json:"maxLatencyNs,omitempty"`
}

func (l CanaryLimits) withDefaults() CanaryLimits {
	if l.MaxFailures <= 0 {
		l.MaxFailures = DefaultCanaryMaxFailures
	}
	if l.MaxLatency <= 0 {
		l.MaxLatency = DefaultCanaryMaxLatency
	}
	return l
}

// CanaryState is a merchant's canary: the candidate serving Fraction of
// its new transactions, what it did, and whether it was rolled back.
type CanaryState struct {
	// Version is the candidate; "" when no canary runs.
	Version  string       `json:"version"`
	Fraction float64      `json:"fraction"`
	Limits   CanaryLimits `json:"limits"`
	Since    time.Time    `json:"since"`
	// Calls, Failures and Slow count the candidate's calls since Since.
	Calls    int64 `json:"calls"`
	Failures int64 `json:"failures"`
	Slow     int64 `json:"slow"`
	// RolledBack is set when the limits were crossed: every transaction is
	// back on the active version; Reason says which limit.
	RolledBack bool   `json:"rolledBack,omitempty"`
	Reason     string `json:"reason,omitempty"`
}

// canaries routes a fraction of each merchant's transactions to its
// candidate and rolls it back when it misbehaves.
type canaries struct {
	mu         sync.Mutex
	per        map[string]*CanaryState
	onRollback func(merchant string, st CanaryState)
}

// SetCanary sends fraction (0 < fraction <= 1) of merchant's transactions
// to version, chosen by transaction so that one transaction's whole life
// (generate, cancel, refunds, store payment) stays on one version; an
// empty version stops it. The same version, fraction and limits again
// keep the running canary's counters.
func (s *Service) SetCanary(merchant, version string, fraction float64, lim CanaryLimits) {
	c := &s.canary
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.per == nil {
		c.per = map[string]*CanaryState{}
	}
	if version == "" {
		delete(c.per, merchant)
		return
	}
	lim = lim.withDefaults()
	if st := c.per[merchant]; st != nil && st.Version == version && st.Fraction == fraction && st.Limits == lim {
		return
	}
	c.per[merchant] = &CanaryState{Version: version, Fraction: min(max(fraction, 0), 1), Limits: lim, Since: time.Now().UTC()}
}

// Canary returns merchant's canary; Version is "" if none runs.
func (s *Service) Canary(merchant string) CanaryState {
	c := &s.canary
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.per[merchant]; st != nil {
		return *st
	}
	return CanaryState{}
}

// OnCanaryRollback sets what happens when a canary crosses its limits
// (the gateway records it and ends the canary everywhere). f runs on its
// own goroutine.
func (s *Service) OnCanaryRollback(f func(merchant string, st CanaryState)) {
	s.canary.mu.Lock()
	defer s.canary.mu.Unlock()
	s.canary.onRollback = f
}

// route returns the candidate that serves this call, or "" for the
// active version.
func (c *canaries) route(merchant, txn string) string {
	if txn == "" {
		return ""
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.per[merchant]
	if st == nil || st.RolledBack || st.Fraction <= 0 || bucket(merchant, txn) >= st.Fraction {
		return ""
	}
	return st.Version
}

// bucket maps a transaction to [0, 1), the same every time and evenly
// for ids that differ only in their last characters (a hash whose every
// output bit depends on every input bit; FNV's top bits do not).
func bucket(merchant, txn string) float64 {
	sum := sha256.Sum256([]byte(merchant + "\x00" + txn))
	return float64(binary.BigEndian.Uint64(sum[:8])>>11) / (1 << 53)
}

// record counts one candidate call (err as the caller gets it: a refusal
// is an answer) and rolls the canary back when it
// crosses a limit.
func (c *canaries) record(merchant, version string, took time.Duration, err error) {
	c.mu.Lock()
	st := c.per[merchant]
	if st == nil || st.Version != version || st.RolledBack {
		c.mu.Unlock()
		return
	}
	st.Calls++
	var ref *otpc.Refusal
	failed := err != nil && !errors.As(err, &ref) && !errors.Is(err, context.Canceled)
	if failed {
		st.Failures++
	}
	if took > st.Limits.MaxLatency {
		st.Slow++
	}
	switch {
	case st.Failures >= int64(st.Limits.MaxFailures):
		st.RolledBack, st.Reason = true, fmt.Sprintf("%d failed calls (limit %d), the last: %v", st.Failures, st.Limits.MaxFailures, err)
	case st.Slow >= int64(st.Limits.MaxFailures):
		st.RolledBack, st.Reason = true, fmt.Sprintf("%d calls slower than %s (limit %d)", st.Slow, st.Limits.MaxLatency, st.Limits.MaxFailures)
	}
	snap, f := *st, c.onRollback
	c.mu.Unlock()
	if snap.RolledBack && f != nil {
		go f(merchant, snap)
	}
}

// transaction names the transaction a plugin input belongs to: the
// generateReferenceNumber requestId. Inputs outside a transaction
// (associate, remittance, the login page) name none and stay on the
// active version.
func transaction(in otpc.Message) string {
	switch in := in.(type) {
	case *otpc.GenerateInput:
		return in.Request.RequestHeader.RequestID
	case *otpc.CancelInput:
		return in.Code.GenerateRequestID
	case *otpc.RefundInput:
		return in.Code.GenerateRequestID
	case *otpc.PaidInput:
		return in.Code.GenerateRequestID
	case *otpc.RefundDoneInput:
		return in.Code.GenerateRequestID
	}
	return ""
}

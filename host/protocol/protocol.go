// Package protocol is the gateway's request pipeline for the integrator-hosted
// OTPC v2 methods (spec §9.3): open the envelope, parse and check the request,
// answer replays from the ledger, let the merchant's plugin decide, validate
// its answer, seal and commit.
//
// Every failure becomes the spec's ErrorResponse with the matching
// errorResponseResult member and HTTP status, sealed with the merchant's keys
// whenever they could be resolved. Business declines are HTTP 200 results.
package protocol

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/otpcgate/otpcgate/host/envelope"
	"github.com/otpcgate/otpcgate/host/ledger"
	"github.com/otpcgate/otpcgate/host/plugincall"
	"github.com/otpcgate/otpcgate/host/server"
	"github.com/otpcgate/otpcgate/internal/reqid"
	"github.com/otpcgate/otpcgate/keystore"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// DefaultSkew is the allowed distance between requestTimestamp and the
// server clock (spec §4.1, §7.3).
const DefaultSkew = 60 * time.Second

// Merchant is what the pipeline needs of one merchant's integration.
type Merchant struct {
	// ID is the merchant id the server's route table yields.
	ID string
	// PIAIDs are the payment integrator account ids this base path serves.
	PIAIDs map[string]bool
	// KeysetID names the keyset (ours + Google's keys) in the keystore.
	KeysetID string
	// Codec is the merchant's envelope (PGP or JOSE).
	Codec envelope.Codec
	// PluginID is the merchant's plugin in the runtime.
	PluginID string
	// Disabled merchants are refused with forbidden (403).
	Disabled bool
	// Rules are the currencies and amount range each PIAID takes (PIAIDs
	// without rules take any); the pipeline refuses anything else with
	// invalidFieldValue before the plugin is asked.
	Rules map[string]ledger.AmountRules
}

// Directory resolves merchants by id. Implementations must be safe for
// concurrent use; the gateway swaps its table atomically on changes.
type Directory interface {
	Merchant(id string) (*Merchant, bool)
}

// Keysets yields the current keyset snapshot by id (keystore.Store does).
type Keysets interface {
	Keyset(ctx context.Context, id string) (*keystore.Keyset, error)
}

// Plugins calls a merchant's plugin (plugincall.Service does).
type Plugins interface {
	Call(ctx context.Context, t plugincall.Target, op otpc.Op, now time.Time, in, out otpc.Message) (plugincall.Changes, error)
}

// circuitChecker is what Plugins may also offer (*plugincall.Service does):
// whether a plugin's calls are refused now, so that such a request is
// answered before any crypto is spent on it.
type circuitChecker interface {
	CircuitOpen(plugin string) (bool, time.Duration)
}

// Config tunes the pipeline. Zero values take the documented defaults.
type Config struct {
	// Skew is the allowed |requestTimestamp - now|. Default DefaultSkew.
	Skew time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Limiter, if set, bounds the CPU-heavy part of each request (open,
	// plugin, seal) to a few at a time in FIFO order; the durable commit
	// wait runs outside it.
	Limiter *server.Limiter
	// Counters, if set, counts key use per key id.
	Counters *keystore.Counters
	// Logger receives one line per refused request; nil discards.
	Logger *slog.Logger
	// ServerMessage is echo's serverMessage prefix. Default "otpcgate".
	ServerMessage string
	// AuthMaxAge is how old a successful web authentication may be when
	// associateAccount refers to it. Default DefaultAuthMaxAge.
	AuthMaxAge time.Duration
	// CircuitOpenPause holds the 503 for a merchant whose plugin circuit
	// is open this long before it is sent. A caller that ignores
	// Retry-After and asks again at once is slowed to one request per
	// pause per connection, so a flood of cheap refusals cannot take the
	// CPU the other merchants need; a held request costs a parked
	// goroutine, no CPU. At most MaxPausedPerMerchant are held per
	// merchant; more are answered at once. 0 means DefaultCircuitOpenPause;
	// negative means no pause.
	CircuitOpenPause time.Duration
}

// DefaultCircuitOpenPause: see Config.CircuitOpenPause. 100 ms is short
// against Google's request deadline and slows a closed-loop flood of
// refusals by three orders of magnitude (measured: BenchmarkNoisyNeighbour).
const DefaultCircuitOpenPause = 100 * time.Millisecond

// MaxPausedPerMerchant bounds the requests held by CircuitOpenPause for
// one merchant, so the pause itself cannot grow without bound.
const MaxPausedPerMerchant = 256

// DefaultAuthMaxAge bounds the time between the user's login and Google's
// associateAccount call; the spec gives no number, 30 minutes covers a slow
// user while keeping a stolen authenticationRequestId short-lived.
const DefaultAuthMaxAge = 30 * time.Minute

// AuthSuccess is the ledger result of a successful web authentication.
const AuthSuccess = "success"

func (c Config) authMaxAge() time.Duration {
	if c.AuthMaxAge <= 0 {
		return DefaultAuthMaxAge
	}
	return c.AuthMaxAge
}

// Pipeline implements server.Gateway.
type Pipeline struct {
	cfg     Config
	dir     Directory
	keys    Keysets
	ledger  *ledger.Ledger
	plugins Plugins
	circuit circuitChecker // plugins, if it reports open circuits
	log     *slog.Logger
	stats   Stats
	paused  pauses
}

// Stats counts outcomes since start, for metrics and tests.
type Stats struct {
	OK, Replayed, Refused, Unavailable atomic.Int64
	// byReason counts refusals per errorResponseResult member (envelope
	// failures are invalidPayloadEncryption and invalidPayloadSignature);
	// index len(Reasons) counts 5xx answers.
	byReason [len(reasons) + 1]atomic.Int64
}

// reasons are the errorResponseResult members the pipeline answers with.
var reasons = [...]string{
	"invalidApiVersion", "invalidPayloadSignature", "invalidPayloadEncryption", "requestTimestampOutOfRange",
	"invalidIdentifier", "idempotencyViolation", "invalidFieldValue", "missingRequiredField",
	"preconditionViolation", "userActionInProgress", "invalidDecryptedRequest", "forbidden",
}

// Refusals returns the refusals so far by errorResponseResult member, and
// "unavailable" for 5xx answers.
func (s *Stats) Refusals() map[string]int64 {
	out := make(map[string]int64, len(reasons)+1)
	for i, r := range reasons {
		out[r] = s.byReason[i].Load()
	}
	out["unavailable"] = s.byReason[len(reasons)].Load()
	return out
}

func (s *Stats) countReason(member string) {
	for i, r := range reasons {
		if r == member {
			s.byReason[i].Add(1)
			return
		}
	}
	s.byReason[len(reasons)].Add(1)
}

// New returns a pipeline over its collaborators.
func New(cfg Config, dir Directory, keys Keysets, l *ledger.Ledger, plugins Plugins) *Pipeline {
	if cfg.Skew <= 0 {
		cfg.Skew = DefaultSkew
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ServerMessage == "" {
		cfg.ServerMessage = "otpcgate"
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	circuit, _ := plugins.(circuitChecker)
	return &Pipeline{cfg: cfg, dir: dir, keys: keys, ledger: l, plugins: plugins, circuit: circuit, log: log}
}

// Stats returns the outcome counters.
func (p *Pipeline) Stats() *Stats { return &p.stats }

// call is one request on its way through the pipeline.
type call struct {
	r        *server.Request
	m        *Merchant
	ks       *keystore.Keyset
	hdr      *otpc.RequestHeader
	req      otpc.Request
	method   otpc.Method // c.r.Method's row of the method table
	received time.Time
	release  func()
}

// Serve answers one Google request. It never panics: the server's recover
// middleware is a last resort only.
func (p *Pipeline) Serve(ctx context.Context, r *server.Request) *server.Response {
	m, ok := p.dir.Merchant(r.MerchantID)
	if !ok {
		return &server.Response{Status: http.StatusNotFound}
	}
	if r.ContentType != mediaType(m.Codec) {
		return &server.Response{Status: http.StatusUnsupportedMediaType}
	}
	if p.circuit != nil && r.Method != otpc.MethodEcho {
		// A plugin in its cool-down cannot answer: a bare 503 before the
		// decryption, signature and sealing a full answer would cost, so a
		// flood of requests for a broken plugin costs the host almost
		// nothing. Echo needs no plugin and is still answered.
		if open, left := p.circuit.CircuitOpen(m.PluginID); open {
			p.pause(ctx, m.ID)
			p.stats.Unavailable.Add(1)
			return &server.Response{Status: http.StatusServiceUnavailable, RetryAfter: max(time.Second, left.Round(time.Second))}
		}
	}
	ks, err := p.keys.Keyset(ctx, m.KeysetID)
	if err != nil {
		// Without keys nothing can be sealed: a bare 503 so Google retries.
		p.log.ErrorContext(ctx, "keyset unavailable", "merchant", m.ID, "keyset", m.KeysetID, "err", err)
		p.stats.Unavailable.Add(1)
		return &server.Response{Status: http.StatusServiceUnavailable}
	}
	if reqid.From(ctx) == "" {
		ctx = reqid.With(ctx, r.RequestID) // a caller other than the server
	}
	c := &call{r: r, m: m, ks: ks, received: r.Received, release: func() {}}
	if c.received.IsZero() {
		c.received = p.cfg.Now()
	}
	if p.cfg.Limiter != nil {
		// Per merchant: one merchant's slow plugin or burst waits for its
		// own share and leaves the others theirs.
		release, err := p.cfg.Limiter.AcquireFor(ctx, m.ID)
		if err != nil {
			p.stats.Unavailable.Add(1)
			return &server.Response{Status: http.StatusServiceUnavailable, RetryAfter: p.cfg.Limiter.RetryAfter()}
		}
		c.release = release
	}
	defer func() { c.release() }()

	body, err := p.handle(ctx, c)
	if err != nil {
		return p.refuse(ctx, c, err)
	}
	p.stats.OK.Add(1)
	return &server.Response{Status: http.StatusOK, ContentType: m.Codec.ContentType(), Body: body}
}

// pauses counts the requests each merchant has held in Pipeline.pause.
type pauses struct {
	mu sync.Mutex
	n  map[string]int
}

// pause holds a request for the configured CircuitOpenPause, unless the
// merchant already has MaxPausedPerMerchant held or ctx ends first.
func (p *Pipeline) pause(ctx context.Context, merchant string) {
	d := p.cfg.CircuitOpenPause
	if d == 0 {
		d = DefaultCircuitOpenPause
	}
	if d < 0 {
		return
	}
	p.paused.mu.Lock()
	if p.paused.n == nil {
		p.paused.n = map[string]int{}
	}
	if p.paused.n[merchant] >= MaxPausedPerMerchant {
		p.paused.mu.Unlock()
		return
	}
	p.paused.n[merchant]++
	p.paused.mu.Unlock()
	defer func() {
		p.paused.mu.Lock()
		if p.paused.n[merchant]--; p.paused.n[merchant] == 0 {
			delete(p.paused.n, merchant)
		}
		p.paused.mu.Unlock()
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func mediaType(c envelope.Codec) string {
	sp, _ := envelope.Lookup(c.Format())
	return sp.MediaType
}

// handle runs the pipeline and returns the sealed 200 body.
func (p *Pipeline) handle(ctx context.Context, c *call) (sealed []byte, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = errInternal("internal error", fmt.Errorf("panic: %v", v))
		}
	}()
	if c.m.Disabled {
		return nil, errForbidden("merchant is disabled")
	}
	opened, err := c.m.Codec.Open(ctx, c.ks, c.r.Body)
	if err != nil {
		return nil, p.openError(err)
	}
	p.count(opened.DecryptedBy, keystore.UseDecrypt)
	p.count(opened.VerifiedBy, keystore.UseVerify)

	if err := p.parse(c, opened.Plaintext); err != nil {
		return nil, err
	}
	if c.r.Method == otpc.MethodEcho {
		// Echo changes nothing and is answered afresh every time.
		resp := &otpc.EchoResponse{
			ClientMessage: c.req.(*otpc.EchoRequest).ClientMessage,
			ServerMessage: p.cfg.ServerMessage + " " + c.r.RequestID,
		}
		return p.seal(ctx, c, resp)
	}
	h := handlers[c.method.Op]
	if h == nil {
		return nil, errInvalidField("method", "method is not served", nil)
	}
	lreq := ledger.Request{PIAID: c.hdr.PaymentIntegratorAccountID, RequestID: c.hdr.RequestID,
		Method: c.r.Method, Hash: requestHash(c)}
	for attempt := 0; ; attempt++ {
		var fresh []byte
		rec, replayed, err := p.ledger.Do(ctx, lreq, func(ctx context.Context) (ledger.Outcome, error) {
			resp, apply, err := h(ctx, p, c)
			if err != nil {
				return ledger.Outcome{}, err
			}
			stored := resp.AppendJSON(nil) // header left zero: a replay re-stamps it
			if fresh, err = p.seal(ctx, c, resp); err != nil {
				return ledger.Outcome{}, err
			}
			// The commit waits for an fsync, not for CPU: free the slot.
			c.release()
			return ledger.Outcome{Body: stored, Apply: apply}, nil
		})
		switch {
		case err == nil && !replayed:
			return fresh, nil
		case err == nil:
			p.stats.Replayed.Add(1)
			return p.replay(ctx, c, rec)
		case errors.Is(err, errRaced) && attempt < 2:
			// A concurrent change (e.g. a payment during a cancel) moved the
			// state between our read and the commit: decide again, inside
			// the admission limit like the first attempt.
			if p.cfg.Limiter != nil {
				release, err := p.cfg.Limiter.AcquireFor(ctx, c.m.ID)
				if err != nil {
					return nil, errUnavailable("overloaded", err)
				}
				c.release = release
			}
			continue
		}
		return nil, ledgerError(err)
	}
}

func (p *Pipeline) count(keyID string, u keystore.Use) {
	if keyID != "" && p.cfg.Counters != nil {
		p.cfg.Counters.Record(keyID, u)
	}
}

func (p *Pipeline) openError(err error) *Error {
	switch {
	case errors.Is(err, envelope.ErrSignature):
		return errSignature(err)
	case errors.Is(err, envelope.ErrTooLarge):
		return refuse(&otpc.ErrorResponseResult{InvalidPayloadEncryption: &otpc.Empty{}}, "payload too large", err)
	default:
		return errEncryption(err)
	}
}

// parse decodes the request of c.r.Method and runs the header checks of spec
// §9.3 steps 5–9 in that order.
func (p *Pipeline) parse(c *call, plaintext []byte) error {
	method, ok := otpc.LookupMethod(otpc.Integrator, c.r.Method)
	if !ok {
		return errInvalidField("method", "method is not served", nil)
	}
	c.method = method
	req := method.NewRequest()
	if err := req.UnmarshalJSON(plaintext); err != nil {
		return errDecrypted(err)
	}
	hdr := req.Header()
	c.req, c.hdr = req, hdr
	if v := hdr.ProtocolVersion; v.Major != 0 && v.Major != otpc.ProtocolMajor {
		return errVersion(v)
	}
	if ts := hdr.RequestTimestamp; !ts.IsZero() {
		now := p.cfg.Now()
		d := now.Sub(ts.Time())
		if d > p.cfg.Skew || d < -p.cfg.Skew {
			return errTimestamp(ts, otpc.TimestampOf(now))
		}
	}
	if piaid := hdr.PaymentIntegratorAccountID; piaid != "" && !c.m.PIAIDs[piaid] {
		return errIdentifier("paymentIntegratorAccountId", "unknown paymentIntegratorAccountId", nil)
	}
	if err := nonPositiveAmount(req); err != nil {
		return err
	}
	if err := req.Validate(); err != nil {
		return errFields(err)
	}
	return nil
}

// nonPositiveAmount refuses a zero or negative amount as the value it is
// (invalidFieldValue), not as a missing field: the validator cannot tell
// "amountMicros": "0" from an absent one.
func nonPositiveAmount(req otpc.Request) error {
	var a otpc.Amount
	var field string
	switch r := req.(type) {
	case *otpc.GenerateReferenceNumberRequest:
		a, field = r.Amount, "amount.amountMicros"
	case *otpc.RefundRequest:
		a, field = r.RefundAmount, "refundAmount.amountMicros"
	default:
		return nil
	}
	if a.AmountMicros <= 0 && a.CurrencyCode != "" {
		return errInvalidField(field, "amount must be positive", nil)
	}
	return nil
}

// requestHash identifies a request's content for idempotency: the request
// re-encoded canonically without requestTimestamp, which differs per retry.
func requestHash(c *call) []byte {
	ts := c.hdr.RequestTimestamp
	c.hdr.RequestTimestamp = otpc.Timestamp{}
	b := c.req.AppendJSON(nil)
	c.hdr.RequestTimestamp = ts
	sum := sha256.Sum256(b)
	return sum[:]
}

// seal stamps resp with the response time and seals it for Google.
func (p *Pipeline) seal(ctx context.Context, c *call, resp otpc.Response) ([]byte, error) {
	resp.Header().ResponseTimestamp = otpc.TimestampOf(p.cfg.Now())
	if err := resp.Validate(); err != nil {
		return nil, errInternal("response failed validation", err)
	}
	out, err := c.m.Codec.Seal(ctx, c.ks, resp.AppendJSON(nil))
	if err != nil {
		return nil, errUnavailable("response could not be sealed", err)
	}
	if k := c.ks.Primary(keystore.OwnerSelf); k != nil {
		p.count(k.ID, keystore.UseSign)
	}
	return out, nil
}

// replay answers a request that was processed before: the stored response,
// re-stamped and re-sealed, identical apart from responseTimestamp.
func (p *Pipeline) replay(ctx context.Context, c *call, rec ledger.Record) ([]byte, error) {
	resp := otpc.NewIntegratorResponse(rec.Method)
	if resp == nil {
		return nil, errInternal("stored record of unknown method", fmt.Errorf("method %q", rec.Method))
	}
	if err := resp.UnmarshalJSON(rec.Body); err != nil {
		return nil, errInternal("stored record unreadable", err)
	}
	return p.seal(ctx, c, resp)
}

// refuse turns err into the HTTP answer, sealing an ErrorResponse whenever
// the merchant's keys are there to do it.
func (p *Pipeline) refuse(ctx context.Context, c *call, err error) *server.Response {
	var pe *Error
	if !errors.As(err, &pe) {
		pe = errInternal("internal error", err)
	}
	if pe.Status >= 500 {
		p.stats.Unavailable.Add(1)
	} else {
		p.stats.Refused.Add(1)
	}
	p.stats.countReason(pe.Member())
	p.log.LogAttrs(ctx, levelOf(pe), "request refused",
		slog.String("request_id", c.r.RequestID), slog.String("merchant", c.m.ID),
		slog.String("method", c.r.Method), slog.Int("status", pe.Status),
		slog.String("member", pe.Member()), slog.String("err", errString(pe.Err)))
	er := &otpc.ErrorResponse{
		ResponseHeader:                   otpc.ResponseHeader{ResponseTimestamp: otpc.TimestampOf(p.cfg.Now())},
		ErrorDescription:                 pe.Description,
		PaymentIntegratorErrorIdentifier: c.r.RequestID,
		ErrorResponseResult:              pe.Result,
	}
	resp := &server.Response{Status: pe.Status}
	if pe.Status == http.StatusServiceUnavailable && p.cfg.Limiter != nil {
		resp.RetryAfter = p.cfg.Limiter.RetryAfter()
	}
	body, err := c.m.Codec.Seal(ctx, c.ks, er.AppendJSON(nil))
	if err != nil {
		// No key to seal with: the status alone says it (spec §7.6).
		return resp
	}
	resp.Body, resp.ContentType = body, c.m.Codec.ContentType()
	return resp
}

func levelOf(e *Error) slog.Level {
	if e.Status >= 500 {
		return slog.LevelError
	}
	return slog.LevelWarn
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// Package google calls the Google-hosted methods of OTPC v2 (spec §6) and
// delivers the outbox of notifications to Google durably.
//
// The Client seals each request with the merchant's keyset (sign with our
// primary key, encrypt to Google's keys), posts it to
// {endpoint}/refundable-one-time-payment-code-v2/{method}/{PIAID}, and opens
// and checks the answer: signature, responseTimestamp within ±60 s, message
// and result union (Validate). Google's error answers come as an encrypted
// ErrorResponse, a plain-text body or an empty 404 (spec §6); the Client
// never assumes an encrypted body and classifies every failure as retryable
// or permanent (see Classify, CallError).
//
// The Worker drains the ledger's outbox: every notification is enqueued in
// the same SQLite transaction as the change that causes it (see
// OutboxItem), and the Worker sends it with the same requestId on every
// attempt and a fresh requestTimestamp, exponential backoff with full
// jitter, per-ordering-key order, and a dead-letter state.
package google

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/otpcgate/otpcgate/host/envelope"
	"github.com/otpcgate/otpcgate/keystore"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// Google's service endpoints (spec §2.2). A route's Endpoint may also point
// at a simulator.
const (
	SandboxEndpoint    = "https://vgw.sandbox.google.com/gsp"
	ProductionEndpoint = "https://vgw.googleapis.com/gsp"
)

// Endpoint returns Google's service endpoint for env.
func Endpoint(env keystore.Env) (string, error) {
	switch env {
	case keystore.EnvSandbox:
		return SandboxEndpoint, nil
	case keystore.EnvProduction:
		return ProductionEndpoint, nil
	}
	return "", fmt.Errorf("google: no endpoint for environment %q", env)
}

// Defaults of Config.
const (
	DefaultTimeout          = 20 * time.Second
	DefaultMaxResponseBytes = 1 << 20
	DefaultSkew             = 60 * time.Second
)

// Route is where and how one merchant integration talks to Google.
type Route struct {
	// Endpoint is the service endpoint without the method path, e.g.
	// SandboxEndpoint, ProductionEndpoint or a simulator's URL.
	Endpoint string
	// PIAID is the merchant's payment integrator account id (path and
	// request header).
	PIAID string
	// Codec is the integration's envelope (PGP or JOSE).
	Codec envelope.Codec
	// Keyset returns the current keyset snapshot: our private keys (self)
	// and Google's public keys (peer). Called on every attempt so a key
	// rotation takes effect at once.
	Keyset func(ctx context.Context) (*keystore.Keyset, error)
}

// URL returns the address of method on this route.
func (r *Route) URL(method string) string {
	return strings.TrimSuffix(r.Endpoint, "/") + otpc.PathPrefix + method + "/" + r.PIAID
}

// Config tunes a Client. The zero value is valid.
type Config struct {
	// Transport carries the requests. Nil means NewTransport(nil): TLS 1.2+
	// with certificate and hostname verification against the system roots.
	Transport http.RoundTripper
	// Timeout bounds one attempt, connection to last body byte. Keep it
	// below the ledger's claim lease. Zero means DefaultTimeout.
	Timeout time.Duration
	// MaxResponseBytes bounds the response body read. Zero means
	// DefaultMaxResponseBytes.
	MaxResponseBytes int64
	// Skew is the allowed distance of responseTimestamp from Now. Zero
	// means DefaultSkew (spec §7.3).
	Skew time.Duration
	// GenericErrorsPermanent makes a 4xx without an opened ErrorResponse
	// (plain text or empty) permanent instead of retryable (see Classify).
	GenericErrorsPermanent bool
	// Now is the clock for requestTimestamp and the response check. Nil
	// means time.Now.
	Now func() time.Time
	// Logger receives one debug line per call (method, status, duration;
	// never payloads). Nil means slog.Default().
	Logger *slog.Logger
}

// Client calls Google-hosted methods. It is safe for concurrent use.
type Client struct {
	cfg  Config
	http *http.Client
	log  *slog.Logger
}

// NewTransport returns an HTTP transport for Google: a clone of
// http.DefaultTransport's settings with TLS 1.2 or later, certificate and
// hostname verification always on, and bounded idle connections. tlsConfig
// (may be nil) supplies roots or client certificates; it is cloned, and
// InsecureSkipVerify is refused.
func NewTransport(tlsConfig *tls.Config) (*http.Transport, error) {
	var tc *tls.Config
	if tlsConfig != nil {
		if tlsConfig.InsecureSkipVerify {
			return nil, errors.New("google: InsecureSkipVerify is not allowed")
		}
		tc = tlsConfig.Clone()
	} else {
		tc = &tls.Config{}
	}
	if tc.MinVersion < tls.VersionTLS12 {
		tc.MinVersion = tls.VersionTLS12
	}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tc,
		TLSHandshakeTimeout:   10 * time.Second,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		ExpectContinueTimeout: time.Second,
	}, nil
}

// NewClient returns a Client.
func NewClient(cfg Config) (*Client, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if cfg.Skew <= 0 {
		cfg.Skew = DefaultSkew
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	rt := cfg.Transport
	if rt == nil {
		t, err := NewTransport(nil)
		if err != nil {
			return nil, err
		}
		rt = t
	}
	return &Client{
		cfg: cfg,
		log: log,
		http: &http.Client{
			Transport: rt,
			Timeout:   cfg.Timeout,
			// A redirect would turn the POST into a GET elsewhere; an
			// endpoint that redirects is misconfigured.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

// Reply is the outcome of a successful call.
type Reply struct {
	// Method is the method called.
	Method string
	// RequestID is the requestId sent.
	RequestID string
	// Response is the opened and checked response, of the method's
	// response type (e.g. *otpc.RefundResultNotificationResponse).
	Response Message
	// VerifiedBy is the id of Google's key whose signature verified.
	VerifiedBy string
}

// Deliver sends a stored request: payload is the request JSON of method
// (as OutboxItem builds it). The header is set to requestID, the route's
// PIAID, version 2 and a fresh requestTimestamp, so calling Deliver again
// with the same arguments is the idempotent retry of spec §6.
func (c *Client) Deliver(ctx context.Context, rt Route, method, requestID string, payload []byte) (*Reply, error) {
	req, err := decodeRequest(method, payload)
	if err != nil {
		return nil, &CallError{Method: method, RequestID: requestID, Body: BodyNone, Err: err}
	}
	return c.call(ctx, rt, method, req, requestID)
}

// call stamps, validates, seals, posts, and opens and checks the answer.
func (c *Client) call(ctx context.Context, rt Route, method string, req request, requestID string) (*Reply, error) {
	fail := func(status int, kind BodyKind, retry bool, err error) *CallError {
		return &CallError{Method: method, RequestID: requestID, Status: status, Body: kind, Retryable: retry, Err: err}
	}
	if requestID == "" || !otpc.ValidRequestID(requestID) {
		return nil, fail(0, BodyNone, false, fmt.Errorf("%w: requestId %q", ErrInvalidRequest, requestID))
	}
	stamp(req.header, requestID, rt.PIAID, c.cfg.Now())
	if err := req.msg.Validate(); err != nil {
		return nil, fail(0, BodyNone, false, fmt.Errorf("%w: %w", ErrInvalidRequest, err))
	}
	if rt.Codec == nil || rt.Keyset == nil || rt.Endpoint == "" || rt.PIAID == "" {
		// A configuration gap on our side, not a bad request: retry once
		// the operator has fixed it (the attempt limit bounds it).
		return nil, fail(0, BodyNone, true, errors.New("incomplete route (endpoint, PIAID, codec or keyset missing)"))
	}
	ks, err := rt.Keyset(ctx)
	if err != nil {
		return nil, fail(0, BodyNone, true, fmt.Errorf("keyset: %w", err))
	}
	body, err := rt.Codec.Seal(ctx, ks, req.msg.AppendJSON(nil))
	if err != nil {
		// No usable key: an operator must fix the keyset; retrying lets the
		// item go out once they have, and the attempt limit bounds it.
		return nil, fail(0, BodyNone, true, fmt.Errorf("seal: %w", err))
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, rt.URL(method), bytes.NewReader(body))
	if err != nil {
		return nil, fail(0, BodyNone, false, fmt.Errorf("%w: %w", ErrInvalidRequest, err))
	}
	hr.Header.Set("Content-Type", rt.Codec.ContentType())
	start := time.Now()
	hres, err := c.http.Do(hr)
	if err != nil {
		c.log.LogAttrs(ctx, slog.LevelDebug, "google call failed", slog.String("method", method),
			slog.String("requestId", requestID), slog.Duration("took", time.Since(start)))
		return nil, fail(0, BodyNone, true, err)
	}
	raw, rerr := io.ReadAll(io.LimitReader(hres.Body, c.cfg.MaxResponseBytes+1))
	hres.Body.Close()
	c.log.LogAttrs(ctx, slog.LevelDebug, "google call", slog.String("method", method),
		slog.String("requestId", requestID), slog.Int("status", hres.StatusCode), slog.Duration("took", time.Since(start)))
	status := hres.StatusCode
	if rerr != nil {
		return nil, fail(status, BodyNone, true, fmt.Errorf("read body: %w", rerr))
	}
	if int64(len(raw)) > c.cfg.MaxResponseBytes {
		return nil, fail(status, BodySealed, true, fmt.Errorf("%w: body over %d bytes", ErrBadResponse, c.cfg.MaxResponseBytes))
	}
	if status != http.StatusOK {
		return nil, c.failure(ctx, rt, ks, method, requestID, hres, raw)
	}
	resp, _ := newResponse(method)
	bad := func(err error) (*Reply, error) {
		return nil, fail(status, BodySealed, true, fmt.Errorf("%w: %w", ErrBadResponse, err))
	}
	if len(raw) == 0 {
		return bad(errors.New("empty body"))
	}
	opened, err := rt.Codec.Open(ctx, ks, raw)
	if err != nil {
		return bad(err)
	}
	if err := resp.msg.UnmarshalJSON(opened.Plaintext); err != nil {
		return bad(err)
	}
	if err := resp.msg.Validate(); err != nil {
		return bad(err)
	}
	if err := c.checkTimestamp(resp.header.ResponseTimestamp); err != nil {
		return bad(err)
	}
	if e, ok := req.msg.(*otpc.EchoRequest); ok {
		if r := resp.msg.(*otpc.EchoResponse); r.ClientMessage != e.ClientMessage {
			return bad(errors.New("echo clientMessage differs"))
		}
	}
	return &Reply{Method: method, RequestID: requestID, Response: resp.msg, VerifiedBy: opened.VerifiedBy}, nil
}

// failure builds the CallError of a non-200 answer. The body may be an
// encrypted ErrorResponse, plain text or empty (spec §6).
func (c *Client) failure(ctx context.Context, rt Route, ks *keystore.Keyset, method, requestID string,
	hres *http.Response, raw []byte) *CallError {
	e := &CallError{Method: method, RequestID: requestID, Status: hres.StatusCode, Body: BodyEmpty,
		RetryAfter: retryAfter(hres.Header.Get("Retry-After"), c.cfg.Now())}
	if len(bytes.TrimSpace(raw)) > 0 {
		e.Body = BodyPlain
		if er, ok := c.openError(ctx, rt, ks, raw); ok {
			e.Body = BodyErrorResponse
			e.Member = er.ErrorResponseResult.Member()
			e.Description = excerpt([]byte(er.ErrorDescription), 200)
		} else {
			e.Excerpt = excerpt(raw, 120)
		}
	}
	e.Retryable = Classify(e.Status, e.Member, c.cfg.GenericErrorsPermanent)
	if e.Body == BodyErrorResponse && e.Member == "" && e.Status >= 400 && e.Status <= 499 {
		// A signed ErrorResponse without a member: Google refused the
		// request on purpose, so treat it like the known refusals.
		e.Retryable = Classify(e.Status, "unspecified", c.cfg.GenericErrorsPermanent)
	}
	return e
}

// openError tries to open raw as a signed ErrorResponse with a plausible
// responseTimestamp.
func (c *Client) openError(ctx context.Context, rt Route, ks *keystore.Keyset, raw []byte) (*otpc.ErrorResponse, bool) {
	opened, err := rt.Codec.Open(ctx, ks, raw)
	if err != nil {
		return nil, false
	}
	var er otpc.ErrorResponse
	if er.UnmarshalJSON(opened.Plaintext) != nil || er.Validate() != nil ||
		c.checkTimestamp(er.ResponseHeader.ResponseTimestamp) != nil {
		return nil, false
	}
	return &er, true
}

func (c *Client) checkTimestamp(ts otpc.Timestamp) error {
	d := c.cfg.Now().Sub(ts.Time())
	if d > c.cfg.Skew || d < -c.cfg.Skew {
		return fmt.Errorf("responseTimestamp %d is %s from now", ts.EpochMillis, d.Round(time.Millisecond))
	}
	return nil
}

// retryAfter parses a Retry-After header (seconds or HTTP date).
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// send runs a typed call: req's header is stamped in place (a caller-set
// requestId is kept, an empty one gets NewRequestID), resp receives the
// checked response.
func send[Req, Resp Message](ctx context.Context, c *Client, rt Route, method string, req Req, hdr *otpc.RequestHeader) (Resp, error) {
	var zero Resp
	if hdr.RequestID == "" {
		hdr.RequestID = NewRequestID()
	}
	rep, err := c.call(ctx, rt, method, request{req, hdr}, hdr.RequestID)
	if err != nil {
		return zero, err
	}
	return rep.Response.(Resp), nil
}

// Echo calls echo (spec §6.1) and checks that clientMessage comes back.
// As with every typed method, req's header is filled in: the requestId is
// kept if set (reuse it to retry), else a fresh one is stored in req.
func (c *Client) Echo(ctx context.Context, rt Route, req *otpc.EchoRequest) (*otpc.EchoResponse, error) {
	return send[*otpc.EchoRequest, *otpc.EchoResponse](ctx, c, rt, otpc.MethodEcho, req, &req.RequestHeader)
}

// ReferenceNumberPaidNotification calls referenceNumberPaidNotification
// (spec §6.2) directly; notifications normally go through the outbox.
func (c *Client) ReferenceNumberPaidNotification(ctx context.Context, rt Route,
	req *otpc.ReferenceNumberPaidNotificationRequest) (*otpc.ReferenceNumberPaidNotificationResponse, error) {
	return send[*otpc.ReferenceNumberPaidNotificationRequest, *otpc.ReferenceNumberPaidNotificationResponse](
		ctx, c, rt, otpc.MethodReferenceNumberPaidNotification, req, &req.RequestHeader)
}

// RefundResultNotification calls refundResultNotification (spec §6.3)
// directly; notifications normally go through the outbox.
func (c *Client) RefundResultNotification(ctx context.Context, rt Route,
	req *otpc.RefundResultNotificationRequest) (*otpc.RefundResultNotificationResponse, error) {
	return send[*otpc.RefundResultNotificationRequest, *otpc.RefundResultNotificationResponse](
		ctx, c, rt, otpc.MethodRefundResultNotification, req, &req.RequestHeader)
}

// RemittanceStatementDetails fetches one page of a statement (spec §6.4).
func (c *Client) RemittanceStatementDetails(ctx context.Context, rt Route,
	req *otpc.RemittanceStatementDetailsRequest) (*otpc.RemittanceStatementDetailsResponse, error) {
	return send[*otpc.RemittanceStatementDetailsRequest, *otpc.RemittanceStatementDetailsResponse](
		ctx, c, rt, otpc.MethodRemittanceStatementDetails, req, &req.RequestHeader)
}

// AcceptRemittanceStatement accepts a statement (spec §6.5).
func (c *Client) AcceptRemittanceStatement(ctx context.Context, rt Route,
	req *otpc.AcceptRemittanceStatementRequest) (*otpc.AcceptRemittanceStatementResponse, error) {
	return send[*otpc.AcceptRemittanceStatementRequest, *otpc.AcceptRemittanceStatementResponse](
		ctx, c, rt, otpc.MethodAcceptRemittanceStatement, req, &req.RequestHeader)
}

// AcceptRemittanceStatementWithModifications accepts a statement with a
// modification (spec §6.6).
func (c *Client) AcceptRemittanceStatementWithModifications(ctx context.Context, rt Route,
	req *otpc.AcceptRemittanceStatementWithModificationsRequest) (*otpc.AcceptRemittanceStatementWithModificationsResponse, error) {
	return send[*otpc.AcceptRemittanceStatementWithModificationsRequest, *otpc.AcceptRemittanceStatementWithModificationsResponse](
		ctx, c, rt, otpc.MethodAcceptRemittanceStatementWithModifications, req, &req.RequestHeader)
}

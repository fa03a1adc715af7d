package admin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/otpcgate/otpcgate/host/ledger"
	"github.com/otpcgate/otpcgate/internal/reqid"
)

// access is who may call a route.
type access int

const (
	public   access = iota // no token (health, API description)
	merchant               // an operator, or the merchant named by :id
	operator               // operators only
)

// Route is one endpoint of the API, as registered and as the OpenAPI
// document must list it.
type Route struct {
	Method, Path string
	access       access
	h            echo.HandlerFunc
}

// Routes lists the API's endpoints (Path in Echo syntax, :param).
func (s *Server) Routes() []Route {
	return []Route{
		{http.MethodGet, "/healthz", public, func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"status": "ok"}) }},
		{http.MethodGet, "/openapi.json", public, func(c echo.Context) error { return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, OpenAPI) }},
		{http.MethodGet, "/metrics", operator, s.metrics},
		{http.MethodGet, "/v1/whoami", merchant, s.whoami},

		{http.MethodGet, "/v1/merchants", operator, s.listMerchants},
		{http.MethodPost, "/v1/merchants", operator, s.createMerchant},
		{http.MethodGet, "/v1/merchants/:id", merchant, s.showMerchant},
		{http.MethodPatch, "/v1/merchants/:id", operator, s.updateMerchant},
		{http.MethodPost, "/v1/merchants/:id/disable", operator, s.disableMerchant},
		{http.MethodPost, "/v1/merchants/:id/enable", operator, s.enableMerchant},
		{http.MethodDelete, "/v1/merchants/:id", operator, s.deleteMerchant},
		{http.MethodDelete, "/v1/merchants/:id/piaids/:piaid", operator, s.releasePIAID},
		{http.MethodGet, "/v1/merchants/:id/events", merchant, s.merchantEvents},
		{http.MethodGet, "/v1/merchants/:id/metrics", merchant, s.merchantMetrics},

		{http.MethodGet, "/v1/merchants/:id/plugins", merchant, s.listPlugins},
		{http.MethodPost, "/v1/merchants/:id/plugins", merchant, s.uploadPlugin},
		{http.MethodPost, "/v1/merchants/:id/plugins/:version/activate", merchant, s.activatePlugin},
		{http.MethodPost, "/v1/merchants/:id/plugins/rollback", merchant, s.rollbackPlugin},
		{http.MethodGet, "/v1/merchants/:id/plugin-logs", merchant, s.pluginLogs},
		{http.MethodGet, "/v1/merchants/:id/plugin-shadow", merchant, s.shadowReport},
		{http.MethodPut, "/v1/merchants/:id/plugin-shadow", merchant, s.startShadow},
		{http.MethodDelete, "/v1/merchants/:id/plugin-shadow", merchant, s.stopShadow},
		{http.MethodGet, "/v1/merchants/:id/plugin-canary", merchant, s.canaryState},
		{http.MethodPut, "/v1/merchants/:id/plugin-canary", merchant, s.startCanary},
		{http.MethodDelete, "/v1/merchants/:id/plugin-canary", merchant, s.stopCanary},
		{http.MethodPost, "/v1/merchants/:id/plugin-canary/promote", merchant, s.promoteCanary},
		{http.MethodGet, "/v1/merchants/:id/plugin-recording", merchant, s.recording},
		{http.MethodPut, "/v1/merchants/:id/plugin-recording", merchant, s.setRecording},
		{http.MethodPost, "/v1/merchants/:id/plugin-replay", merchant, s.replay},
		{http.MethodDelete, "/v1/merchants/:id/plugins/:version", merchant, s.deletePlugin},

		{http.MethodPost, "/v1/merchants/:id/payments", merchant, s.reportPayment},
		{http.MethodPost, "/v1/merchants/:id/refund-results", merchant, s.reportRefundResult},
		{http.MethodGet, "/v1/merchants/:id/statements/:piaid/:statement", merchant, s.statementDetails},
		{http.MethodPost, "/v1/merchants/:id/statements/:piaid/:statement/accept", merchant, s.acceptStatement},

		{http.MethodGet, "/v1/merchants/:id/keys", merchant, s.listKeys},
		{http.MethodGet, "/v1/merchants/:id/keys/public", merchant, s.exportPublic},
		{http.MethodPost, "/v1/merchants/:id/keys", operator, s.generateKey},
		{http.MethodPost, "/v1/merchants/:id/keys/import", operator, s.importKeys},
		{http.MethodPost, "/v1/merchants/:id/keys/:key/state", operator, s.setKeyState},
		{http.MethodPost, "/v1/merchants/:id/keys/:key/verify", operator, s.verifyKey},

		{http.MethodGet, "/v1/tokens", operator, s.listTokens},
		{http.MethodPost, "/v1/tokens", operator, s.issueToken},
		{http.MethodDelete, "/v1/tokens/:tid", operator, s.revokeToken},

		{http.MethodGet, "/v1/audit", operator, s.auditLog},
	}
}

func (s *Server) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.errorHandler
	e.Use(s.requestID, s.recoverer, s.requestLog, s.limitIP)
	for _, r := range s.Routes() {
		h := r.h
		switch r.access {
		case merchant:
			h = s.authenticate(s.allowMerchant(h))
		case operator:
			h = s.authenticate(s.allowOperator(h))
		}
		e.Add(r.Method, r.Path, h)
	}
	return e
}

const ctxToken = "admin.token"

// tokenOf returns the authenticated token of the request.
func tokenOf(c echo.Context) Token {
	t, _ := c.Get(ctxToken).(Token)
	return t
}

// authenticate checks the bearer token, then the token's rate limit.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		presented := bearer(c.Request())
		if presented == "" {
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="otpcgate-admin"`)
			return fail(http.StatusUnauthorized, "missing bearer token",
				"pass --token or set OTPCGATE_ADMIN_TOKEN; the first operator token comes from `otpcgate tokens bootstrap`")
		}
		t, err := s.d.Tokens.Authenticate(c.Request().Context(), presented)
		if errors.Is(err, ErrUnauthenticated) {
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="otpcgate-admin", error="invalid_token"`)
			return fail(http.StatusUnauthorized, "unknown or revoked token", "ask an operator for a new token (`otpcgate tokens issue`)")
		}
		if err != nil {
			return err
		}
		if wait, ok := s.tokLim.allow(c.Request().Context(), t.ID); !ok {
			return tooMany(c, wait)
		}
		c.Set(ctxToken, t)
		return next(c)
	}
}

func (s *Server) allowOperator(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if tokenOf(c).Scope != ScopeOperator {
			return fail(http.StatusForbidden, "this call needs an operator token", "")
		}
		return next(c)
	}
}

// allowMerchant admits operators and the merchant named by :id (or any
// merchant on routes without :id).
func (s *Server) allowMerchant(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		t := tokenOf(c)
		if id := c.Param("id"); t.Scope != ScopeOperator && id != "" && id != t.MerchantID {
			return fail(http.StatusForbidden, "this token belongs to another merchant", "")
		}
		return next(c)
	}
}

func (s *Server) limitIP(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		// A load balancer's health checks cost nothing and must not depend
		// on the database the shared limits are counted in.
		if c.Request().URL.Path == "/healthz" {
			return next(c)
		}
		if wait, ok := s.ipLim.allow(c.Request().Context(), clientIP(c.Request())); !ok {
			return tooMany(c, wait)
		}
		return next(c)
	}
}

func tooMany(c echo.Context, wait time.Duration) error {
	c.Response().Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
	return fail(http.StatusTooManyRequests, "rate limit exceeded", "retry after "+wait.Round(time.Millisecond).String())
}

// recoverer turns a panic in a handler into a 500; the process lives on.
func (s *Server) recoverer(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				s.log.Error("admin handler panicked", "route", c.Path(), "panic", fmt.Sprint(r))
				err = errors.New("admin: handler panicked")
			}
		}()
		return next(c)
	}
}

// requestLog writes one line per request: method, route, status, time and
// the token id. Never the Authorization header, bodies or query values.
// requestID names each admin request (X-Request-Id, and in its context:
// a store payment's plugin call logs it).
func (s *Server) requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := reqid.New()
		c.Response().Header().Set(echo.HeaderXRequestID, id)
		c.SetRequest(c.Request().WithContext(reqid.With(c.Request().Context(), id)))
		return next(c)
	}
}

func (s *Server) requestLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		attrs := []any{"request_id", reqid.From(c.Request().Context()), "method", c.Request().Method, "route", c.Path(),
			"status", c.Response().Status, "took", time.Since(start).Round(time.Microsecond), "ip", clientIP(c.Request())}
		if t := tokenOf(c); t.ID != "" {
			attrs = append(attrs, "token_id", t.ID)
		}
		s.log.Info("admin request", attrs...)
		return nil
	}
}

func (s *Server) metrics(c echo.Context) error {
	g := s.d.Gatherer
	if g == nil {
		g = prometheus.NewRegistry()
	}
	promhttp.HandlerFor(g, promhttp.HandlerOpts{}).ServeHTTP(c.Response(), c.Request())
	return nil
}

func (s *Server) whoami(c echo.Context) error { return c.JSON(http.StatusOK, tokenOf(c)) }

// limiter bounds requests per key; wait is how long until the next is
// allowed.
type limiter interface {
	allow(ctx context.Context, key string) (wait time.Duration, ok bool)
}

// sharedLimiter counts requests per key in the ledger, in fixed windows of
// burst/rate seconds holding at most burst requests, so every host sharing
// the database enforces one limit. If the ledger cannot count, the request
// goes on: its own processing meets the same database and answers for it.
type sharedLimiter struct {
	l      *ledger.Ledger
	scope  string
	window time.Duration
	max    int
	log    *slog.Logger
}

func (s *sharedLimiter) allow(ctx context.Context, key string) (time.Duration, bool) {
	now := time.Now()
	h := sha256.Sum256([]byte("otpcgate admin limit\x00" + key))
	got, err := s.l.CountInWindow(ctx, s.scope, hex.EncodeToString(h[:16]), now, s.window)
	if err != nil {
		s.log.Warn("admin: shared rate limit not counted", "scope", s.scope, "err", err)
		return 0, true
	}
	if got.Failures > s.max {
		return got.Until.Sub(now), false
	}
	return 0, true
}

// rateLimiter is a token bucket per key. Buckets idle long enough to be
// full again are dropped on the way, so the map stays small.
type rateLimiter struct {
	rate  float64
	burst float64

	mu      sync.Mutex
	buckets map[string]*bucket
	sweep   time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newRateLimiter(rate float64, burst int) *rateLimiter {
	return &rateLimiter{rate: rate, burst: float64(burst), buckets: map[string]*bucket{}}
}

// allow takes one token from key's bucket, or says how long to wait.
func (l *rateLimiter) allow(_ context.Context, key string) (time.Duration, bool) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	full := time.Duration(l.burst / l.rate * float64(time.Second))
	if now.Sub(l.sweep) > full {
		for k, b := range l.buckets {
			if now.Sub(b.last) > full {
				delete(l.buckets, k)
			}
		}
		l.sweep = now
	}
	b := l.buckets[key]
	if b == nil {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens < 1 {
		return time.Duration((1 - b.tokens) / l.rate * float64(time.Second)), false
	}
	b.tokens--
	return 0, true
}

package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/otpcgate/otpcgate/internal/reqid"
)

// Echo context keys for the access log.
const (
	keyRequestID = "otpcgate.request_id"
	keyMerchant  = "otpcgate.merchant"
	keyMethod    = "otpcgate.method"
)

func (s *Server) newEcho() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = emptyErrorHandler
	e.Use(s.requestID, s.accessLog, s.recoverPanic, securityHeaders)
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	// One catch-all dispatches by the route table, so routes can change at
	// run time (SetRoutes) without re-registering Echo routes.
	e.Any("/*", s.dispatch)
	return e
}

// emptyErrorHandler answers Echo's errors (404, 405, ...) with the status
// and an empty body: nothing about the server leaks to unknown callers.
func emptyErrorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	code := http.StatusInternalServerError
	var he *echo.HTTPError
	if errors.As(err, &he) {
		code = he.Code
	}
	_ = c.NoContent(code)
}

// dispatch serves POST {base}/refundable-one-time-payment-code-v2/{method}.
func (s *Server) dispatch(c echo.Context) error {
	req := c.Request()
	received := time.Now()
	// A path whose escaped form differs (e.g. %2F) is never a route.
	if req.URL.RawPath != "" {
		return c.NoContent(http.StatusNotFound)
	}
	merchant, method, ok := s.match(req.URL.Path)
	if !ok {
		return c.NoContent(http.StatusNotFound)
	}
	c.Set(keyMerchant, merchant)
	c.Set(keyMethod, method)
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	if req.Method != http.MethodPost {
		h.Set("Allow", http.MethodPost)
		return c.NoContent(http.StatusMethodNotAllowed)
	}
	mediaType, ok := parseContentType(req.Header.Get("Content-Type"), s.cfg.MediaTypes)
	if !ok {
		return c.NoContent(http.StatusUnsupportedMediaType)
	}
	if req.ContentLength > s.cfg.BodyLimit {
		return s.closeAfter(c, http.StatusRequestEntityTooLarge)
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), req.Body, s.cfg.BodyLimit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return s.closeAfter(c, http.StatusRequestEntityTooLarge)
		}
		return s.closeAfter(c, http.StatusBadRequest)
	}

	ctx, cancel := context.WithTimeout(req.Context(), s.cfg.HandlerTimeout)
	defer cancel()
	if s.limiter != nil {
		release, err := s.limiter.Acquire(ctx)
		if err != nil {
			r := s.limiter.OverloadResponse()
			setRetryAfter(h, r.RetryAfter)
			return c.NoContent(r.Status)
		}
		defer release()
	}
	resp := s.gw.Serve(ctx, &Request{
		MerchantID:  merchant,
		Method:      method,
		ContentType: mediaType,
		Body:        body,
		RemoteAddr:  req.RemoteAddr,
		Received:    received,
		RequestID:   requestIDOf(c),
	})
	if resp == nil {
		s.log.ErrorContext(ctx, "gateway returned no response", "request_id", requestIDOf(c), "merchant", merchant, "method", method)
		return c.NoContent(http.StatusInternalServerError)
	}
	status := resp.Status
	if status == 0 {
		status = http.StatusOK
	}
	if resp.RetryAfter > 0 {
		setRetryAfter(h, resp.RetryAfter)
	}
	if len(resp.Body) == 0 {
		return c.NoContent(status)
	}
	ct := resp.ContentType
	if ct == "" {
		ct = mediaType + "; charset=utf-8"
	}
	return c.Blob(status, ct, resp.Body)
}

// closeAfter answers status and closes the connection, because the rest
// of the request body was not read.
func (s *Server) closeAfter(c echo.Context, status int) error {
	c.Response().Header().Set("Connection", "close")
	return c.NoContent(status)
}

func setRetryAfter(h http.Header, d time.Duration) {
	secs := int64((d + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	h.Set("Retry-After", strconv.FormatInt(secs, 10))
}

// parseContentType accepts the configured envelope media types (spec §2.4:
// application/octet-stream for PGP, application/jose) with or without
// "charset=utf-8"; any other charset is refused.
func parseContentType(v string, accepted []string) (string, bool) {
	if v == "" {
		return "", false
	}
	mt, params, err := mime.ParseMediaType(v)
	if err != nil {
		return "", false
	}
	if !slices.Contains(accepted, mt) {
		return "", false
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return "", false
	}
	return mt, true
}

func (s *Server) healthz(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.String(http.StatusOK, "ok\n")
}

func (s *Server) readyz(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	if s.draining.Load() {
		return c.String(http.StatusServiceUnavailable, "draining\n")
	}
	if s.ready != nil {
		ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
		defer cancel()
		if err := s.ready(ctx); err != nil {
			// The reason goes to the log only: this listener faces Google.
			s.log.WarnContext(ctx, "not ready", "err", err)
			return c.String(http.StatusServiceUnavailable, "not ready\n")
		}
	}
	return c.String(http.StatusOK, "ok\n")
}

// requestID gives each request a random id, returned in X-Request-Id.
// Incoming ids are ignored: the caller is not trusted to pick log keys.
func (s *Server) requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := reqid.New()
		c.Set(keyRequestID, id)
		c.Response().Header().Set(echo.HeaderXRequestID, id)
		// In the context too: what the request calls (a plugin) logs it.
		c.SetRequest(c.Request().WithContext(reqid.With(c.Request().Context(), id)))
		return next(c)
	}
}

func requestIDOf(c echo.Context) string {
	id, _ := c.Get(keyRequestID).(string)
	return id
}

// accessLog logs one line per request without bodies or query strings.
func (s *Server) accessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		if err := next(c); err != nil {
			c.Error(err)
		}
		req, res := c.Request(), c.Response()
		elapsed := time.Since(start)
		attrs := []any{
			"request_id", requestIDOf(c),
			"http_method", req.Method,
			"path", req.URL.Path,
			"status", res.Status,
			"bytes_in", req.ContentLength,
			"bytes_out", res.Size,
			"duration", elapsed,
			"remote", req.RemoteAddr,
		}
		level := slog.LevelInfo
		merchant, _ := c.Get(keyMerchant).(string)
		method, _ := c.Get(keyMethod).(string)
		s.metrics.observe(merchant, method, res.Status, elapsed)
		if merchant != "" {
			attrs = append(attrs, "merchant", merchant, "method", method)
		} else if res.Status == http.StatusOK && (req.URL.Path == "/healthz" || req.URL.Path == "/readyz") {
			level = slog.LevelDebug // probes every few seconds would drown the log
		}
		s.log.Log(req.Context(), level, "request", attrs...)
		return nil
	}
}

// recoverPanic turns a panic below it into a logged 500; the connection
// and the server carry on.
func (s *Server) recoverPanic(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			r := recover()
			if r == nil {
				return
			}
			if r == http.ErrAbortHandler {
				panic(r) // net/http's deliberate abort: let it close the connection
			}
			// The panic value may hold request data: log its type and the
			// stack, not the value.
			s.log.ErrorContext(c.Request().Context(), "panic in handler",
				"request_id", requestIDOf(c), "panic_type", fmt.Sprintf("%T", r), "stack", string(debug.Stack()))
			if !c.Response().Committed {
				err = c.NoContent(http.StatusInternalServerError)
			}
		}()
		return next(c)
	}
}

// securityHeaders sets headers that are right for every response of an
// API-only TLS host.
func securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Strict-Transport-Security", "max-age=31536000")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		return next(c)
	}
}

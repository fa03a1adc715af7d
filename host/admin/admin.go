// Package admin is otpcgate's operator and merchant API: JSON over HTTP on
// its own listener (loopback by default, TLS required elsewhere), with
// bearer tokens stored as SHA-256 hashes in two scopes (operator, one
// merchant), per-token and per-IP rate limits, an audit entry for every
// change, Prometheus metrics and an OpenAPI description at /openapi.json.
//
// The package knows the gateway only through Backend (merchants and plugin
// versions, implemented by host/gateway), the keystore, the ledger (audit
// log) and its own token table, so it is tested against a real gateway.
package admin

import (
	"context"
	"crypto/tls"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpcgate/otpcgate/host/envelope"
	"github.com/otpcgate/otpcgate/host/ledger"
	"github.com/otpcgate/otpcgate/host/plugincall"
	"github.com/otpcgate/otpcgate/host/pluginlog"
	"github.com/otpcgate/otpcgate/internal/tlsutil"
	"github.com/otpcgate/otpcgate/keystore"
)

// OpenAPI is the API description served at /openapi.json; docs/admin-openapi.json
// is a copy kept in sync by a test.
//
//go:embed openapi.json
var OpenAPI []byte

// Defaults of Config.
const (
	DefaultMaxPluginBytes = 32 << 20
	// DefaultMaxPluginVersions bounds the versions stored per merchant.
	DefaultMaxPluginVersions = 50
	// DefaultMaxUploads bounds plugin uploads in progress on the host (one
	// per merchant at a time): each holds its body in memory.
	DefaultMaxUploads = 2
	DefaultRate       = 50 // requests per second, per token and per IP
	DefaultBurst      = 100
)

// ErrTLSRequired: the admin listener is not on loopback and has no
// certificate.
var ErrTLSRequired = errors.New("admin: TLS (cert and key files) is required when the admin address is not loopback")

// Config configures the admin listener.
type Config struct {
	// Addr is host:port, loopback by default ("127.0.0.1:8444").
	Addr string
	// CertFile and KeyFile enable TLS; required when Addr is not loopback.
	CertFile, KeyFile string
	// MaxPluginBytes bounds an uploaded module. Default DefaultMaxPluginBytes.
	MaxPluginBytes int
	// MaxPluginVersions bounds the versions stored per merchant; an upload
	// over it is refused until old versions are deleted. Default
	// DefaultMaxPluginVersions.
	MaxPluginVersions int
	// MaxUploads bounds plugin uploads in progress on the host; a merchant
	// has at most one at a time. Default DefaultMaxUploads.
	MaxUploads int
	// Rate and Burst bound requests per second per token and per client
	// IP. Defaults DefaultRate and DefaultBurst.
	Rate  float64
	Burst int
	// SharedLimits counts those limits in the ledger (fixed windows of
	// Burst/Rate seconds, at most Burst requests each) instead of in this
	// process, so several hosts on one database enforce one limit. The
	// gateway sets it on PostgreSQL.
	SharedLimits bool
	// Calls, if set, supplies per-version plugin counters and plugin
	// metrics (the gateway's plugin-call service).
	Calls Calls
}

// CallStats are one plugin version's counters since start.
type CallStats = plugincall.VersionStats

// Calls reads the plugin-call service's counters; *plugincall.Service
// implements it.
type Calls interface {
	prometheus.Collector
	Stats(pluginID, version string) (CallStats, bool)
}

// Deps are the parts of the gateway the admin API works on.
type Deps struct {
	Backend  Backend
	Keys     *keystore.Store
	Ledger   *ledger.Ledger
	Tokens   *Tokens
	Counters *keystore.Counters
	// Events serves the merchant API's events (payments at stores, refund
	// results, statements); nil answers them 503.
	Events MerchantEvents
	// PluginLogs serves each merchant's recent plugin log lines; nil
	// answers them 503.
	PluginLogs *pluginlog.Buffer
	// Gatherer serves /metrics; nil serves an empty registry.
	Gatherer prometheus.Gatherer
	Logger   *slog.Logger
	// Now is the clock (key expiry). Default time.Now.
	Now func() time.Time
}

// Server is the admin API.
type Server struct {
	cfg    Config
	d      Deps
	log    *slog.Logger
	e      *echo.Echo
	codecs map[keystore.Kind]envelope.Codec
	ipLim  limiter
	tokLim limiter
	tlsCfg *tls.Config

	uploads *uploadSlots
}

// New builds the admin API. Nothing listens yet.
func New(cfg Config, d Deps) (*Server, error) {
	if d.Backend == nil || d.Keys == nil || d.Ledger == nil || d.Tokens == nil {
		return nil, errors.New("admin: Backend, Keys, Ledger and Tokens are required")
	}
	if cfg.MaxPluginBytes <= 0 {
		cfg.MaxPluginBytes = DefaultMaxPluginBytes
	}
	if cfg.MaxPluginVersions <= 0 {
		cfg.MaxPluginVersions = DefaultMaxPluginVersions
	}
	if cfg.MaxUploads <= 0 {
		cfg.MaxUploads = DefaultMaxUploads
	}
	if cfg.Rate <= 0 {
		cfg.Rate = DefaultRate
	}
	if cfg.Burst <= 0 {
		cfg.Burst = DefaultBurst
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Counters == nil {
		d.Counters = &keystore.Counters{}
	}
	s := &Server{cfg: cfg, d: d, uploads: newUploadSlots(cfg.MaxUploads), log: d.Logger.With("component", "admin"), codecs: map[keystore.Kind]envelope.Codec{},
		ipLim: newRateLimiter(cfg.Rate, cfg.Burst), tokLim: newRateLimiter(cfg.Rate, cfg.Burst)}
	if cfg.SharedLimits {
		window := time.Duration(float64(cfg.Burst) / cfg.Rate * float64(time.Second))
		s.ipLim = &sharedLimiter{l: d.Ledger, scope: "admin-ip", window: window, max: cfg.Burst, log: s.log}
		s.tokLim = &sharedLimiter{l: d.Ledger, scope: "admin-token", window: window, max: cfg.Burst, log: s.log}
	}
	for _, sp := range envelope.Specs() {
		c, err := envelope.New(sp.Format, envelope.Config{})
		if err != nil {
			return nil, err
		}
		s.codecs[sp.KeyKind] = c
	}
	if cfg.CertFile != "" || cfg.KeyFile != "" {
		r, err := tlsutil.NewCertReloader(cfg.CertFile, cfg.KeyFile, 0, s.log)
		if err != nil {
			return nil, fmt.Errorf("admin: %w", err)
		}
		s.tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.GetCertificate}
	} else if cfg.Addr != "" && !IsLoopback(cfg.Addr) {
		return nil, ErrTLSRequired
	}
	s.e = s.routes()
	return s, nil
}

// IsLoopback reports whether addr's host is a loopback address or
// "localhost".
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Handler returns the API's http.Handler (for tests and embedding).
func (s *Server) Handler() http.Handler { return s.e }

// TLS reports whether the listener serves TLS.
func (s *Server) TLS() bool { return s.tlsCfg != nil }

// Serve serves the API on ln until ctx ends, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.tlsCfg == nil && !IsLoopback(ln.Addr().String()) {
		return ErrTLSRequired
	}
	hs := &http.Server{
		Handler:           s.e,
		ReadHeaderTimeout: 5 * time.Second,
		// Uploads carry tens of MiB and compilation runs before the answer.
		ReadTimeout:  2 * time.Minute,
		WriteTimeout: 5 * time.Minute,
		IdleTimeout:  2 * time.Minute,
		ErrorLog:     slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	if s.tlsCfg != nil {
		ln = tls.NewListener(ln, s.tlsCfg)
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := hs.Shutdown(sctx)
	<-errc
	return err
}

// ListenAndServe listens on Config.Addr until ctx ends.
func (s *Server) ListenAndServe(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	s.log.Info("admin API listening", "addr", ln.Addr().String(), "tls", s.tlsCfg != nil)
	return s.Serve(ctx, ln)
}

// apiError is the JSON body of every error answer.
type apiError struct {
	Error string `json:"error"`
	// Hint says what to do next.
	Hint string `json:"hint,omitempty"`
}

func fail(status int, msg, hint string) *echo.HTTPError {
	return echo.NewHTTPError(status, apiError{Error: msg, Hint: hint})
}

// errorHandler maps errors to JSON with a status: typed errors of the
// backend, keystore and ledger to 4xx, anything else to 500 without its
// internal detail.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, body := http.StatusInternalServerError, apiError{Error: "internal error", Hint: "see the gateway log"}
	var he *echo.HTTPError
	switch {
	case errors.As(err, &he):
		status = he.Code
		switch m := he.Message.(type) {
		case apiError:
			body = m
		case string:
			body = apiError{Error: m}
		default:
			body = apiError{Error: http.StatusText(he.Code)}
		}
	case errors.Is(err, ErrNotFound), errors.Is(err, keystore.ErrNotFound), errors.Is(err, ledger.ErrNotFound):
		status, body = http.StatusNotFound, apiError{Error: err.Error()}
	case errors.Is(err, ErrPluginRefused):
		status, body = http.StatusUnprocessableEntity, apiError{Error: err.Error(),
			Hint: "fix the module or its configuration and upload it again; the active version is unchanged"}
	case errors.Is(err, ErrConflict), errors.Is(err, ledger.ErrDuplicate), errors.Is(err, keystore.ErrDuplicateKey),
		errors.Is(err, keystore.ErrKeysetExists):
		status, body = http.StatusConflict, apiError{Error: err.Error()}
	case errors.Is(err, keystore.ErrIllegalTransition):
		status, body = http.StatusConflict, apiError{Error: err.Error(),
			Hint: "states go pending → active → primary; a primary key steps down when another is promoted (or is disabled at once), then retiring → disabled → destroyed; see `otpcgate keys list`"}
	case isKeystoreRefusal(err), errors.Is(err, ErrInvalid):
		status, body = http.StatusBadRequest, apiError{Error: err.Error()}
	default:
		s.log.Error("admin request failed", "method", c.Request().Method, "route", c.Path(), "err", err)
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	_ = c.JSON(status, body)
}

func isKeystoreRefusal(err error) bool {
	for _, e := range []error{keystore.ErrKindMismatch, keystore.ErrWeakKey, keystore.ErrUnsupportedKey,
		keystore.ErrSymmetricKey, keystore.ErrExpired, keystore.ErrRevoked, keystore.ErrNoEncryptionKey,
		keystore.ErrNoPrivateKey, keystore.ErrCannotSign, keystore.ErrUnexpectedPrivate, keystore.ErrPassphraseRequired,
		keystore.ErrBadPassphrase, keystore.ErrLifetimeTooLong, keystore.ErrNoKeys, keystore.ErrMalformed} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// clientIP is the peer address; X-Forwarded-For is ignored since the
// listener is meant to be reached directly (a proxy would share one bucket).
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// bearer extracts the token from the Authorization header.
func bearer(r *http.Request) string {
	h := r.Header.Get(echo.HeaderAuthorization)
	if v, ok := strings.CutPrefix(h, "Bearer "); ok {
		return strings.TrimSpace(v)
	}
	return ""
}

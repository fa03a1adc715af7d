// Package server is the gateway's Google-facing HTTPS transport: Echo on a
// TLS-only listener (spec §10), the OTPC v2 routes for several merchants by
// base path, transport checks (method, content type, body size), health
// endpoints, middleware (recover, request id, access log, security headers),
// graceful shutdown, and a FIFO admission Limiter for CPU-bound work.
//
// The request pipeline plugs in as a Gateway and never sees Echo types.
//
// # TLS policy (spec §10, §14 q10)
//
// TLS 1.2 is the minimum. For TLS 1.2 the listener offers exactly these
// suites, all on the spec's list and implemented by crypto/tls as secure:
//
//	TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256       (ECDHE-ECDSA-AES128-GCM-SHA256)
//	TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256         (ECDHE-RSA-AES128-GCM-SHA256)
//	TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 (ECDHE-ECDSA-CHACHA20-POLY1305)
//	TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256   (ECDHE-RSA-CHACHA20-POLY1305)
//
// Only the ECDSA or the RSA pair negotiates, depending on the certificate.
// The spec's two CBC suites (ECDHE-ECDSA-AES128-SHA256,
// ECDHE-RSA-AES128-SHA256) are implemented by Go only as "insecure" suites
// (tls.InsecureCipherSuites) and are offered only with
// Config.AllowCBCSuites; the spec requires "at least one of" the list, so
// leaving them out complies. TLS 1.3 is on unless Config.DisableTLS13; its
// suites (AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305) are fixed by Go.
// Key exchanges default to Go's set, whose X25519MLKEM768 hybrid costs
// ~90 µs more server CPU per new connection than X25519 (Config.Curves).
// There is no plain HTTP listener; a plain request to the TLS port gets
// net/http's 400 and never reaches a handler.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpcgate/otpcgate/internal/tlsutil"
)

// Defaults for the zero fields of Config.
const (
	DefaultBodyLimit         = 256 << 10
	DefaultMaxHeaderBytes    = 16 << 10
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 15 * time.Second
	DefaultWriteTimeout      = 30 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultHandlerTimeout    = 20 * time.Second
	DefaultShutdownTimeout   = 25 * time.Second
)

// Config configures a Server. Zero durations and sizes take the Default*
// constants.
type Config struct {
	// Addr is the TCP address ListenAndServe listens on, e.g. ":8443".
	Addr string
	// CertFile and KeyFile are PEM files, reloaded when they change.
	CertFile, KeyFile string
	// CertReloadInterval is how often at most the files are checked;
	// 0 means tlsutil.DefaultReloadInterval.
	CertReloadInterval time.Duration
	// DisableTLS13 limits the listener to TLS 1.2 (spec §14 q10 asks
	// whether Google accepts 1.3; it is on by default).
	DisableTLS13 bool
	// AllowCBCSuites also offers ECDHE-{ECDSA,RSA}-AES128-SHA256, which
	// Go classes as insecure; see tlsutil.SpecCBCSuites.
	AllowCBCSuites bool
	// Curves lists key exchanges by name (tlsutil.ParseCurves); empty
	// means Go's default, which includes the post-quantum hybrids.
	Curves []string
	// EnableHTTP2 offers h2 via ALPN. Off by default: each Google call is
	// one small request and response, HTTP/1.1 keep-alive carries it at
	// the measured cost, and h2 adds framing, flow control and its own
	// denial-of-service surface (rapid reset, HPACK) for no gain here.
	EnableHTTP2 bool

	// BodyLimit is the largest accepted request body in bytes; larger
	// bodies get 413 before any crypto runs.
	BodyLimit int64
	// MaxHeaderBytes bounds the request header size.
	MaxHeaderBytes int
	// ReadHeaderTimeout, ReadTimeout, WriteTimeout and IdleTimeout are the
	// http.Server timeouts. WriteTimeout must cover queueing and handling.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// HandlerTimeout bounds the Gateway's context.
	HandlerTimeout time.Duration
	// ShutdownTimeout is how long a graceful shutdown waits for requests
	// in flight before closing connections.
	ShutdownTimeout time.Duration

	// Methods are the accepted method names; empty means DefaultMethods.
	Methods []string
	// MediaTypes are the request media types accepted on merchant routes
	// (without parameters); any other gets 415 before any crypto. Empty
	// means MediaTypePGP and MediaTypeJOSE; the gateway passes
	// envelope.MediaTypes(), so a new envelope format needs no change here.
	MediaTypes []string
	// Routes is the initial base path table (see SetRoutes).
	Routes []Route
}

// Options are the Server's collaborators.
type Options struct {
	// Logger receives the access log and errors; nil discards.
	Logger *slog.Logger
	// Ready backs /readyz; nil means always ready.
	Ready ReadyFunc
	// Limiter, if set, wraps each whole Gateway.Serve call. Leave it nil
	// when the pipeline acquires the Limiter itself around its CPU-bound
	// part (acquiring twice would hold two slots per request).
	Limiter *Limiter
	// Metrics, if set, receives request counters and latency histograms
	// (otpcgate_http_*). Register a Limiter with RegisterLimiterMetrics.
	Metrics prometheus.Registerer
}

// Server is the Google-facing HTTPS server. Create it with New, add extra
// routes via Echo before serving, then call Serve or ListenAndServe once.
type Server struct {
	cfg      Config
	gw       Gateway
	log      *slog.Logger
	ready    ReadyFunc
	limiter  *Limiter
	certs    *tlsutil.CertReloader
	tlsConf  *tls.Config
	e        *echo.Echo
	http     *http.Server
	metrics  *metrics // nil without Options.Metrics
	methods  map[string]bool
	routes   atomic.Pointer[routeTable]
	draining atomic.Bool
	started  atomic.Bool
}

// ErrAlreadyStarted is returned by a second Serve or ListenAndServe.
var ErrAlreadyStarted = errors.New("server: already started")

// New validates cfg, loads the certificate and builds the server.
func New(cfg Config, gw Gateway, opts Options) (*Server, error) {
	if gw == nil {
		return nil, errors.New("server: nil Gateway")
	}
	cfg = withDefaults(cfg)
	if cfg.BodyLimit < 0 || cfg.MaxHeaderBytes < 0 {
		return nil, errors.New("server: negative size limit")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	certs, err := tlsutil.NewCertReloader(cfg.CertFile, cfg.KeyFile, cfg.CertReloadInterval, log)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	tc, err := TLSConfig(cfg, certs.GetCertificate)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, gw: gw, log: log, ready: opts.Ready, limiter: opts.Limiter, certs: certs, tlsConf: tc,
		methods: map[string]bool{}}
	for _, m := range cfg.Methods {
		s.methods[m] = true
	}
	if err := s.SetRoutes(cfg.Routes); err != nil {
		return nil, err
	}
	if opts.Metrics != nil {
		if s.metrics, err = newMetrics(opts.Metrics); err != nil {
			return nil, err
		}
	}
	s.e = s.newEcho()
	s.http = &http.Server{
		Handler:           s.e,
		TLSConfig:         tc,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		Protocols:         new(http.Protocols),
	}
	s.http.Protocols.SetHTTP1(true)
	s.http.Protocols.SetHTTP2(cfg.EnableHTTP2)
	return s, nil
}

func withDefaults(c Config) Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.BodyLimit == 0 {
		c.BodyLimit = DefaultBodyLimit
	}
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	def(&c.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	def(&c.ReadTimeout, DefaultReadTimeout)
	def(&c.WriteTimeout, DefaultWriteTimeout)
	def(&c.IdleTimeout, DefaultIdleTimeout)
	def(&c.HandlerTimeout, DefaultHandlerTimeout)
	def(&c.ShutdownTimeout, DefaultShutdownTimeout)
	if len(c.Methods) == 0 {
		c.Methods = DefaultMethods()
	}
	if len(c.MediaTypes) == 0 {
		c.MediaTypes = []string{MediaTypePGP, MediaTypeJOSE}
	}
	return c
}

// TLSConfig returns the listener's TLS policy: TLS 1.2 minimum, TLS 1.3
// unless cfg.DisableTLS13, for TLS 1.2 only the spec's suites
// (tlsutil.CipherSuites), the configured key exchanges, no session
// renegotiation, and the certificate from getCert.
func TLSConfig(cfg Config, getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)) (*tls.Config, error) {
	curves, err := tlsutil.ParseCurves(cfg.Curves)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	maxV := uint16(tls.VersionTLS13)
	if cfg.DisableTLS13 {
		maxV = tls.VersionTLS12
	}
	return &tls.Config{
		MinVersion:       tls.VersionTLS12,
		MaxVersion:       maxV,
		CipherSuites:     tlsutil.CipherSuites(cfg.AllowCBCSuites),
		CurvePreferences: curves,
		GetCertificate:   getCert,
	}, nil
}

// Echo returns the underlying Echo instance so other packages can mount
// extra routes (merchant web login page, ...) before Serve. Routes added
// there get the same middleware; the OTPC routes are a catch-all, so any
// more specific path registered here takes precedence.
func (s *Server) Echo() *echo.Echo { return s.e }

// ListenAndServe listens on cfg.Addr and calls Serve.
func (s *Server) ListenAndServe(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("server: listen: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves TLS on ln until ctx ends, then shuts down gracefully:
// /readyz turns 503, new connections are refused, idle ones closed, and
// requests in flight get up to ShutdownTimeout to finish before their
// connections are closed. It returns nil after a clean shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if !s.started.CompareAndSwap(false, true) {
		ln.Close()
		return ErrAlreadyStarted
	}
	// Handlers' contexts must outlive ctx so shutdown can let them finish.
	base := context.WithoutCancel(ctx)
	s.http.BaseContext = func(net.Listener) context.Context { return base }
	s.log.InfoContext(ctx, "listening", "addr", ln.Addr().String(), "tls13", !s.cfg.DisableTLS13, "http2", s.cfg.EnableHTTP2)
	errc := make(chan error, 1)
	go func() { errc <- s.http.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		return fmt.Errorf("server: serve: %w", err)
	case <-ctx.Done():
	}
	s.draining.Store(true)
	sctx, cancel := context.WithTimeout(base, s.cfg.ShutdownTimeout)
	defer cancel()
	err := s.http.Shutdown(sctx)
	<-errc
	if err != nil {
		s.http.Close()
		return fmt.Errorf("server: graceful shutdown: %w", err)
	}
	s.log.InfoContext(base, "server stopped")
	return nil
}

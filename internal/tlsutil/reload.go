package tlsutil

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// DefaultReloadInterval is how often CertReloader looks at the files at most.
const DefaultReloadInterval = 5 * time.Second

// CertReloader serves a certificate loaded from a PEM certificate file and a
// PEM key file, and reloads them when either file's size or modification
// time changes. It checks at most once per interval, lazily, from the TLS
// handshake itself, so it needs no goroutine and no fsnotify. A new pair
// that fails to load (half-written, mismatched, garbage) is logged once and
// the previous certificate stays in use.
type CertReloader struct {
	certFile, keyFile string
	interval          time.Duration
	log               *slog.Logger
	now               func() time.Time

	mu        sync.Mutex
	cert      *tls.Certificate
	loadedSig fileSig // the files' state when cert was loaded
	badSig    fileSig // the last state that failed to load, not retried
	statErr   bool    // the last check could not stat a file (logged once)
	lastCheck time.Time
}

// fileSig identifies a version of the two files cheaply.
type fileSig struct {
	certSize, keySize int64
	certMod, keyMod   time.Time
}

// NewCertReloader loads certFile and keyFile and returns a reloader. It
// fails if the first load fails, so a server never starts without a
// certificate. interval <= 0 means DefaultReloadInterval; log may be nil.
func NewCertReloader(certFile, keyFile string, interval time.Duration, log *slog.Logger) (*CertReloader, error) {
	if interval <= 0 {
		interval = DefaultReloadInterval
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &CertReloader{certFile: certFile, keyFile: keyFile, interval: interval, log: log, now: time.Now}
	sig, err := r.stat()
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: load certificate %s / %s: %w", certFile, keyFile, err)
	}
	r.cert, r.loadedSig, r.lastCheck = &cert, sig, r.now()
	return r, nil
}

func (r *CertReloader) stat() (fileSig, error) {
	c, err := os.Stat(r.certFile)
	if err != nil {
		return fileSig{}, fmt.Errorf("tlsutil: certificate file: %w", err)
	}
	k, err := os.Stat(r.keyFile)
	if err != nil {
		return fileSig{}, fmt.Errorf("tlsutil: key file: %w", err)
	}
	return fileSig{certSize: c.Size(), keySize: k.Size(), certMod: c.ModTime(), keyMod: k.ModTime()}, nil
}

// GetCertificate is a tls.Config.GetCertificate callback.
func (r *CertReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.Current(), nil
}

// Current returns the certificate in use, reloading it first if the
// interval has passed and the files changed.
func (r *CertReloader) Current() *tls.Certificate {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.now(); now.Sub(r.lastCheck) >= r.interval {
		r.lastCheck = now
		r.maybeReloadLocked(context.Background())
	}
	return r.cert
}

// maybeReloadLocked reloads when the files differ from the loaded version.
func (r *CertReloader) maybeReloadLocked(ctx context.Context) {
	sig, err := r.stat()
	if err != nil {
		if !r.statErr {
			r.statErr = true
			r.log.ErrorContext(ctx, "certificate reload failed; keeping the previous certificate", "err", err)
		}
		return
	}
	r.statErr = false
	if sig == r.loadedSig || sig == r.badSig {
		return
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		r.badSig = sig
		r.log.ErrorContext(ctx, "certificate reload failed; keeping the previous certificate",
			"cert_file", r.certFile, "key_file", r.keyFile, "err", err)
		return
	}
	r.cert, r.loadedSig, r.badSig = &cert, sig, fileSig{}
	attrs := []any{"cert_file", r.certFile}
	if cert.Leaf != nil {
		attrs = append(attrs, "subject", cert.Leaf.Subject.String(), "not_after", cert.Leaf.NotAfter)
		if r.now().After(cert.Leaf.NotAfter) {
			r.log.WarnContext(ctx, "reloaded certificate has expired", attrs...)
		}
	}
	r.log.InfoContext(ctx, "certificate reloaded", attrs...)
}

package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/otpcgate/otpcgate/internal/basepath"
	"github.com/otpcgate/otpcgate/internal/db"
	"github.com/otpcgate/otpcgate/internal/tlsutil"
)

// ErrInvalid matches every FieldError.
var ErrInvalid = errors.New("invalid configuration")

// FieldError is one validation failure, naming the key at fault.
type FieldError struct {
	// Key is the setting, e.g. "listen.cert_file" or "merchants[1].base_path".
	Key string
	// Err says what is wrong.
	Err error
}

// Error formats the failure as "key: reason".
func (e *FieldError) Error() string { return e.Key + ": " + e.Err.Error() }

// Unwrap returns the reason.
func (e *FieldError) Unwrap() error { return e.Err }

// Is reports whether target is ErrInvalid.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// Validate checks the configuration and returns every problem at once,
// joined (errors.Join) as *FieldError values. It also checks that the
// certificate and key files exist, so a typo fails at start, not at the
// first handshake.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, &FieldError{Key: key, Err: fmt.Errorf(format, a...)})
	}
	if c.DataDir == "" {
		bad("data_dir", "must not be empty")
	}
	if c.DBURL != "" {
		if err := CheckDBURL(c.DBURL); err != nil {
			bad("db_url", "%v", err)
		}
	}
	if err := checkAddr(c.Listen.Addr); err != nil {
		bad("listen.addr", "%v", err)
	}
	for _, f := range []struct{ key, path string }{
		{"listen.cert_file", c.Listen.CertFile}, {"listen.key_file", c.Listen.KeyFile},
	} {
		if err := checkFile(f.path); err != nil {
			errs = append(errs, &FieldError{Key: f.key, Err: err})
		}
	}
	if c.Listen.CertReloadInterval < 0 {
		bad("listen.cert_reload_interval", "must not be negative")
	}
	if _, err := tlsutil.ParseCurves(c.Listen.Curves); err != nil {
		bad("listen.curves", "%v", err)
	}
	if c.Limits.BodyLimit <= 0 || c.Limits.BodyLimit > 64<<20 {
		bad("limits.body_limit", "must be between 1 and %d bytes, got %d", 64<<20, c.Limits.BodyLimit)
	}
	if c.Limits.MaxHeaderBytes < 1024 || c.Limits.MaxHeaderBytes > 1<<20 {
		bad("limits.max_header_bytes", "must be between 1024 and %d, got %d", 1<<20, c.Limits.MaxHeaderBytes)
	}
	for _, t := range []struct {
		key string
		d   Duration
	}{
		{"limits.read_header_timeout", c.Limits.ReadHeaderTimeout},
		{"limits.read_timeout", c.Limits.ReadTimeout},
		{"limits.write_timeout", c.Limits.WriteTimeout},
		{"limits.idle_timeout", c.Limits.IdleTimeout},
		{"limits.handler_timeout", c.Limits.HandlerTimeout},
		{"limits.shutdown_timeout", c.Limits.ShutdownTimeout},
	} {
		if t.d <= 0 {
			bad(t.key, "must be positive, got %s", t.d)
		}
	}
	if c.Limits.WriteTimeout > 0 && c.Limits.WriteTimeout <= c.Limits.HandlerTimeout {
		bad("limits.write_timeout", "must exceed limits.handler_timeout (%s), or answers are cut off", c.Limits.HandlerTimeout)
	}
	if c.Admission.MaxInFlight < 0 {
		bad("admission.max_in_flight", "must be >= 0 (0 means GOMAXPROCS), got %d", c.Admission.MaxInFlight)
	}
	if c.Admission.MaxQueue < 0 {
		bad("admission.max_queue", "must be >= 0, got %d", c.Admission.MaxQueue)
	}
	if c.Admission.MaxWait < 0 {
		bad("admission.max_wait", "must be >= 0, got %s", c.Admission.MaxWait)
	}
	if c.Admission.MaxInFlightPerMerchant < -1 {
		bad("admission.max_in_flight_per_merchant", "must be >= -1 (0: all slots but one, -1: all), got %d", c.Admission.MaxInFlightPerMerchant)
	}
	if c.PluginCalls.BreakerTimeouts < 1 {
		bad("plugin_calls.breaker_timeouts", "must be >= 1, got %d", c.PluginCalls.BreakerTimeouts)
	}
	if c.PluginCalls.KVMaxKeys < 1 {
		bad("plugin_calls.kv_max_keys", "must be >= 1, got %d", c.PluginCalls.KVMaxKeys)
	}
	if c.PluginCalls.KVMaxBytes < 1 {
		bad("plugin_calls.kv_max_bytes", "must be >= 1, got %d", c.PluginCalls.KVMaxBytes)
	}
	if c.PluginCalls.MemoryMiB < 8 || c.PluginCalls.MemoryMiB > 4096 {
		bad("plugin_calls.memory_mib", "must be between 8 (a Go plugin's floor) and 4096, got %d", c.PluginCalls.MemoryMiB)
	}
	if c.PluginCalls.InstancesPerVersion < 1 || c.PluginCalls.InstancesPerVersion > 64 {
		bad("plugin_calls.instances_per_version", "must be between 1 and 64, got %d", c.PluginCalls.InstancesPerVersion)
	}
	if c.PluginCalls.LogBytesPerMinute < 1 {
		bad("plugin_calls.log_bytes_per_minute", "must be >= 1, got %d", c.PluginCalls.LogBytesPerMinute)
	}
	if c.PluginCalls.CircuitOpenPause < 0 || c.PluginCalls.CircuitOpenPause.D() > 10*time.Second {
		bad("plugin_calls.circuit_open_pause", "must be between 0s and 10s, got %s", c.PluginCalls.CircuitOpenPause)
	}
	if c.PluginCalls.BreakerCoolDown <= 0 {
		bad("plugin_calls.breaker_cool_down", "must be > 0, got %s", c.PluginCalls.BreakerCoolDown)
	}
	for name, v := range map[string]int{"admin.max_plugin_bytes": c.Admin.MaxPluginBytes,
		"admin.max_plugin_versions": c.Admin.MaxPluginVersions, "admin.max_uploads": c.Admin.MaxUploads} {
		if v < 0 {
			bad(name, "must be >= 0 (0: the default), got %d", v)
		}
	}
	if c.Admission.MaxQueuePerMerchant < 0 {
		bad("admission.max_queue_per_merchant", "must be >= 0 (0: half the queue), got %d", c.Admission.MaxQueuePerMerchant)
	}
	if c.CommitWindow < 0 || c.CommitWindow.D() > 10*time.Millisecond {
		bad("commit_window", "must be between 0s and 10ms, got %s", c.CommitWindow)
	}
	if c.TimestampSkew <= 0 || c.TimestampSkew.D() > 10*time.Minute {
		bad("timestamp_skew", "must be positive and at most 10m, got %s", c.TimestampSkew)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		bad("log.format", "must be json or text, got %q", c.Log.Format)
	}
	if c.Admin.Addr != "" {
		if err := checkAddr(c.Admin.Addr); err != nil {
			bad("admin.addr", "%v", err)
		} else if c.Admin.Addr == c.Listen.Addr {
			bad("admin.addr", "must differ from listen.addr")
		}
	}
	errs = append(errs, c.validateMerchants()...)
	return errors.Join(errs...)
}

func (c *Config) validateMerchants() []error {
	var errs []error
	ids, bases, piaids := map[string]int{}, map[string]int{}, map[string]int{}
	for i, m := range c.Merchants {
		key := func(f string) string { return fmt.Sprintf("merchants[%d].%s", i, f) }
		bad := func(f, format string, a ...any) {
			errs = append(errs, &FieldError{Key: key(f), Err: fmt.Errorf(format, a...)})
		}
		if m.ID == "" {
			bad("id", "must not be empty")
		} else if j, dup := ids[m.ID]; dup {
			bad("id", "%q already used by merchants[%d]", m.ID, j)
		} else {
			ids[m.ID] = i
		}
		if base, err := basepath.Normalize(m.BasePath); err != nil {
			bad("base_path", "%v", err)
		} else if j, dup := bases[base]; dup {
			bad("base_path", "%q already used by merchants[%d]", m.BasePath, j)
		} else {
			bases[base] = i
		}
		if len(m.PIAIDs) == 0 {
			bad("piaids", "at least one payment integrator account id is required")
		}
		for _, p := range m.PIAIDs {
			if p == "" {
				bad("piaids", "must not contain an empty id")
			} else if j, dup := piaids[p]; dup {
				bad("piaids", "%q already used by merchants[%d]", p, j)
			} else {
				piaids[p] = i
			}
		}
		if m.KVMaxKeys < 0 || m.KVMaxBytes < 0 || m.LogBytesPerMinute < 0 || m.MaxPluginVersions < 0 ||
			m.MaxPluginBytes < 0 || m.PluginMemoryMiB < 0 {
			bad("kv_max_keys", "quotas (kv_max_keys, kv_max_bytes, log_bytes_per_minute, max_plugin_versions) must not be negative (0: the host's default)")
		}
		for p, r := range m.AmountRules {
			f := "amount_rules." + p
			switch {
			case !slices.Contains(m.PIAIDs, p):
				bad(f, "names a PIAID not in piaids")
			case r.MinAmountMicros < 0 || r.MaxAmountMicros < 0:
				bad(f, "amounts must not be negative")
			case r.MaxAmountMicros != 0 && r.MinAmountMicros > r.MaxAmountMicros:
				bad(f, "min_amount_micros %d is above max_amount_micros %d", r.MinAmountMicros, r.MaxAmountMicros)
			}
			for _, c := range r.Currencies {
				if len(c) != 3 || strings.ToUpper(c) != c || strings.ContainsAny(c, "0123456789") {
					bad(f+".currencies", "%q is not an ISO 4217 code (three capital letters)", c)
				}
			}
		}
		if m.Envelope != EnvelopePGP && m.Envelope != EnvelopeJOSE {
			bad("envelope", "must be %q or %q, got %q", EnvelopePGP, EnvelopeJOSE, m.Envelope)
		}
		if m.KeysetID == "" {
			bad("keyset_id", "must not be empty")
		}
		if u, err := url.Parse(m.GoogleEndpoint); err != nil || u.Scheme != "https" || u.Host == "" {
			bad("google_endpoint", "must be an https URL, got %q", m.GoogleEndpoint)
		}
	}
	return errs
}

func checkAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("not host:port: %q", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("bad port in %q", addr)
	}
	_ = host // "" means all interfaces; names are resolved by Listen
	return nil
}

func checkFile(path string) error {
	if path == "" {
		return errors.New("required")
	}
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	return nil
}

// CheckDBURL accepts a PostgreSQL URL without a password: a config file
// and the process list are no place for one; the driver reads PGPASSWORD
// and ~/.pgpass (or PGPASSFILE) instead.
func CheckDBURL(s string) error {
	if !db.IsURL(s) {
		return errors.New("must start with postgres:// or postgresql://")
	}
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("is not a valid URL")
	}
	if _, ok := u.User.Password(); ok {
		return errors.New("must not hold a password: set PGPASSWORD or use ~/.pgpass (PGPASSFILE)")
	}
	if u.Query().Has("password") {
		return errors.New("must not hold a password parameter: set PGPASSWORD or use ~/.pgpass (PGPASSFILE)")
	}
	return nil
}

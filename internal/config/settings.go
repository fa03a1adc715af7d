package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrUnknownKey is returned by Set for a key that is not a setting.
var ErrUnknownKey = errors.New("unknown setting")

// Setting describes one scalar configuration key.
type Setting struct {
	// Key is the dotted JSON path, e.g. "listen.cert_file".
	Key string
	// Env is the environment variable, e.g. "OTPCGATE_LISTEN_CERT_FILE".
	Env string
	// Flag is the flag name without dashes, e.g. "listen-cert-file".
	Flag string
	// Type is string, bool, int, duration or list (comma-separated).
	Type string
	// Usage is a one-line description for --help.
	Usage string
	// Default is the default value as text ("" if empty).
	Default string
}

// EnvName returns the environment variable of a key.
func EnvName(key string) string {
	return "OTPCGATE_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// FlagName returns the flag of a key.
func FlagName(key string) string {
	return strings.NewReplacer(".", "-", "_", "-").Replace(key)
}

// field binds a key to the place in a Config it sets.
type field struct {
	key, usage string
	ptr        func(c *Config) any
}

// fields lists every scalar setting. Add new ones here with godoc on the
// struct field; env and flag names follow from the key.
func fields() []field {
	return []field{
		{"data_dir", "directory for the gateway's files", func(c *Config) any { return &c.DataDir }},
		{"db_path", "SQLite database file (default {data_dir}/otpcgate.db)", func(c *Config) any { return &c.DBPath }},
		{"db_url", "PostgreSQL URL (postgres://…); when set, all state lives there instead of db_path", func(c *Config) any { return &c.DBURL }},
		{"kek_file", "key-encryption key file (default {data_dir}/kek.key)", func(c *Config) any { return &c.KEKFile }},
		{"listen.addr", "Google-facing TLS listen address", func(c *Config) any { return &c.Listen.Addr }},
		{"listen.cert_file", "TLS certificate PEM file (reloaded on change)", func(c *Config) any { return &c.Listen.CertFile }},
		{"listen.key_file", "TLS private key PEM file (reloaded on change)", func(c *Config) any { return &c.Listen.KeyFile }},
		{"listen.cert_reload_interval", "how often the certificate files are checked at most", func(c *Config) any { return &c.Listen.CertReloadInterval }},
		{"listen.tls13", "offer TLS 1.3 besides TLS 1.2", func(c *Config) any { return &c.Listen.TLS13 }},
		{"listen.tls12_cbc_suites", "also offer ECDHE-*-AES128-SHA256 (Go: insecure)", func(c *Config) any { return &c.Listen.TLS12CBCSuites }},
		{"listen.curves", "key exchanges, comma-separated (empty: Go default incl. X25519MLKEM768)", func(c *Config) any { return &c.Listen.Curves }},
		{"listen.http2", "offer HTTP/2 via ALPN", func(c *Config) any { return &c.Listen.HTTP2 }},
		{"limits.body_limit", "largest request body in bytes", func(c *Config) any { return &c.Limits.BodyLimit }},
		{"limits.max_header_bytes", "largest request header block in bytes", func(c *Config) any { return &c.Limits.MaxHeaderBytes }},
		{"limits.read_header_timeout", "time to read request headers", func(c *Config) any { return &c.Limits.ReadHeaderTimeout }},
		{"limits.read_timeout", "time to read a whole request", func(c *Config) any { return &c.Limits.ReadTimeout }},
		{"limits.write_timeout", "time from request headers to the end of the response", func(c *Config) any { return &c.Limits.WriteTimeout }},
		{"limits.idle_timeout", "keep-alive idle time", func(c *Config) any { return &c.Limits.IdleTimeout }},
		{"limits.handler_timeout", "time to process one request", func(c *Config) any { return &c.Limits.HandlerTimeout }},
		{"limits.shutdown_timeout", "time shutdown waits for requests in flight", func(c *Config) any { return &c.Limits.ShutdownTimeout }},
		{"admission.max_in_flight", "concurrent CPU-heavy requests (0: GOMAXPROCS)", func(c *Config) any { return &c.Admission.MaxInFlight }},
		{"admission.max_queue", "requests that may wait for admission", func(c *Config) any { return &c.Admission.MaxQueue }},
		{"admission.max_wait", "longest wait for admission before 503", func(c *Config) any { return &c.Admission.MaxWait }},
		{"admission.max_in_flight_per_merchant", "slots one merchant may hold (0: all but one; -1: all)", func(c *Config) any { return &c.Admission.MaxInFlightPerMerchant }},
		{"admission.max_queue_per_merchant", "queue places one merchant may take (0: half the queue)", func(c *Config) any { return &c.Admission.MaxQueuePerMerchant }},
		{"timestamp_skew", "largest accepted request timestamp skew", func(c *Config) any { return &c.TimestampSkew }},
		{"commit_window", "how long the ledger writer waits for commits being prepared (0s: no wait)", func(c *Config) any { return &c.CommitWindow }},
		{"plugin_calls.breaker_timeouts", "consecutive plugin timeouts that open its circuit (fast 503s)", func(c *Config) any { return &c.PluginCalls.BreakerTimeouts }},
		{"plugin_calls.breaker_cool_down", "how long an open plugin circuit answers 503 before a probe call", func(c *Config) any { return &c.PluginCalls.BreakerCoolDown }},
		{"plugin_calls.circuit_open_pause", "how long a 503 for an open plugin circuit is held, against callers ignoring Retry-After (0s: none)", func(c *Config) any { return &c.PluginCalls.CircuitOpenPause }},
		{"plugin_calls.kv_max_keys", "keys each merchant's plugin may store", func(c *Config) any { return &c.PluginCalls.KVMaxKeys }},
		{"plugin_calls.kv_max_bytes", "bytes (keys and values) each merchant's plugin may store", func(c *Config) any { return &c.PluginCalls.KVMaxBytes }},
		{"log.level", "log level: debug, info, warn, error", func(c *Config) any { return &c.Log.Level }},
		{"log.format", "log format: json or text", func(c *Config) any { return &c.Log.Format }},
		{"admin.addr", "admin API listen address (empty disables)", func(c *Config) any { return &c.Admin.Addr }},
	}
}

// Settings lists every scalar setting with its names and default.
func Settings() []Setting {
	def := Default()
	fs := fields()
	out := make([]Setting, 0, len(fs))
	for _, f := range fs {
		p := f.ptr(def)
		out = append(out, Setting{
			Key: f.key, Env: EnvName(f.key), Flag: FlagName(f.key),
			Type: typeOf(p), Usage: f.usage, Default: format(p),
		})
	}
	return out
}

// Set parses value into the setting key.
func (c *Config) Set(key, value string) error {
	for _, f := range fields() {
		if f.key == key {
			if err := parseInto(f.ptr(c), value); err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
			return nil
		}
	}
	return fmt.Errorf("%w: %q", ErrUnknownKey, key)
}

// Get formats the current value of key.
func (c *Config) Get(key string) (string, error) {
	for _, f := range fields() {
		if f.key == key {
			return format(f.ptr(c)), nil
		}
	}
	return "", fmt.Errorf("%w: %q", ErrUnknownKey, key)
}

func parseInto(p any, v string) error {
	v = strings.TrimSpace(v)
	switch p := p.(type) {
	case *string:
		*p = v
	case *bool:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("not a boolean: %q", v)
		}
		*p = b
	case *int:
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("not an integer: %q", v)
		}
		*p = n
	case *int64:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("not an integer: %q", v)
		}
		*p = n
	case *Duration:
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("not a duration such as 30s: %q", v)
		}
		*p = Duration(d)
	case *[]string:
		*p = nil
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				*p = append(*p, s)
			}
		}
	default:
		return fmt.Errorf("unsupported setting type %T", p)
	}
	return nil
}

func format(p any) string {
	switch p := p.(type) {
	case *string:
		return *p
	case *bool:
		return strconv.FormatBool(*p)
	case *int:
		return strconv.Itoa(*p)
	case *int64:
		return strconv.FormatInt(*p, 10)
	case *Duration:
		return p.String()
	case *[]string:
		return strings.Join(*p, ",")
	}
	return ""
}

func typeOf(p any) string {
	switch p.(type) {
	case *bool:
		return "bool"
	case *int, *int64:
		return "int"
	case *Duration:
		return "duration"
	case *[]string:
		return "list"
	}
	return "string"
}

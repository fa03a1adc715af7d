// Package config is the otpcgate binary's configuration: one Config struct
// read from a JSON file, then overridden by OTPCGATE_* environment
// variables, then by command-line flags (flags win), and validated with
// errors that name the offending key.
//
// Every scalar setting has a dotted key ("listen.cert_file"); the key
// derives its environment variable (OTPCGATE_LISTEN_CERT_FILE) and flag
// (--listen-cert-file). Lists of structs (merchants) come from the file only.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Config is the whole configuration. JSON field names are the keys' last
// parts; defaults are those of Default.
type Config struct {
	// DataDir holds the gateway's files. Default "./data".
	DataDir string `json:"data_dir"`
	// DBPath is the SQLite database. Default "{data_dir}/otpcgate.db".
	// Ignored when DBURL is set.
	DBPath string `json:"db_path"`
	// DBURL, if set, keeps all state in PostgreSQL instead of SQLite
	// (postgres://user@host:5432/db?sslmode=verify-full): several hosts
	// with the same DBURL and KEK serve as one gateway. Keep the password
	// out of it (PGPASSWORD or ~/.pgpass, which the driver reads).
	DBURL string `json:"db_url"`
	// KEKFile holds the key-encryption key that protects private keys at
	// rest. Default "{data_dir}/kek.key".
	KEKFile string `json:"kek_file"`

	// Listen is the Google-facing TLS listener.
	Listen Listen `json:"listen"`
	// Limits are the HTTP size limits and timeouts of that listener.
	Limits Limits `json:"limits"`
	// Admission bounds concurrent CPU-heavy work (see server.Limiter).
	Admission Admission `json:"admission"`

	// TimestampSkew is the largest accepted distance between a request's
	// header timestamp and local time (spec §7.3). Default "60s".
	TimestampSkew Duration `json:"timestamp_skew"`
	// CommitWindow is how long the ledger's single writer may wait for
	// the commits of requests still being prepared (plugin call or seal
	// running), so that one fsync covers more requests under load; a lone
	// commit is never delayed. "0s" batches only what is already waiting.
	// Default 200µs.
	CommitWindow Duration `json:"commit_window"`
	// PluginCalls guards the host against a plugin that keeps timing out.
	PluginCalls PluginCalls `json:"plugin_calls"`

	// Log configures the process log.
	Log Log `json:"log"`
	// Admin is the operator and merchant API listener.
	Admin Admin `json:"admin"`
	// WebLogin configures the web-redirect login pages (spec §8).
	WebLogin WebLogin `json:"web_login"`

	// Merchants seed the merchant table: at start each listed merchant is
	// created in the database if missing. The database is the source of
	// truth afterwards (the admin API changes it there). Not settable by
	// environment or flags.
	Merchants []Merchant `json:"merchants"`
}

// Listen configures the Google-facing TLS listener. There is never a plain
// HTTP listener on this side (spec §10).
type Listen struct {
	// Addr is host:port. Default ":8443".
	Addr string `json:"addr"`
	// CertFile and KeyFile are PEM files, reloaded when they change.
	// Required. An ECDSA P-256 certificate costs ~0.26 ms server CPU per
	// new connection, RSA-2048 ~1.0 ms.
	CertFile string `json:"cert_file"`
	KeyFile  string `json:"key_file"`
	// CertReloadInterval is how often at most the files are checked.
	// Default "5s".
	CertReloadInterval Duration `json:"cert_reload_interval"`
	// TLS13 offers TLS 1.3 besides 1.2. Default true (spec §14 q10).
	TLS13 bool `json:"tls13"`
	// TLS12CBCSuites also offers ECDHE-{ECDSA,RSA}-AES128-SHA256, on the
	// spec's list but insecure by Go's classification. Default false.
	TLS12CBCSuites bool `json:"tls12_cbc_suites"`
	// Curves restricts key exchanges, e.g. ["X25519","P256"]; empty means
	// Go's default incl. X25519MLKEM768 (+~90 µs per new connection).
	Curves []string `json:"curves"`
	// HTTP2 offers h2 via ALPN. Default false: HTTP/1.1 keep-alive.
	HTTP2 bool `json:"http2"`
}

// Limits are the Google-facing listener's size limits and timeouts.
type Limits struct {
	// BodyLimit is the largest request body in bytes. Default 262144.
	BodyLimit int64 `json:"body_limit"`
	// MaxHeaderBytes bounds request headers. Default 16384.
	MaxHeaderBytes int `json:"max_header_bytes"`
	// ReadHeaderTimeout default "5s"; ReadTimeout "15s"; WriteTimeout
	// "30s" (must exceed HandlerTimeout); IdleTimeout "120s".
	ReadHeaderTimeout Duration `json:"read_header_timeout"`
	ReadTimeout       Duration `json:"read_timeout"`
	WriteTimeout      Duration `json:"write_timeout"`
	IdleTimeout       Duration `json:"idle_timeout"`
	// HandlerTimeout bounds one request's processing. Default "20s".
	HandlerTimeout Duration `json:"handler_timeout"`
	// ShutdownTimeout is how long shutdown waits for requests in flight.
	// Default "25s".
	ShutdownTimeout Duration `json:"shutdown_timeout"`
}

// Admission sizes the FIFO admission limiter.
type Admission struct {
	// MaxInFlight is the number of concurrent CPU-heavy requests; 0 means
	// GOMAXPROCS. Default 0.
	MaxInFlight int `json:"max_in_flight"`
	// MaxQueue is how many requests may wait; beyond it 503. Default 64.
	MaxQueue int `json:"max_queue"`
	// MaxWait is the longest wait in the queue; beyond it 503. Default "1s".
	MaxWait Duration `json:"max_wait"`
	// MaxInFlightPerMerchant is how many of the slots one merchant may hold
	// at once, so that one merchant's slow plugin always leaves a slot to
	// the others. 0 means all but one slot (at least one); -1 means no
	// reserve (a single-merchant host may want every slot). Default 0.
	MaxInFlightPerMerchant int `json:"max_in_flight_per_merchant"`
	// MaxQueuePerMerchant is how many queue places one merchant may take.
	// 0 means half of MaxQueue (at least one). Default 0.
	MaxQueuePerMerchant int `json:"max_queue_per_merchant"`
}

// PluginCalls configures the circuit breaker of plugin calls: after
// BreakerTimeouts consecutive calls of a merchant's plugin ran into their
// time limit, its calls fail at once (503 with Retry-After) for
// BreakerCoolDown, then one probe call decides. Defaults 3 and "30s".
//
// KVMaxKeys and KVMaxBytes bound each merchant's plugin KV data (keys, and
// bytes of keys and values); a call whose changes would exceed them fails
// (503) and commits nothing. Defaults 100000 and 67108864 (64 MiB).
//
// LogBytesPerMinute bounds each merchant's plugin log lines over time;
// lines beyond are dropped (counted, and reported once a minute). Default
// 1048576 (1 MiB).
//
// MemoryMiB caps each plugin instance's linear memory and
// InstancesPerVersion the instances a loaded version keeps, so a merchant's
// plugin memory is at most 2 (active version and rollback target; 4 while
// a shadow and a canary candidate run) × InstancesPerVersion × MemoryMiB.
// Defaults 64 and 4.
//
// CircuitOpenPause holds the 503 of a merchant whose circuit is open this
// long, so a caller ignoring Retry-After cannot flood the host with cheap
// refusals; "0s" sends it at once. Default "100ms".
type PluginCalls struct {
	BreakerTimeouts     int      `json:"breaker_timeouts"`
	BreakerCoolDown     Duration `json:"breaker_cool_down"`
	CircuitOpenPause    Duration `json:"circuit_open_pause"`
	KVMaxKeys           int64    `json:"kv_max_keys"`
	KVMaxBytes          int64    `json:"kv_max_bytes"`
	LogBytesPerMinute   int      `json:"log_bytes_per_minute"`
	MemoryMiB           int      `json:"memory_mib"`
	InstancesPerVersion int      `json:"instances_per_version"`
}

// Log configures logging.
type Log struct {
	// Level is debug, info, warn or error. Default "info".
	Level string `json:"level"`
	// Format is json or text. Default "json".
	Format string `json:"format"`
}

// Admin configures the admin and merchant API listener.
type Admin struct {
	// Addr is host:port; "" disables the listener. Default
	// "127.0.0.1:8444" (loopback).
	Addr string `json:"addr"`
	// MaxPluginBytes bounds an uploaded plugin module. Default 32 MiB.
	MaxPluginBytes int `json:"max_plugin_bytes"`
	// MaxPluginVersions bounds the plugin versions stored per merchant.
	// Default 50.
	MaxPluginVersions int `json:"max_plugin_versions"`
	// MaxUploads bounds plugin uploads in progress on the host, one per
	// merchant. Default 2.
	MaxUploads int `json:"max_uploads"`
}

// WebLogin configures the integrator-hosted login page Google redirects
// users to before associateAccount (spec §8), served at {base path}{path}
// on the Google-facing listener.
type WebLogin struct {
	// Path is appended to each merchant's base path. Default
	// "/authenticate".
	Path string `json:"path"`
	// Callbacks allow-lists the gspCallbackUrl prefixes the page may
	// redirect to, per merchant id ("*" for every merchant). The spec's
	// sealed request does not carry the callback, so without an entry
	// every callback is refused. https only. File only.
	Callbacks map[string][]string `json:"callbacks"`
}

// Merchant is one merchant's integration with Google.
type Merchant struct {
	// ID is the merchant's stable identifier. Required, unique.
	ID string `json:"id"`
	// BasePath is the merchant's URL prefix on the listener, e.g.
	// "/acme" ("" for the host root). Unique.
	BasePath string `json:"base_path"`
	// PIAIDs are the payment integrator account ids Google sends for this
	// merchant. At least one; unique across merchants.
	PIAIDs []string `json:"piaids"`
	// Envelope is "pgp" or "jose".
	Envelope string `json:"envelope"`
	// KeysetID names the keyset holding our keys and Google's.
	KeysetID string `json:"keyset_id"`
	// GoogleEndpoint is the https base of Google-hosted methods, e.g.
	// "https://vgw.sandbox.google.com/gsp".
	GoogleEndpoint string `json:"google_endpoint"`
	// AmountRules, by PIAID of this merchant, are the currencies and amount
	// range generateReferenceNumber may ask for; the host refuses the rest
	// with invalidFieldValue (400) without calling the plugin. Applied at
	// start for the PIAIDs named; others keep what the admin API set.
	AmountRules map[string]AmountRules `json:"amount_rules"`
	// KVMaxKeys and KVMaxBytes are this merchant's own plugin KV quota
	// (0: plugin_calls.kv_max_keys / kv_max_bytes). The quotas are set at
	// start when any is given; leaving them all out keeps what the admin
	// API set.
	KVMaxKeys  int64 `json:"kv_max_keys"`
	KVMaxBytes int64 `json:"kv_max_bytes"`
	// LogBytesPerMinute and MaxPluginVersions are this merchant's own
	// plugin log budget and stored-version cap (0:
	// plugin_calls.log_bytes_per_minute / admin.max_plugin_versions).
	LogBytesPerMinute int64 `json:"log_bytes_per_minute"`
	MaxPluginVersions int64 `json:"max_plugin_versions"`
	// MaxPluginBytes and PluginMemoryMiB are this merchant's own upload
	// size limit and instance memory cap (0: admin.max_plugin_bytes /
	// plugin_calls.memory_mib).
	MaxPluginBytes  int64 `json:"max_plugin_bytes"`
	PluginMemoryMiB int64 `json:"plugin_memory_mib"`
}

// AmountRules are what one PIAID takes. The zero value takes anything.
type AmountRules struct {
	// Currencies are the ISO 4217 codes taken; empty takes any.
	Currencies []string `json:"currencies"`
	// MinAmountMicros is the smallest amount taken; 0 means no minimum.
	MinAmountMicros int64 `json:"min_amount_micros"`
	// MaxAmountMicros is the largest amount taken; 0 means no maximum.
	MaxAmountMicros int64 `json:"max_amount_micros"`
}

// Envelope names.
const (
	EnvelopePGP  = "pgp"
	EnvelopeJOSE = "jose"
)

// Default returns the configuration every layer starts from.
func Default() *Config {
	return &Config{
		DataDir: "./data",
		Listen: Listen{
			Addr:               ":8443",
			CertReloadInterval: Duration(5 * time.Second),
			TLS13:              true,
		},
		Limits: Limits{
			BodyLimit:         256 << 10,
			MaxHeaderBytes:    16 << 10,
			ReadHeaderTimeout: Duration(5 * time.Second),
			ReadTimeout:       Duration(15 * time.Second),
			WriteTimeout:      Duration(30 * time.Second),
			IdleTimeout:       Duration(120 * time.Second),
			HandlerTimeout:    Duration(20 * time.Second),
			ShutdownTimeout:   Duration(25 * time.Second),
		},
		Admission:     Admission{MaxQueue: 64, MaxWait: Duration(time.Second)},
		TimestampSkew: Duration(60 * time.Second),
		CommitWindow:  Duration(200 * time.Microsecond),
		PluginCalls: PluginCalls{BreakerTimeouts: 3, BreakerCoolDown: Duration(30 * time.Second), CircuitOpenPause: Duration(100 * time.Millisecond), KVMaxKeys: 100_000, KVMaxBytes: 64 << 20,
			LogBytesPerMinute: 1 << 20, MemoryMiB: 64, InstancesPerVersion: 4},
		Log:      Log{Level: "info", Format: "json"},
		Admin:    Admin{Addr: "127.0.0.1:8444"},
		WebLogin: WebLogin{Path: "/authenticate"},
	}
}

// Sources are the layers Load reads, lowest precedence first after the
// defaults: File, then environment, then Flags.
type Sources struct {
	// File is a JSON config file; "" means none.
	File string
	// LookupEnv reads the environment (os.LookupEnv); nil means none.
	LookupEnv func(string) (string, bool)
	// Flags maps setting keys to values given on the command line.
	Flags map[string]string
}

// Load builds a Config from the defaults and src. It reports syntax errors
// (bad JSON, unknown JSON fields, unparsable values) with the key or file
// that caused them; call Validate for semantic checks.
func Load(src Sources) (*Config, error) {
	c := Default()
	if src.File != "" {
		if err := c.loadFile(src.File); err != nil {
			return nil, err
		}
	}
	if src.LookupEnv != nil {
		for _, s := range Settings() {
			if v, ok := src.LookupEnv(s.Env); ok {
				if err := c.Set(s.Key, v); err != nil {
					return nil, fmt.Errorf("config: environment %s: %w", s.Env, err)
				}
			}
		}
	}
	for k, v := range src.Flags {
		if err := c.Set(k, v); err != nil {
			return nil, fmt.Errorf("config: flag --%s: %w", FlagName(k), err)
		}
	}
	c.resolve()
	return c, nil
}

func (c *Config) loadFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	// Unknown fields are typos in an operator's file: refuse them.
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return fmt.Errorf("config: %s: %w", path, err)
	}
	if dec.More() {
		return fmt.Errorf("config: %s: trailing data after the JSON object", path)
	}
	return nil
}

// Database is where state lives: DBURL when set, else DBPath.
func (c *Config) Database() string {
	if c.DBURL != "" {
		return c.DBURL
	}
	return c.DBPath
}

// resolve fills the paths that default relative to DataDir.
func (c *Config) resolve() {
	if c.DBPath == "" {
		c.DBPath = filepath.Join(c.DataDir, "otpcgate.db")
	}
	if c.KEKFile == "" {
		c.KEKFile = filepath.Join(c.DataDir, "kek.key")
	}
}

// Duration is a time.Duration written as a Go duration string ("60s").
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes d as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a duration string such as "1.5s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New("duration must be a string such as \"30s\"")
	}
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

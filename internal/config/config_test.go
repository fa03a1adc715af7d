package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPrecedence checks defaults < file < environment < flags per key.
func TestPrecedence(t *testing.T) {
	tests := []struct {
		key         string
		env, flag   string // "" = not given
		want        string
		description string
	}{
		{"data_dir", "", "", "/from/file", "file over default"},
		{"data_dir", "/from/env", "", "/from/env", "env over file"},
		{"data_dir", "/from/env", "/from/flag", "/from/flag", "flag over env"},
		{"data_dir", "", "/from/flag", "/from/flag", "flag over file"},
		{"log.format", "", "", "json", "default when nobody sets it"},
		{"log.format", "text", "", "text", "env over default"},
		{"listen.tls13", "", "", "false", "file false over default true"},
		{"listen.tls13", "true", "", "true", "env over file (bool)"},
		{"listen.tls13", "true", "false", "false", "flag over env (bool)"},
		{"limits.body_limit", "2000", "", "2000", "env over file (int64)"},
		{"limits.body_limit", "2000", "3000", "3000", "flag over env (int64)"},
		{"limits.handler_timeout", "", "", "7s", "file duration"},
		{"limits.handler_timeout", "9s", "", "9s", "env duration"},
		{"limits.handler_timeout", "9s", "1m", "1m0s", "flag duration"},
		{"limits.read_timeout", "", "", "15s", "default duration"},
		{"admission.max_queue", "", "", "5", "file int"},
		{"admission.max_queue", "6", "7", "7", "flag int"},
		{"listen.curves", "", "", "X25519", "file list"},
		{"listen.curves", "P256, X25519", "", "P256,X25519", "env list"},
		{"listen.curves", "P256", "P384", "P384", "flag list"},
		{"db_path", "", "", filepath.Join("/from/file", "otpcgate.db"), "derived from data_dir"},
		{"db_path", "/x.db", "", "/x.db", "explicit db_path"},
	}
	for _, tc := range tests {
		t.Run(tc.description+"/"+tc.key, func(t *testing.T) {
			env := map[string]string{}
			if tc.env != "" {
				env[EnvName(tc.key)] = tc.env
			}
			flags := map[string]string{}
			if tc.flag != "" {
				flags[tc.key] = tc.flag
			}
			c, err := Load(Sources{
				File:      "testdata/layers.json",
				LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
				Flags:     flags,
			})
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.Get(tc.key)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("%s = %q, want %q", tc.key, got, tc.want)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		src  Sources
		want string
	}{
		{"unknown JSON field", Sources{File: "testdata/typo.json"}, "adress"},
		{"missing file", Sources{File: "testdata/nope.json"}, "no such file"},
		{"bad env int", Sources{LookupEnv: func(k string) (string, bool) {
			return "many", k == "OTPCGATE_ADMISSION_MAX_QUEUE"
		}}, "OTPCGATE_ADMISSION_MAX_QUEUE"},
		{"bad flag duration", Sources{Flags: map[string]string{"admission.max_wait": "soon"}}, "--admission-max-wait"},
		{"unknown flag key", Sources{Flags: map[string]string{"nope": "1"}}, "unknown setting"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.src)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestSettingsNames(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range Settings() {
		if seen[s.Key] {
			t.Fatalf("duplicate key %s", s.Key)
		}
		seen[s.Key] = true
		if s.Usage == "" {
			t.Errorf("%s has no usage", s.Key)
		}
	}
	want := map[string][2]string{
		"listen.cert_file":        {"OTPCGATE_LISTEN_CERT_FILE", "listen-cert-file"},
		"admission.max_in_flight": {"OTPCGATE_ADMISSION_MAX_IN_FLIGHT", "admission-max-in-flight"},
		"timestamp_skew":          {"OTPCGATE_TIMESTAMP_SKEW", "timestamp-skew"},
	}
	for _, s := range Settings() {
		if w, ok := want[s.Key]; ok && (s.Env != w[0] || s.Flag != w[1]) {
			t.Errorf("%s: env %s flag %s, want %v", s.Key, s.Env, s.Flag, w)
		}
	}
}

// validConfig returns a Config that passes Validate.
func validConfig(t *testing.T) *Config {
	t.Helper()
	dir := t.TempDir()
	c := Default()
	c.Listen.CertFile = filepath.Join(dir, "cert.pem")
	c.Listen.KeyFile = filepath.Join(dir, "key.pem")
	for _, f := range []string{c.Listen.CertFile, c.Listen.KeyFile} {
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c.Merchants = []Merchant{
		{ID: "acme", BasePath: "/acme", PIAIDs: []string{"P1"}, Envelope: "pgp", KeysetID: "ks1", GoogleEndpoint: "https://vgw.sandbox.google.com/gsp"},
		{ID: "shop", BasePath: "/shop", PIAIDs: []string{"P2", "P3"}, Envelope: "jose", KeysetID: "ks2", GoogleEndpoint: "https://vgw.googleapis.com/gsp"},
	}
	c.resolve()
	return c
}

func TestValidate(t *testing.T) {
	if err := validConfig(t).Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	tests := []struct {
		name   string
		mutate func(c *Config)
		key    string
	}{
		{"missing cert file", func(c *Config) { c.Listen.CertFile += ".missing" }, "listen.cert_file"},
		{"empty key file", func(c *Config) { c.Listen.KeyFile = "" }, "listen.key_file"},
		{"bad listen address", func(c *Config) { c.Listen.Addr = "localhost" }, "listen.addr"},
		{"bad port", func(c *Config) { c.Listen.Addr = ":99999" }, "listen.addr"},
		{"unknown curve", func(c *Config) { c.Listen.Curves = []string{"curve448"} }, "listen.curves"},
		{"negative queue", func(c *Config) { c.Admission.MaxQueue = -1 }, "admission.max_queue"},
		{"negative plugin versions", func(c *Config) { c.Admin.MaxPluginVersions = -1 }, "admin.max_plugin_versions"},
		{"negative uploads", func(c *Config) { c.Admin.MaxUploads = -1 }, "admin.max_uploads"},
		{"no plugin log budget", func(c *Config) { c.PluginCalls.LogBytesPerMinute = 0 }, "plugin_calls.log_bytes_per_minute"},
		{"plugin memory below a Go plugin's floor", func(c *Config) { c.PluginCalls.MemoryMiB = 4 }, "plugin_calls.memory_mib"},
		{"no plugin instances", func(c *Config) { c.PluginCalls.InstancesPerVersion = 0 }, "plugin_calls.instances_per_version"},
		{"negative plugin size", func(c *Config) { c.Admin.MaxPluginBytes = -1 }, "admin.max_plugin_bytes"},
		{"negative in-flight", func(c *Config) { c.Admission.MaxInFlight = -2 }, "admission.max_in_flight"},
		{"per-merchant in-flight below -1", func(c *Config) { c.Admission.MaxInFlightPerMerchant = -2 }, "admission.max_in_flight_per_merchant"},
		{"negative per-merchant queue", func(c *Config) { c.Admission.MaxQueuePerMerchant = -1 }, "admission.max_queue_per_merchant"},
		{"negative wait", func(c *Config) { c.Admission.MaxWait = -1 }, "admission.max_wait"},
		{"zero body limit", func(c *Config) { c.Limits.BodyLimit = 0 }, "limits.body_limit"},
		{"zero timeout", func(c *Config) { c.Limits.IdleTimeout = 0 }, "limits.idle_timeout"},
		{"write <= handler", func(c *Config) { c.Limits.WriteTimeout = c.Limits.HandlerTimeout }, "limits.write_timeout"},
		{"skew too large", func(c *Config) { c.TimestampSkew = Duration(time.Hour) }, "timestamp_skew"},
		{"log level", func(c *Config) { c.Log.Level = "verbose" }, "log.level"},
		{"log format", func(c *Config) { c.Log.Format = "xml" }, "log.format"},
		{"admin same as listen", func(c *Config) { c.Admin.Addr = c.Listen.Addr }, "admin.addr"},
		{"duplicate merchant id", func(c *Config) { c.Merchants[1].ID = "acme" }, "merchants[1].id"},
		{"duplicate base path", func(c *Config) { c.Merchants[1].BasePath = "/acme/" }, "merchants[1].base_path"},
		{"bad base path", func(c *Config) { c.Merchants[0].BasePath = "acme" }, "merchants[0].base_path"},
		{"shared PIAID", func(c *Config) { c.Merchants[1].PIAIDs = []string{"P1"} }, "merchants[1].piaids"},
		{"no PIAID", func(c *Config) { c.Merchants[0].PIAIDs = nil }, "merchants[0].piaids"},
		{"bad envelope", func(c *Config) { c.Merchants[0].Envelope = "xml" }, "merchants[0].envelope"},
		{"no keyset", func(c *Config) { c.Merchants[0].KeysetID = "" }, "merchants[0].keyset_id"},
		{"http endpoint", func(c *Config) { c.Merchants[0].GoogleEndpoint = "http://vgw.googleapis.com/gsp" }, "merchants[0].google_endpoint"},
		{"rules for a foreign PIAID", func(c *Config) {
			c.Merchants[0].AmountRules = map[string]AmountRules{"P9": {MinAmountMicros: 1}}
		}, "merchants[0].amount_rules.P9"},
		{"min above max", func(c *Config) {
			c.Merchants[0].AmountRules = map[string]AmountRules{c.Merchants[0].PIAIDs[0]: {MinAmountMicros: 2, MaxAmountMicros: 1}}
		}, "merchants[0].amount_rules." + validConfig(t).Merchants[0].PIAIDs[0]},
		{"bad currency", func(c *Config) {
			c.Merchants[0].AmountRules = map[string]AmountRules{c.Merchants[0].PIAIDs[0]: {Currencies: []string{"yen"}}}
		}, "merchants[0].amount_rules." + validConfig(t).Merchants[0].PIAIDs[0] + ".currencies"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig(t)
			tc.mutate(c)
			err := c.Validate()
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Key != tc.key {
				t.Fatalf("err = %v, want first field %s", err, tc.key)
			}
		})
	}
}

func TestValidateReportsAllProblems(t *testing.T) {
	c := validConfig(t)
	c.Admission.MaxQueue = -1
	c.Log.Level = "loud"
	err := c.Validate()
	for _, k := range []string{"admission.max_queue", "log.level"} {
		if !strings.Contains(err.Error(), k) {
			t.Errorf("error %q does not mention %s", err, k)
		}
	}
}

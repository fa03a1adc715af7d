package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/otpcgate/otpcgate/internal/config"
	"github.com/otpcgate/otpcgate/internal/tlsutil"
)

func testEnv(vars map[string]string) (env, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return env{
		lookup: func(k string) (string, bool) { v, ok := vars[k]; return v, ok },
		stdout: &out, stderr: &errb,
	}, &out, &errb
}

// probe runs the root command with an extra subcommand that captures the
// loaded configuration, with every setting as a flag as serve has them, so
// the real flag plumbing is exercised.
func probe(t *testing.T, vars map[string]string, args ...string) *config.Config {
	t.Helper()
	e, _, _ := testEnv(vars)
	root := newRootCmd(e)
	var got *config.Config
	p := &cobra.Command{Use: "probe", RunE: func(cmd *cobra.Command, _ []string) error {
		c, err := loadConfig(cmd, e)
		got = c
		return err
	}}
	addSettingFlags(p.Flags())
	root.AddCommand(p)
	root.SetArgs(append([]string{"probe"}, args...))
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestConfigPrecedenceCLI(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.json")
	if err := os.WriteFile(file, []byte(`{"log":{"level":"warn","format":"text"},"admission":{"max_queue":3},"listen":{"tls13":false}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		vars map[string]string
		args []string
		key  string
		want string
	}{
		{"default", nil, nil, "log.level", "info"},
		{"file via --config", nil, []string{"--config", file}, "log.level", "warn"},
		{"file via OTPCGATE_CONFIG", map[string]string{"OTPCGATE_CONFIG": file}, nil, "log.level", "warn"},
		{"env over file", map[string]string{"OTPCGATE_LOG_LEVEL": "debug"}, []string{"--config", file}, "log.level", "debug"},
		{"flag over env", map[string]string{"OTPCGATE_LOG_LEVEL": "debug"}, []string{"--config", file, "--log-level", "error"}, "log.level", "error"},
		{"int: flag over env over file", map[string]string{"OTPCGATE_ADMISSION_MAX_QUEUE": "4"}, []string{"--config", file, "--admission-max-queue=5"}, "admission.max_queue", "5"},
		{"int: env over file", map[string]string{"OTPCGATE_ADMISSION_MAX_QUEUE": "4"}, []string{"--config", file}, "admission.max_queue", "4"},
		{"bool flag without value", nil, []string{"--config", file, "--listen-tls13"}, "listen.tls13", "true"},
		{"bool file false", nil, []string{"--config", file}, "listen.tls13", "false"},
		{"unset flag keeps env", map[string]string{"OTPCGATE_LOG_FORMAT": "json"}, []string{"--config", file}, "log.format", "json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := probe(t, tc.vars, tc.args...)
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

func devCert(t *testing.T) (cert, key string) {
	t.Helper()
	dir := t.TempDir()
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := tlsutil.WriteSelfSigned(cert, key, tlsutil.DevHosts(), time.Hour); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func TestExampleConfigIsValid(t *testing.T) {
	cert, key := devCert(t)
	c := probe(t, nil, "--config", "testdata/config.example.json", "--listen-cert-file", cert, "--listen-key-file", key)
	if err := c.Validate(); err != nil {
		t.Fatalf("example config: %v", err)
	}
	if len(c.Merchants) != 2 || c.Merchants[0].BasePath != "/acme/sandbox" {
		t.Fatalf("merchants = %+v", c.Merchants)
	}
}

func TestServe(t *testing.T) {
	cert, key := devCert(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing cert file", []string{"serve", "--listen-cert-file", cert + ".missing", "--listen-key-file", key}, "listen.cert_file"},
		{"negative queue", []string{"serve", "--listen-cert-file", cert, "--listen-key-file", key, "--admission-max-queue=-1"}, "admission.max_queue"},
		{"bad listen address", []string{"serve", "--listen-cert-file", cert, "--listen-key-file", key, "--listen-addr", "nowhere"}, "listen.addr"},
		{"bad flag value", []string{"serve", "--admission-max-wait", "soon"}, "--admission-max-wait"},
		{"no key-encryption key", []string{"serve", "--listen-cert-file", cert, "--listen-key-file", key, "--listen-addr", "127.0.0.1:0"}, "kek_file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, _, errb := testEnv(nil)
			if code := execute(context.Background(), tc.args, e); code != 1 {
				t.Fatalf("exit code %d, want 1", code)
			}
			if !strings.Contains(errb.String(), tc.want) {
				t.Fatalf("stderr %q does not mention %q", errb.String(), tc.want)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	e, out, _ := testEnv(nil)
	if code := execute(context.Background(), []string{"version"}, e); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if !strings.HasPrefix(out.String(), "otpcgate dev") {
		t.Fatalf("version output %q", out.String())
	}
}

func TestDevCert(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	args := []string{"dev-cert", "--cert", cert, "--key", key, "--host", "localhost,10.1.2.3"}
	e, _, _ := testEnv(nil)
	if code := execute(context.Background(), args, e); code != 0 {
		t.Fatalf("exit %d", code)
	}
	st, err := os.Stat(key)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := pair.Leaf.VerifyHostname("10.1.2.3"); err != nil {
		t.Fatal(err)
	}
	e, _, errb := testEnv(nil)
	if code := execute(context.Background(), args, e); code != 1 || !strings.Contains(errb.String(), "--force") {
		t.Fatalf("second run without --force: exit %d, %q", code, errb.String())
	}
}

// TestUnknownSubcommands: every command group (keys, plugins, sim, ...)
// refuses a subcommand it does not have with a non-zero exit and a hint,
// and prints its help, exiting 0, when called alone.
func TestUnknownSubcommands(t *testing.T) {
	e0, _, _ := testEnv(nil)
	var groups [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		for _, sub := range c.Commands() {
			if sub.HasSubCommands() {
				p := append(slices.Clone(path), sub.Name())
				groups = append(groups, p)
				walk(sub, p)
			}
		}
	}
	walk(newRootCmd(e0), nil)
	if len(groups) < 6 {
		t.Fatalf("found only %d command groups: %v", len(groups), groups)
	}
	for _, g := range groups {
		e, _, stderr := testEnv(nil)
		if code := execute(context.Background(), append(slices.Clone(g), "no-such-command"), e); code == 0 ||
			!strings.Contains(stderr.String(), `unknown command "no-such-command"`) {
			t.Errorf("%v no-such-command: exit %d, stderr %q", g, code, stderr)
		}
		e, out, _ := testEnv(nil)
		if code := execute(context.Background(), g, e); code != 0 || !strings.Contains(out.String(), "Usage:") {
			t.Errorf("%v alone: exit %d, output %q", g, code, out)
		}
	}
}

// TestSettingFlagsScoped: the server's settings are flags of serve and
// dev only; other commands take the few they use and refuse the rest.
func TestSettingFlagsScoped(t *testing.T) {
	for _, tc := range []struct {
		args []string
		ok   bool
	}{
		{[]string{"keys", "list", "--listen-addr", ":1"}, false},
		{[]string{"plugins", "list", "--kek-file", "k"}, false},
		{[]string{"merchants", "list", "--limits-body-limit", "1"}, false},
		{[]string{"sim", "smoke", "--db-path", "x"}, false},
		{[]string{"db", "migrate", "--listen-tls13"}, false},
		{[]string{"tokens", "bootstrap", "--timestamp-skew", "1s"}, false},
	} {
		e, _, stderr := testEnv(nil)
		code := execute(context.Background(), tc.args, e)
		if code == 0 || !strings.Contains(stderr.String(), "unknown flag") {
			t.Errorf("%v: exit %d, stderr %q; want an unknown flag", tc.args, code, stderr)
		}
	}
	root := newRootCmd(env{})
	for _, path := range [][]string{{"serve"}, {"dev"}} {
		c, _, err := root.Find(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range config.Settings() {
			if c.Flags().Lookup(s.Flag) == nil {
				t.Errorf("%v lacks --%s", path, s.Flag)
			}
		}
	}
	for _, path := range [][]string{{"keys", "list"}, {"tokens", "bootstrap"}, {"db", "migrate"}, {"sim", "run"}} {
		c, _, err := root.Find(path)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string][]string{"keys": {"admin-addr"}, "tokens": {"admin-addr", "data-dir", "db-path", "db-url"},
			"db": {"data-dir", "db-path"}, "sim": {"admin-addr"}}[path[0]]
		for _, f := range want {
			if c.Flags().Lookup(f) == nil && c.InheritedFlags().Lookup(f) == nil {
				t.Errorf("%v lacks --%s", path, f)
			}
		}
	}
}

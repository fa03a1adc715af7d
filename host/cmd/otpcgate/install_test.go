package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/internal/db"
	"github.com/otpcgate/otpcgate/internal/pgtest"
	"github.com/otpcgate/otpcgate/internal/testenv"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// operationsDoc is the operator's guide whose first install is a script.
const operationsDoc = "../../../docs/operations.md"

// docBlock is one shell block of a document marked for the install test.
type docBlock struct {
	line       int // of the opening fence
	background bool
	text       string
}

// installBlocks returns the blocks marked `<!-- install-test -->` (or
// `<!-- install-test background -->`), dedented to their fence.
func installBlocks(doc []byte) ([]docBlock, error) {
	var blocks []docBlock
	sc := bufio.NewScanner(bytes.NewReader(doc))
	n := 0
	next := func() (string, bool) {
		if !sc.Scan() {
			return "", false
		}
		n++
		return sc.Text(), true
	}
	for {
		line, ok := next()
		if !ok {
			break
		}
		marker := strings.TrimSpace(line)
		if !strings.HasPrefix(marker, "<!-- install-test") {
			continue
		}
		kind := strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(marker, "<!-- install-test"), "-->"))
		if kind != "" && kind != "background" {
			return nil, fmt.Errorf("line %d: unknown marker %q", n, marker)
		}
		fence, ok := next()
		for ok && strings.TrimSpace(fence) == "" {
			fence, ok = next()
		}
		if !ok || strings.TrimSpace(fence) != "```sh" {
			return nil, fmt.Errorf("line %d: marker not followed by a ```sh block", n)
		}
		indent := fence[:strings.Index(fence, "`")]
		b := docBlock{line: n, background: kind == "background"}
		var body []string
		for {
			l, ok := next()
			if !ok {
				return nil, fmt.Errorf("line %d: block never closed", b.line)
			}
			if strings.TrimSpace(l) == "```" {
				break
			}
			body = append(body, strings.TrimPrefix(l, indent))
		}
		b.text = strings.Join(body, "\n") + "\n"
		if b.background && (len(body) != 1 || strings.ContainsAny(body[0], "&;|\\")) {
			return nil, fmt.Errorf("line %d: a background block must be one simple command", b.line)
		}
		blocks = append(blocks, b)
	}
	if len(blocks) == 0 {
		return nil, fmt.Errorf("no install-test blocks")
	}
	return blocks, nil
}

// TestInstallBlocks checks the block extraction itself on a small document.
func TestInstallBlocks(t *testing.T) {
	doc := "# t\n\n1. step\n\n   <!-- install-test -->\n   ```sh\n   echo one\n     indented\n   ```\n\n" +
		"```sh\nnot marked\n```\n<!-- install-test background -->\n```sh\nserve it\n```\n"
	got, err := installBlocks([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := []docBlock{{line: 6, text: "echo one\n  indented\n"}, {line: 15, background: true, text: "serve it\n"}}
	if !slices.Equal(got, want) {
		t.Fatalf("blocks = %+v, want %+v", got, want)
	}
	for _, bad := range []string{
		"<!-- install-test -->\ntext\n",
		"<!-- install-test -->\n```sh\nnever closed\n",
		"<!-- install-test later -->\n```sh\nx\n```\n",
		"<!-- install-test background -->\n```sh\na &\n```\n",
		"no blocks at all\n",
	} {
		if _, err := installBlocks([]byte(bad)); err == nil {
			t.Errorf("installBlocks(%q) = nil error", bad)
		}
	}
}

// TestOperationsInstall follows docs/operations.md's first install word
// for word: build and install the binary, KEK, certificate, config,
// operator token, serve, a merchant with keys, an echo through `sim echo`
// with a stand-in Google key, a plugin upload. Only the system paths and
// ports are moved into a temporary directory. Then a start with a broken
// merchant in the config must fail and leave the database unchanged.
func TestOperationsInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and a plugin, runs serve")
	}
	for _, tool := range []string{"bash", "gpg", "curl", "git", "sha256sum", "awk"} {
		testenv.LookPath(t, tool, "the operator install script uses it")
	}
	doc, err := os.ReadFile(operationsDoc)
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := installBlocks(doc)
	if err != nil {
		t.Fatalf("%s: %v", operationsDoc, err)
	}

	root := t.TempDir()
	src := filepath.Join(root, "src")
	copyCheckout(t, "../../..", src)
	googleAddr, adminAddr := freeAddr(t), freeAddr(t)
	_, googlePort, _ := net.SplitHostPort(googleAddr)
	// Each replacement must be used: a document that no longer names the
	// path would otherwise send the script to the real one.
	replacements := []struct{ old, new string }{
		{"/usr/local/bin", filepath.Join(root, "bin")},
		{"/etc/otpcgate", filepath.Join(root, "etc")},
		{"/var/lib/otpcgate", filepath.Join(root, "var")},
		{`":8443"`, `"` + googleAddr + `"`},
		{"localhost:8443", "localhost:" + googlePort},
		{"127.0.0.1:8444", adminAddr},
	}
	var script strings.Builder
	script.WriteString("set -euo pipefail\n" +
		"trap 'if [ -n \"${serve_pid:-}\" ]; then kill -TERM \"$serve_pid\" 2>/dev/null || true; " +
		"rc=0; wait \"$serve_pid\" || rc=$?; echo $rc > " + filepath.Join(root, "serve.rc") + "; fi' EXIT\n")
	for _, b := range blocks {
		fmt.Fprintf(&script, "echo '+ %s:%d' >&2\n", filepath.Base(operationsDoc), b.line)
		if b.background {
			fmt.Fprintf(&script, "%s >%s 2>&1 &\nserve_pid=$!\n", strings.TrimSpace(b.text), filepath.Join(root, "serve.log"))
			continue
		}
		script.WriteString(b.text)
	}
	text := script.String()
	for _, r := range replacements {
		if !strings.Contains(text, r.old) {
			t.Fatalf("%s no longer mentions %q: update the test's replacements", operationsDoc, r.old)
		}
		text = strings.ReplaceAll(text, r.old, r.new)
	}
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", text)
	cmd.Dir = src
	cmd.Env = installEnv(filepath.Join(root, "bin"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	serveLog, _ := os.ReadFile(filepath.Join(root, "serve.log"))
	if err != nil {
		t.Fatalf("the documented install failed: %v\n%s\n--- serve log:\n%s", err, out.String(), serveLog)
	}
	t.Logf("install script output:\n%s", out.String())
	for _, want := range []string{"echo https://localhost:" + googlePort + "/acme PASS", "2026-12-04.1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("script output lacks %q", want)
		}
	}
	if rc, _ := os.ReadFile(filepath.Join(root, "serve.rc")); strings.TrimSpace(string(rc)) != "0" {
		t.Errorf("serve exited %q after SIGTERM, want 0\n%s", rc, serveLog)
	}
	for path, want := range map[string]os.FileMode{
		filepath.Join(root, "var"):                   0o700 | os.ModeDir,
		filepath.Join(root, "var", "otpcgate.db"):    0o600,
		filepath.Join(root, "etc", "kek.key"):        0o600,
		filepath.Join(root, "etc", "operator.token"): 0o600,
		filepath.Join(root, "etc", "tls", "key.pem"): 0o600,
	} {
		if fi, err := os.Stat(path); err != nil {
			t.Error(err)
		} else if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode(), want)
		}
	}

	t.Run("broken merchant leaves the database unchanged", func(t *testing.T) {
		configPath := filepath.Join(root, "etc", "config.json")
		dbPath := filepath.Join(root, "var", "otpcgate.db")
		var cfg map[string]any
		raw, err := os.ReadFile(configPath)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &cfg); err != nil {
			t.Fatal(err)
		}
		before := dumpDB(t, dbPath)
		acmeKeyset := queryOne(t, dbPath, `SELECT keyset_id FROM integrations WHERE merchant_id = 'acme'`)
		for name, merchants := range map[string][]any{
			"missing keyset": {map[string]any{"id": "beta", "base_path": "/beta", "piaids": []string{"BETA_PIAID"},
				"envelope": "pgp", "keyset_id": "no-such-keyset", "google_endpoint": "https://vgw.sandbox.google.com/gsp"}},
			"PIAID of another merchant": {map[string]any{"id": "beta", "base_path": "/beta", "piaids": []string{"ACME_PIAID"},
				"envelope": "pgp", "keyset_id": acmeKeyset, "google_endpoint": "https://vgw.sandbox.google.com/gsp"}},
		} {
			cfg["merchants"] = merchants
			b, _ := json.Marshal(cfg)
			broken := filepath.Join(root, "etc", "broken.json")
			if err := os.WriteFile(broken, b, 0o600); err != nil {
				t.Fatal(err)
			}
			sctx, scancel := context.WithTimeout(ctx, time.Minute)
			serve := exec.CommandContext(sctx, filepath.Join(root, "bin", "otpcgate"), "serve", "--config", broken)
			serve.Env = installEnv(filepath.Join(root, "bin"))
			got, err := serve.CombinedOutput()
			timedOut := sctx.Err() != nil
			scancel()
			if err == nil || timedOut {
				t.Fatalf("%s: serve did not refuse to start (err %v)\n%s", name, err, got)
			}
			if !strings.Contains(string(got), "beta") {
				t.Errorf("%s: the refusal does not name the merchant:\n%s", name, got)
			}
			if after := dumpDB(t, dbPath); !slices.Equal(before, after) {
				t.Errorf("%s: the failed start changed the database:\nbefore %d rows, after %d", name, len(before), len(after))
			}
		}
	})
	t.Run("moved to PostgreSQL", func(t *testing.T) { movedToPostgres(t, ctx, root, adminAddr) })
}

// movedToPostgres continues the documented install (stopped, on SQLite)
// as an operator who outgrows one host would (operations.md, "Several
// hosts on PostgreSQL"): otpcgate db migrate into an empty database, serve
// on it with db_url, find the merchant and its plugin there; a second
// migrate is refused and changes nothing.
func movedToPostgres(t *testing.T, ctx context.Context, root, adminAddr string) {
	url := pgtest.NewDatabase(t)
	bin := filepath.Join(root, "bin", "otpcgate")
	configPath := filepath.Join(root, "etc", "config.json")
	token, err := os.ReadFile(filepath.Join(root, "etc", "operator.token"))
	if err != nil {
		t.Fatal(err)
	}
	env := append(installEnv(filepath.Join(root, "bin")), "OTPCGATE_ADMIN_TOKEN="+strings.TrimSpace(string(token)))
	run := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run("db", "migrate", "--config", configPath, "--to", url)
	if err != nil {
		t.Fatalf("db migrate: %v\n%s", err, out)
	}
	t.Logf("db migrate:\n%s", out)
	for _, want := range []string{"plugin_versions", "keystore_keys", "audit", "counts and digests match"} {
		if !strings.Contains(out, want) {
			t.Errorf("db migrate output lacks %q", want)
		}
	}
	sctx, scancel := context.WithCancel(ctx)
	defer scancel()
	serve := exec.CommandContext(sctx, bin, "serve", "--config", configPath, "--db-url", url)
	serve.Env = env
	var serveLog testenv.Buffer
	serve.Stdout, serve.Stderr = &serveLog, &serveLog
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	healthy := false
	for range 200 {
		if out, err := run("merchants", "list", "--config", configPath); err == nil && strings.Contains(out, "acme") {
			healthy = true
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !healthy {
		serve.Process.Kill()
		serve.Wait()
		t.Fatalf("serve on PostgreSQL never listed the merchant:\n%s", serveLog.String())
	}
	if out, err := run("plugins", "list", "--merchant", "acme", "--config", configPath); err != nil || !strings.Contains(out, "2026-12-04.1") {
		t.Errorf("plugins list on PostgreSQL: %v\n%s", err, out)
	}
	if out, err := run("db", "migrate", "--config", configPath, "--to", url); err == nil || !strings.Contains(out, "not empty") {
		t.Errorf("a second db migrate was not refused: %v\n%s", err, out)
	}
	serve.Process.Signal(syscall.SIGTERM)
	if err := serve.Wait(); err != nil {
		t.Errorf("serve on PostgreSQL exited with %v after SIGTERM:\n%s", err, serveLog.String())
	}
	if !strings.Contains(serveLog.String(), "postgres") {
		t.Errorf("serve's log does not say it runs on PostgreSQL:\n%s", serveLog.String())
	}
}

// installEnv is the script's environment: this process's, without any
// otpcgate setting, with the install's bin directory first on PATH.
func installEnv(bin string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "OTPCGATE_") || strings.HasPrefix(kv, "GNUPGHOME=") {
			continue
		}
		if strings.HasPrefix(kv, "PATH=") {
			kv = "PATH=" + bin + string(os.PathListSeparator) + strings.TrimPrefix(kv, "PATH=")
		}
		env = append(env, kv)
	}
	return env
}

// copyCheckout copies the repository's files as a checkout has them
// (tracked, or new and not ignored) from repo to dst.
func copyCheckout(t *testing.T, repo, dst string) {
	t.Helper()
	out, err := exec.Command("git", "-C", repo, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	for _, name := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		from := filepath.Join(repo, name)
		fi, err := os.Lstat(from)
		if err != nil || !fi.Mode().IsRegular() {
			continue // deleted in the work tree, or not a plain file
		}
		data, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		to := filepath.Join(dst, name)
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, data, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
}

// dumpDB returns every row of every table of the SQLite file at path, as
// sorted text lines, so two states of a database can be compared.
func dumpDB(t *testing.T, path string) []string {
	t.Helper()
	d, err := db.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	tables, err := queryStrings(d, `SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, table := range tables {
		rows, err := d.Query(`SELECT * FROM "` + table + `"`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			lines = append(lines, fmt.Sprintf("%s %q", table, vals))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	if len(lines) == 0 {
		t.Fatal("empty database")
	}
	slices.Sort(lines)
	return lines
}

// queryOne returns the one string q selects from the SQLite file at path.
func queryOne(t *testing.T, path, q string) string {
	t.Helper()
	d, err := db.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	got, err := queryStrings(d, q)
	if err != nil || len(got) != 1 {
		t.Fatalf("%s: %q, %v", q, got, err)
	}
	return got[0]
}

func queryStrings(d *sql.DB, q string) ([]string, error) {
	rows, err := d.Query(q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// Package pgtest runs the tests of a storage component against a real,
// throwaway PostgreSQL server: initdb on a temporary directory, postgres on
// a loopback port, one fresh database per test. No mocks: the server is
// Debian's postgresql package (scripts/setup installs it).
//
// A package runs its whole test suite on both engines with two pieces:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//	func TestPostgres(t *testing.T) { pgtest.RunOnPostgres(t) }
//
// and opens its databases with Target, which names a SQLite file normally
// and a fresh PostgreSQL database when the suite runs again under
// RunOnPostgres.
package pgtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/otpcgate/otpcgate/internal/testenv"
)

// EngineEnv selects the engine Target hands out: "postgres" or empty
// (SQLite). RunOnPostgres sets it for the re-run suite.
const EngineEnv = "OTPCGATE_TEST_ENGINE"

// OnPostgres reports whether this test binary runs the suite on
// PostgreSQL.
func OnPostgres() bool { return os.Getenv(EngineEnv) == "postgres" }

// Target returns where a test's database lives: sqlitePath, or on
// PostgreSQL the URL of a new, empty database of the shared server.
func Target(t testing.TB, sqlitePath string) string {
	t.Helper()
	if !OnPostgres() {
		return sqlitePath
	}
	return NewDatabase(t)
}

// SkipOnPostgres skips a test that checks something only SQLite has (its
// files, fsyncs, crash recovery of the file).
func SkipOnPostgres(t testing.TB, why string) {
	t.Helper()
	if OnPostgres() {
		t.Skip("SQLite only: " + why)
	}
}

// RunOnPostgres runs this package's tests again, in a child test binary,
// with EngineEnv=postgres, and fails with the child's output if any fails.
// In the child it does nothing.
func RunOnPostgres(t *testing.T) {
	if OnPostgres() {
		t.Skip("this is the PostgreSQL run")
	}
	if testing.Short() {
		t.Skip("-short: the PostgreSQL run of the suite is skipped")
	}
	if _, err := binDir(); err != nil {
		testenv.SkipOrFail(t, "PostgreSQL server binaries not found ("+err.Error()+"); scripts/setup installs Debian's postgresql")
	}
	args := []string{"-test.count=1", "-test.skip=^TestPostgres$", "-test.timeout=20m"}
	if testing.Verbose() {
		args = append(args, "-test.v")
	}
	// -run TestPostgres means the whole suite on PostgreSQL; any other
	// filter selects the same tests in the child.
	if f := flagValue("test.run"); f != "" && !strings.Contains(f, "TestPostgres") {
		args = append(args, "-test.run="+f)
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), EngineEnv+"=postgres")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the suite on PostgreSQL failed (%v, %s):\n%s", err, time.Since(start).Round(time.Millisecond), out)
	}
	t.Logf("the suite passed on PostgreSQL in %s", time.Since(start).Round(time.Millisecond))
	if testing.Verbose() {
		t.Logf("%s", out)
	}
}

func flagValue(name string) string {
	for _, a := range os.Args[1:] {
		if v, ok := strings.CutPrefix(a, "-"+name+"="); ok {
			return v
		}
	}
	return ""
}

// Main runs the package's tests (m is a *testing.M, or a wrapper that
// cleans up after it) and stops the shared server, if one was started,
// before the binary exits.
func Main(m interface{ Run() int }) {
	code := m.Run()
	shared.stop()
	os.Exit(code)
}

// NewDatabase creates an empty database on the shared server (started on
// first use) and returns its URL.
func NewDatabase(t testing.TB) string {
	t.Helper()
	s, err := shared.get()
	if err != nil {
		testenv.SkipOrFail(t, "PostgreSQL: "+err.Error())
	}
	name := fmt.Sprintf("t%d_%d", os.Getpid(), s.seq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.url("postgres"))
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	return s.url(name)
}

// Server is one running throwaway PostgreSQL cluster.
type Server struct {
	dir  string
	port int
	cmd  *exec.Cmd
	seq  atomic.Int64
	done chan struct{}
}

func (s *Server) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// URL returns the URL of database db on s.
func (s *Server) URL(db string) string { return s.url(db) }

type sharedServer struct {
	mu  sync.Mutex
	s   *Server
	err error
}

var shared sharedServer

func (h *sharedServer) get() (*Server, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.s == nil && h.err == nil {
		h.s, h.err = Start()
	}
	return h.s, h.err
}

func (h *sharedServer) stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.s != nil {
		h.s.Stop()
		h.s = nil
	}
}

// binDir finds the PostgreSQL server programs: Debian keeps them in
// /usr/lib/postgresql/<major>/bin, outside PATH.
func binDir() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "postgres")); err == nil {
			return dir, nil
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(matches) == 0 {
		return "", fmt.Errorf("no postgres in /usr/lib/postgresql/*/bin or beside pg_ctl on PATH")
	}
	return filepath.Dir(matches[len(matches)-1]), nil
}

// Start initialises a cluster in a new temporary directory and starts it
// on a free loopback port. PostgreSQL refuses to run as root, so under
// root it runs as the postgres user the Debian package creates. The
// server dies with the test binary (parent-death signal).
func Start() (*Server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "otpcgate-pg-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, done: make(chan struct{})}
	cred, err := runAs(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	// fsync off: a throwaway cluster never outlives a crash, and the
	// ledger's commit-heavy tests run several times faster on 2 cores.
	// Everything else is the server's default behaviour.
	s.cmd = exec.Command(filepath.Join(bin, "postgres"), "-D", data,
		"-c", "listen_addresses=127.0.0.1", "-c", "port="+strconv.Itoa(s.port),
		"-c", "unix_socket_directories=", "-c", "fsync=off", "-c", "max_connections=200",
		"-c", "full_page_writes=off")
	log, err := os.Create(filepath.Join(dir, "postgres.log"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	os.Chown(log.Name(), int(cred.Uid), int(cred.Gid))
	s.cmd.Stdout, s.cmd.Stderr = log, log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT}
	// The parent-death signal follows the thread that started the child;
	// keep it for the server's lifetime on this locked thread.
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := s.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		s.cmd.Wait()
		log.Close()
		close(s.done)
	}()
	if err := <-started; err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, s.url("postgres"))
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return s, nil
		}
		select {
		case <-s.done:
			b, _ := os.ReadFile(filepath.Join(dir, "postgres.log"))
			os.RemoveAll(dir)
			return nil, fmt.Errorf("postgres exited during start: %s", b)
		default:
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("postgres did not accept connections within 60s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop shuts the server down (fast shutdown) and removes its directory.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-s.done:
		case <-time.After(30 * time.Second):
			s.cmd.Process.Kill()
			<-s.done
		}
	}
	os.RemoveAll(s.dir)
}

// runAs returns the credential the server runs under: the current user,
// or postgres when that is root; dir is handed to that user.
func runAs(dir string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return &syscall.Credential{Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid()), NoSetGroups: true}, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root and there is no postgres user to run the server as: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

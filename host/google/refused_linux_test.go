package google_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/otpcgate/otpcgate/host/ledger"
	"github.com/otpcgate/otpcgate/host/sim/googlesim"
	"golang.org/x/sys/unix"
)

// holdPort binds a loopback TCP socket without listening on it: connecting
// is refused, and no other process can take the port. SO_REUSEPORT lets the
// test's real listener join the port later without ever releasing it.
func holdPort(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return "127.0.0.1:" + strconv.Itoa(sa.(*syscall.SockaddrInet4).Port)
}

// TestWorkerConnectionRefused: nothing listens at Google's address for a
// while (connection refused), then Google starts there.
func TestWorkerConnectionRefused(t *testing.T) {
	ins := integrations(t)
	in := ins[0]
	addr := holdPort(t)
	g := googlesim.New(googlesim.Config{})
	g.AddAccount(in.account())
	mux := http.NewServeMux()
	mux.Handle("/gsp/", g)
	l := openLedger(t, filepath.Join(t.TempDir(), "ledger.db"), 0)
	// httptest servers share one test certificate: trust it now, before
	// Google's server exists.
	probe := httptest.NewTLSServer(http.NotFoundHandler())
	c := newClient(t, probe, nil)
	probe.Close()
	w, _ := startWorker(t, l, c, resolver("https://"+addr+"/gsp", ins...), nil)
	id := enqueue(t, l, paid(in, "refused-1", "txn-refused"))
	w.Notify()
	waitItem(t, l, id, "refused attempts", func(it ledger.OutboxItem) bool {
		return it.Attempts >= 2 && strings.Contains(it.LastError, "refused")
	})
	// Google comes up on the address the worker keeps trying. The port
	// was never released, so nothing else can have taken it meanwhile.
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, unix.SO_REUSEPORT, 1) }); err != nil {
			return err
		}
		return serr
	}}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(mux)
	srv.Listener.Close()
	srv.Listener = ln
	srv.StartTLS()
	t.Cleanup(srv.Close)
	it := waitItem(t, l, id, "delivered", delivered)
	if n := len(callsFor(g, "refused-1")); n != 1 {
		t.Fatalf("processed %d times", n)
	}
	t.Logf("delivered at attempt %d after connection refused", it.Attempts)
}

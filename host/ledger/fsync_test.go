package ledger

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/internal/testenv"
)

const fsyncEnv = "LEDGER_FSYNC_CHILD_DB"

const (
	fsyncMark = "otpc-fsync-mark"
	fsyncAck  = "otpc-fsync-ack-"
	fsyncN    = 5
)

// fsyncChild commits fsyncN codes one after another and writes an ack line
// to stdout after each Apply returns, i.e. once the ledger reported it
// durable.
func fsyncChild(path string) error {
	ctx := context.Background()
	l, err := Open(ctx, path, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	defer l.Close()
	if err := l.Apply(ctx, func(tx *Tx) error {
		if err := tx.CreateMerchant(Merchant{ID: testMerchant, Name: "Test Store"}); err != nil {
			return err
		}
		return tx.AddPIAID(testPIAID, testMerchant)
	}); err != nil {
		return err
	}
	os.Stdout.WriteString(fsyncMark + "\n")
	for i := range fsyncN {
		if err := l.Apply(ctx, func(tx *Tx) error { return tx.CreateCode(newCode(fmt.Sprintf("fs-%d", i))) }); err != nil {
			return err
		}
		os.Stdout.WriteString(fsyncAck + strconv.Itoa(i) + "\n")
	}
	return nil
}

var (
	straceOpen   = regexp.MustCompile(`^(\d+) +open(?:at)?\((?:[^,]+, )?"([^"]*)"`)
	straceRet    = regexp.MustCompile(`= (-?\d+)`)
	straceResume = regexp.MustCompile(`^(\d+) +<\.\.\. (\w+) resumed>`)
	straceSync   = regexp.MustCompile(`^(\d+) +(fsync|fdatasync)\((\d+)`)
	straceClose  = regexp.MustCompile(`^(\d+) +close\((\d+)\) = 0`)
	straceWrite  = regexp.MustCompile(`^\d+ +write\(1, "([^"]*)`)
)

// TestCommitAckFollowsWALSync: no commit is acknowledged before the WAL
// holding it was fsynced. A child process commits under strace; between
// one acknowledgement (a write to stdout after Apply returned) and the
// next, the trace must show a completed fsync or fdatasync of the
// database's -wal file. This is what survives a power cut, and what a
// SIGKILL test cannot see: with synchronous=OFF or NORMAL in WAL mode
// SQLite skips that sync at COMMIT and the data sits in the page cache.
// It observes the real system calls; it does not simulate the power cut.
func TestCommitAckFollowsWALSync(t *testing.T) {
	if path := os.Getenv(fsyncEnv); path != "" {
		if err := fsyncChild(path); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	strace, err := exec.LookPath("strace")
	if err != nil {
		testenv.SkipOrFail(t, "strace not installed: cannot observe fsync; run ./scripts/setup")
	}
	if out, err := exec.Command(strace, "-qq", "-e", "trace=none", "true").CombinedOutput(); err != nil {
		testenv.SkipOrFail(t, fmt.Sprintf("strace cannot trace here (ptrace not permitted?): %v %s", err, out))
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	db := filepath.Join(dir, "ledger.db")
	trace := filepath.Join(dir, "trace")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, strace, "-f", "-qq", "-s", "96", "-o", trace,
		"-e", "trace=open,openat,close,fsync,fdatasync,write",
		exe, "-test.run=^TestCommitAckFollowsWALSync$", "-test.count=1")
	cmd.Env = append(os.Environ(), fsyncEnv+"="+db)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("child: %v\nstderr: %s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), fsyncAck+strconv.Itoa(fsyncN-1)) {
		t.Fatalf("child did not finish: %s", stdout.String())
	}

	f, err := os.Open(trace)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	wal := db + "-wal"
	walFDs := map[string]bool{}        // open fds of the WAL (one process: its threads share fds)
	pendingOpen := map[string]bool{}   // pid → an open of the WAL is unfinished
	pendingSync := map[string]string{} // pid → fd of an unfinished sync
	marked, synced, acks, syncs := false, false, 0, 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := straceOpen.FindStringSubmatch(line); m != nil && m[2] == wal {
			if strings.HasSuffix(line, "<unfinished ...>") {
				pendingOpen[m[1]] = true
			} else if r := straceRet.FindStringSubmatch(line); r != nil && r[1] != "-1" {
				walFDs[r[1]] = true
			}
			continue
		}
		if m := straceResume.FindStringSubmatch(line); m != nil {
			pid, call := m[1], m[2]
			r := straceRet.FindStringSubmatch(line)
			switch {
			case (call == "openat" || call == "open") && pendingOpen[pid]:
				delete(pendingOpen, pid)
				if r != nil && r[1] != "-1" {
					walFDs[r[1]] = true
				}
			case (call == "fsync" || call == "fdatasync") && pendingSync[pid] != "":
				if r != nil && r[1] == "0" && walFDs[pendingSync[pid]] {
					synced = true
					syncs++
				}
				delete(pendingSync, pid)
			}
			continue
		}
		if m := straceSync.FindStringSubmatch(line); m != nil {
			if strings.HasSuffix(line, "<unfinished ...>") {
				pendingSync[m[1]] = m[3]
			} else if r := straceRet.FindStringSubmatch(line); r != nil && r[1] == "0" && walFDs[m[3]] {
				synced = true
				syncs++
			}
			continue
		}
		if m := straceClose.FindStringSubmatch(line); m != nil {
			delete(walFDs, m[2])
			continue
		}
		if m := straceWrite.FindStringSubmatch(line); m != nil {
			switch msg := strings.TrimSuffix(m[1], `\n`); {
			case msg == fsyncMark:
				marked, synced = true, false
			case strings.HasPrefix(msg, fsyncAck) && marked:
				if !synced {
					t.Errorf("%s acknowledged without a completed fsync of %s since the previous acknowledgement", msg, filepath.Base(wal))
				}
				synced = false
				acks++
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if !marked || acks != fsyncN {
		t.Fatalf("trace shows mark=%v and %d of %d acknowledgements: the trace was not understood", marked, acks, fsyncN)
	}
	t.Logf("%d acknowledged commits, %d completed WAL syncs", acks, syncs)
}

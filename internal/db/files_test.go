package db

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestFileModes: a new database is created in a new 0700 directory with its
// file, WAL and shared-memory files 0600 whatever the umask allows; an
// existing world-readable file is narrowed to 0600 on open.
func TestFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "nested")
	path := filepath.Join(dir, "otpcgate.db")
	d, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Exec(`CREATE TABLE t (x)`); err != nil { // makes SQLite write the WAL
		t.Fatal(err)
	}
	want := map[string]os.FileMode{dir: 0o700, path: 0o600, path + "-wal": 0o600, path + "-shm": 0o600}
	for p, mode := range want {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != mode {
			t.Errorf("%s: mode %04o, want %04o", filepath.Base(p), st.Mode().Perm(), mode)
		}
	}
	d.Close()

	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	d, err = Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("reopened 0644 file: %v %v, want 0600", st.Mode().Perm(), err)
	}
}

package keystore

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKEKFileAndEnv(t *testing.T) {
	dir := t.TempDir()
	k, err := GenerateKEK()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "kek")
	if err := WriteKEKFile(path, k); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("KEK file mode %v, want 0600", st.Mode().Perm())
	}
	if err := WriteKEKFile(path, k); err == nil {
		t.Fatal("existing KEK file overwritten")
	}
	rawPath := filepath.Join(dir, "raw")
	os.WriteFile(rawPath, k.raw[:], 0o600)
	badPath := filepath.Join(dir, "bad")
	os.WriteFile(badPath, []byte("c2hvcnQ="), 0o600)

	std := base64.StdEncoding.EncodeToString(k.raw[:])
	url := base64.RawURLEncoding.EncodeToString(k.raw[:])
	cases := []struct {
		name string
		env  map[string]string
		want error
	}{
		{"none", nil, ErrNoKEK},
		{"env std base64", map[string]string{EnvKEK: std}, nil},
		{"env url base64 unpadded", map[string]string{EnvKEK: " " + url + "\n"}, nil},
		{"env wins over file", map[string]string{EnvKEK: std, EnvKEKFile: badPath}, nil},
		{"file base64", map[string]string{EnvKEKFile: path}, nil},
		{"file raw bytes", map[string]string{EnvKEKFile: rawPath}, nil},
		{"file too short", map[string]string{EnvKEKFile: badPath}, ErrBadKEK},
		{"env not base64", map[string]string{EnvKEK: "!!!"}, ErrBadKEK},
		{"file missing", map[string]string{EnvKEKFile: filepath.Join(dir, "nope")}, os.ErrNotExist},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := LoadKEK(func(k string) string { return c.env[k] })
			if c.want != nil {
				if !errors.Is(err, c.want) {
					t.Fatalf("got %v, want %v", err, c.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.raw != k.raw {
				t.Fatal("loaded a different KEK")
			}
		})
	}
}

func TestKEKSealOpen(t *testing.T) {
	k, _ := GenerateKEK()
	other, _ := GenerateKEK()
	pt := []byte("private key bytes")
	a, _ := k.seal(pt, recordAAD("ks1", "A"))
	b, _ := k.seal(pt, recordAAD("ks1", "A"))
	if string(a) == string(b) {
		t.Fatal("nonce reused: two seals are identical")
	}
	if got, err := k.open(a, recordAAD("ks1", "A")); err != nil || string(got) != string(pt) {
		t.Fatalf("round trip: %q %v", got, err)
	}
	tampered := append([]byte{}, a...)
	tampered[len(tampered)-1] ^= 1
	for name, try := range map[string]func() ([]byte, error){
		"other key id":    func() ([]byte, error) { return k.open(a, recordAAD("ks1", "B")) },
		"other keyset":    func() ([]byte, error) { return k.open(a, recordAAD("ks2", "A")) },
		"id/keyset shift": func() ([]byte, error) { return k.open(a, recordAAD("ks1A", "")) },
		"other KEK":       func() ([]byte, error) { return other.open(a, recordAAD("ks1", "A")) },
		"tampered":        func() ([]byte, error) { return k.open(tampered, recordAAD("ks1", "A")) },
		"truncated":       func() ([]byte, error) { return k.open(a[:10], recordAAD("ks1", "A")) },
	} {
		if _, err := try(); err == nil {
			t.Errorf("%s: opened", name)
		}
	}
}

func TestKEKRedacted(t *testing.T) {
	k, _ := GenerateKEK()
	var buf strings.Builder
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "kek", k)
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s", k, k, k, k), buf.String()} {
		if strings.Contains(s, k.Base64()) || !strings.Contains(s, "redacted") {
			t.Fatalf("KEK leaks or is not redacted: %q", s)
		}
	}
}

func TestKEKDerive(t *testing.T) {
	a, err := GenerateKEK()
	if err != nil {
		t.Fatal(err)
	}
	b, err := GenerateKEK()
	if err != nil {
		t.Fatal(err)
	}
	x, y := a.Derive("plugin-cache"), a.Derive("other")
	if len(x) != 32 || bytes.Equal(x, y) || bytes.Equal(x, b.Derive("plugin-cache")) {
		t.Fatal("derived keys must be 32 bytes and differ by label and by KEK")
	}
	if !bytes.Equal(x, a.Derive("plugin-cache")) {
		t.Fatal("derivation is not deterministic")
	}
	if bytes.Contains(x, a.raw[:8]) {
		t.Fatal("derived key leaks KEK bytes")
	}
}

// TestKEKFileModeRefused: a KEK file group or others may read is refused
// with the command that fixes it; after the chmod it is read.
func TestKEKFileModeRefused(t *testing.T) {
	k, err := GenerateKEK()
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o644, 0o666} {
		path := filepath.Join(t.TempDir(), "kek")
		if err := WriteKEKFile(path, k); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := ReadKEKFile(path)
		if !errors.Is(err, ErrKEKFileMode) || !strings.Contains(err.Error(), "chmod 600 "+path) {
			t.Fatalf("mode %04o: %v, want ErrKEKFileMode naming the fix", mode, err)
		}
		if _, err := LoadKEK(func(v string) string { return map[string]string{EnvKEKFile: path}[v] }); !errors.Is(err, ErrKEKFileMode) {
			t.Fatalf("mode %04o through LoadKEK: %v", mode, err)
		}
		if err := os.Chmod(path, 0o600); err != nil {
			t.Fatal(err)
		}
		if got, err := ReadKEKFile(path); err != nil || !bytes.Equal(got.raw[:], k.raw[:]) {
			t.Fatalf("after chmod 600: %v", err)
		}
	}
}

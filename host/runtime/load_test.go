package runtime_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otpcgate/otpcgate/host/runtime"
	"github.com/otpcgate/otpcgate/host/runtime/runtimetest"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

func TestLoadRefusals(t *testing.T) {
	i32 := []byte{wI32}
	valid := abiFuncs(1)
	withImport := func(im wImport) []byte { return buildWasm([]wImport{im}, valid, true) }
	without := func(name string) []byte {
		var fs []wFunc
		for _, f := range valid {
			if f.export != name {
				fs = append(fs, f)
			}
		}
		return buildWasm(nil, fs, true)
	}
	badHandle := append([]wFunc{}, valid[:3]...)
	badHandle = append(badHandle, wFunc{export: "otpc_handle", params: []byte{wI32, wI32, wI32}, results: i32, body: i32c(0)})
	trapInit := append([]wFunc{{export: "_initialize", body: []byte{0x00}}}, valid[1:]...) // unreachable

	tests := []struct {
		name string
		wasm []byte
		want string
	}{
		{"socket import", withImport(wImport{"wasi_snapshot_preview1", "sock_accept", []byte{wI32, wI32, wI32}, i32}), "import wasi_snapshot_preview1.sock_accept is not allowed"},
		{"filesystem import", withImport(wImport{"wasi_snapshot_preview1", "path_open", []byte{wI32, wI32, wI32, wI32, wI32, wI64, wI64, wI32, wI32}, i32}), "import wasi_snapshot_preview1.path_open is not allowed"},
		{"unknown module", withImport(wImport{"env", "system", nil, nil}), "import env.system is not allowed"},
		{"unknown host function", withImport(wImport{"otpc", "kv_scan", nil, nil}), "import otpc.kv_scan is not allowed"},
		{"host function signature", withImport(wImport{"otpc", "now", nil, i32}), "signature"},
		{"missing handle", without("otpc_handle"), "missing export otpc_handle"},
		{"missing alloc", without("otpc_alloc"), "missing export otpc_alloc"},
		{"missing version", without("otpc_abi_version"), "missing export otpc_abi_version"},
		{"missing initialize", without("_initialize"), "missing export _initialize"},
		{"a WASI command", buildWasm(nil, append([]wFunc{{export: "_start"}}, valid[1:]...), true), "build it with GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared"},
		{"missing memory", buildWasm(nil, valid, false), "missing export memory"},
		{"handle signature", buildWasm(nil, badHandle, true), "export otpc_handle has signature"},
		{"wrong ABI version", buildWasm(nil, abiFuncs(2), true), "ABI version 2, host supports 1"},
		{"initialize traps", buildWasm(nil, trapInit, true), "_initialize trapped"},
		{"not wasm", []byte("\x00asm garbage"), "compile"},
		{"Go module with socket and filesystem imports", runtimetest.Build(t, badImportsDir), "wasi_snapshot_preview1.path_open, wasi_snapshot_preview1.sock_accept are not allowed"},
	}
	m := runtimetest.Manager(t, runtime.Options{})
	// A good version of the same plugin keeps serving while bad ones are refused.
	if _, err := m.Load(context.Background(), "p", runtime.VersionSpec{Version: "good", Wasm: buildWasm(nil, valid, true)}); err != nil {
		t.Fatal(err)
	}
	if err := m.Activate("p", "good"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.Load(context.Background(), "p", runtime.VersionSpec{Version: tc.name, Wasm: tc.wasm})
			var le *runtime.LoadError
			if !errors.As(err, &le) {
				t.Fatalf("got %v, want *runtime.LoadError", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %q, want it to contain %q", err, tc.want)
			}
			out, _, err := m.Call(context.Background(), "p", otpc.OpGenerate, []byte("{}"), runtime.CallEnv{})
			if err != nil || len(out) != 0 {
				t.Fatalf("good version after refusal: %q, %v", out, err)
			}
		})
	}
	if n := len(m.Versions("p")); n != 1 {
		t.Errorf("%d versions loaded, want only the good one", n)
	}
}

func TestHashMismatch(t *testing.T) {
	m := runtimetest.Manager(t, runtime.Options{})
	wasm := buildWasm(nil, abiFuncs(1), true)
	_, err := m.Load(context.Background(), "p", runtime.VersionSpec{Version: "v1", Wasm: wasm, SHA256: strings.Repeat("0", 64)})
	if !errors.Is(err, runtime.ErrHashMismatch) {
		t.Fatalf("got %v, want ErrHashMismatch", err)
	}
	sum := sha256.Sum256(wasm)
	info, err := m.Load(context.Background(), "p", runtime.VersionSpec{Version: "v1", Wasm: wasm, SHA256: hex.EncodeToString(sum[:])})
	if err != nil || info.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("matching sha256: %v %+v", err, info)
	}
}

// TestDiskCache checks that compiled code is reused across managers and that
// a tampered entry or a different key forces a cold compile instead of
// executing the planted bytes.
func TestDiskCache(t *testing.T) {
	// A hand-built module keeps this test fast (cold compiles of a Go module
	// take seconds under -race); BenchmarkCompile covers a Go module.
	wasm := buildWasm(nil, abiFuncs(1), true)
	dir := t.TempDir()
	key := []byte("test-only cache key, 32 bytes!!!")
	load := func(key []byte) runtime.VersionInfo {
		t.Helper()
		m := runtimetest.Manager(t, runtime.Options{CacheDir: dir, CacheKey: key})
		info := runtimetest.Load(t, m, "p", wasm, nil)
		if out, _, err := m.Call(context.Background(), "p", otpc.OpGenerate, nil, runtime.CallEnv{}); err != nil || len(out) != 0 {
			t.Fatalf("call: %q %v", out, err)
		}
		_ = m.Close()
		return info
	}
	if info := load(key); info.CacheHit {
		t.Fatal("first load hit the cache")
	}
	warm := load(key)
	if !warm.CacheHit {
		t.Fatal("second load missed the cache")
	}

	// Tamper with every cached file (flip a byte in the machine code area).
	var entries []string
	_ = filepath.WalkDir(filepath.Join(dir, warm.SHA256), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			entries = append(entries, p)
		}
		return err
	})
	if len(entries) == 0 {
		t.Fatal("no cache entries written")
	}
	for _, e := range entries {
		b, err := os.ReadFile(e)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0xff
		if err := os.WriteFile(e, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if info := load(key); info.CacheHit {
		t.Fatal("tampered cache entry was used")
	}
	if info := load(key); !info.CacheHit {
		t.Fatal("cache not rebuilt after tampering")
	}
	if info := load([]byte("another test-only key")); info.CacheHit {
		t.Fatal("entry sealed with another key was used")
	}
	if _, err := runtime.New(runtime.Options{CacheDir: dir}); err == nil {
		t.Fatal("CacheDir without CacheKey accepted")
	}
}

// TestConcurrentLoadsShareCache: several merchants loading the same module
// at once all succeed, and the cache they leave behind verifies.
func TestConcurrentLoadsShareCache(t *testing.T) {
	dir, key := t.TempDir(), []byte("test-only key")
	wasm := buildWasm(nil, abiFuncs(1), true)
	m := runtimetest.Manager(t, runtime.Options{CacheDir: dir, CacheKey: key})
	errs := make(chan error, 4)
	for i := range 4 {
		go func() {
			_, err := m.Load(context.Background(), fmt.Sprintf("merchant-%d", i), runtime.VersionSpec{Version: "v1", Wasm: wasm})
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	m2 := runtimetest.Manager(t, runtime.Options{CacheDir: dir, CacheKey: key})
	if info := runtimetest.Load(t, m2, "p", wasm, nil); !info.CacheHit {
		t.Fatal("cache left by concurrent loads does not verify")
	}
}

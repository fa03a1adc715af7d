// Package runtimetest builds plugin packages to wasm and runs them in the
// real host runtime from go test, for plugin authors and our own tests.
//
// Each package directory is built at most once per test binary (go build
// with GOOS=wasip1 GOARCH=wasm -buildmode=c-shared, using the local
// toolchain and its build cache); the module bytes are kept in memory and
// the temporary output file removed. No .wasm file is ever committed.
package runtimetest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/otpcgate/otpcgate/host/runtime"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

type built struct {
	once sync.Once
	wasm []byte
	err  error
}

// builds caches module bytes by absolute package directory for the life of
// the test binary; building Go to wasm takes seconds.
var builds sync.Map // string -> *built

// Build returns the wasm of the main package in dir (relative to the test's
// working directory or absolute), building it on first use.
func Build(tb testing.TB, dir string) []byte {
	tb.Helper()
	wasm, err := BuildWasm(dir)
	if err != nil {
		tb.Fatal(err)
	}
	return wasm
}

// BuildAll builds several packages concurrently (two at a time, to spare a
// small machine) and returns their bytes in the order given.
func BuildAll(tb testing.TB, dirs ...string) [][]byte {
	tb.Helper()
	out := make([][]byte, len(dirs))
	errs := make([]error, len(dirs))
	sem := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for i, d := range dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i], errs[i] = BuildWasm(d)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			tb.Fatal(err)
		}
	}
	return out
}

// BuildWasm is Build without a testing.TB, for TestMain and benchmarks.
func BuildWasm(dir string) ([]byte, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	v, _ := builds.LoadOrStore(abs, &built{})
	b := v.(*built)
	b.once.Do(func() { b.wasm, b.err = goBuild(abs) })
	return b.wasm, b.err
}

func goBuild(dir string) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "otpc-wasm-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "plugin.wasm")
	goTool, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("runtimetest: go toolchain not found: %w", err)
	}
	cmd := exec.Command(goTool, "build", "-buildmode=c-shared", "-trimpath", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("runtimetest: build %s: %w\n%s", dir, err, stderr.String())
	}
	return os.ReadFile(out)
}

// Manager returns a runtime.Manager closed at the end of the test.
func Manager(tb testing.TB, opts runtime.Options) *runtime.Manager {
	tb.Helper()
	m, err := runtime.New(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = m.Close() })
	return m
}

// Load loads wasm as version "v1" of pluginID with config and activates it.
func Load(tb testing.TB, m *runtime.Manager, pluginID string, wasm, config []byte) runtime.VersionInfo {
	tb.Helper()
	info, err := m.Load(context.Background(), pluginID, runtime.VersionSpec{Version: "v1", Wasm: wasm, Config: config})
	if err != nil {
		tb.Fatal(err)
	}
	if err := m.Activate(pluginID, "v1"); err != nil {
		tb.Fatal(err)
	}
	return info
}

// Marshaler is an sdk/otpc frame.
type Marshaler interface{ AppendJSON([]byte) []byte }

// Unmarshaler is an sdk/otpc frame.
type Unmarshaler interface{ UnmarshalJSON([]byte) error }

// Call encodes in, calls op on pluginID's active version and decodes the
// output into out. It returns the KV change set.
func Call(ctx context.Context, m *runtime.Manager, pluginID string, op otpc.Op, in Marshaler, out Unmarshaler, env runtime.CallEnv) (runtime.ChangeSet, error) {
	res, cs, err := m.Call(ctx, pluginID, op, in.AppendJSON(nil), env)
	if err != nil {
		return cs, err
	}
	if err := out.UnmarshalJSON(res); err != nil {
		return cs, fmt.Errorf("runtimetest: decode %s output: %w", op, err)
	}
	return cs, nil
}

// MapKV is a committed KV view over a map, for tests. Apply commits a
// ChangeSet as the gateway would. Safe for concurrent use.
type MapKV struct {
	mu sync.RWMutex
	m  map[string][]byte
}

// NewMapKV returns an empty MapKV.
func NewMapKV() *MapKV { return &MapKV{m: map[string][]byte{}} }

// Get implements runtime.KVReader.
func (k *MapKV) Get(_ context.Context, ns, key string) ([]byte, bool, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	v, ok := k.m[ns+"\x00"+key]
	return v, ok, nil
}

// Apply commits cs.
func (k *MapKV) Apply(cs runtime.ChangeSet) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, c := range cs.Changes {
		if c.Delete {
			delete(k.m, cs.Namespace+"\x00"+c.Key)
		} else {
			k.m[cs.Namespace+"\x00"+c.Key] = c.Value
		}
	}
}

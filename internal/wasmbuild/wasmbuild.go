// Package wasmbuild compiles a Go plugin package to a wasip1 reactor module
// with the local Go toolchain, for `otpcgate dev` and tooling. Tests use
// host/runtime/runtimetest, which caches builds per test binary.
package wasmbuild

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Build compiles the main package in dir and returns the module bytes. A
// dir that exists is built from inside it, so a plugin that is a Go module
// of its own builds with its own go.mod wherever it lives; anything else
// is an import path pattern understood by `go build` from the working
// directory. The Go build cache makes repeated builds cheap.
func Build(ctx context.Context, dir string) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "otpcgate-wasm-")
	if err != nil {
		return nil, fmt.Errorf("wasmbuild: %w", err)
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "plugin.wasm")
	cmd := exec.CommandContext(ctx, "go", "build", "-buildmode=c-shared", "-trimpath", "-o", out, dir)
	if st, err := os.Stat(dir); err == nil && st.IsDir() {
		cmd = exec.CommandContext(ctx, "go", "build", "-buildmode=c-shared", "-trimpath", "-o", out, ".")
		cmd.Dir = dir
	}
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("wasmbuild: go build %s: %w\n%s", dir, err, stderr.Bytes())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return nil, fmt.Errorf("wasmbuild: %w", err)
	}
	return b, nil
}

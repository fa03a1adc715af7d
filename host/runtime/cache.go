package runtime

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/tetratelabs/wazero"
)

// Disk compilation cache.
//
// How wazero keys its file cache (v1.12, internal/engine/wazevo/engine_cache.go):
// the file name is hex(sha256(module.ID || "WAZEVO" || cpu features)), where
// module.ID is sha256 of the wasm bytes plus a few compile flags (listeners,
// close-on-context-done). The entry holds the wazero version, function
// offsets, the machine code and only a CRC32 of that code. So the key binds
// an entry to the module bytes, but nothing authenticates the content:
// anyone able to write the directory could plant machine code under the
// right name and wazero would map it executable.
//
// We therefore give every module (by the sha256 of its bytes, verified
// against the caller's expectation) its own directory and its own wazero
// CompilationCache, and keep beside it a manifest "<sha256>.mac" holding
// HMAC-SHA256(CacheKey, sha256 || each file's name and content). Before a
// module is compiled we recompute the MAC over the directory: on any
// mismatch (or a missing manifest) the directory is emptied and the module
// compiled cold; after compiling we write a fresh manifest. The key lives
// outside the cache directory, so planting a valid entry needs the key.
// The remaining window (a file swapped between our check and wazero's read,
// microseconds apart) needs write access to a 0700 directory owned by the
// service user, which already implies control of the process.

// moduleCache is the verified disk cache of one module.
type moduleCache struct {
	dir      string // <root>/<sha256 hex>
	manifest string // <root>/<sha256 hex>.mac
	key      []byte
	sum      [32]byte
}

func newModuleCache(root string, key []byte, sum [32]byte) *moduleCache {
	h := hex.EncodeToString(sum[:])
	return &moduleCache{
		dir:      filepath.Join(root, h),
		manifest: filepath.Join(root, h+".mac"),
		key:      key,
		sum:      sum,
	}
}

// open verifies the directory and returns a wazero cache over it. hit
// reports whether a verified entry was present.
func (c *moduleCache) open() (cache wazero.CompilationCache, hit bool, err error) {
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("runtime: cache dir: %w", err)
	}
	mac, n, err := c.mac()
	if err != nil {
		return nil, false, err
	}
	want, rerr := os.ReadFile(c.manifest)
	switch {
	case n == 0:
		// Nothing cached yet.
	case rerr == nil && hmac.Equal(want, mac):
		hit = true
	default:
		// Tampered, half-written or from an unknown key: never execute it.
		if err := c.wipe(); err != nil {
			return nil, false, err
		}
	}
	cache, err = wazero.NewCompilationCacheWithDir(c.dir)
	if err != nil {
		return nil, false, fmt.Errorf("runtime: compilation cache: %w", err)
	}
	return cache, hit, nil
}

// seal writes the manifest for what wazero stored.
func (c *moduleCache) seal() error {
	mac, _, err := c.mac()
	if err != nil {
		return err
	}
	tmp := c.manifest + ".tmp"
	if err := os.WriteFile(tmp, mac, 0o600); err != nil {
		return fmt.Errorf("runtime: cache manifest: %w", err)
	}
	if err := os.Rename(tmp, c.manifest); err != nil {
		return fmt.Errorf("runtime: cache manifest: %w", err)
	}
	return nil
}

func (c *moduleCache) wipe() error {
	_ = os.Remove(c.manifest)
	if err := os.RemoveAll(c.dir); err != nil {
		return fmt.Errorf("runtime: wipe cache: %w", err)
	}
	return os.MkdirAll(c.dir, 0o700)
}

// mac computes the HMAC over the regular files under the directory (wazero
// keeps them in a per-version sub-directory), sorted by relative path, and
// returns how many there were.
func (c *moduleCache) mac() ([]byte, int, error) {
	var names []string
	err := filepath.WalkDir(c.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && filepath.Ext(path) != ".tmp" {
			rel, err := filepath.Rel(c.dir, path)
			if err != nil {
				return err
			}
			names = append(names, rel)
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("runtime: read cache dir: %w", err)
	}
	sort.Strings(names)
	m := hmac.New(sha256.New, c.key)
	m.Write(c.sum[:])
	for _, name := range names {
		if err := macFile(m, c.dir, name); err != nil {
			return nil, 0, err
		}
	}
	return m.Sum(nil), len(names), nil
}

func macFile(m io.Writer, dir, name string) error {
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		return fmt.Errorf("runtime: read cache entry: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("runtime: read cache entry: %w", err)
	}
	fmt.Fprintf(m, "%d:%s%d:", len(name), name, st.Size())
	if _, err := io.Copy(m, f); err != nil {
		return fmt.Errorf("runtime: read cache entry: %w", err)
	}
	return nil
}

// closeCache closes a compilation cache, ignoring a nil one.
func closeCache(ctx context.Context, c wazero.CompilationCache) error {
	if c == nil {
		return nil
	}
	return c.Close(ctx)
}

var errNoCacheKey = errors.New("runtime: Options.CacheKey is required with CacheDir")

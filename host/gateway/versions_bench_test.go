package gateway

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/otpcgate/otpcgate/host/admin"
	"github.com/otpcgate/otpcgate/host/runtime"
)

// BenchmarkPluginVersionsRSS uploads and activates 50 versions of one
// merchant's plugin, as a busy deploy day would, and reports the process's
// resident memory growth against what one more loaded version costs,
// measured in the same run: with only the active version and its rollback
// target kept loaded, growth stays near two versions' worth however many
// are uploaded.
//
//	go test -run '^$' -bench PluginVersionsRSS -benchtime 1x ./host/gateway/
func BenchmarkPluginVersionsRSS(b *testing.B) {
	const uploads = 50
	wasm := konbini(b).Wasm
	for range b.N {
		e := newEnv(b)
		ctx := context.Background()
		back := e.g.backend()
		upload := func(v string) {
			cfg := bytes.Replace(konbiniConfig, []byte(`"prefix": "81"`), []byte(`"prefix": "8`+strconv.Itoa(len(v)%10)+`"`), 1)
			if _, err := back.UploadPlugin(ctx, "demo-pgp", admin.PluginUpload{Version: v, Wasm: wasm, Config: cfg, Activate: true}); err != nil {
				b.Fatal(err)
			}
		}
		upload("warm") // the cache and the first pools exist before measuring
		base := rssMiB(b)

		// What one extra loaded version costs: load one beside the others.
		if _, err := e.g.Plugins.Load(ctx, "demo-pgp", runtime.VersionSpec{Version: "probe", Wasm: wasm, Config: konbiniConfig}); err != nil {
			b.Fatal(err)
		}
		perVersion := rssMiB(b) - base
		if err := e.g.Plugins.Unload("demo-pgp", "probe"); err != nil {
			b.Fatal(err)
		}

		b.ResetTimer()
		for i := range uploads {
			upload(fmt.Sprintf("v%02d", i))
		}
		b.StopTimer()
		growth := rssMiB(b) - base
		loaded := len(e.g.Plugins.Versions("demo-pgp"))
		if loaded > 2 {
			b.Fatalf("%d versions loaded after %d uploads", loaded, uploads)
		}
		b.ReportMetric(growth, "rss-growth-MiB")
		b.ReportMetric(perVersion, "one-version-MiB")
		b.ReportMetric(float64(loaded), "loaded-versions")
		b.ReportMetric(growth/max(perVersion, 0.1), "growth/one-version")
		e.stop()
	}
}

// rssMiB is this process's resident set after returning freed memory to
// the system, so that what is measured is what is still held.
func rssMiB(tb testing.TB) float64 {
	tb.Helper()
	debug.FreeOSMemory()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		tb.Skipf("no /proc/self/status: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				tb.Fatal(err)
			}
			return kb / 1024
		}
	}
	tb.Fatal("no VmRSS")
	return 0
}

package gateway

import (
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"
)

// TestProductionAssemblyExcludesSimulator guards the seam between what
// `serve` assembles and the development tools: the simulated Google is
// mounted by `otpcgate dev` through Options.Extra, never imported here.
func TestProductionAssemblyExcludesSimulator(t *testing.T) {
	goBin := filepath.Join(goruntime.GOROOT(), "bin", "go")
	out, err := exec.Command(goBin, "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps listed only %d packages: %q", len(deps), deps)
	}
	for _, d := range deps {
		if d == "github.com/otpcgate/otpcgate/host/sim" {
			t.Fatalf("host/gateway depends on the simulator (%s); mount development tools through Options.Extra", d)
		}
	}
}

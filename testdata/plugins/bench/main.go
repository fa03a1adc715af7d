// Command bench is the well-behaved plugin of the host/runtime tests and
// benchmarks (logic in benchlogic). Its configuration may carry a GC
// percent ("gc=N"), applied at warm-up, so the benchmark can compare guest
// GC settings in one run.
package main

import (
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/otpcgate/otpcgate/sdk"
	"github.com/otpcgate/otpcgate/testdata/plugins/bench/benchlogic"
)

func init() {
	p := benchlogic.Plugin
	p.Warmup = func(c *sdk.Context) error {
		if v, ok := strings.CutPrefix(string(c.Config()), "gc="); ok {
			if n, err := strconv.Atoi(v); err == nil {
				debug.SetGCPercent(n)
			}
		}
		return nil
	}
	sdk.Register(&p)
}

func main() {}

// Command bench is the well-behaved plugin of the host/runtime tests and
// benchmarks (logic in benchlogic).
package main

import (
	"github.com/otpcgate/otpcgate/sdk"
	"github.com/otpcgate/otpcgate/testdata/plugins/bench/benchlogic"
)

func init() { sdk.Register(&benchlogic.Plugin) }

func main() {}

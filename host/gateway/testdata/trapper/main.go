// Command trapper is a hostile test plugin: its generate handler panics,
// which the host must see as a trap (503, nothing committed), and its other
// handlers are absent.
package main

import (
	"github.com/otpcgate/otpcgate/sdk"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

func init() {
	sdk.Register(&sdk.Plugin{
		Generate: func(c *sdk.Context, in *otpc.GenerateInput) (*otpc.GenerateOutput, error) {
			// Writes first, so a leak of the change set would show.
			c.KV().Put("trap", []byte("should never commit"))
			panic("trapper: generate always traps")
		},
	})
}

func main() {}

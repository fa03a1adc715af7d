// Command noisy is the adversarial merchant plugin of the noisy-neighbour
// benchmark: it answers real generateReferenceNumber requests through the
// sdk, misbehaving as its configuration says — {"mode": "spin"} loops until
// the host's call timeout, "memory" allocates until the memory limit,
// "kvflood" writes as many large KV values as the host allows, "logflood"
// logs as much as the host allows. Warm-up behaves, so uploads succeed.
package main

import (
	"errors"
	"strconv"
	"strings"

	"github.com/otpcgate/otpcgate/sdk"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// sink keeps allocations reachable so the collector cannot free them.
var sink [][]byte

func mode(c *sdk.Context) string {
	_, v, _ := strings.Cut(string(c.Config()), `"mode":`)
	v = strings.TrimSpace(v)
	v = strings.TrimRight(v, "} \n")
	return strings.Trim(v, `"`)
}

func generate(c *sdk.Context, _ *otpc.GenerateInput) (*otpc.GenerateOutput, error) {
	switch m := mode(c); m {
	case "spin":
		for n := 0; ; n++ {
			if n < 0 {
				break
			}
		}
	case "memory":
		for {
			sink = append(sink, make([]byte, 1<<20))
		}
	case "kvflood":
		v := make([]byte, 60<<10)
		c.Random(v[:16])
		for i := 0; ; i++ {
			c.KV().Put("flood-"+strconv.Itoa(i), v) // the host ends the call at its limits
		}
	case "logflood":
		line := strings.Repeat("noise ", 100)
		for {
			c.Log(sdk.LevelInfo, line)
		}
	default:
		return nil, errors.New("noisy: unknown mode " + m)
	}
	return nil, errors.New("noisy: unreachable")
}

func init() {
	sdk.Register(&sdk.Plugin{
		Warmup: func(c *sdk.Context) error {
			switch m := mode(c); m {
			case "spin", "memory", "kvflood", "logflood":
				return nil
			default:
				return errors.New("noisy: unknown mode " + m)
			}
		},
		Generate: generate,
	})
}

func main() {}

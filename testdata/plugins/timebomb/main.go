// Command timebomb is an adversarial plugin for the gateway's start-up
// tests: its warm-up succeeds until the moment its configuration names
// ({"explode_after_ms": unix milliseconds}) and fails from then on. It is
// accepted and activated at upload, and refused at the next start.
package main

import (
	"errors"
	"strconv"
	"strings"

	"github.com/otpcgate/otpcgate/sdk"
)

// explodeAfter reads the moment from the configuration without
// encoding/json, to keep the module small.
func explodeAfter(cfg []byte) (int64, error) {
	_, v, ok := strings.Cut(string(cfg), `"explode_after_ms":`)
	if !ok {
		return 0, errors.New(`timebomb: configuration needs "explode_after_ms"`)
	}
	v = strings.TrimSpace(strings.TrimRight(strings.TrimSpace(v), "}"))
	return strconv.ParseInt(v, 10, 64)
}

func init() {
	sdk.Register(&sdk.Plugin{
		Warmup: func(c *sdk.Context) error {
			at, err := explodeAfter(c.Config())
			if err != nil {
				return err
			}
			if c.Now().UnixMilli() >= at {
				return errors.New("timebomb: exploded at start")
			}
			return nil
		},
	})
}

func main() {}

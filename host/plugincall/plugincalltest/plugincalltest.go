// Package plugincalltest has helpers for the tests of packages that call
// plugins through a plugincall.Service.
package plugincalltest

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/otpcgate/otpcgate/host/plugincall"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// Counting forwards calls to the real service and counts them, so a test
// can tell whether a rule answered before the plugin was asked.
type Counting struct {
	*plugincall.Service
	N atomic.Int64
}

// Call counts the call and forwards it.
func (c *Counting) Call(ctx context.Context, t plugincall.Target, op otpc.Op, now time.Time, in, out otpc.Message) (plugincall.Changes, error) {
	c.N.Add(1)
	return c.Service.Call(ctx, t, op, now, in, out)
}

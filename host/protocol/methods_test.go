package protocol

import (
	"testing"

	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// TestEveryMethodHandled: each integrator-hosted method of the table is
// decided by a handler (echo by the pipeline itself), and no handler is
// left without a method.
func TestEveryMethodHandled(t *testing.T) {
	used := map[otpc.Op]bool{}
	for _, m := range otpc.Methods(otpc.Integrator) {
		if m.Name == otpc.MethodEcho {
			continue
		}
		if handlers[m.Op] == nil {
			t.Errorf("%s (op %v) has no handler", m.Name, m.Op)
		}
		used[m.Op] = true
	}
	for op := range handlers {
		if !used[op] {
			t.Errorf("handler for op %v serves no method", op)
		}
	}
}

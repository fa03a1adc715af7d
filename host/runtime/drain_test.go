package runtime_test

import (
	"context"
	"testing"

	"github.com/otpcgate/otpcgate/host/runtime"
	"github.com/otpcgate/otpcgate/host/runtime/runtimetest"
)

// TestUnloadClosesAfterLastCall checks the refcount: an unloaded version
// with a call in flight stays open until that call releases it.
func TestUnloadClosesAfterLastCall(t *testing.T) {
	m := runtimetest.Manager(t, runtime.Options{})
	if _, err := m.Load(context.Background(), "p", runtime.VersionSpec{Version: "v1", Wasm: buildWasm(nil, abiFuncs(1), true)}); err != nil {
		t.Fatal(err)
	}
	closed, release, err := runtime.VersionClosedForTest(m, "p", "v1", true)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Unload("p", "v1"); err != nil {
		t.Fatal(err)
	}
	if closed() {
		t.Fatal("version closed while a call holds it")
	}
	release()
	if !closed() {
		t.Fatal("version still open after its last call returned")
	}
}

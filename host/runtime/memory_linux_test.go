package runtime

import (
	"testing"
	"unsafe"
)

// TestMappedMemory: growth commits pages in place (the base never moves),
// what was written survives growth, growth past the reservation fails, and
// Free returns the mapping.
func TestMappedMemory(t *testing.T) {
	const max = 16 << 16 // 16 wasm pages
	lm := newMappedMemory(0, max)
	m, ok := lm.(*mappedMemory)
	if !ok {
		t.Fatalf("allocator fell back to %T", lm)
	}
	b := m.Reallocate(1 << 16)
	if len(b) != 1<<16 {
		t.Fatalf("len %d", len(b))
	}
	b[0], b[len(b)-1] = 1, 2
	base := unsafe.SliceData(b)
	b = m.Reallocate(10 << 16)
	if unsafe.SliceData(b) != base || len(b) != 10<<16 || b[0] != 1 || b[1<<16-1] != 2 {
		t.Fatal("growth moved or lost the memory")
	}
	b[len(b)-1] = 3 // committed: writable
	if m.Reallocate(max+1) != nil {
		t.Fatal("growth past the reservation succeeded")
	}
	if got := m.Reallocate(max); len(got) != max {
		t.Fatalf("growth to the reservation: len %d", len(got))
	}
	m.Free()
	if m.buf != nil {
		t.Fatal("not freed")
	}
}

// TestHeapMemoryFallback: a memory that cannot be mapped (here: a maximum
// past 4 GiB) falls back to a Go slice that grows and keeps its bytes.
func TestHeapMemoryFallback(t *testing.T) {
	lm := newMappedMemory(0, 1<<33)
	if _, ok := lm.(*heapMemory); !ok {
		t.Fatalf("got %T, want the heap fallback", lm)
	}
	b := lm.Reallocate(1 << 16)
	b[10] = 7
	if b = lm.Reallocate(3 << 16); len(b) != 3<<16 || b[10] != 7 {
		t.Fatal("growth lost the memory")
	}
	lm.Free()
}

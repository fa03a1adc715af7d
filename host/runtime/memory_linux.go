package runtime

import (
	"golang.org/x/sys/unix"

	"github.com/tetratelabs/wazero/experimental"
)

// mmapAllocator backs each instance's linear memory with its own anonymous
// mapping, reserved (PROT_NONE) at the memory's maximum and made readable
// and writable as the guest grows it. Growth never copies (wazero's default
// appends to a Go slice, copying the whole memory each time it outgrows
// its capacity), the bytes live outside the Go heap (the host's collector
// neither zeroes nor tracks them, so one merchant's memory-hungry plugin
// does not drive the GC that every request waits on), and closing an
// instance returns its memory to the system at once.
var mmapAllocator experimental.MemoryAllocator = experimental.MemoryAllocatorFunc(newMappedMemory)

// mappedMemory is one reservation; committed bytes are readable and writable.
type mappedMemory struct {
	buf       []byte // the whole reservation
	committed int
}

func newMappedMemory(_, max uint64) experimental.LinearMemory {
	if max == 0 || max > 1<<32 {
		return &heapMemory{}
	}
	buf, err := unix.Mmap(-1, 0, int(max), unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return &heapMemory{} // no address space: behave as wazero would
	}
	return &mappedMemory{buf: buf}
}

// Reallocate implements experimental.LinearMemory: the first size bytes,
// committing pages as needed; nil (a failed memory.grow) beyond the
// reservation or if the system refuses the pages.
func (m *mappedMemory) Reallocate(size uint64) []byte {
	if size > uint64(len(m.buf)) {
		return nil
	}
	if n := int(size); n > m.committed {
		page := unix.Getpagesize()
		end := min((n+page-1)/page*page, len(m.buf))
		if err := unix.Mprotect(m.buf[m.committed:end], unix.PROT_READ|unix.PROT_WRITE); err != nil {
			return nil
		}
		m.committed = end
	}
	return m.buf[:size]
}

// Free implements experimental.LinearMemory.
func (m *mappedMemory) Free() {
	if m.buf != nil {
		_ = unix.Munmap(m.buf)
		m.buf, m.committed = nil, 0
	}
}

// heapMemory is the fallback when no mapping can be made: a Go slice grown
// by appending, as wazero does by default.
type heapMemory struct{ buf []byte }

func (h *heapMemory) Reallocate(size uint64) []byte {
	if n := int(size); n > len(h.buf) {
		h.buf = append(h.buf, make([]byte, n-len(h.buf))...)
	}
	return h.buf[:size]
}

func (h *heapMemory) Free() { h.buf = nil }

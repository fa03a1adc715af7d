// Command badimports is an adversarial plugin for host/runtime tests: a
// well-formed ABI module that also imports a WASI socket function and
// pulls in the WASI filesystem (os.ReadFile -> path_open). The host must
// refuse it at load, naming the import.
package main

import (
	"os"
	"unsafe"
)

//go:wasmimport wasi_snapshot_preview1 sock_accept
func sockAccept(fd int32, flags int32, out unsafe.Pointer) int32

var buf []byte

//go:wasmexport otpc_abi_version
func abiVersion() int32 { return 1 }

//go:wasmexport otpc_alloc
func alloc(size int32) uint32 {
	buf = make([]byte, size+1)
	return uint32(uintptr(unsafe.Pointer(&buf[0])))
}

//go:wasmexport otpc_handle
func handle(op uint32, ptr uint32, n uint32) uint64 {
	var fd int32
	if op == 99 {
		sockAccept(3, 0, unsafe.Pointer(&fd))
		b, _ := os.ReadFile("/etc/passwd")
		buf = b
	}
	buf = append(buf[:0], 0)
	return uint64(uintptr(unsafe.Pointer(&buf[0])))<<32 | 1
}

func main() {}

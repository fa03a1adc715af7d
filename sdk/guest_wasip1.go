//go:build wasip1

package sdk

import (
	"unsafe"

	"github.com/otpcgate/otpcgate/sdk/abi"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// The guest is single-threaded and the host never calls it concurrently,
// so the exported functions share these buffers; they stay valid until the
// next call, as the ABI requires.
var guest struct {
	plugin *Plugin
	in     []byte
	out    []byte
	ctx    Context
	state  pluginState
	cfg    []byte
	kvBuf  []byte
}

// Register installs the plugin's handlers. Call it once, from init.
func Register(p *Plugin) { guest.plugin = p }

//go:wasmexport otpc_abi_version
func otpcABIVersion() int32 { return abi.Version }

//go:wasmexport otpc_alloc
func otpcAlloc(size int32) uint32 {
	if size < 0 {
		return 0
	}
	if int(size) > cap(guest.in) {
		guest.in = make([]byte, size)
	}
	guest.in = guest.in[:size]
	if size == 0 {
		return 0
	}
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(guest.in))))
}

//go:wasmexport otpc_handle
func otpcHandle(op uint32, ptr uint32, n uint32) uint64 {
	out := guest.out[:0]
	if guest.plugin == nil {
		out = errFrame(out, abi.StatusError, "plugin did not call sdk.Register")
	} else if int(n) > len(guest.in) || (n > 0 && ptr != uint32(uintptr(unsafe.Pointer(unsafe.SliceData(guest.in))))) {
		out = errFrame(out, abi.StatusBadInput, "input not in the otpc_alloc buffer")
	} else {
		guest.ctx = Context{host: wasmHost{}, st: &guest.state}
		out = Handle(guest.plugin, &guest.ctx, otpc.Op(op), guest.in[:n], out)
	}
	guest.out = out
	return abi.Pack(uint32(uintptr(unsafe.Pointer(unsafe.SliceData(out)))), uint32(len(out)))
}

//go:wasmimport otpc log
func importLog(level int32, ptr unsafe.Pointer, n uint32)

//go:wasmimport otpc kv_get
func importKVGet(kptr unsafe.Pointer, klen uint32, vptr unsafe.Pointer, vcap uint32) int32

//go:wasmimport otpc kv_put
func importKVPut(kptr unsafe.Pointer, klen uint32, vptr unsafe.Pointer, vlen uint32) int32

//go:wasmimport otpc kv_delete
func importKVDelete(kptr unsafe.Pointer, klen uint32) int32

//go:wasmimport otpc random
func importRandom(ptr unsafe.Pointer, n uint32)

//go:wasmimport otpc now
func importNow() int64

//go:wasmimport otpc config
func importConfig(ptr unsafe.Pointer, capacity uint32) int32

// wasmHost reaches the host through the otpc import module.
type wasmHost struct{}

func (wasmHost) Log(level Level, msg string) {
	importLog(int32(level), unsafe.Pointer(unsafe.StringData(msg)), uint32(len(msg)))
}

func (wasmHost) KVGet(key string) ([]byte, bool) {
	kp, kl := unsafe.Pointer(unsafe.StringData(key)), uint32(len(key))
	if cap(guest.kvBuf) < 256 {
		guest.kvBuf = make([]byte, 256)
	}
	buf := guest.kvBuf[:cap(guest.kvBuf)]
	n := importKVGet(kp, kl, unsafe.Pointer(unsafe.SliceData(buf)), uint32(len(buf)))
	if n == abi.KVNotFound {
		return nil, false
	}
	if int(n) > len(buf) {
		guest.kvBuf = make([]byte, n)
		buf = guest.kvBuf
		n = importKVGet(kp, kl, unsafe.Pointer(unsafe.SliceData(buf)), uint32(len(buf)))
		if n == abi.KVNotFound || int(n) > len(buf) {
			return nil, false
		}
	}
	return append([]byte(nil), buf[:n]...), true
}

func (wasmHost) KVPut(key string, value []byte) {
	importKVPut(unsafe.Pointer(unsafe.StringData(key)), uint32(len(key)),
		unsafe.Pointer(unsafe.SliceData(value)), uint32(len(value)))
}

func (wasmHost) KVDelete(key string) {
	importKVDelete(unsafe.Pointer(unsafe.StringData(key)), uint32(len(key)))
}

func (wasmHost) Random(b []byte) {
	if len(b) > 0 {
		importRandom(unsafe.Pointer(unsafe.SliceData(b)), uint32(len(b)))
	}
}

func (wasmHost) NowMillis() int64 { return importNow() }

func (wasmHost) Config() []byte {
	for {
		buf := guest.cfg[:cap(guest.cfg)]
		n := importConfig(unsafe.Pointer(unsafe.SliceData(buf)), uint32(len(buf)))
		if int(n) <= len(buf) {
			guest.cfg = buf[:n]
			return guest.cfg
		}
		guest.cfg = make([]byte, n)
	}
}

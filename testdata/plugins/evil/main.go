// Command evil is an adversarial plugin for host/runtime tests. It uses raw
// //go:wasmexport functions instead of the sdk so it can break every rule of
// the ABI. The input frame selects the misbehaviour: its first word (up to a
// space) is the mode; see the switch in otpc_handle. Warm-up (op 0) and mode
// "ok" behave.
package main

import (
	"bytes"
	"unsafe"
)

var (
	in  []byte
	out []byte
	// sink keeps allocations reachable so the collector cannot free them.
	sink [][]byte
)

//go:wasmimport otpc log
func hostLog(level int32, ptr unsafe.Pointer, n uint32)

//go:wasmimport otpc kv_put
func hostKVPut(kptr unsafe.Pointer, klen uint32, vptr unsafe.Pointer, vlen uint32) int32

//go:wasmimport otpc kv_get
func hostKVGet(kptr unsafe.Pointer, klen uint32, vptr unsafe.Pointer, vcap uint32) int32

//go:wasmexport otpc_abi_version
func abiVersion() int32 { return 1 }

// Sizes that make the allocator misbehave.
const (
	allocTrapSize = 77777 // the allocator panics
	allocBadSize  = 66666 // the allocator returns a pointer outside memory
)

//go:wasmexport otpc_alloc
func alloc(size int32) uint32 {
	switch size {
	case allocTrapSize:
		panic("allocator exploded")
	case allocBadSize:
		return 0xFFFFFF00
	}
	if int(size) > cap(in) {
		in = make([]byte, size)
	}
	in = in[:size]
	return addr(in)
}

func addr(b []byte) uint32 {
	if cap(b) == 0 {
		return 0
	}
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b[:1]))))
}

func frame(body string) uint64 {
	out = append(out[:0], 0)
	out = append(out, body...)
	return uint64(addr(out))<<32 | uint64(len(out))
}

//go:noinline
func recurse(n int) int {
	var pad [256]byte
	pad[n%256] = byte(n)
	return recurse(n+1) + int(pad[(n+1)%256])
}

//go:wasmexport otpc_handle
func handle(op uint32, ptr uint32, n uint32) uint64 {
	if op == 0 {
		return frame("")
	}
	data := in[:n]
	mode := data
	if i := bytes.IndexByte(data, ' '); i >= 0 {
		mode = data[:i]
	}
	switch string(mode) {
	case "ok":
		return frame(`{"ok":true}`)
	case "loop":
		for i := 0; ; i++ {
			if i < 0 {
				break
			}
		}
	case "memory":
		for {
			sink = append(sink, make([]byte, 1<<20))
		}
	case "recursion":
		return frame(string(rune(recurse(0))))
	case "hugeout":
		out = append(out[:0], 0)
		out = append(out, make([]byte, 8<<20)...)
		return uint64(addr(out))<<32 | uint64(len(out))
	case "oobout":
		return uint64(0xFFFF0000)<<32 | 4096
	case "ooblen":
		return uint64(addr(out))<<32 | 0xFFFFFFF0
	case "emptyframe":
		return 0
	case "badstatus":
		out = append(out[:0], 9, '{', '}')
		return uint64(addr(out))<<32 | uint64(len(out))
	case "panic":
		panic("plugin bug: boom")
	case "logflood":
		msg := bytes.Repeat([]byte("x"), 1024)
		for {
			hostLog(1, unsafe.Pointer(&msg[0]), uint32(len(msg)))
		}
	case "stdoutflood":
		msg := bytes.Repeat([]byte("y"), 1024)
		for {
			println(string(msg))
		}
	case "kvflood":
		k, v := []byte("key-0000"), []byte("value")
		for i := 0; ; i++ {
			k[4], k[5], k[6], k[7] = byte('0'+i/1000%10), byte('0'+i/100%10), byte('0'+i/10%10), byte('0'+i%10)
			hostKVPut(unsafe.Pointer(&k[0]), uint32(len(k)), unsafe.Pointer(&v[0]), uint32(len(v)))
		}
	case "kvbytes":
		// Values within the per-value limit, many of them: the call's
		// total of bytes put is what stops it.
		k, v := []byte("key-0000"), make([]byte, 60<<10)
		for i := 0; ; i++ {
			k[4], k[5], k[6], k[7] = byte('0'+i/1000%10), byte('0'+i/100%10), byte('0'+i/10%10), byte('0'+i%10)
			hostKVPut(unsafe.Pointer(&k[0]), uint32(len(k)), unsafe.Pointer(&v[0]), uint32(len(v)))
		}
	case "kvbig":
		k, v := []byte("big"), make([]byte, 1<<20)
		hostKVPut(unsafe.Pointer(&k[0]), uint32(len(k)), unsafe.Pointer(&v[0]), uint32(len(v)))
	case "kvoob":
		k, v := []byte("k"), []byte("v")
		hostKVPut(unsafe.Pointer(&k[0]), 1, unsafe.Pointer(&v[0]), 1)
		hostKVGet(unsafe.Pointer(&k[0]), 1, unsafe.Pointer(uintptr(0xFFFFFF00)), 4096)
	case "logoob":
		hostLog(1, unsafe.Pointer(uintptr(0xFFFFFFF0)), 64)
	case "count":
		served++
		return frame(string(rune('0' + served%10)))
	case "spin":
		x := uint32(1)
		for i := 0; i < 10_000_000; i++ {
			x = x*1664525 + 1013904223
		}
		return frame(string(rune('a' + x%26)))
	case "kvrw":
		return kvReadWrite()
	case "error":
		out = append(out[:0], 1)
		out = append(out, "declined by evil"...)
		return uint64(addr(out))<<32 | uint64(len(out))
	}
	return frame(`{"unknown":true}`)
}

var served int

//go:wasmimport otpc kv_delete
func hostKVDelete(kptr unsafe.Pointer, klen uint32) int32

// kvReadWrite checks read-your-writes through the raw imports and reports
// what it saw as "committed,afterPut,afterDelete".
func kvReadWrite() uint64 {
	get := func(key string) string {
		buf := make([]byte, 64)
		n := hostKVGet(unsafe.Pointer(unsafe.StringData(key)), uint32(len(key)), unsafe.Pointer(&buf[0]), 64)
		if n < 0 {
			return "-"
		}
		return string(buf[:n])
	}
	put := func(key, val string) {
		hostKVPut(unsafe.Pointer(unsafe.StringData(key)), uint32(len(key)), unsafe.Pointer(unsafe.StringData(val)), uint32(len(val)))
	}
	committed := get("seen")
	put("a", "1")
	afterPut := get("a")
	hostKVDelete(unsafe.Pointer(unsafe.StringData("a")), 1)
	afterDelete := get("a")
	put("b", "2")
	put("seen", committed+"+")
	return frame(committed + "," + afterPut + "," + afterDelete)
}

func main() {}

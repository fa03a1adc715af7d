// Package abi defines version 1 of the binary interface between the otpcgate
// host (host/runtime) and a plugin (a WebAssembly module built with the sdk).
// It is a tiny, dependency-free package that both sides import, so the
// numbers below are the single source of truth.
//
// # Module shape
//
// A plugin is a wasip1 reactor built with the standard Go toolchain:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o plugin.wasm ./myplugin
//
// It must export:
//
//	memory                                   the linear memory
//	_initialize()                            Go runtime initialisation (emitted by c-shared)
//	otpc_abi_version() -> i32                must return Version (1)
//	otpc_alloc(size i32) -> i32              a guest buffer of at least size bytes
//	otpc_handle(op i32, ptr i32, len i32) -> i64
//
// # One call
//
// The host writes the input frame (the JSON of the op's input type from
// sdk/otpc, e.g. otpc.GenerateInput) into a buffer obtained from otpc_alloc
// and calls otpc_handle(op, ptr, len), where op is an otpc.Op number
// (0 warmup, 1 generate, 2 cancel, 3 refund, 4 async refund, 5 associate,
// 6 remittance, 7 paid, 8 refund done, 9 authenticate). The result packs the
// location of the output frame in guest memory as ptr<<32 | len (see Pack and
// Unpack). The output frame's first byte is a Status:
//
//	StatusOK          the rest is the JSON of the op's output type
//	StatusError       the rest is a UTF-8 message: the plugin refused (a bug or
//	                  a condition it cannot answer); the host fails the call
//	StatusBadInput    the guest could not decode the input; the rest is a message
//	StatusUnsupported the plugin has no handler for op
//	StatusRefusal     the rest is the JSON of an otpc.ErrorResponse whose
//	                  errorDescription and errorResponseResult are the plugin's
//	                  definitive refusal (e.g. invalidFieldValue); the host
//	                  answers it with its 4xx if the member is one a plugin may
//	                  choose (otpc.PluginMayRefuseWith), otherwise it fails
//	                  the call. KV writes of a refused call are dropped.
//
// The input buffer and the output frame stay valid until the next call into
// the guest; the host copies the output out before anything else happens.
// Instances are never called concurrently.
//
// # Host imports (module "otpc")
//
// All pointers and lengths are i32 offsets into the guest's memory. Any
// out-of-range pointer or a breach of a per-call limit aborts the call: the
// host closes that instance and reports a typed error, so the guest never
// sees a partial result. The host names the KV namespace (the merchant);
// the guest never can.
//
//	log(level i32, ptr i32, len i32)                       level: LogDebug..LogError
//	kv_get(kptr i32, klen i32, vptr i32, vcap i32) -> i32  value length, or KVNotFound;
//	                                                       the value is copied only if it fits vcap,
//	                                                       so a caller may retry with a larger buffer
//	kv_put(kptr i32, klen i32, vptr i32, vlen i32) -> i32  0
//	kv_delete(kptr i32, klen i32) -> i32                   0
//	random(ptr i32, len i32)                               fills with cryptographic randomness
//	now() -> i64                                           the request's time, Unix milliseconds
//	                                                       (not the wall clock: replays see the same time)
//	config(ptr i32, cap i32) -> i32                        length of the plugin's configuration JSON,
//	                                                       copied only if it fits cap
//
// # WASI
//
// Go's wasip1 runtime imports a few wasi_snapshot_preview1 functions. The
// host offers only the functions WASIAllowed accepts, backed by a WASI with no preopened
// directories, no arguments, no environment, and stdout/stderr counted
// against the log limit. A module importing anything else (a socket, a path
// function, an unknown module) is refused at load with an error naming the
// import.
package abi

// Version is the ABI version described in this package.
const Version = 1

// Names of the guest exports and the host import module.
const (
	ExportVersion    = "otpc_abi_version"
	ExportAlloc      = "otpc_alloc"
	ExportHandle     = "otpc_handle"
	ExportInitialize = "_initialize"
	ExportMemory     = "memory"

	// HostModule is the import module name of the host functions.
	HostModule = "otpc"
	// WASIModule is the WASI preview 1 import module name.
	WASIModule = "wasi_snapshot_preview1"
)

// Host function names in HostModule.
const (
	FuncLog      = "log"
	FuncKVGet    = "kv_get"
	FuncKVPut    = "kv_put"
	FuncKVDelete = "kv_delete"
	FuncRandom   = "random"
	FuncNow      = "now"
	FuncConfig   = "config"
)

// Status is the first byte of an output frame.
type Status byte

// Output frame statuses.
const (
	StatusOK          Status = 0
	StatusError       Status = 1
	StatusBadInput    Status = 2
	StatusUnsupported Status = 3
	StatusRefusal     Status = 4
)

// String names the status.
func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusError:
		return "plugin error"
	case StatusBadInput:
		return "bad input"
	case StatusUnsupported:
		return "unsupported op"
	case StatusRefusal:
		return "refusal"
	}
	return "unknown status"
}

// Log levels passed to the log import.
const (
	LogDebug int32 = 0
	LogInfo  int32 = 1
	LogWarn  int32 = 2
	LogError int32 = 3
)

// KVNotFound is returned by kv_get when the key has no value.
const KVNotFound int32 = -1

// WASIAllowed reports whether a plugin may import the
// wasi_snapshot_preview1 function name. The allowed functions are what Go's
// wasip1 runtime and the fmt/os packages pull in; with no preopened
// directory, fd_prestat_* only ever report "no such descriptor", so nothing
// reaches a filesystem. Paths, sockets and everything else are refused.
func WASIAllowed(name string) bool {
	switch name {
	case "args_get", "args_sizes_get",
		"environ_get", "environ_sizes_get",
		"clock_time_get", "clock_res_get",
		"fd_write", "fd_close", "fd_fdstat_get", "fd_fdstat_set_flags",
		"fd_prestat_get", "fd_prestat_dir_name",
		"poll_oneoff", "proc_exit", "random_get", "sched_yield":
		return true
	}
	return false
}

// Pack combines an output frame's location into otpc_handle's result.
func Pack(ptr, length uint32) uint64 { return uint64(ptr)<<32 | uint64(length) }

// Unpack splits otpc_handle's result into the output frame's location.
func Unpack(v uint64) (ptr, length uint32) { return uint32(v >> 32), uint32(v) }

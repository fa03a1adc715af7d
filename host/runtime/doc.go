// Package runtime runs merchant plugins (WebAssembly modules speaking ABI
// version 1, see sdk/abi) in wazero sandboxes.
//
// A Manager holds, per plugin (merchant), any number of immutable loaded
// versions and one active version:
//
//	m, _ := runtime.New(runtime.Options{CacheDir: dir, CacheKey: key})
//	info, err := m.Load(ctx, "merchant-1", runtime.VersionSpec{Version: "v7", Wasm: wasm, SHA256: sum, Config: cfg})
//	err = m.Activate("merchant-1", "v7")
//	out, changes, err := m.Call(ctx, "merchant-1", otpc.OpGenerate, inputJSON, runtime.CallEnv{
//		Namespace: "merchant-1", KV: committedView, Now: requestTime})
//
// Load verifies the sha256, compiles (machine code from a disk cache whose
// entries are authenticated with HMAC, see cache.go), refuses modules with
// imports outside the "otpc" host module and a small WASI subset or with
// missing/mistyped exports, and warms a bounded pool of instances, each
// initialised and called once with otpc.OpWarmup. A refused module yields a
// *LoadError naming the reason.
//
// Each version has its own wazero runtime with a linear-memory cap and
// close-on-context-done, so a call is bounded by the caller's context and
// the version's CallTimeout. Per-call limits also bound input, output, log
// bytes (plugin log plus stdout/stderr), KV operations and key/value sizes.
// Any trap, timeout or limit breach returns a *CallError (Kind Trap,
// Timeout, Limit, ABI or Host) and the instance is closed, never reused;
// the next call gets a fresh one. A well-formed refusal from the plugin is
// KindPluginError and keeps the instance; the gateway answers all of them
// with a retryable error. A refusal frame (abi.StatusRefusal) is
// KindRefusal: an answer the caller validates (host/plugincall), also
// keeping the instance.
//
// KV: a call reads committed state through the caller's KVReader plus its
// own writes, and returns its writes as a ChangeSet for the caller to commit
// in the same transaction as the request's record. The namespace is the
// caller's choice; the guest cannot name one.
//
// Versions are reference counted: Unload (or Close) lets calls in flight
// finish and closes the version with the last one, without finalizers.
//
// # Cost of interruptibility
//
// wazero can only stop compiled guest code that runs away if the module is
// compiled with close-on-context-done, which inserts a call to a check
// trampoline at every wasm loop header. Go's wasm code has a loop in nearly
// every function (its resume-point dispatch) and in every byte loop
// (runtime memequal included), so a Go guest pays for it heavily:
// BenchmarkCall1KiB measured a 1 KiB generate call (decode, logic, encode
// with the sdk/otpc codec) at about 62 us with the checks and 13-22 us
// without, against 1.3 us natively; with encoding/json instead of the codec
// it was about 530 us and 65 us. The checks stay on: an unstoppable plugin
// is worse than a slower one. Guest code that branches and loops less per
// byte is what makes calls cheaper: after sdk/otpc's codec moved to 64-byte
// string steps, word-wise key matching and straight-line integers, the same
// call measures about 32 us with the checks (1,536 → 451 checks per call).
package runtime

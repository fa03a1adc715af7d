package runtime_test

// A tiny WebAssembly binary writer for the load-refusal tests: modules that
// the Go toolchain will not produce (wrong signatures, stray imports) are
// cheaper to write by hand than to build.

const (
	wI32 = 0x7f
	wI64 = 0x7e
)

type wImport struct {
	module, name    string
	params, results []byte
}

type wFunc struct {
	export          string // "" = not exported
	params, results []byte
	body            []byte // instructions, without the final end
}

func uleb(v uint64) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}

func sleb(v int64) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func wName(s string) []byte { return append(uleb(uint64(len(s))), s...) }

func wVec(items [][]byte) []byte {
	out := uleb(uint64(len(items)))
	for _, it := range items {
		out = append(out, it...)
	}
	return out
}

func wSection(id byte, body []byte) []byte {
	return append(append([]byte{id}, uleb(uint64(len(body)))...), body...)
}

func wType(params, results []byte) []byte {
	t := []byte{0x60}
	t = append(t, uleb(uint64(len(params)))...)
	t = append(t, params...)
	t = append(t, uleb(uint64(len(results)))...)
	return append(t, results...)
}

// i32c and i64c are constant instructions.
func i32c(v int32) []byte { return append([]byte{0x41}, sleb(int64(v))...) }
func i64c(v int64) []byte { return append([]byte{0x42}, sleb(v)...) }

// buildWasm assembles a module with one type per function, an exported
// memory of one page (if memory) and the given imports and functions.
func buildWasm(imports []wImport, funcs []wFunc, memory bool) []byte {
	var types, imps, fsec, exps, code [][]byte
	for _, im := range imports {
		imps = append(imps, append(append(wName(im.module), wName(im.name)...), append([]byte{0x00}, uleb(uint64(len(types)))...)...))
		types = append(types, wType(im.params, im.results))
	}
	for i, f := range funcs {
		fsec = append(fsec, uleb(uint64(len(types))))
		types = append(types, wType(f.params, f.results))
		if f.export != "" {
			exps = append(exps, append(wName(f.export), append([]byte{0x00}, uleb(uint64(len(imports)+i))...)...))
		}
		body := append([]byte{0x00}, f.body...) // no locals
		body = append(body, 0x0b)
		code = append(code, append(uleb(uint64(len(body))), body...))
	}
	if memory {
		exps = append(exps, append(wName("memory"), 0x02, 0x00))
	}
	out := []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}
	out = append(out, wSection(1, wVec(types))...)
	if len(imps) > 0 {
		out = append(out, wSection(2, wVec(imps))...)
	}
	out = append(out, wSection(3, wVec(fsec))...)
	if memory {
		out = append(out, wSection(5, wVec([][]byte{{0x00, 0x01}}))...)
	}
	out = append(out, wSection(7, wVec(exps))...)
	out = append(out, wSection(10, wVec(code))...)
	return out
}

// abiFuncs is a minimal, valid ABI v1 guest: alloc returns 1024 and handle
// returns a one-byte "ok" frame at 2048 (memory is zeroed).
func abiFuncs(version int32) []wFunc {
	return []wFunc{
		{export: "_initialize"},
		{export: "otpc_abi_version", results: []byte{wI32}, body: i32c(version)},
		{export: "otpc_alloc", params: []byte{wI32}, results: []byte{wI32}, body: i32c(1024)},
		{export: "otpc_handle", params: []byte{wI32, wI32, wI32}, results: []byte{wI64}, body: i64c(2048<<32 | 1)},
	}
}

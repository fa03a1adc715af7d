//go:build wasm

package jsonx

// sharedMax is the largest input whose unescaped strings String returns as
// substrings of one shared copy of the input: one allocation per message
// instead of one per string, because in a wasm guest each allocation costs
// dozens of interrupt checks. It bounds what a retained string can keep
// alive. Natively separate allocations are cheaper (shared_other.go).
const sharedMax = 16 << 10

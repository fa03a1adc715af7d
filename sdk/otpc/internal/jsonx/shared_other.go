//go:build !wasm

package jsonx

// sharedMax is 0 natively: one allocation per string is cheaper there than
// copying the whole input (see shared_wasm.go).
const sharedMax = 0

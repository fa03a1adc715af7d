// Package jsonx is the small, strict JSON scanner and writer behind the
// generated codecs of package otpc. It avoids encoding/json and reflect so
// that WebAssembly plugins stay small and fast.
//
// Decoding follows RFC 8259 strictly (no trailing data, no invalid escapes,
// no invalid UTF-8 or lone surrogates, no control characters in strings, no
// leading zeros) and adds limits: nesting depth at most MaxDepth, duplicate
// object keys rejected, integers must fit their Go type. Writing matches
// encoding/json byte for byte (including its HTML-safe escaping), so values
// marshalled by either route are identical.
//
// Performance model: the code is shaped for Go compiled to WebAssembly and
// run by wazero with close-on-context-done, where every loop iteration and
// every taken branch between basic blocks (Go's wasm backend jumps through
// a function-wide loop header) costs an interrupt check, about as much as
// 10-50 ordinary instructions. Hence strings, keys and integers are scanned
// 8 to 64 bytes at a time with word arithmetic and exact first-hit masks,
// short keys and values take straight-line fast paths, keys are matched by
// hash and word compares instead of runtime.memequal (a byte loop), the
// common case is written as the body of an if ending in return or continue
// (which the compiler lays out as the fall-through), and in wasm the
// strings of one input share one allocation (shared_wasm.go).
package jsonx

import "errors"

// ErrMalformed matches (errors.Is) every decoding error of this package.
var ErrMalformed = errors.New("malformed JSON")

// SyntaxError reports input that is not JSON, or exceeds a structural limit
// (nesting depth).
type SyntaxError struct {
	// Offset is the byte offset in the input where the problem was found.
	Offset int64
	// Msg describes the problem.
	Msg string
}

func (e *SyntaxError) Error() string {
	return "otpc: invalid JSON at offset " + itoa(e.Offset) + ": " + e.Msg
}

// Is makes errors.Is(err, ErrMalformed) true.
func (e *SyntaxError) Is(target error) bool { return target == ErrMalformed }

// TypeError reports valid JSON that does not fit the message: a value of the
// wrong JSON type, an integer out of range, or a duplicate key.
type TypeError struct {
	// Offset is the byte offset of the offending value or key.
	Offset int64
	// Field is the JSON key whose value was rejected, if known.
	Field string
	// Msg describes the problem.
	Msg string
}

func (e *TypeError) Error() string {
	s := "otpc: bad JSON value at offset " + itoa(e.Offset)
	if e.Field != "" {
		s += " (field " + quoteASCII(e.Field) + ")"
	}
	return s + ": " + e.Msg
}

// Is makes errors.Is(err, ErrMalformed) true.
func (e *TypeError) Is(target error) bool { return target == ErrMalformed }

func itoa(v int64) string {
	var b [24]byte
	return string(AppendInt(b[:0], v))
}

// quoteASCII quotes s for an error message, replacing non-printable bytes,
// so hostile keys cannot inject control characters into logs.
func quoteASCII(s string) string {
	const max = 64
	b := make([]byte, 0, len(s)+2)
	b = append(b, '"')
	for i := 0; i < len(s) && i < max; i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			c = '?'
		}
		b = append(b, c)
	}
	if len(s) > max {
		b = append(b, "..."...)
	}
	return string(append(b, '"'))
}

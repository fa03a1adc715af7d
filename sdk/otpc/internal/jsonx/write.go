package jsonx

import (
	"encoding/binary"
	"math/bits"
	"unicode/utf8"
)

const hex = "0123456789abcdef"

// safe[c] is true for ASCII bytes that encoding/json writes unescaped
// (HTML-safe mode: <, > and & are escaped).
var safe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// AppendString appends s as a JSON string, escaped exactly as
// encoding/json.Marshal does: invalid UTF-8 becomes \ufffd, <, >, &, U+2028
// and U+2029 are \u-escaped.
func AppendString(dst []byte, s string) []byte {
	// Common case: nothing to escape; one capacity check and two copies
	// (in wasm each append costs a taken branch, hence a check).
	// The fast path is the then-branch ending in a return: the compiler
	// lays that out as the fall-through.
	if n, m := len(dst), len(dst)+len(s)+2; safePrefix(s, 0) == len(s) && m <= cap(dst) {
		dst = dst[:m]
		dst[n] = '"'
		copy(dst[n+1:], s)
		dst[m-1] = '"'
		return dst
	}
	return appendString(dst, s)
}

// appendString is AppendString with escapes or growth.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	i := 0
	for {
		// Skip runs of safe ASCII bytes with word arithmetic and land on
		// the first byte that needs a look (see Decoder.span); the code
		// below handles that byte.
		i = safePrefix(s, i)
		if i >= len(s) {
			break
		}
		if c := s[i]; c < utf8.RuneSelf {
			if safe[c] { // unreachable: the masks are exact
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// le64 loads s[i:i+8] as a little-endian word (the compiler combines the
// byte loads into one).
func le64[T string | []byte](s T, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// safePrefix returns the index of the first byte of s at or after i that
// may need escaping, or len(s).
func safePrefix(s string, i int) int {
	for i+64 <= len(s) {
		t := s[i : i+64]
		m0 := unsafeLanes(le64(t, 0))
		if m0 != 0 {
			return i + bits.TrailingZeros64(m0)>>3
		}
		m1, m2, m3 := unsafeLanes(le64(t, 8)), unsafeLanes(le64(t, 16)), unsafeLanes(le64(t, 24))
		m4, m5, m6 := unsafeLanes(le64(t, 32)), unsafeLanes(le64(t, 40)), unsafeLanes(le64(t, 48))
		m7 := unsafeLanes(le64(t, 56))
		if m1|m2|m3|m4|m5|m6|m7 != 0 {
			return i + leadingClear(0, m1, m2, m3, m4, m5, m6, m7)
		}
		i += 64
	}
	b := plain64
	copy(b[:], s[i:])
	n := leadingClear(unsafeLanes(le64(b[:], 0)), unsafeLanes(le64(b[:], 8)), unsafeLanes(le64(b[:], 16)),
		unsafeLanes(le64(b[:], 24)), unsafeLanes(le64(b[:], 32)), unsafeLanes(le64(b[:], 40)),
		unsafeLanes(le64(b[:], 48)), unsafeLanes(le64(b[:], 56)))
	return min(i+n, len(s))
}

// unsafeLanes returns x (eight string bytes, little-endian) with the high
// bit set in the lanes that may need escaping: >= 0x80, < 0x20, or one of
// " \\ < > &. The lowest set bit is exact (see special).
func unsafeLanes(x uint64) uint64 {
	q := x ^ (lsb * '"')
	b := x ^ (lsb * '\\')
	l := x ^ (lsb * '<')
	g := x ^ (lsb * '>')
	a := x ^ (lsb * '&')
	t := x | (x-lsb*0x20)&^x | (q-lsb)&^q | (b-lsb)&^b | (l-lsb)&^l | (g-lsb)&^g | (a-lsb)&^a
	return t & msb
}

// AppendInt appends v as a JSON number. It writes all digits with word
// arithmetic, without a loop per digit (see digitLanes).
func AppendInt(dst []byte, v int64) []byte {
	neg := uint64(v) >> 63
	u := (uint64(v) ^ -neg) + neg // |v|, also right for math.MinInt64
	rest := u % 1e16
	d0, d1, d2 := digitLanes(u/1e16), digitLanes(rest/1e8), digitLanes(rest%1e8)
	// Leading zero digits: the lanes before the first nonzero one.
	l0 := lanesBelow((d0 + lsb*0x7F) & msb)
	l1 := lanesBelow((d1+lsb*0x7F)&msb) & allOnesIfFull(l0)
	l2 := lanesBelow((d2+lsb*0x7F)&msb) & allOnesIfFull(l1)
	zeros := min((bits.OnesCount64(l0)+bits.OnesCount64(l1)+bits.OnesCount64(l2))>>3, 23)
	var b [25]byte
	binary.LittleEndian.PutUint64(b[1:], d0+lsb*'0')
	binary.LittleEndian.PutUint64(b[9:], d1+lsb*'0')
	binary.LittleEndian.PutUint64(b[17:], d2+lsb*'0')
	b[zeros] = '-' // kept only for negative numbers
	return append(dst, b[1+zeros-int(neg):]...)
}

// digitLanes returns the eight decimal digits of x (< 1e8) as byte lanes
// of a little-endian word, most significant first, by splitting x into
// halves, quarters and single digits in parallel lanes; the divisions by
// 100 and 10 are multiply-shifts exact for the lane ranges (tested).
func digitLanes(x uint64) uint64 {
	w := x/10000 | (x%10000)<<32
	q := (w * 10486 >> 20) & 0x0000007F0000007F // /100 in 32-bit lanes
	w = q | (w-q*100)<<16
	q = (w * 103 >> 10) & 0x000F000F000F000F // /10 in 16-bit lanes
	return q | (w-q*10)<<8
}

// AppendInt64String appends v as a JSON string holding a decimal integer,
// the proto3 JSON form of int64.
func AppendInt64String(dst []byte, v int64) []byte {
	dst = append(dst, '"')
	dst = AppendInt(dst, v)
	return append(dst, '"')
}

// AppendBool appends true or false.
func AppendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, "true"...)
	}
	return append(dst, "false"...)
}

// Key appends a comma if the object that started at offset start already
// has a member, then the pre-quoted key with its colon (e.g. `"a":`).
func Key(dst []byte, start int, quotedKey string) []byte {
	if len(dst) > start {
		dst = append(dst, ',')
	}
	return append(dst, quotedKey...)
}

package jsonx

import (
	"encoding/binary"
	"math/bits"
	"unicode/utf8"
)

// MaxDepth is the deepest nesting of objects and arrays a Decoder accepts.
// OTPC messages nest about 6 levels; the limit only guards the stack.
const MaxDepth = 64

// linearKeys is how many unknown keys of one object are compared linearly
// before the Decoder switches that object to a map (bounds hostile input
// with many keys to O(n)).
const linearKeys = 16

type span struct{ off, n int32 }

// Decoder reads one JSON value from a byte slice; call Reset before use.
// Errors are sticky: after the first error every method
// returns zero values and Err returns that error, so generated code can
// check once at the end.
type Decoder struct {
	data  []byte
	pos   int
	depth int
	err   error
	// The current object key is data[koff:koff+klen], or key (in buf)
	// if kesc: the fast path stores integers only, which need no write
	// barrier (a branch in wasm).
	key        []byte
	koff, klen int
	kesc       bool
	buf        []byte // scratch for unescaping

	// The current key as words for generated matchers (see KeyHash and
	// KeyIs): its first 32 bytes zero-padded and a hash of all of it.
	kw    [4]uint64
	khash uint64
	vflag uint64 // nonzero: Field must look at the value (see NextField)
	nmem  int    // 0 before the first member of the innermost open object, else 1

	// sdata is one string copy of data shared by the strings String
	// returns if len(data) <= shareMax (see sharedMax), made on first use.
	sdata    string
	shareMax int

	// Duplicate detection for keys the caller does not know (known keys
	// use a bit set in the caller). Keys of the object open at depth d are
	// spans[mark[d]:], stored in arena; past linearKeys they move to big[d].
	arena []byte
	spans []span
	mark  [MaxDepth + 1]int32
	amark [MaxDepth + 1]int32
	big   map[int]map[string]struct{}
}

// Reset prepares d to decode data.
func (d *Decoder) Reset(data []byte) {
	*d = Decoder{data: data, buf: d.buf[:0], arena: d.arena[:0], spans: d.spans[:0], shareMax: sharedMax}
}

// Err returns the first error, or nil.
func (d *Decoder) Err() error { return d.err }

func (d *Decoder) syntax(msg string) {
	if d.err == nil {
		d.err = &SyntaxError{Offset: int64(d.pos), Msg: msg}
	}
}

// typeErr records a TypeError; the last key read names the member whose
// value is wrong (for array elements: the array's key).
func (d *Decoder) typeErr(off int, msg string) {
	if d.err == nil {
		d.err = &TypeError{Offset: int64(off), Field: string(d.Key()), Msg: msg}
	}
}

// Recover turns a panic inside decoding into a SyntaxError stored in *err.
// Use it as `defer d.Recover(&err)` at the decoding boundary; it is a
// safety net, the decoder is not expected to panic.
func (d *Decoder) Recover(err *error) {
	if r := recover(); r != nil {
		*err = &SyntaxError{Offset: int64(d.pos), Msg: "internal decoder error"}
	}
}

// Finish checks that only whitespace follows the value and returns Err.
func (d *Decoder) Finish() error {
	if d.err == nil {
		d.ws()
		if d.pos != len(d.data) {
			d.syntax("unexpected data after top-level value")
		}
	}
	return d.err
}

func (d *Decoder) ws() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// peek skips whitespace and returns the next byte, or 0 at the end.
func (d *Decoder) peek() byte {
	// Compact JSON has no whitespace: test for it before the loop.
	if d.pos < len(d.data) && d.data[d.pos] > ' ' {
		return d.data[d.pos]
	}
	d.ws()
	if d.pos < len(d.data) {
		return d.data[d.pos]
	}
	return 0
}

func (d *Decoder) unexpected(want string) {
	if d.pos >= len(d.data) {
		d.syntax("unexpected end of input, want " + want)
		return
	}
	c := d.data[d.pos]
	switch c {
	case '{', '[', '"', 't', 'f', 'n', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		// A well-formed value of the wrong type: skip it to tell a type
		// mistake from garbage.
		start := d.pos
		d.skipValue()
		if d.err == nil {
			d.typeErr(start, "want "+want)
		}
	default:
		d.syntax("invalid character " + quoteASCII(string(c)) + ", want " + want)
	}
}

// Null consumes a JSON null if one comes next and reports whether it did.
func (d *Decoder) Null() bool {
	if d.err != nil || d.peek() != 'n' {
		return false
	}
	d.literal("null")
	return d.err == nil
}

func (d *Decoder) literal(lit string) {
	if len(d.data)-d.pos < len(lit) || string(d.data[d.pos:d.pos+len(lit)]) != lit {
		d.syntax("invalid literal")
		return
	}
	d.pos += len(lit)
}

func (d *Decoder) push() bool {
	if d.depth >= MaxDepth {
		d.syntax("nesting deeper than " + itoa(MaxDepth))
		return false
	}
	d.depth++
	d.mark[d.depth] = int32(len(d.spans))
	d.amark[d.depth] = int32(len(d.arena))
	return true
}

func (d *Decoder) pop() {
	d.nmem = 1
	d.spans = d.spans[:d.mark[d.depth]]
	d.arena = d.arena[:d.amark[d.depth]]
	if d.big != nil {
		delete(d.big, d.depth)
	}
	d.depth--
}

// BeginObject consumes '{' and reports whether an object was opened. If the
// next value is not an object it records an error.
func (d *Decoder) BeginObject() bool {
	// Fast path: '{' right here (compact JSON), depth to spare, no
	// calls.
	if p, dep := d.pos, d.depth; d.err == nil && p < len(d.data) && d.data[p] == '{' && dep < MaxDepth {
		d.mark[dep+1] = int32(len(d.spans))
		d.amark[dep+1] = int32(len(d.arena))
		d.depth = dep + 1
		d.pos = p + 1
		d.nmem = 0
		return true
	}
	return d.beginObject()
}

func (d *Decoder) beginObject() bool {
	if d.err != nil {
		return false
	}
	if d.peek() != '{' {
		d.unexpected("object")
		return false
	}
	if !d.push() {
		return false
	}
	d.pos++
	d.nmem = 0
	return true
}

// NextMember is NextField for the loop `for d.NextMember() { ... }`: the
// decoder counts the members itself, so the loop needs no post statement
// and a `continue` jumps straight back (one taken branch less per member
// in wasm).
func (d *Decoder) NextMember() bool { return d.NextField(d.nmem) }

// NextField advances to the i-th member (i counts from 0) of the object
// opened by BeginObject. It returns false after consuming the closing '}'
// or on error; otherwise the member's key is available from Key and the
// reader stands before the member's value, which the caller must consume.
func (d *Decoder) NextField(i int) bool {
	// Fast path, straight-line code because every taken branch costs an
	// interrupt check in a wasm guest: compact JSON (`"key":` or `,"key":`)
	// with a plain ASCII key of at most 31 bytes, not near the end of the
	// input.
	data := d.data
	p := d.pos
	// After the first member a comma comes first (branch-free: i >= 0).
	comma := int(uint(-i) >> 63)
	want := byte('"' + (','-'"')*comma)
	p += comma
	if d.err == nil && p+35 <= len(data) && data[d.pos] == want && data[p] == '"' {
		b := data[p+1 : p+33]
		w0 := binary.LittleEndian.Uint64(b[0:])
		w1 := binary.LittleEndian.Uint64(b[8:])
		w2 := binary.LittleEndian.Uint64(b[16:])
		w3 := binary.LittleEndian.Uint64(b[24:])
		l0, l1, l2, l3, n := plainPrefix(w0, w1, w2, w3)
		// n < 32 and the special byte is the closing quote, followed
		// by the colon (else: escapes, non-ASCII, longer key, spaces).
		if n < 32 && data[p+1+n] == '"' && data[p+2+n] == ':' {
			d.koff, d.klen, d.kesc = p+1, n, false
			d.kw = [4]uint64{w0 & l0, w1 & l1, w2 & l2, w3 & l3}
			d.khash = hashWords(d.kw, n)
			p += n + 3
			d.pos = p
			// Field's fast path needs a value that is neither null nor
			// after whitespace: flag the other cases for its slow path.
			c := uint64(data[p])
			d.vflag = (c-0x21)>>63 | ((c^'n')-1)>>63
			d.nmem = 1
			return true
		}
	}
	// The end of a compact object, inline too (pop without big maps).
	if d.err == nil && d.pos < len(data) && data[d.pos] == '}' && d.big == nil {
		d.pos++
		d.spans = d.spans[:d.mark[d.depth]]
		d.arena = d.arena[:d.amark[d.depth]]
		d.depth--
		d.nmem = 1 // back inside a member of the parent (if an object)
		return false
	}
	return d.nextField(i)
}

// plainPrefix finds the plain string bytes at the start of w0..w3 (32
// bytes, little-endian words): lj selects them in word j and n counts them
// (32 if there is no special byte). Straight-line code: no interrupt check.
func plainPrefix(w0, w1, w2, w3 uint64) (l0, l1, l2, l3 uint64, n int) {
	l0 = lanesBelow(special(w0))
	l1 = lanesBelow(special(w1)) & allOnesIfFull(l0)
	l2 = lanesBelow(special(w2)) & allOnesIfFull(l1)
	l3 = lanesBelow(special(w3)) & allOnesIfFull(l2)
	n = (bits.OnesCount64(l0) + bits.OnesCount64(l1) + bits.OnesCount64(l2) + bits.OnesCount64(l3)) >> 3
	return l0, l1, l2, l3, n
}

// plain64 is 64 plain string bytes, padding for the last bytes of input.
var plain64 = [64]byte{'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a',
	'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a',
	'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a',
	'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a'}

// leadingClear64 returns how many bytes of b precede the first '"',
// '\\', control character or non-ASCII byte; 64 if none. b is passed by
// value so the function has no bounds checks: a Go function without
// branches has no loop header in wasm, hence no interrupt check per call.
func leadingClear64(b [64]byte) int {
	return leadingClear(special(binary.LittleEndian.Uint64(b[0:])), special(binary.LittleEndian.Uint64(b[8:])),
		special(binary.LittleEndian.Uint64(b[16:])), special(binary.LittleEndian.Uint64(b[24:])),
		special(binary.LittleEndian.Uint64(b[32:])), special(binary.LittleEndian.Uint64(b[40:])),
		special(binary.LittleEndian.Uint64(b[48:])), special(binary.LittleEndian.Uint64(b[56:])))
}

// leadingClear returns how many bytes precede the first flagged lane of
// m0..m7 (special or unsafeLanes results for 64 consecutive bytes), 64 if
// none. Straight-line code: no interrupt check.
func leadingClear(m0, m1, m2, m3, m4, m5, m6, m7 uint64) int {
	l0 := lanesBelow(m0)
	l1 := lanesBelow(m1) & allOnesIfFull(l0)
	l2 := lanesBelow(m2) & allOnesIfFull(l1)
	l3 := lanesBelow(m3) & allOnesIfFull(l2)
	l4 := lanesBelow(m4) & allOnesIfFull(l3)
	l5 := lanesBelow(m5) & allOnesIfFull(l4)
	l6 := lanesBelow(m6) & allOnesIfFull(l5)
	l7 := lanesBelow(m7) & allOnesIfFull(l6)
	return (bits.OnesCount64(l0) + bits.OnesCount64(l1) + bits.OnesCount64(l2) + bits.OnesCount64(l3) +
		bits.OnesCount64(l4) + bits.OnesCount64(l5) + bits.OnesCount64(l6) + bits.OnesCount64(l7)) >> 3
}

// lanesBelow returns the lanes below the lowest flagged lane of m (a
// special result): all ones when m is 0.
func lanesBelow(m uint64) uint64 { return (m&-m)>>7 - 1 }

// allOnesIfFull returns all ones if l (a lanesBelow result) selects the
// whole word, else 0.
func allOnesIfFull(l uint64) uint64 { return uint64(int64(l) >> 63) }

// hashWords hashes the first 32 bytes of a key (zero-padded words) and its
// length for KeyHash.
func hashWords(kw [4]uint64, n int) uint64 {
	h := kw[0] * hashMul
	h = (h ^ kw[1]) * hashMul
	h = (h ^ kw[2]) * hashMul
	h = (h ^ kw[3]) * hashMul
	h = (h ^ uint64(n)) * hashMul
	return h ^ h>>29
}

// nextField is NextField for any input: whitespace, escaped or long keys,
// the end of the object, errors.
func (d *Decoder) nextField(i int) bool {
	d.vflag = 1
	if d.err != nil {
		return false
	}
	// Near the end of input: NextField's fast path on a zero-padded copy
	// (zero is a control character: scans stop there).
	if p := d.pos; len(d.data)-p < 36 && p < len(d.data) {
		var t [48]byte
		copy(t[:], d.data[p:])
		comma := int(uint(-i) >> 63)
		want := byte('"' + (','-'"')*comma)
		if t[0] == want && t[comma] == '"' {
			b := t[comma+1 : comma+33]
			w0 := binary.LittleEndian.Uint64(b[0:])
			w1 := binary.LittleEndian.Uint64(b[8:])
			w2 := binary.LittleEndian.Uint64(b[16:])
			w3 := binary.LittleEndian.Uint64(b[24:])
			l0, l1, l2, l3, n := plainPrefix(w0, w1, w2, w3)
			if n < 32 && t[comma+1+n] == '"' && t[comma+2+n] == ':' {
				d.koff, d.klen, d.kesc = p+comma+1, n, false
				d.kw = [4]uint64{w0 & l0, w1 & l1, w2 & l2, w3 & l3}
				d.khash = hashWords(d.kw, n)
				d.pos = p + comma + n + 3
				c := uint64(t[comma+n+3])
				d.vflag = (c-0x21)>>63 | ((c^'n')-1)>>63
				d.nmem = 1
				return true
			}
		}
	}
	c := d.peek()
	if c == '}' && i == 0 {
		d.pos++
		d.pop()
		return false
	}
	if i > 0 {
		switch c {
		case '}':
			d.pos++
			d.pop()
			return false
		case ',':
			d.pos++
			c = d.peek()
		default:
			d.syntax("want ',' or '}' after object member")
			return false
		}
	}
	if c != '"' {
		d.syntax("want string key")
		return false
	}
	d.key = d.str()
	if d.err != nil {
		return false
	}
	d.klen, d.kesc = len(d.key), true
	d.kw, d.khash = keyWords(d.key)
	if d.peek() != ':' {
		d.syntax("want ':' after object key")
		return false
	}
	d.pos++
	d.nmem = 1
	return true
}

const (
	lsb     = 0x0101010101010101
	msb     = 0x8080808080808080
	hashMul = 0x9E3779B97F4A7C15 // odd, from the golden ratio
)

// special returns x (eight string bytes, little-endian) with the high bit
// set in the lanes holding '"', '\\', a control character or a byte >=
// 0x80. Borrows can set bits above a flagged lane, never below, so the
// lowest set bit (bits.TrailingZeros64) names the first such byte exactly.
func special(x uint64) uint64 {
	q := x ^ (lsb * '"')
	s := x ^ (lsb * '\\')
	return (x | (x-lsb*0x20)&^x | (q-lsb)&^q | (s-lsb)&^s) & msb
}

// keyWords returns the zero-padded first 32 bytes of key as little-endian
// words and its hash, as NextField's fast path computes them.
func keyWords(key []byte) (kw [4]uint64, h uint64) {
	var b [32]byte
	copy(b[:], key)
	kw = [4]uint64{binary.LittleEndian.Uint64(b[0:]), binary.LittleEndian.Uint64(b[8:]),
		binary.LittleEndian.Uint64(b[16:]), binary.LittleEndian.Uint64(b[24:])}
	return kw, hashWords(kw, len(key))
}

// KeyWords returns what KeyIs compares and KeyHash returns for key, for
// code generators that match keys by words instead of string comparisons
// (runtime.memequal loops byte by byte in wasm).
func KeyWords(key string) (w0, w1, w2, w3, hash uint64) {
	kw, h := keyWords([]byte(key))
	return kw[0], kw[1], kw[2], kw[3], h
}

// KeyHash returns a hash of the current key (see KeyWords). Generated code
// switches on it and confirms the match with KeyIs.
func (d *Decoder) KeyHash() uint64 { return d.khash }

// KeyIs reports whether the current key has n bytes and its first 32 bytes
// are the words w0..w3 (see KeyWords). Keys longer than 32 bytes also need
// their tail compared. It is one comparison, not a chain of branches.
func (d *Decoder) KeyIs(n int, w0, w1, w2, w3 uint64) bool {
	return uint64(d.klen^n)|(d.kw[0]^w0)|(d.kw[1]^w1)|(d.kw[2]^w2)|(d.kw[3]^w3) == 0
}

// Key returns the current member's unescaped key. It is valid until the
// next call on d.
func (d *Decoder) Key() []byte {
	if d.kesc {
		return d.key
	}
	return d.data[d.koff : d.koff+d.klen]
}

// ValueFlags is nonzero unless NextField saw a value that is neither null
// nor after whitespace. Generated code decodes a known member's value
// directly when neither this nor the member's duplicate bit is set, and
// asks Field otherwise (a test written out in generated code, so that the
// common case falls through without a branch in wasm).
func (d *Decoder) ValueFlags() uint64 { return d.vflag }

// Field is called by generated code for a known key, after it marked the
// key as seen; dup is nonzero if the key had been seen before. It rejects
// a duplicate key and reports whether a value must be decoded (false for
// null, which counts as absent, or on error).
func (d *Decoder) Field(dup uint64) bool {
	if d.err != nil {
		return false
	}
	if dup != 0 {
		d.err = &TypeError{Offset: int64(d.pos), Field: string(d.Key()), Msg: "duplicate key"}
		return false
	}
	return !d.Null()
}

// Unknown records the current key as seen (rejecting duplicates) and skips
// its value. Unknown members are ignored for forward compatibility.
func (d *Decoder) Unknown() {
	if d.err != nil {
		return
	}
	if d.dupUnknown(d.Key()) {
		d.err = &TypeError{Offset: int64(d.pos), Field: string(d.Key()), Msg: "duplicate key"}
		return
	}
	d.skipValue()
}

func (d *Decoder) dupUnknown(key []byte) bool {
	if m := d.big[d.depth]; m != nil {
		if _, ok := m[string(key)]; ok {
			return true
		}
		m[string(key)] = struct{}{}
		return false
	}
	keys := d.spans[d.mark[d.depth]:]
	for _, s := range keys {
		if string(d.arena[s.off:s.off+s.n]) == string(key) {
			return true
		}
	}
	if len(keys) >= linearKeys {
		m := make(map[string]struct{}, 2*linearKeys)
		for _, s := range keys {
			m[string(d.arena[s.off:s.off+s.n])] = struct{}{}
		}
		m[string(key)] = struct{}{}
		if d.big == nil {
			d.big = make(map[int]map[string]struct{})
		}
		d.big[d.depth] = m
		d.spans = d.spans[:d.mark[d.depth]]
		d.arena = d.arena[:d.amark[d.depth]]
		return false
	}
	d.spans = append(d.spans, span{off: int32(len(d.arena)), n: int32(len(key))})
	d.arena = append(d.arena, key...)
	return false
}

// BeginArray consumes '[' and reports whether an array was opened.
func (d *Decoder) BeginArray() bool {
	if d.err != nil {
		return false
	}
	if d.peek() != '[' {
		d.unexpected("array")
		return false
	}
	if !d.push() {
		return false
	}
	d.pos++
	return true
}

// NextElem advances to the i-th element (from 0) of the array opened by
// BeginArray; it returns false after consuming the closing ']' or on error.
func (d *Decoder) NextElem(i int) bool {
	if d.err != nil {
		return false
	}
	c := d.peek()
	if c == ']' {
		d.pos++
		d.pop()
		return false
	}
	if i > 0 {
		if c != ',' {
			d.syntax("want ',' or ']' after array element")
			return false
		}
		d.pos++
		if d.peek() == ']' {
			d.syntax("trailing comma in array")
			return false
		}
	}
	return true
}

// Skip consumes and validates one value of any type.
func (d *Decoder) Skip() {
	if d.err == nil {
		d.skipValue()
	}
}

func (d *Decoder) skipValue() {
	switch c := d.peek(); c {
	case '{':
		if !d.push() {
			return
		}
		d.pos++
		for i := 0; d.NextField(i); i++ {
			d.Unknown()
		}
	case '[':
		if !d.push() {
			return
		}
		d.pos++
		for i := 0; d.NextElem(i); i++ {
			d.skipValue()
		}
	case '"':
		d.str()
	case 't':
		d.literal("true")
	case 'f':
		d.literal("false")
	case 'n':
		d.literal("null")
	default:
		if c == '-' || (c >= '0' && c <= '9') {
			d.number()
			return
		}
		d.unexpectedByte()
	}
}

func (d *Decoder) unexpectedByte() {
	if d.pos >= len(d.data) {
		d.syntax("unexpected end of input")
		return
	}
	d.syntax("invalid character " + quoteASCII(string(d.data[d.pos])))
}

// number scans a JSON number and reports whether it is an integer (no
// fraction or exponent). It returns the number's bytes.
func (d *Decoder) number() (num []byte, integer bool) {
	start := d.pos
	p := d.pos
	data := d.data
	if p < len(data) && data[p] == '-' {
		p++
	}
	switch {
	case p < len(data) && data[p] == '0':
		p++
	case p < len(data) && data[p] >= '1' && data[p] <= '9':
		for p < len(data) && data[p] >= '0' && data[p] <= '9' {
			p++
		}
	default:
		d.pos = p
		d.syntax("invalid number")
		return nil, false
	}
	integer = true
	if p < len(data) && data[p] == '.' {
		integer = false
		p++
		q := p
		for p < len(data) && data[p] >= '0' && data[p] <= '9' {
			p++
		}
		if p == q {
			d.pos = p
			d.syntax("invalid number: no digits after '.'")
			return nil, false
		}
	}
	if p < len(data) && (data[p] == 'e' || data[p] == 'E') {
		integer = false
		p++
		if p < len(data) && (data[p] == '+' || data[p] == '-') {
			p++
		}
		q := p
		for p < len(data) && data[p] >= '0' && data[p] <= '9' {
			p++
		}
		if p == q {
			d.pos = p
			d.syntax("invalid number: no digits in exponent")
			return nil, false
		}
	}
	// A digit right after "0" (leading zero) lands here as trailing garbage
	// and is rejected by the caller's next structural check; reject it now
	// for a clearer message.
	if p < len(data) && data[p] >= '0' && data[p] <= '9' {
		d.pos = p
		d.syntax("invalid number: leading zero")
		return nil, false
	}
	d.pos = p
	return data[start:p], integer
}

// String decodes a JSON string value. In WebAssembly, for inputs up to
// 16 KiB, the result may share memory with the other strings of the same
// input (never with the input slice itself); see sharedMax.
func (d *Decoder) String() string {
	// Fast path without loops: a string of at most 31 plain bytes.
	data := d.data
	p := d.pos
	if d.err == nil && p+34 <= len(data) && data[p] == '"' {
		b := data[p+1 : p+33]
		_, _, _, _, n := plainPrefix(binary.LittleEndian.Uint64(b[0:]), binary.LittleEndian.Uint64(b[8:]),
			binary.LittleEndian.Uint64(b[16:]), binary.LittleEndian.Uint64(b[24:]))
		if n < 32 && data[p+1+n] == '"' {
			d.pos = p + n + 2
			return d.shared(p+1, p+1+n)
		}
		// Longer: scan on from where the words stopped; an escape
		// takes the general path below.
		if n == 32 {
			if q := d.span(p + 33); d.err == nil && q < len(data) && data[q] == '"' {
				d.pos = q + 1
				return d.shared(p+1, q)
			}
		}
	}
	if d.err != nil {
		return ""
	}
	// Near the end of input: the same test on a zero-padded copy.
	if len(data)-p < 34 && p < len(data) && data[p] == '"' {
		var t [40]byte
		copy(t[:], data[p:])
		_, _, _, _, n := plainPrefix(binary.LittleEndian.Uint64(t[1:]), binary.LittleEndian.Uint64(t[9:]),
			binary.LittleEndian.Uint64(t[17:]), binary.LittleEndian.Uint64(t[25:]))
		if n < 32 && t[1+n] == '"' {
			d.pos = p + n + 2
			return d.shared(p+1, p+1+n)
		}
	}
	if d.peek() != '"' {
		d.unexpected("string")
		return ""
	}
	start := d.pos + 1
	b := d.str()
	// Escapes always shrink a string, so an unchanged length means b is
	// the raw input bytes data[start:d.pos-1].
	if len(b) != d.pos-1-start {
		return string(b)
	}
	return d.shared(start, d.pos-1)
}

// shared returns data[start:end] as a string, a substring of one copy of
// the input when that is at most sharedMax bytes.
func (d *Decoder) shared(start, end int) string {
	if len(d.sdata) == len(d.data) {
		return d.sdata[start:end]
	}
	return d.sharedFirst(start, end)
}

func (d *Decoder) sharedFirst(start, end int) string {
	if end == start || len(d.data) > d.shareMax {
		return string(d.data[start:end])
	}
	if len(d.sdata) != len(d.data) {
		d.sdata = string(d.data)
	}
	return d.sdata[start:end]
}

// Bool decodes true or false.
func (d *Decoder) Bool() bool {
	if d.err != nil {
		return false
	}
	switch d.peek() {
	case 't':
		d.literal("true")
		return d.err == nil
	case 'f':
		d.literal("false")
		return false
	}
	d.unexpected("boolean")
	return false
}

// Int64 decodes an integer given either as a JSON string (the proto3 form)
// or as a JSON number. Fractions, exponents and values outside int64 are
// rejected.
func (d *Decoder) Int64() int64 {
	v, _ := d.integer(-1<<63, 1<<63-1)
	return v
}

// Int32 decodes an integer like Int64 but limited to the int32 range.
func (d *Decoder) Int32() int32 {
	v, _ := d.integer(-1<<31, 1<<31-1)
	return int32(v)
}

func (d *Decoder) integer(min, max int64) (int64, bool) {
	// Fast path without loops: up to 19 digits, quoted or not, with their
	// terminator inside the input.
	data := d.data
	p := d.pos
	if d.err == nil && p+27 <= len(data) {
		q := 0
		if data[p] == '"' {
			q = 1
		}
		s := p + q
		neg := data[s] == '-'
		if neg {
			s++
		}
		b := data[s : s+24]
		w0 := binary.LittleEndian.Uint64(b[0:])
		w1 := binary.LittleEndian.Uint64(b[8:])
		w2 := binary.LittleEndian.Uint64(b[16:])
		l0 := lanesBelow(nonDigits(w0))
		l1 := lanesBelow(nonDigits(w1)) & allOnesIfFull(l0)
		l2 := lanesBelow(nonDigits(w2)) & allOnesIfFull(l1)
		r0, r1, r2 := bits.OnesCount64(l0)>>3, bits.OnesCount64(l1)>>3, bits.OnesCount64(l2)>>3
		n := r0 + r1 + r2
		e := s + n
		c := data[e]
		// 1 to 19 digits without a leading zero, then the closing quote
		// or the end of a number that is not a fraction or exponent.
		end := c != '.' && c|0x20 != 'e'
		if q == 1 {
			end = c == '"'
		}
		if uint(n-1) < 19 && (n == 1 || data[s] != '0') && end {
			u := (digits8(w0, r0)*pow10[r1&15]+digits8(w1, r1))*pow10[r2&15] + digits8(w2, r2)
			if neg && u <= uint64(-(min+1))+1 {
				d.pos = e + q
				return -int64(u-1) - 1, true
			}
			if !neg && u <= uint64(max) {
				d.pos = e + q
				return int64(u), true
			}
		}
	}
	return d.integerSlow(min, max)
}

// nonDigits returns x (eight bytes, little-endian) with the high bit set in
// the lanes that are not ASCII digits; the lowest set bit is exact (carries
// and borrows only start in flagged lanes).
func nonDigits(x uint64) uint64 {
	return ((x + lsb*0x46) | (x - lsb*'0')) & msb
}

// digits8 returns the value of the first r (0 to 8) ASCII digits of w
// (little-endian, first digit most significant) with word arithmetic: the
// digits move to the top lanes behind '0' padding and are combined in
// pairs, quads and octets.
func digits8(w uint64, r int) uint64 {
	sh := uint(8 * r)
	w = w<<(64-sh) | (lsb*'0')>>sh - lsb*'0'
	w = (w*10 + w>>8) & 0x00FF00FF00FF00FF
	w = (w*100 + w>>16) & 0x0000FFFF0000FFFF
	return (w*10000 + w>>32) & 0xFFFFFFFF
}

// pow10 holds 10^r for the digit counts digits8 handles (masked index).
var pow10 = [16]uint64{1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8}

func (d *Decoder) integerSlow(min, max int64) (int64, bool) {
	if d.err != nil {
		return 0, false
	}
	start := d.pos
	var num []byte
	switch c := d.peek(); {
	case c == '"':
		start = d.pos
		s := d.str()
		if d.err != nil {
			return 0, false
		}
		// The digits must be the string's raw bytes: escaped digits would
		// be legal JSON but are never produced by proto3 encoders.
		if len(s) == 0 || &s[0] != &d.data[start+1] || len(s) != d.pos-start-2 {
			d.typeErr(start, "want integer string")
			return 0, false
		}
		num = s
	case c == '-' || (c >= '0' && c <= '9'):
		start = d.pos
		var integer bool
		num, integer = d.number()
		if d.err != nil {
			return 0, false
		}
		if !integer {
			d.typeErr(start, "want integer, got fraction or exponent")
			return 0, false
		}
	default:
		d.unexpected("integer")
		return 0, false
	}
	v, ok := parseInt(num, min, max)
	if !ok {
		d.typeErr(start, "integer invalid or out of range")
		return 0, false
	}
	return v, true
}

// parseInt parses a JSON integer (optional '-', no leading zeros) within
// [min, max].
func parseInt(b []byte, min, max int64) (int64, bool) {
	neg := false
	if len(b) > 0 && b[0] == '-' {
		neg = true
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 19 || (b[0] == '0' && len(b) > 1) {
		return 0, false
	}
	var u uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		u = u*10 + uint64(c-'0') // 19 digits cannot overflow uint64
	}
	if neg {
		if u > uint64(-(min+1))+1 {
			return 0, false
		}
		return -int64(u-1) - 1, true
	}
	if u > uint64(max) {
		return 0, false
	}
	return int64(u), true
}

// str consumes a JSON string at d.pos (which holds '"') and returns its
// unescaped bytes, aliasing the input when the string has no escapes and
// d.buf otherwise.
func (d *Decoder) str() []byte {
	data := d.data
	start := d.pos + 1
	p := d.span(start)
	if d.err != nil {
		return nil
	}
	if p < len(data) && data[p] == '"' {
		d.pos = p + 1
		return data[start:p]
	}
	if cap(d.buf) == 0 {
		// One allocation shared by all escaped strings of typical messages.
		d.buf = make([]byte, 0, min(len(data)-start, 4096))
	}
	d.buf = append(d.buf[:0], data[start:p]...)
	for p < len(data) {
		switch c := data[p]; {
		case c == '"':
			d.pos = p + 1
			return d.buf
		case c == '\\':
			if p+1 < len(data) && simpleEscape[data[p+1]] != 0 {
				d.buf = append(d.buf, simpleEscape[data[p+1]])
				p += 2
				break
			}
			p = d.escape(p)
			if d.err != nil {
				return nil
			}
		default: // control character, reported by span
		}
		q := d.span(p)
		if d.err != nil {
			return nil
		}
		d.buf = append(d.buf, data[p:q]...)
		p = q
	}
	d.pos = p
	d.syntax("unterminated string")
	return nil
}

// span returns the end of the run of plain string bytes starting at p:
// the position of the next '"', '\\' or the end of input. It validates
// UTF-8 and rejects control characters on the way. It tests 64 bytes per
// iteration with word arithmetic and jumps straight to the first special
// byte, because in a wasm guest every loop iteration and taken branch costs
// an interrupt check.
func (d *Decoder) span(p int) int {
	data := d.data
	for {
		for p+64 <= len(data) {
			b := data[p : p+64 : p+64]
			// The first word alone first: dense specials (escapes,
			// non-ASCII text) are found without the other seven.
			m0 := special(binary.LittleEndian.Uint64(b[0:]))
			if m0 != 0 {
				p += bits.TrailingZeros64(m0) >> 3
				goto found
			}
			m1, m2 := special(binary.LittleEndian.Uint64(b[8:])), special(binary.LittleEndian.Uint64(b[16:]))
			m3, m4 := special(binary.LittleEndian.Uint64(b[24:])), special(binary.LittleEndian.Uint64(b[32:]))
			m5, m6 := special(binary.LittleEndian.Uint64(b[40:])), special(binary.LittleEndian.Uint64(b[48:]))
			m7 := special(binary.LittleEndian.Uint64(b[56:]))
			if m1|m2|m3|m4|m5|m6|m7 != 0 {
				p += leadingClear(0, m1, m2, m3, m4, m5, m6, m7)
				goto found
			}
			p += 64
		}
		if p < len(data) {
			// Fewer than 64 bytes of input left: test them padded with
			// plain bytes instead of looping over them.
			b := plain64
			copy(b[:], data[p:])
			p = min(p+leadingClear64(b), len(data))
		}
	found:
		if p >= len(data) {
			return p
		}
		c := data[p]
		if c < utf8.RuneSelf {
			if c == '"' || c == '\\' {
				return p
			}
			d.pos = p
			d.syntax("control character in string")
			return p
		}
		// Two-byte sequences (Latin, Greek, Cyrillic, ...) inline; the
		// rest through utf8.DecodeRune.
		if c >= 0xC2 && c <= 0xDF && p+1 < len(data) && data[p+1]&0xC0 == 0x80 {
			p += 2
			continue
		}
		r, size := utf8.DecodeRune(data[p:])
		if r == utf8.RuneError && size <= 1 {
			d.pos = p
			d.syntax("invalid UTF-8 in string")
			return p
		}
		p += size
	}
}

// simpleEscape maps the byte after a backslash to the byte it stands for,
// for the one-letter escapes; 0 for 'u' and invalid escapes.
var simpleEscape = [256]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}

// escape decodes the escape sequence at data[p] ('\\') into d.buf and
// returns the position after it.
func (d *Decoder) escape(p int) int {
	data := d.data
	if p+1 >= len(data) {
		d.pos = p
		d.syntax("unterminated escape")
		return p
	}
	switch data[p+1] {
	case '"', '\\', '/':
		d.buf = append(d.buf, data[p+1])
	case 'b':
		d.buf = append(d.buf, '\b')
	case 'f':
		d.buf = append(d.buf, '\f')
	case 'n':
		d.buf = append(d.buf, '\n')
	case 'r':
		d.buf = append(d.buf, '\r')
	case 't':
		d.buf = append(d.buf, '\t')
	case 'u':
		r, ok := hex4(data, p+2)
		if !ok {
			d.pos = p
			d.syntax("invalid \\u escape")
			return p
		}
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			d.pos = p
			d.syntax("lone low surrogate in \\u escape")
			return p
		case r >= 0xD800 && r <= 0xDBFF:
			lo, ok := rune(0), false
			if p+7 < len(data) && data[p+6] == '\\' && data[p+7] == 'u' {
				lo, ok = hex4(data, p+8)
			}
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				d.pos = p
				d.syntax("lone high surrogate in \\u escape")
				return p
			}
			r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
			d.buf = utf8.AppendRune(d.buf, r)
			return p + 12
		}
		d.buf = utf8.AppendRune(d.buf, r)
		return p + 6
	default:
		d.pos = p
		d.syntax("invalid escape")
		return p
	}
	return p + 2
}

func hex4(data []byte, p int) (rune, bool) {
	if p+4 > len(data) {
		return 0, false
	}
	var r rune
	for _, c := range data[p : p+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

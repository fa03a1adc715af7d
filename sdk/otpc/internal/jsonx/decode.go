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
	key   []byte // current object key (aliases data or buf)
	buf   []byte // scratch for unescaping

	// The current key as words for generated matchers (see KeyHash and
	// KeyIs): its first 32 bytes zero-padded and a hash of all of it.
	kw    [4]uint64
	khash uint64
	vflag uint64 // nonzero: Field must look at the value (see NextField)

	// sdata is one string copy of data shared by the strings String
	// returns (see sharedMax), made on first use.
	sdata string

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
	*d = Decoder{data: data, buf: d.buf[:0], arena: d.arena[:0], spans: d.spans[:0]}
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
		d.err = &TypeError{Offset: int64(off), Field: string(d.key), Msg: msg}
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
	return true
}

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
	want := byte('"')
	if i > 0 {
		want = ','
		p++
	}
	if d.err == nil && p+35 <= len(data) && data[d.pos] == want && data[p] == '"' {
		b := data[p+1 : p+33]
		w0 := binary.LittleEndian.Uint64(b[0:])
		w1 := binary.LittleEndian.Uint64(b[8:])
		w2 := binary.LittleEndian.Uint64(b[16:])
		w3 := binary.LittleEndian.Uint64(b[24:])
		// lj selects the key's bytes in word j: the lanes below the
		// first special byte, and none once an earlier word had one.
		l0 := lanesBelow(special(w0))
		l1 := lanesBelow(special(w1)) & allOnesIfFull(l0)
		l2 := lanesBelow(special(w2)) & allOnesIfFull(l1)
		l3 := lanesBelow(special(w3)) & allOnesIfFull(l2)
		n := (bits.OnesCount64(l0) + bits.OnesCount64(l1) + bits.OnesCount64(l2) + bits.OnesCount64(l3)) >> 3
		// n < 32 and the special byte is the closing quote, followed
		// by the colon (else: escapes, non-ASCII, longer key, spaces).
		if n < 32 && data[p+1+n] == '"' && data[p+2+n] == ':' {
			d.key = b[:n:n]
			d.kw = [4]uint64{w0 & l0, w1 & l1, w2 & l2, w3 & l3}
			d.khash = hashWords(d.kw, n)
			p += n + 3
			d.pos = p
			// Field's fast path needs a value that is neither null nor
			// after whitespace: flag the other cases for its slow path.
			c := uint64(data[p])
			d.vflag = (c-0x21)>>63 | ((c^'n')-1)>>63
			return true
		}
	}
	// The end of a compact object, inline too (pop without big maps).
	if d.err == nil && d.pos < len(data) && data[d.pos] == '}' && d.big == nil {
		d.pos++
		d.spans = d.spans[:d.mark[d.depth]]
		d.arena = d.arena[:d.amark[d.depth]]
		d.depth--
		return false
	}
	return d.nextField(i)
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
	d.kw, d.khash = keyWords(d.key)
	if d.peek() != ':' {
		d.syntax("want ':' after object key")
		return false
	}
	d.pos++
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
	for j := range kw {
		kw[j] = binary.LittleEndian.Uint64(b[8*j:])
	}
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
	return uint64(len(d.key)^n)|(d.kw[0]^w0)|(d.kw[1]^w1)|(d.kw[2]^w2)|(d.kw[3]^w3) == 0
}

// Key returns the current member's unescaped key. It is valid until the
// next call on d.
func (d *Decoder) Key() []byte { return d.key }

// Field is called by generated code for a known key, after it marked the
// key as seen; dup is nonzero if the key had been seen before. It rejects
// a duplicate key and reports whether a value must be decoded (false for
// null, which counts as absent, or on error).
func (d *Decoder) Field(dup uint64) bool {
	// Inlined fast path: NextField saw a value that is neither null nor
	// after whitespace.
	return dup|d.vflag == 0 || d.field(dup)
}

// field is Field's slow path; dup is nonzero for a repeated key.
func (d *Decoder) field(dup uint64) bool {
	if d.err != nil {
		return false
	}
	if dup != 0 {
		d.err = &TypeError{Offset: int64(d.pos), Field: string(d.key), Msg: "duplicate key"}
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
	if d.dupUnknown(d.key) {
		d.err = &TypeError{Offset: int64(d.pos), Field: string(d.key), Msg: "duplicate key"}
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

// sharedMax is the largest input whose unescaped strings String returns
// as substrings of one shared copy of the input: one allocation per
// message instead of one per string (each allocation is dozens of
// interrupt checks in a wasm guest). It bounds what a retained string can
// keep alive.
const sharedMax = 16 << 10

// String decodes a JSON string value. For inputs up to 16 KiB the result
// may share memory with the other strings of the same input (never with
// the input slice itself).
func (d *Decoder) String() string {
	if d.err != nil {
		return ""
	}
	if d.peek() != '"' {
		d.unexpected("string")
		return ""
	}
	start := d.pos + 1
	b := d.str()
	// Escapes always shrink a string, so an unchanged length means b is
	// the raw input bytes data[start:d.pos-1].
	if len(b) == 0 || len(b) != d.pos-1-start || len(d.data) > sharedMax {
		return string(b)
	}
	if len(d.sdata) != len(d.data) {
		d.sdata = string(d.data)
	}
	return d.sdata[start : d.pos-1]
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
// UTF-8 and rejects control characters on the way. It tests 32 bytes per
// iteration with word arithmetic and jumps straight to the first special
// byte, because in a wasm guest every loop iteration costs an interrupt
// check.
func (d *Decoder) span(p int) int {
	data := d.data
	for {
		for p+32 <= len(data) {
			b := data[p : p+32 : p+32]
			if special(binary.LittleEndian.Uint64(b[0:]))|special(binary.LittleEndian.Uint64(b[8:]))|
				special(binary.LittleEndian.Uint64(b[16:]))|special(binary.LittleEndian.Uint64(b[24:])) != 0 {
				break
			}
			p += 32
		}
		for p+8 <= len(data) {
			if m := special(binary.LittleEndian.Uint64(data[p:])); m != 0 {
				p += bits.TrailingZeros64(m) >> 3
				break
			}
			p += 8
		}
		if p >= len(data) {
			return p
		}
		c := data[p]
		if plain[c] { // only in the last seven bytes of input
			p++
			continue
		}
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

// plain[c] is true for ASCII bytes that may appear in a JSON string as is.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

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

package jsonx

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
)

// pad is appended after a value so that the decoder's word-at-a-time fast
// paths (which need bytes to spare behind the value) run; the same input
// without it exercises the general paths.
const pad = "                                        "

// decodeInts decodes in with Int64 and Int32 and reports values and errors.
func decodeInts(in string) (v64 int64, err64 error, v32 int32, err32 error) {
	var d Decoder
	d.Reset([]byte(in))
	v64 = d.Int64()
	err64 = d.Finish()
	d.Reset([]byte(in))
	v32 = d.Int32()
	err32 = d.Finish()
	return
}

func checkIntPaths(t *testing.T, s string) {
	t.Helper()
	a64, aerr64, a32, aerr32 := decodeInts(s)
	b64, berr64, b32, berr32 := decodeInts(s + pad)
	if a64 != b64 || (aerr64 == nil) != (berr64 == nil) || a32 != b32 || (aerr32 == nil) != (berr32 == nil) {
		t.Fatalf("%q: general path %d,%v %d,%v; fast path %d,%v %d,%v", s, a64, aerr64, a32, aerr32, b64, berr64, b32, berr32)
	}
	for _, err := range []error{berr64, berr32} {
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("%q: untyped error %v", s, err)
		}
	}
	// Cross-check the plain forms with strconv.
	raw := strings.Trim(s, `"`)
	if want, err := strconv.ParseInt(raw, 10, 64); err == nil && berr64 == nil && want != b64 {
		t.Fatalf("%q: Int64 = %d, strconv %d", s, b64, want)
	}
}

func TestIntegerFastPath(t *testing.T) {
	var cases []string
	for _, v := range []string{"0", "-0", "1", "-1", "7", "10", "99", "12345678", "123456789", "1234567890123456",
		"12345678901234567", "1481899949606", "728000000", "2147483647", "-2147483648", "2147483648", "-2147483649",
		"9223372036854775807", "-9223372036854775808", "9223372036854775808", "-9223372036854775809",
		"9999999999999999999", "10000000000000000000", "123456789012345678901234", "01", "-01", "00", "-", "",
		"1.5", "1e3", "1E3", "2.", "-x", "12a", "1 ", " 1", `\u0031`, "0x10", "+1", "١"} {
		cases = append(cases, v, `"`+v+`"`)
	}
	cases = append(cases, "true", "null", "[1]", `"1`, `1"`)
	for _, s := range cases {
		checkIntPaths(t, s)
	}
	// Every length of digits, both signs.
	for n := 1; n <= 20; n++ {
		for _, first := range "19" {
			s := string(first) + strings.Repeat("7", n-1)
			checkIntPaths(t, s)
			checkIntPaths(t, "-"+s)
			checkIntPaths(t, `"`+s+`"`)
		}
	}
}

// FuzzInteger checks that the fast and general integer paths agree.
func FuzzInteger(f *testing.F) {
	for _, s := range []string{"0", `"1481899949606"`, "-9223372036854775808", "1.5", `"01"`, "12345678901234567890"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkIntPaths(t, s) })
}

// FuzzDecodeStringPadded is FuzzDecodeString's comparison with
// encoding/json on the fast path (bytes to spare behind the string).
func FuzzDecodeStringPadded(f *testing.F) {
	for _, s := range []string{``, `abc`, `\"\\\/\b\f\n\r\t`, `\u00e9\ud83d\ude00`, "é日本😀", "\xff", `\ud800`,
		"aaaaaaa\"", "aaaaaaaaaaaaaaaa\\n", "\x01", "abcdefgh<>&é\u2028", strings.Repeat("x", 31), strings.Repeat("y", 32)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		in := []byte(`"` + s + `"` + pad)
		var d Decoder
		d.Reset(in)
		got := d.String()
		err := d.Finish()
		// The same with strings sharing one copy of the input (the wasm
		// setting).
		d.Reset(in)
		d.shareMax = 1 << 20
		if shared := d.String(); d.Finish() == nil && shared != got {
			t.Fatalf("%q: shared copy gives %q, want %q", in, shared, got)
		}
		var want string
		stdErr := json.Unmarshal(in, &want)
		if err == nil {
			if stdErr != nil {
				t.Fatalf("we accept %q, encoding/json does not: %v", in, stdErr)
			}
			if got != want {
				t.Fatalf("%q: got %q, encoding/json %q", in, got, want)
			}
			return
		}
		if stdErr == nil && !strings.Contains(s, `\u`) && !strings.ContainsRune(s, 0xFFFD) {
			var d2 Decoder
			d2.Reset([]byte(`"` + s + `"`))
			_ = d2.String()
			if d2.Finish() == nil {
				t.Fatalf("fast path rejects %q (%v), general path accepts", in, err)
			}
		}
	})
}

// TestKeyWordsMatchScanner checks that NextField's fast path and its
// general path (whitespace, escapes) produce the key, words and hash that
// KeyWords computes for the generator, for every key length around the
// 32-byte fast-path limit.
func TestKeyWordsMatchScanner(t *testing.T) {
	for n := 0; n <= 40; n++ {
		key := strings.Repeat("k", n)
		if n > 3 {
			key = key[:n-3] + "é"[:2] + "z" // non-ASCII takes the general path
			key = key[:n]
		}
		key = strings.ToValidUTF8(key, "")
		w0, w1, w2, w3, h := KeyWords(key)
		esc := strings.Replace(key, "k", `\u006b`, 1)
		for _, in := range []string{
			`{"` + key + `":1}` + pad,
			`{"` + key + `":1}`, // near the end of input
			`{"` + key + `":null,"` + key + `x":1}`,
			`{ "` + key + `" : 1 }`,
			`{"` + esc + `":1}` + pad,
			`{"a":0,"` + key + `":1}` + pad,
		} {
			var d Decoder
			d.Reset([]byte(in))
			if !d.BeginObject() {
				t.Fatalf("%q: %v", in, d.Err())
			}
			for i := 0; d.NextField(i); i++ {
				if (string(d.Key()) == "a" && key != "a") || string(d.Key()) == key+"x" {
					d.Skip()
					continue
				}
				if d.Null() {
					continue
				}
				if string(d.Key()) != key || d.KeyHash() != h || !d.KeyIs(len(key), w0, w1, w2, w3) {
					t.Fatalf("%q: key %q hash %x, want %q %x", in, d.Key(), d.KeyHash(), key, h)
				}
				if v := d.Int32(); v != 1 {
					t.Fatalf("%q: value %d", in, v)
				}
			}
			if err := d.Finish(); err != nil {
				t.Fatalf("%q: %v", in, err)
			}
		}
	}
}

// TestFieldNullAndDuplicates covers Field's slow path behind the inlined
// fast path: null values, whitespace before values, duplicates.
func TestFieldNullAndDuplicates(t *testing.T) {
	tests := []struct {
		in      string
		present bool
		err     bool
	}{
		{`{"a":1}` + pad, true, false},
		{`{"a": 1}` + pad, true, false},
		{`{"a":null}` + pad, false, false},
		{`{"a": null}` + pad, false, false},
		{`{"a":1,"a":2}` + pad, true, true},
		{`{"a":nul}` + pad, false, true},
		{`{"a":null,"a":2}` + pad, false, true},
	}
	for _, tc := range tests {
		var d Decoder
		d.Reset([]byte(tc.in))
		d.BeginObject()
		var seen uint64
		present := false
		for i := 0; d.NextField(i); i++ {
			dup := seen & 1
			seen |= 1
			if dup|d.ValueFlags() == 0 || d.Field(dup) {
				present = true
				d.Int32()
			}
		}
		err := d.Finish()
		if (err != nil) != tc.err || (err == nil && present != tc.present) {
			t.Errorf("%s: present %v, err %v", tc.in, present, err)
		}
	}
}

func TestAppendIntMatchesStrconv(t *testing.T) {
	check := func(v int64) {
		if got, want := string(AppendInt([]byte("x"), v)), "x"+strconv.FormatInt(v, 10); got != want {
			t.Fatalf("AppendInt(%d) = %s, want %s", v, got, want)
		}
	}
	for v := int64(-100000); v <= 100000; v++ {
		check(v)
	}
	p := int64(1)
	for range 19 {
		for _, d := range []int64{-1, 0, 1} {
			check(p + d)
			check(-p - d)
			check(9*p + d)
		}
		p *= 10
	}
	for _, v := range []int64{math.MaxInt64, math.MinInt64, math.MinInt64 + 1, 1e16 - 1, 1e16, 99999999, 100000000, 1481899949606} {
		check(v)
	}
	x := uint64(0x9E3779B97F4A7C15)
	for range 200000 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		check(int64(x))
		check(int64(x >> (x % 64)))
	}
}

// TestDigitLanesExhaustive checks the multiply-shift divisions of
// digitLanes for every 4-digit half (the lanes are independent).
func TestDigitLanesExhaustive(t *testing.T) {
	for hi := uint64(0); hi < 10000; hi++ {
		for _, lo := range []uint64{0, 9, 99, 1234, 9999, hi} {
			x := hi*10000 + lo
			got := string(binary.LittleEndian.AppendUint64(nil, digitLanes(x)+lsb*'0'))
			if want := fmt.Sprintf("%08d", x); got != want {
				t.Fatalf("digitLanes(%d) = %q", x, got)
			}
		}
	}
}

// TestSharedStrings checks the wasm setting natively: strings of one input
// share one copy of it, escaped strings are separate, the input may be
// overwritten afterwards, and large inputs do not share.
func TestSharedStrings(t *testing.T) {
	in := []byte(`["abc","a\nb","` + strings.Repeat("x", 100) + `",""]` + pad)
	var d Decoder
	d.Reset(in)
	d.shareMax = len(in)
	var got []string
	if d.BeginArray() {
		for i := 0; d.NextElem(i); i++ {
			got = append(got, d.String())
		}
	}
	if err := d.Finish(); err != nil {
		t.Fatal(err)
	}
	for i := range in {
		in[i] = '#'
	}
	want := []string{"abc", "a\nb", strings.Repeat("x", 100), ""}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q, want %q", got, want)
	}
	if len(d.sdata) != len(in) {
		t.Fatalf("no shared copy made (%d bytes)", len(d.sdata))
	}
	d.Reset(in)
	if d.shareMax != sharedMax {
		t.Fatalf("Reset kept shareMax %d", d.shareMax)
	}
	d.Reset([]byte(`"abc"` + pad))
	d.shareMax = 5
	if s := d.String(); s != "abc" || d.sdata != "" {
		t.Fatalf("input over shareMax: %q, shared copy %q", s, d.sdata)
	}
}

// walk re-encodes any JSON value with NextMember/NextElem (objects with
// sorted-as-read keys, numbers as integers) for TestNextMemberNesting.
func walk(d *Decoder) any {
	switch d.peek() {
	case '{':
		m := map[string]any{}
		if d.BeginObject() {
			for d.NextMember() {
				k := string(d.Key())
				m[k] = walk(d)
			}
		}
		return m
	case '[':
		a := []any{}
		if d.BeginArray() {
			for i := 0; d.NextElem(i); i++ {
				a = append(a, walk(d))
			}
		}
		return a
	case '"':
		return d.String()
	default:
		return float64(d.Int64())
	}
}

// TestNextMemberNesting checks that NextMember tracks the first member of
// each object across nested objects and arrays, compact or not.
func TestNextMemberNesting(t *testing.T) {
	for _, in := range []string{
		`{"a":{"b":{"c":1},"d":[{"e":2},{"f":{}}],"g":[]},"h":{"i":"j"},"k":3}`,
		`{ "a" : { "b" : { "c" : 1 } , "d" : [ { "e" : 2 } , { "f" : { } } ] , "g" : [ ] } , "h" : { "i" : "j" } , "k" : 3 }`,
		`[{"a":[{"b":1},{"c":2}]},{"d":{"e":{"f":3}},"g":4}]`,
		`{"` + strings.Repeat("x", 40) + `":{"y":1},"z":2}`,
	} {
		for _, suffix := range []string{"", pad} {
			var d Decoder
			d.Reset([]byte(in + suffix))
			got := walk(&d)
			if err := d.Finish(); err != nil {
				t.Fatalf("%s: %v", in, err)
			}
			var want any
			if err := json.Unmarshal([]byte(in), &want); err != nil {
				t.Fatal(err)
			}
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(want)
			if string(g) != string(w) {
				t.Fatalf("%s:\n got %s\nwant %s", in, g, w)
			}
		}
	}
}

package jsonx

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzAppendString checks that AppendString writes exactly what
// encoding/json writes for any Go string, valid UTF-8 or not.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a", "<&>", "\u2028", "\xff", "\x00\x1f", "é😀", `"\`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendString(nil, s); string(got) != string(want) {
			t.Fatalf("AppendString(%q) = %s, want %s", s, got, want)
		}
	})
}

func TestAppendInt(t *testing.T) {
	for _, v := range []int64{0, 1, -1, 9, 10, 1481899949606, math.MaxInt64, math.MinInt64} {
		want, _ := json.Marshal(v)
		if got := AppendInt(nil, v); string(got) != string(want) {
			t.Errorf("AppendInt(%d) = %s", v, got)
		}
		if got := AppendInt64String(nil, v); string(got) != `"`+string(want)+`"` {
			t.Errorf("AppendInt64String(%d) = %s", v, got)
		}
	}
}

func TestKeyCommas(t *testing.T) {
	dst := append([]byte(nil), '{')
	start := len(dst)
	dst = Key(dst, start, `"a":`)
	dst = AppendBool(dst, true)
	dst = Key(dst, start, `"b":`)
	dst = AppendBool(dst, false)
	if got := string(append(dst, '}')); got != `{"a":true,"b":false}` {
		t.Fatalf("got %s", got)
	}
}

// TestSkipAcceptsWhatEncodingJSONAccepts runs Skip over valid JSON values.
func TestSkipAcceptsValidJSON(t *testing.T) {
	for _, in := range []string{`0`, `-0.5e+10`, `1E-2`, `"a\u00e9"`, `[]`, `{}`, ` [1, {"a":[null,true,false]} ] `,
		`{"a":{"a":{"a":1}},"b":2}`, `"\ud83d\ude00"`} {
		var d Decoder
		d.Reset([]byte(in))
		d.Skip()
		if err := d.Finish(); err != nil {
			t.Errorf("%s: %v", in, err)
		}
		if !json.Valid([]byte(in)) {
			t.Fatalf("test input %s is not JSON", in)
		}
	}
}

func TestIntegerRanges(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{`2147483647`, true}, {`-2147483648`, true}, {`2147483648`, false}, {`-2147483649`, false},
		{`"2147483647"`, true}, {`"2147483648"`, false}, {`"\u0031"`, false}, {`"1 "`, false},
	}
	for _, tc := range tests {
		var d Decoder
		d.Reset([]byte(tc.in))
		d.Int32()
		err := d.Finish()
		if (err == nil) != tc.ok {
			t.Errorf("Int32(%s): err = %v", tc.in, err)
		}
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Errorf("Int32(%s): untyped %v", tc.in, err)
		}
	}
}

func TestErrorMessagesAreSafe(t *testing.T) {
	var d Decoder
	d.Reset([]byte("{\"a\x01\":1}"))
	d.Skip()
	err := d.Finish()
	var se *SyntaxError
	if !errors.As(err, &se) || se.Offset != 3 {
		t.Fatalf("got %v", err)
	}
	d.Reset([]byte("{\"k\\n\":1,\"k\\n\":2}"))
	d.Skip()
	err = d.Finish()
	var te *TypeError
	if !errors.As(err, &te) || te.Field != "k\n" {
		t.Fatalf("got %v", err)
	}
	for _, c := range err.Error() {
		if c < 0x20 {
			t.Fatalf("control character in error message %q", err.Error())
		}
	}
}

// FuzzDecodeString checks string decoding against encoding/json: whatever
// we accept, encoding/json accepts with the same value; whatever it accepts
// we accept too, except for our documented extra strictness (invalid UTF-8
// and lone surrogate escapes).
func FuzzDecodeString(f *testing.F) {
	for _, s := range []string{``, `abc`, `\"\\\/\b\f\n\r\t`, `\u00e9\ud83d\ude00`, "é日本😀", "\xff", `\ud800`,
		"aaaaaaa\"", "aaaaaaaaaaaaaaaa\\n", "\x01", "abcdefgh<>&é\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		in := []byte(`"` + s + `"`)
		var d Decoder
		d.Reset(in)
		got := d.String()
		err := d.Finish()
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
		if stdErr == nil && utf8.ValidString(s) && !strings.Contains(s, `\u`) {
			t.Fatalf("we reject %q (%v), encoding/json accepts", in, err)
		}
	})
}

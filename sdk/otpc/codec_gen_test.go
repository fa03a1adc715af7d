package otpc

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// TestCodecMatchesReflection fills every registered message type with
// random subsets of members and compares AppendJSON with an independent,
// reflection-based encoder of the package's JSON rules (required scalars and
// structs always written, other members only when set, int64 as a string).
// It covers the generator's static commas and merged literals for every
// presence pattern, then checks that decoding gives the same bytes back.
func TestCodecMatchesReflection(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, list := range [][]struct {
		name string
		new  func() message
	}{requestTypes, responseTypes} {
		for _, rt := range list {
			for range 300 {
				m := rt.new()
				fillRandom(rng, reflect.ValueOf(m).Elem(), 0)
				got := m.AppendJSON([]byte("prefix"))
				want := "prefix" + refEncode(reflect.ValueOf(m).Elem())
				if string(got) != want {
					t.Fatalf("%s:\n got %s\nwant %s", rt.name, got, want)
				}
				m2 := rt.new()
				if err := m2.UnmarshalJSON(got[len("prefix"):]); err != nil {
					t.Fatalf("%s: decode own output: %v\n%s", rt.name, err, got)
				}
				// Invalid UTF-8 comes back as U+FFFD, so compare with the
				// reference encoding of the decoded value.
				if again, want := m2.AppendJSON(nil), refEncode(reflect.ValueOf(m2).Elem()); string(again) != want {
					t.Fatalf("%s: round trip\n got %s\nwant %s", rt.name, again, want)
				}
			}
		}
	}
}

var randomStrings = []string{"a", "USD", "cmVxdWVzdDE-0001", `quote " and \ backslash`, "<&> \u2028 é 日本 😀",
	"tab\tnewline\n\x01", strings.Repeat("Google - Music ", 9), "\xff invalid"}

func fillRandom(rng *rand.Rand, v reflect.Value, depth int) {
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			fillRandom(rng, v.Field(i), depth+1)
		}
	case reflect.String:
		if rng.IntN(3) > 0 {
			v.SetString(randomStrings[rng.IntN(len(randomStrings))])
		}
	case reflect.Bool:
		v.SetBool(rng.IntN(2) == 0)
	case reflect.Int32, reflect.Int64:
		switch rng.IntN(4) {
		case 0:
		case 1:
			v.SetInt(rng.Int64N(1000) - 500)
		default:
			v.SetInt(int64(rng.Uint64()) >> (64 - v.Type().Bits()))
		}
	case reflect.Pointer:
		if depth < 8 && rng.IntN(2) == 0 {
			v.Set(reflect.New(v.Type().Elem()))
			fillRandom(rng, v.Elem(), depth+1)
		}
	case reflect.Slice:
		if depth < 8 {
			n := rng.IntN(3)
			s := reflect.MakeSlice(v.Type(), n, n)
			for i := range n {
				fillRandom(rng, s.Index(i), depth+1)
			}
			v.Set(s)
		}
	}
}

// refEncode writes v by the documented rules, using encoding/json for
// string escaping only.
func refEncode(v reflect.Value) string {
	switch v.Kind() {
	case reflect.Struct:
		var parts []string
		for i := range v.NumField() {
			f, fv := v.Type().Field(i), v.Field(i)
			name := strings.Split(f.Tag.Get("json"), ",")[0]
			req := strings.Contains(","+f.Tag.Get("otpc")+",", ",req,")
			write := fv.Kind() == reflect.Struct || !fv.IsZero() || (req && fv.Kind() != reflect.Pointer && fv.Kind() != reflect.Slice && fv.Kind() != reflect.Bool)
			if fv.Kind() == reflect.Slice && fv.Len() == 0 {
				write = false
			}
			if write {
				parts = append(parts, strconv.Quote(name)+":"+refEncode(fv))
			}
		}
		return "{" + strings.Join(parts, ",") + "}"
	case reflect.String:
		b, _ := json.Marshal(v.String())
		return string(b)
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Int32:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Int64:
		return `"` + strconv.FormatInt(v.Int(), 10) + `"`
	case reflect.Pointer:
		return refEncode(v.Elem())
	case reflect.Slice:
		var parts []string
		for i := range v.Len() {
			parts = append(parts, refEncode(v.Index(i)))
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	panic("unsupported kind " + v.Kind().String())
}

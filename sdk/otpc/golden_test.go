package otpc

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the current encoder")

// normalize decodes JSON generically and applies the proto3 view of it:
// numbers and int64 strings compare as strings, and zero values ("", 0,
// "0", false, null) count as absent.
func normalize(t *testing.T, data []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("encoding/json rejects %s: %v", data, err)
	}
	return norm(v)
}

func norm(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			if e = norm(e); e != nil {
				out[k] = e
			}
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = norm(e)
		}
		return out
	case json.Number:
		if x == "0" {
			return nil
		}
		return string(x)
	case string:
		if x == "" || x == "0" {
			return nil
		}
		return x
	case bool:
		if !x {
			return nil
		}
		return x
	}
	return v
}

// TestSpecExamples round-trips every example of the spec (testdata/spec):
// it decodes, validates, encodes, compares with the golden encoding and with
// the input (proto3 view), and re-decodes stably. TestOracleSpecExamples
// checks the same examples against encoding/json on plain structs.
func TestSpecExamples(t *testing.T) {
	files, err := filepath.Glob("testdata/spec/*.json")
	if err != nil || len(files) < 20 {
		t.Fatalf("spec examples missing: %v %d", err, len(files))
	}
	for _, file := range files {
		base := filepath.Base(file)
		name := base[:strings.IndexByte(base, '.')]
		t.Run(strings.TrimSuffix(base, ".json"), func(t *testing.T) {
			in, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			m := newMessage(name)
			if m == nil {
				t.Fatalf("no type %s", name)
			}
			if err := m.UnmarshalJSON(in); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if err := m.Validate(); err != nil {
				t.Fatalf("validate: %v", err)
			}
			out := m.AppendJSON(nil)
			golden := filepath.Join("testdata", "golden", base)
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, append(out, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("golden: %v (run with -update)", err)
			}
			if !bytes.Equal(out, bytes.TrimSuffix(want, []byte("\n"))) {
				t.Errorf("encoding changed:\n got %s\nwant %s", out, want)
			}
			if got, exp := normalize(t, out), normalize(t, in); !reflect.DeepEqual(got, exp) {
				t.Errorf("round trip changed the message:\n got %v\nwant %v", got, exp)
			}
			// json.Marshal / json.Unmarshal of m would only call the
			// codec's own MarshalJSON / UnmarshalJSON; the independent
			// encoding/json reading is TestOracleSpecExamples (oracle_test.go).
			m3 := newMessage(name)
			if err := m3.UnmarshalJSON(out); err != nil || !bytes.Equal(m3.AppendJSON(nil), out) {
				t.Errorf("re-decode not stable: %v", err)
			}
		})
	}
}

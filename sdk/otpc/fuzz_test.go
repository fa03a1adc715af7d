package otpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecodeRequest feeds arbitrary bytes to the decoder of every request
// and plugin input type. Properties: no panic (the decoder's recover net
// must never fire); errors are typed; accepted input is valid JSON for
// encoding/json too; decode→encode→decode→encode is stable; Validate does
// not panic. Seeds: testdata/fuzz/FuzzDecodeRequest and the spec examples.
func FuzzDecodeRequest(f *testing.F) {
	files, _ := filepath.Glob("testdata/spec/*.json")
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, rt := range requestTypes {
			checkDecode(t, rt.name, rt.new, data)
		}
	})
}

// FuzzDecodeResponse does the same for responses and plugin output frames
// (the host decodes Google's responses and untrusted plugin output).
func FuzzDecodeResponse(f *testing.F) {
	files, _ := filepath.Glob("testdata/spec/*Response*.json")
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, rt := range responseTypes {
			checkDecode(t, rt.name, rt.new, data)
		}
	})
}

// checkDecode applies the fuzz properties to one type: typed errors, no
// recovered panic, accepted input valid for encoding/json too, output valid
// JSON, and stable decode→encode→decode→encode.
func checkDecode(t *testing.T, name string, newMsg func() message, data []byte) {
	t.Helper()
	m := newMsg()
	if err := m.UnmarshalJSON(data); err != nil {
		var se *SyntaxError
		var te *TypeError
		if !errors.As(err, &se) && !errors.As(err, &te) {
			t.Fatalf("%s: untyped error %T %v", name, err, err)
		}
		if se != nil && se.Msg == "internal decoder error" {
			t.Fatalf("%s: decoder panicked on %q", name, data)
		}
		return
	}
	if !json.Valid(data) {
		t.Fatalf("%s: accepted input encoding/json rejects: %q", name, data)
	}
	_ = m.Validate()
	out := m.AppendJSON(nil)
	if !json.Valid(out) {
		t.Fatalf("%s: produced invalid JSON %q", name, out)
	}
	m2 := newMsg()
	if err := m2.UnmarshalJSON(out); err != nil {
		t.Fatalf("%s: cannot decode own output %q: %v", name, out, err)
	}
	if out2 := m2.AppendJSON(nil); !bytes.Equal(out, out2) {
		t.Fatalf("%s: unstable encoding\n%q\n%q", name, out, out2)
	}
	// json.Marshal(m2) would only call m2's own MarshalJSON; encoding/json's
	// independent reading of the codec is oracle_test.go.
}

package otpc

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestMethodFactories(t *testing.T) {
	for _, m := range IntegratorMethods() {
		req, resp := NewIntegratorRequest(m), NewIntegratorResponse(m)
		if req == nil || resp == nil {
			t.Fatalf("%s: no types", m)
		}
		req.Header().RequestID = "x"
		if req.Header().RequestID != "x" {
			t.Fatalf("%s: Header does not alias the message", m)
		}
	}
	for _, m := range GoogleMethods() {
		if NewGoogleRequest(m) == nil || NewGoogleResponse(m) == nil {
			t.Fatalf("%s: no types", m)
		}
	}
	if NewIntegratorRequest("nope") != nil || NewGoogleResponse(MethodRefund) != nil {
		t.Fatal("unknown method gave a type")
	}
	if _, ok := Response(new(ErrorResponse)).(Response); !ok {
		t.Fatal("ErrorResponse is not a Response")
	}
}

// TestFactoriesMatchSpecExamples checks that each spec example decodes into
// the type the factories pick for its method.
func TestFactoriesMatchSpecExamples(t *testing.T) {
	files, _ := filepath.Glob("testdata/spec/*.json")
	all := append(IntegratorMethods(), GoogleMethods()...)
	for _, file := range files {
		name := strings.SplitN(filepath.Base(file), ".", 2)[0]
		for _, m := range all {
			for _, msg := range []Message{NewIntegratorRequest(m), NewIntegratorResponse(m), NewGoogleRequest(m), NewGoogleResponse(m)} {
				if msg == nil || reflect.TypeOf(msg).Elem().Name() != name {
					continue
				}
				data, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				if err := msg.UnmarshalJSON(data); err != nil {
					t.Errorf("%s via %s: %v", file, m, err)
				}
			}
		}
	}
}

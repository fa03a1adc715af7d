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

// TestMethodTable checks the table the name lists, factories and the
// host's dispatch derive from.
func TestMethodTable(t *testing.T) {
	ops := map[Op]string{}
	for _, m := range Methods(Integrator | Google) {
		switch {
		case m.NewRequest == nil || m.NewResponse == nil || m.Name == "":
			t.Errorf("%q: incomplete row", m.Name)
		case m.Side&Integrator != 0 && m.Name != MethodEcho:
			if !m.Op.Valid() || m.Op == OpWarmup {
				t.Errorf("%s: integrator method without a plugin op (%v)", m.Name, m.Op)
			}
			if other, dup := ops[m.Op]; dup {
				t.Errorf("%s and %s share op %v", m.Name, other, m.Op)
			}
			ops[m.Op] = m.Name
		case m.Op != OpWarmup:
			t.Errorf("%s: op %v on a method no plugin decides", m.Name, m.Op)
		}
	}
	if n := len(Methods(Integrator | Google)); n != 12 {
		t.Errorf("%d methods, want 12 (echo on both sides)", n)
	}
	if m, ok := LookupMethod(Integrator, MethodAsynchronousRefund); !ok || m.Op != OpAsyncRefund {
		t.Errorf("asynchronousRefund: %+v %v", m, ok)
	}
	if _, ok := LookupMethod(Google, MethodRefund); ok {
		t.Error("refund found among Google's methods")
	}
	if _, ok := LookupMethod(Integrator, MethodRefundResultNotification); ok {
		t.Error("refundResultNotification found among the integrator's methods")
	}
	for _, side := range []Side{Integrator, Google} {
		if _, ok := LookupMethod(side, MethodEcho); !ok {
			t.Errorf("echo missing on side %d", side)
		}
	}
}

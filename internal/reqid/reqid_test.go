package reqid

import (
	"context"
	"testing"
)

func TestReqID(t *testing.T) {
	a, b := New(), New()
	if len(a) != 16 || a == b {
		t.Fatalf("ids %q %q: want 16 hex digits, fresh each time", a, b)
	}
	ctx := With(context.Background(), a)
	if From(ctx) != a || From(context.Background()) != "" {
		t.Fatalf("From: %q", From(ctx))
	}
}

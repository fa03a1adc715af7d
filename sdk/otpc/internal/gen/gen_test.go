package main

import (
	"bytes"
	"os"
	"testing"
)

// TestGeneratedCodeUpToDate fails when codec_gen.go was not regenerated
// after a change to the message types (run `go generate ./sdk/otpc`).
func TestGeneratedCodeUpToDate(t *testing.T) {
	types, err := load("../..", "codec_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	got, err := generate(types)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../../codec_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("codec_gen.go is stale: run go generate ./sdk/otpc")
	}
	if len(types) < 80 {
		t.Fatalf("only %d message types found", len(types))
	}
}

func TestRulesParsing(t *testing.T) {
	var r rules
	if err := parseRules("req,reqid,ccy,pos,nonneg,max=1000", &r); err != nil {
		t.Fatal(err)
	}
	if !r.req || !r.reqid || !r.ccy || !r.pos || !r.nonneg || r.max != "1000" {
		t.Fatalf("parsed %+v", r)
	}
	for _, bad := range []string{"required", "max=x", "req,,ccy"} {
		if err := parseRules(bad, &r); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

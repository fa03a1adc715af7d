package sdk_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/sdk"
	"github.com/otpcgate/otpcgate/sdk/abi"
	"github.com/otpcgate/otpcgate/sdk/otpc"
)

func TestHandleFrames(t *testing.T) {
	p := &sdk.Plugin{
		Generate: func(c *sdk.Context, in *otpc.GenerateInput) (*otpc.GenerateOutput, error) {
			if in.AccountID == "fail" {
				return nil, errors.New("declined by test")
			}
			if in.AccountID == "nil" {
				return nil, nil
			}
			s := "code-" + in.AccountID
			return &otpc.GenerateOutput{Result: otpc.GenerateReferenceNumberResult{Success: &otpc.GenerateReferenceNumberSuccess{
				DisplayableReferenceNumber: otpc.DisplayableReferenceNumber{PrintableString: &s}}}}, nil
		},
	}
	c := sdk.NewContext(sdk.NewMemHost(time.Unix(0, 0), nil))
	tests := []struct {
		name   string
		op     otpc.Op
		input  string
		status abi.Status
		body   string
	}{
		{"ok", otpc.OpGenerate, `{"accountId":"a1"}`, abi.StatusOK, `"printableString":"code-a1"`},
		{"plugin error", otpc.OpGenerate, `{"accountId":"fail"}`, abi.StatusError, "declined by test"},
		{"nil output", otpc.OpGenerate, `{"accountId":"nil"}`, abi.StatusError, "returned no output"},
		{"bad input", otpc.OpGenerate, `{"accountId":`, abi.StatusBadInput, ""},
		{"no handler", otpc.OpCancel, `{}`, abi.StatusUnsupported, "no handler for cancel"},
		{"unknown op", otpc.Op(77), `{}`, abi.StatusUnsupported, "unknown op"},
		{"warmup default", otpc.OpWarmup, `{}`, abi.StatusOK, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := sdk.Handle(p, c, tc.op, []byte(tc.input), []byte("junk")[:0])
			if abi.Status(out[0]) != tc.status || !strings.Contains(string(out[1:]), tc.body) {
				t.Fatalf("frame %q, want status %s containing %q", out, tc.status, tc.body)
			}
		})
	}
}

func TestContextHost(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	h := sdk.NewMemHost(now, []byte(`{"x":1}`))
	c := sdk.NewContext(h)
	if !c.Now().Equal(now) {
		t.Fatalf("Now %v", c.Now())
	}
	c.KV().Put("k", []byte("v"))
	if v, ok := c.KV().Get("k"); !ok || string(v) != "v" {
		t.Fatal("KV put/get")
	}
	c.KV().Delete("k")
	if _, ok := c.KV().Get("k"); ok {
		t.Fatal("KV delete")
	}
	b := make([]byte, 32)
	c.Random(b)
	if string(b) == string(make([]byte, 32)) {
		t.Fatal("Random left zeros")
	}
	c.Log(sdk.LevelInfo, "hello")
	if len(h.Logs) != 1 || h.Logs[0] != "hello" {
		t.Fatalf("logs %q", h.Logs)
	}
}

func TestParsedConfigCaches(t *testing.T) {
	h := sdk.NewMemHost(time.Now(), []byte("a"))
	c := sdk.NewContext(h)
	parses := 0
	parse := func(b []byte) (string, error) {
		parses++
		if string(b) == "bad" {
			return "", errors.New("bad config")
		}
		return "cfg:" + string(b), nil
	}
	for range 3 {
		if v, err := sdk.ParsedConfig(c, parse); err != nil || v != "cfg:a" {
			t.Fatal(v, err)
		}
	}
	h.ConfigJSON = []byte("b")
	if v, _ := sdk.ParsedConfig(c, parse); v != "cfg:b" {
		t.Fatalf("changed config not reparsed: %q", v)
	}
	h.ConfigJSON = []byte("bad")
	if _, err := sdk.ParsedConfig(c, parse); err == nil {
		t.Fatal("parse error lost")
	}
	if parses != 3 {
		t.Fatalf("%d parses, want 3", parses)
	}
}

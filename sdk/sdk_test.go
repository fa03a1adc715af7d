package sdk_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
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
			if in.AccountID == "refuse" {
				return nil, fmt.Errorf("wrapped: %w", otpc.RefuseInvalidField("amount.currencyCode", "EUR is not taken"))
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
		{"refusal", otpc.OpGenerate, `{"accountId":"refuse"}`, abi.StatusRefusal,
			`"errorDescription":"EUR is not taken"`},
		{"nil output", otpc.OpGenerate, `{"accountId":"nil"}`, abi.StatusError, "returned no output"},
		{"bad input", otpc.OpGenerate, `{"accountId":`, abi.StatusBadInput, ""},
		{"no handler", otpc.OpCancel, `{}`, abi.StatusUnsupported, "no handler for cancel"},
		{"unknown op", otpc.Op(77), `{}`, abi.StatusUnsupported, "unknown op"},
		{"warmup reports the ops handled", otpc.OpWarmup, `{}`, abi.StatusOK, `{"ops":["generate"]}`},
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
	var buf bytes.Buffer
	h.Logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c.Log(sdk.LevelInfo, "hello")
	c.Log(sdk.LevelWarn, "careful")
	if len(h.Logs) != 2 || h.Logs[0] != "hello" || h.Levels[0] != sdk.LevelInfo || h.Levels[1] != sdk.LevelWarn {
		t.Fatalf("logs %q levels %v", h.Logs, h.Levels)
	}
	if got := buf.String(); !strings.Contains(got, `level=WARN msg="plugin log" line=careful`) {
		t.Fatalf("the logger lost the level: %s", got)
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

// TestRefusalFrame: a refusal survives the frame both ways, and only the
// members a merchant may choose are accepted as a plugin's refusal.
func TestRefusalFrame(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ref     *otpc.Refusal
		member  string
		status  int
		allowed bool
	}{
		{"invalid field", otpc.RefuseInvalidField("amount.amountMicros", "below minimum"), "invalidFieldValue", 400, true},
		{"precondition", otpc.RefusePrecondition("no"), "preconditionViolation", 400, true},
		{"identifier", otpc.RefuseInvalidIdentifier("googlePaymentToken", "unknown"), "invalidIdentifier", 404, true},
		{"missing", otpc.RefuseMissingField("need it", "userInformation"), "missingRequiredField", 400, true},
		{"user action", otpc.RefuseUserActionInProgress("paying"), "userActionInProgress", 423, true},
		{"forbidden", otpc.RefuseForbidden("no"), "forbidden", 403, true},
		{"idempotency", otpc.Refuse(otpc.ErrorResponseResult{IdempotencyViolation: &otpc.Empty{}}, "x"), "idempotencyViolation", 412, false},
		{"signature", otpc.Refuse(otpc.ErrorResponseResult{InvalidPayloadSignature: &otpc.Empty{}}, "x"), "invalidPayloadSignature", 401, false},
		{"encryption", otpc.Refuse(otpc.ErrorResponseResult{InvalidPayloadEncryption: &otpc.Empty{}}, "x"), "invalidPayloadEncryption", 400, false},
		{"timestamp", otpc.Refuse(otpc.ErrorResponseResult{RequestTimestampOutOfRange: &otpc.RequestTimestampOutOfRange{}}, "x"), "requestTimestampOutOfRange", 400, false},
		{"version", otpc.Refuse(otpc.ErrorResponseResult{InvalidAPIVersion: &otpc.InvalidAPIVersion{}}, "x"), "invalidApiVersion", 400, false},
		{"decrypted", otpc.Refuse(otpc.ErrorResponseResult{InvalidDecryptedRequest: &otpc.Empty{}}, "x"), "invalidDecryptedRequest", 400, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := otpc.ParseRefusalFrame(tc.ref.AppendFrame(nil))
			if err != nil {
				t.Fatal(err)
			}
			if got.Member() != tc.member || got.Description != tc.ref.Description || got.Result.HTTPStatus() != tc.status {
				t.Fatalf("round trip: %s %q %d, want %s %q %d", got.Member(), got.Description, got.Result.HTTPStatus(),
					tc.member, tc.ref.Description, tc.status)
			}
			if otpc.PluginMayRefuseWith(tc.member) != tc.allowed {
				t.Fatalf("PluginMayRefuseWith(%s) = %v", tc.member, !tc.allowed)
			}
		})
	}
}

package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// TestRunRecordsSteps: passing, failing and skipped steps, a suite that
// returns an error and one that panics are all recorded, counted and
// rendered; the run carries on after each.
func TestRunRecordsSteps(t *testing.T) {
	m := &Merchant{ID: "m1"}
	scenarios := []Scenario{
		{Name: "a", Run: func(ctx context.Context, env *Env) error {
			env.Check(ctx, m, "passes", func(context.Context) (string, error) { return "detail", nil })
			env.Check(ctx, m, "fails", func(context.Context) (string, error) { return "", errors.New("wrong answer") })
			env.Check(ctx, nil, "skips", func(context.Context) (string, error) { return "", Skipped("no lever") })
			return nil
		}},
		{Name: "b", Run: func(context.Context, *Env) error { return errors.New("setup broke") }},
		{Name: "c", Run: func(context.Context, *Env) error { panic("boom") }},
		{Name: "d", Run: func(ctx context.Context, env *Env) error {
			env.Check(ctx, m, "still runs", func(context.Context) (string, error) { return "", nil })
			return nil
		}},
	}
	rep := Run(context.Background(), &Env{}, scenarios...)
	if rep.Passed != 2 || rep.Failed != 3 || rep.Skipped != 1 || rep.OK() {
		t.Fatalf("counts: %d passed %d failed %d skipped", rep.Passed, rep.Failed, rep.Skipped)
	}
	want := []struct {
		suite, merchant, name string
		status                Status
		detail                string
	}{
		{"a", "m1", "passes", Pass, "detail"},
		{"a", "m1", "fails", Fail, "wrong answer"},
		{"a", "", "skips", Skip, "no lever"},
		{"b", "", "suite aborted", Fail, "setup broke"},
		{"c", "", "suite aborted", Fail, "panic: boom"},
		{"d", "m1", "still runs", Pass, ""},
	}
	if len(rep.Steps) != len(want) {
		t.Fatalf("%d steps, want %d: %+v", len(rep.Steps), len(want), rep.Steps)
	}
	for i, w := range want {
		s := rep.Steps[i]
		if s.Suite != w.suite || s.Merchant != w.merchant || s.Name != w.name || s.Status != w.status || s.Detail != w.detail {
			t.Errorf("step %d: %+v, want %+v", i, s, w)
		}
	}
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"SUITE", "wrong answer", "panic: boom", "FAILED: 2 passed, 3 failed, 1 skipped"} {
		if !strings.Contains(table.String(), s) {
			t.Errorf("table lacks %q:\n%s", s, table.String())
		}
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.Failed != 3 || len(back.Steps) != 6 || back.Steps[1].Status != Fail {
		t.Fatalf("JSON round trip: %v %+v", err, back)
	}
}

func TestSuitesByName(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{"", []string{"happy", "idempotency", "errors", "refusals", "clock-skew", "notifications", "drill"}, false},
		{"all", []string{"happy", "idempotency", "errors", "refusals", "clock-skew", "notifications", "drill"}, false},
		{"drill", []string{"drill"}, false},
		{"errors, happy", []string{"errors", "happy"}, false},
		{"nope", nil, true},
		{"happy,nope", nil, true},
	}
	for _, tc := range tests {
		got, err := SuitesByName(tc.in)
		if tc.wantErr {
			if !errors.Is(err, ErrUnknownSuite) {
				t.Errorf("%q: err %v, want ErrUnknownSuite", tc.in, err)
			}
			continue
		}
		var names []string
		for _, s := range got {
			names = append(names, s.Name)
		}
		if err != nil || strings.Join(names, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%q: %v %v, want %v", tc.in, names, err, tc.want)
		}
	}
}

// TestMissingLeversSkip: without the keystore the drill is skipped, and
// without merchant events the notifications are, each saying why.
func TestMissingLeversSkip(t *testing.T) {
	env := &Env{Merchants: []*Merchant{{ID: "m1"}, {ID: "m2"}}, EventsMissing: "merchant API not reachable"}
	rep := Run(context.Background(), env, DrillSuite(), NotificationsSuite())
	if rep.Skipped != 3 || rep.Failed != 0 || rep.Passed != 0 {
		t.Fatalf("%+v", rep.Steps)
	}
	if rep.Steps[0].Detail != "no access to the keystore" || rep.Steps[1].Detail != "merchant API not reachable" {
		t.Fatalf("skip reasons: %+v", rep.Steps)
	}
	if rep.Drill != nil {
		t.Fatal("a skipped drill left a drill report")
	}
}

// TestWantUnion: a 200 answer must carry a result with exactly one member.
func TestWantUnion(t *testing.T) {
	tests := []struct {
		name      string
		plaintext string
		ok        bool
	}{
		{"one member", `{"responseHeader":{},"result":{"success":{}}}`, true},
		{"none", `{"responseHeader":{},"result":{}}`, false},
		{"two", `{"responseHeader":{},"result":{"success":{},"noSuchAccount":{}}}`, false},
		{"no result", `{"responseHeader":{}}`, false},
		{"not JSON", `{`, false},
	}
	for _, tc := range tests {
		err := wantUnion(&Result{Status: 200, Plaintext: []byte(tc.plaintext)}, nil)
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if err := wantUnion(&Result{Status: 503}, nil); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("non-200: %v", err)
	}
}

func TestDrillReportTable(t *testing.T) {
	for _, tc := range []struct {
		rep  DrillReport
		want string
	}{
		{DrillReport{Requests: 10, OurKeysRotated: 2, GoogleKeysRotated: 2}, "KEY-ROTATION DRILL PASSED: 10 requests sent, 0 failed; keys rotated: ours 2, Google's 2"},
		{DrillReport{Requests: 10, Failed: 1, FirstFailures: []string{"m: HTTP 400"}}, "KEY-ROTATION DRILL FAILED: 10 requests sent, 1 failed"},
		{DrillReport{}, "KEY-ROTATION DRILL FAILED: 0 requests sent"},
	} {
		var b bytes.Buffer
		if err := tc.rep.WriteTable(&b); err != nil || !strings.Contains(b.String(), tc.want) {
			t.Errorf("%v:\n%s\nwant %q", err, b.String(), tc.want)
		}
	}
}

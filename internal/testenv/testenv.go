// Package testenv holds what tests across the module share about their
// environment: the rule that a test whose outside tool is missing skips
// loudly on a developer's machine and fails in CI.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// RequireEnv is the variable CI sets to 1 so that a missing tool (gpg, node,
// chromium, strace, PostgreSQL) fails a test instead of skipping it.
const RequireEnv = "OTPCGATE_REQUIRE_INTEROP"

// SkipOrFail skips t with msg, printed so that it stands out, or fails it
// when RequireEnv is 1: a CI image that lacks a tool cannot pass silently.
func SkipOrFail(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv(RequireEnv) == "1" {
		t.Fatal(msg + " — " + RequireEnv + "=1 makes this a failure")
	}
	fmt.Fprintf(os.Stderr, "\n!!!!!!!! %s: TEST NOT RUN: %s !!!!!!!!\n\n", t.Name(), msg)
	t.Skip(msg)
}

// LookPath returns the path of the program name, an outside tool a test
// runs (gpg, node, chromium, strace). Without it the test skips loudly, or
// fails under RequireEnv; why says what the tool is for.
func LookPath(t testing.TB, name, why string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		SkipOrFail(t, fmt.Sprintf("%s not found (%s); run ./scripts/setup", name, why))
	}
	return path
}

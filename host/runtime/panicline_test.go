package runtime

import (
	"strings"
	"testing"
)

// TestPanicLine: the plugin's panic text goes into the host's log quoted,
// first line only, clipped: a plugin cannot forge log lines with control
// characters or flood the log with its stack.
func TestPanicLine(t *testing.T) {
	tests := []struct {
		name, stderr, want string
	}{
		{"plain", "panic: plugin bug: boom\n\ngoroutine 1 [running]:\nmain.f()\n", ` ("panic: plugin bug: boom")`},
		{"forged line", "panic: x\r{\"level\":\"INFO\",\"msg\":\"forged\"}\x1b[0m\nmore", ` ("panic: x\r{\"level\":\"INFO\",\"msg\":\"forged\"}\x1b[0m")`},
		{"fatal", "junk\nfatal error: all goroutines are asleep\n", ` ("fatal error: all goroutines are asleep")`},
		{"none", "just output\n", ""},
		{"long", "panic: " + strings.Repeat("a", 500), ` ("panic: ` + strings.Repeat("a", 193) + `")`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := panicLine([]byte(tc.stderr))
			if got != tc.want {
				t.Fatalf("panicLine = %s, want %s", got, tc.want)
			}
			if strings.ContainsAny(got, "\r\n\x1b") {
				t.Fatalf("control characters in %q", got)
			}
		})
	}
}

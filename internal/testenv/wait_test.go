package testenv

import (
	"fmt"
	"testing"
)

func TestWaitForReturnsOnceTheConditionHolds(t *testing.T) {
	n := 0
	WaitFor(t, func() string {
		n++
		if n < 3 {
			return fmt.Sprintf("n = %d", n)
		}
		return ""
	})
	if n != 3 {
		t.Fatalf("cond called %d times, want 3", n)
	}
}

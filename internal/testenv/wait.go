package testenv

import (
	"testing"
	"time"
)

// WaitTimeout bounds WaitFor. It is generous on purpose: a condition that
// holds is seen within milliseconds, and only a broken one waits this long,
// so a loaded CI machine slows a test down instead of failing it.
const WaitTimeout = 30 * time.Second

// WaitFor polls cond until it returns "" and fails t with the last
// description cond returned if that takes longer than WaitTimeout. cond
// returns why it does not hold yet (e.g. the counters it saw), so a failure
// says what was being waited for.
func WaitFor(t testing.TB, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(WaitTimeout)
	for {
		why := cond()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v: %s", WaitTimeout, why)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

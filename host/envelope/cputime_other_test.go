//go:build !linux

package envelope

import "time"

// threadCPU falls back to wall time where no per-thread CPU clock is wired up.
func threadCPU() time.Duration { return time.Duration(time.Now().UnixNano()) }

func lockThread() func() { return func() {} }

// processCPU is unavailable here; metrics based on it read zero.
func processCPU() time.Duration { return 0 }

//go:build !linux

package runtime

import "github.com/tetratelabs/wazero/experimental"

// mmapAllocator is nil off Linux: wazero's default (Go heap) allocator.
var mmapAllocator experimental.MemoryAllocator

package abi

import "testing"

func TestPackUnpack(t *testing.T) {
	for _, tc := range []struct{ ptr, n uint32 }{{0, 0}, {1024, 1}, {0xFFFFFFFF, 0xFFFFFFFF}, {65536, 4096}} {
		p, n := Unpack(Pack(tc.ptr, tc.n))
		if p != tc.ptr || n != tc.n {
			t.Errorf("Unpack(Pack(%d, %d)) = %d, %d", tc.ptr, tc.n, p, n)
		}
	}
}

func TestWASIAllowed(t *testing.T) {
	for _, name := range []string{"fd_write", "random_get", "clock_time_get", "proc_exit", "fd_prestat_get"} {
		if !WASIAllowed(name) {
			t.Errorf("%s refused", name)
		}
	}
	for _, name := range []string{"path_open", "sock_accept", "sock_recv", "fd_read", "fd_readdir", "path_unlink_file", ""} {
		if WASIAllowed(name) {
			t.Errorf("%s allowed", name)
		}
	}
}

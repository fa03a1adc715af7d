package runtime

import "context"

// NewInstanceForTest creates (initialises and warms) one extra instance of
// the active version of pluginID outside its pool and returns its linear
// memory size and a func that closes it. For benchmarks only.
func NewInstanceForTest(ctx context.Context, m *Manager, pluginID string) (memBytes uint32, closeFn func(), err error) {
	v, err := m.acquire(pluginID, "")
	if err != nil {
		return 0, nil, err
	}
	in, err := v.newInstance(ctx)
	if err != nil {
		v.release()
		return 0, nil, err
	}
	return in.mod.Memory().Size(), func() { in.close(); v.release() }, nil
}

// VersionClosedForTest reports whether the loaded-or-unloaded version's pool
// is closed, and takes an extra reference if hold is set (simulating a call
// in flight); the returned func drops it.
func VersionClosedForTest(m *Manager, pluginID, ver string, hold bool) (closed func() bool, release func(), err error) {
	v, err := m.acquire(pluginID, ver)
	if err != nil {
		return nil, nil, err
	}
	if !hold {
		v.release()
	}
	return v.pool.closed.Load, v.release, nil
}

// WithoutInterruptForBench turns off wazero's termination checks, to
// measure their cost. Never for production: runaway loops become unstoppable.
func WithoutInterruptForBench(o Options) Options {
	o.noInterrupt = true
	return o
}

package runtime

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/otpcgate/otpcgate/sdk/otpc"
)

// Manager holds the loaded versions of every plugin (one plugin per
// merchant), which one is active, and routes calls to pooled instances.
// All methods are safe for concurrent use.
type Manager struct {
	opts Options

	mu      sync.RWMutex // guards plugins and closed; never held while compiling or calling
	plugins map[string]*plugin
	closed  bool

	// cacheLocks serialises cache verification + compile + seal per module
	// sha256, so two Loads of the same bytes (several merchants on one
	// plugin) do not wipe each other's half-written entries.
	cacheLocks sync.Map // [32]byte -> *sync.Mutex
	// logBudgets bounds each plugin's log volume over time.
	logBudgets sync.Map // plugin id -> *logBudget

	stats counters
}

type plugin struct {
	versions map[string]*version
	active   *version
}

// New returns a Manager. It compiles nothing until Load.
func New(opts Options) (*Manager, error) {
	if opts.CacheDir != "" && len(opts.CacheKey) == 0 {
		return nil, errNoCacheKey
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Manager{opts: opts, plugins: make(map[string]*plugin)}, nil
}

// Load verifies, compiles (or takes from the disk cache), validates and
// warms a new version of pluginID. Calls keep going to the active version;
// use Activate to switch. A refused module yields a *LoadError.
func (m *Manager) Load(ctx context.Context, pluginID string, spec VersionSpec) (VersionInfo, error) {
	if spec.Version == "" {
		return VersionInfo{}, &LoadError{Plugin: pluginID, Msg: "empty version"}
	}
	m.mu.RLock()
	closed := m.closed
	_, exists := m.lookup(pluginID, spec.Version)
	m.mu.RUnlock()
	if closed {
		return VersionInfo{}, ErrClosed
	}
	if exists {
		return VersionInfo{}, fmt.Errorf("%s@%s: %w", pluginID, spec.Version, ErrVersionExists)
	}
	v, err := loadVersion(ctx, &m.opts, &m.cacheLocks, &m.stats, m.logBudget(pluginID), pluginID, spec) // slow: no manager lock held
	if err != nil {
		return VersionInfo{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		v.release()
		return VersionInfo{}, ErrClosed
	}
	p := m.plugins[pluginID]
	if p == nil {
		p = &plugin{versions: make(map[string]*version)}
		m.plugins[pluginID] = p
	}
	if _, ok := p.versions[spec.Version]; ok {
		v.release()
		return VersionInfo{}, fmt.Errorf("%s@%s: %w", pluginID, spec.Version, ErrVersionExists)
	}
	p.versions[spec.Version] = v
	return v.info, nil
}

func (m *Manager) lookup(pluginID, ver string) (*version, bool) {
	p := m.plugins[pluginID]
	if p == nil {
		return nil, false
	}
	v, ok := p.versions[ver]
	return v, ok
}

// Activate makes a loaded version the one Call uses. The previous version
// stays loaded (for rollback) until Unload.
func (m *Manager) Activate(pluginID, ver string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	v, ok := m.lookup(pluginID, ver)
	if !ok {
		return fmt.Errorf("%s@%s: %w", pluginID, ver, ErrUnknownVersion)
	}
	m.plugins[pluginID].active = v
	return nil
}

// Unload forgets a version. Calls running on it finish; the version's
// instances, runtime and cache close when the last one returns. Unloading
// the active version leaves the plugin without one.
func (m *Manager) Unload(pluginID, ver string) error {
	m.mu.Lock()
	v, ok := m.lookup(pluginID, ver)
	if ok {
		p := m.plugins[pluginID]
		delete(p.versions, ver)
		if p.active == v {
			p.active = nil
		}
		if len(p.versions) == 0 {
			delete(m.plugins, pluginID)
		}
	}
	m.mu.Unlock()
	if !ok {
		return fmt.Errorf("%s@%s: %w", pluginID, ver, ErrUnknownVersion)
	}
	v.release()
	return nil
}

// Active returns the active version's info.
func (m *Manager) Active(pluginID string) (VersionInfo, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	p := m.plugins[pluginID]
	if p == nil || p.active == nil {
		return VersionInfo{}, false
	}
	return p.active.info, true
}

// Versions lists the loaded versions of pluginID, sorted by version.
func (m *Manager) Versions(pluginID string) []VersionInfo {
	m.mu.RLock()
	defer m.mu.RUnlock()
	p := m.plugins[pluginID]
	if p == nil {
		return nil
	}
	out := make([]VersionInfo, 0, len(p.versions))
	for _, v := range p.versions {
		out = append(out, v.info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out
}

// Call runs op on the active version of pluginID with the JSON input frame
// and returns the JSON output frame and the call's KV writes. Failures are
// *CallError (any Kind) or the sentinels ErrUnknownPlugin,
// ErrNoActiveVersion, ErrClosed. The caller's ctx bounds both waiting for
// an instance and the call itself (with the version's CallTimeout).
func (m *Manager) Call(ctx context.Context, pluginID string, op otpc.Op, input []byte, env CallEnv) ([]byte, ChangeSet, error) {
	v, err := m.acquire(pluginID, "")
	if err != nil {
		return nil, ChangeSet{}, err
	}
	defer v.release()
	return v.call(ctx, op, input, &env)
}

// CallVersion is Call on a specific loaded version (e.g. to try a version
// before activating it).
func (m *Manager) CallVersion(ctx context.Context, pluginID, ver string, op otpc.Op, input []byte, env CallEnv) ([]byte, ChangeSet, error) {
	v, err := m.acquire(pluginID, ver)
	if err != nil {
		return nil, ChangeSet{}, err
	}
	defer v.release()
	return v.call(ctx, op, input, &env)
}

// acquire takes a reference on a version under the read lock, so a
// concurrent Unload cannot close it under the call.
func (m *Manager) acquire(pluginID, ver string) (*version, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, ErrClosed
	}
	p := m.plugins[pluginID]
	if p == nil {
		return nil, fmt.Errorf("%s: %w", pluginID, ErrUnknownPlugin)
	}
	v := p.active
	if ver != "" {
		v = p.versions[ver]
		if v == nil {
			return nil, fmt.Errorf("%s@%s: %w", pluginID, ver, ErrUnknownVersion)
		}
	} else if v == nil {
		return nil, fmt.Errorf("%s: %w", pluginID, ErrNoActiveVersion)
	}
	v.refs.Add(1)
	return v, nil
}

// Close unloads every version; versions with calls in flight close when
// those return. Further calls fail with ErrClosed.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	var all []*version
	for _, p := range m.plugins {
		for _, v := range p.versions {
			all = append(all, v)
		}
	}
	m.plugins = nil
	m.mu.Unlock()
	for _, v := range all {
		v.release()
	}
	return nil
}

// call checks out an instance, runs op and returns the instance (or
// replaces it when it broke).
func (v *version) call(ctx context.Context, op otpc.Op, input []byte, env *CallEnv) ([]byte, ChangeSet, error) {
	if err := ctx.Err(); err != nil {
		// Do not hand a healthy instance a context that would kill it.
		return nil, ChangeSet{}, v.annotate(&CallError{Kind: KindTimeout, Msg: "context done before the call", Err: err}, op, env)
	}
	v.stats.calls.Add(1)
	in, err := v.pool.get(ctx)
	if err != nil {
		return nil, ChangeSet{}, v.annotate(err, op, env)
	}
	out, cs, err := in.call(ctx, int32(op), input, env)
	v.pool.put(in)
	if err != nil {
		return nil, ChangeSet{}, v.annotate(err, op, env)
	}
	return out, cs, nil
}

func (v *version) annotate(err error, op otpc.Op, env *CallEnv) error {
	if ce, ok := err.(*CallError); ok {
		ce.Plugin, ce.Version, ce.Op = v.plugin, v.name, op
		if ce.Kind == KindRefusal {
			return err // an answer, not a failure
		}
		v.stats.failure(ce.Kind)
		if ce.Kind != KindPluginError {
			v.logger.Warn("plugin call failed", "merchant", v.plugin, "version", v.name, "request_id", env.RequestID,
				"op", op.String(), "kind", ce.Kind.String(), "error", ce.Msg)
		}
		if v.sink != nil {
			v.sink(LogLine{Time: time.Now(), Plugin: v.plugin, Version: v.name, RequestID: env.RequestID,
				Level: slog.LevelError, Text: ce.Msg, Failure: ce.Kind.String(), Op: op.String(), Stack: ce.Stack})
		}
	}
	return err
}

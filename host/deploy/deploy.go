// Package deploy keeps each merchant's plugin versions in service: the
// version the runtime runs (the directory's active one, or a fallback while
// it is quarantined), which versions stay loaded, the shadow and canary
// candidates and the recording of calls, and the admin API's plugin
// operations (upload, activate, roll back, delete, shadow, canary, record,
// replay). The gateway runs one Service and applies the directory through
// it on every reload.
package deploy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/otpcgate/otpcgate/host/admin"
	"github.com/otpcgate/otpcgate/host/directory"
	"github.com/otpcgate/otpcgate/host/ledger"
	"github.com/otpcgate/otpcgate/host/plugincall"
	"github.com/otpcgate/otpcgate/host/runtime"
	"github.com/otpcgate/otpcgate/host/server"
)

// Service keeps each merchant's plugin versions in service. It makes the
// directory's active version the one the runtime runs (or, while that
// version fails to load, a quarantine fallback), keeps loaded only what
// can be switched to at once, applies the shadow and canary candidates and
// the recording of calls, and carries out the admin API's plugin
// operations: upload, activate and roll back, delete, shadow, canary,
// record and replay.
type Service struct {
	cfg       Config
	dir       *directory.Store
	ledger    *ledger.Ledger
	rt        *runtime.Manager
	calls     *plugincall.Service
	admission *server.Limiter
	reload    func(ctx context.Context) error
	reloadMu  sync.Locker
	// mu serialises changes (Deps.Changes) so that two uploads of one
	// version, or an activation racing a reload, cannot interleave.
	mu  sync.Locker
	log *slog.Logger
	rec *recorder
	// replaying pins versions a replay runs on ("merchant\x00version"),
	// so trimLoaded does not unload them under it.
	replaying sync.Map
	quar      quarantines
}

// Config tunes a Service.
type Config struct {
	// RecordingKey seals recorded plugin calls at rest (32 bytes, derived
	// from the KEK). Required.
	RecordingKey []byte
	Logger       *slog.Logger
}

// Deps are the parts a Service works on.
type Deps struct {
	Directory *directory.Store
	Ledger    *ledger.Ledger
	Runtime   *runtime.Manager
	Calls     *plugincall.Service
	// Admission is the CPU slots' limiter: replays yield to live requests.
	Admission *server.Limiter
	// Reload publishes the directory's changes (the gateway's Reload); it
	// applies them through EnsureActive and ApplyCandidates.
	Reload func(ctx context.Context) error
	// ReloadLock is held by Reload; an activation holds it while it
	// switches the runtime and records the change, so a reload that read
	// the directory before cannot apply an older active version after it.
	ReloadLock sync.Locker
	// Changes serialises the admin API's changes; the caller's own
	// changes (merchants) take the same lock.
	Changes sync.Locker
}

// New returns a Service over d. It becomes the sink of d.Calls's
// recordings and canary rollbacks; Close stops its recording writer.
func New(cfg Config, d Deps) (*Service, error) {
	if d.Directory == nil || d.Ledger == nil || d.Runtime == nil || d.Calls == nil || d.Reload == nil || d.ReloadLock == nil || d.Changes == nil {
		return nil, errors.New("deploy: Directory, Ledger, Runtime, Calls, Reload, ReloadLock and Changes are required")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{cfg: cfg, dir: d.Directory, ledger: d.Ledger, rt: d.Runtime, calls: d.Calls, admission: d.Admission,
		reload: d.Reload, reloadMu: d.ReloadLock, mu: d.Changes, log: log}
	var err error
	if s.rec, err = newRecorder(s.dir, log, cfg.RecordingKey); err != nil {
		return nil, fmt.Errorf("deploy: recordings: %w", err)
	}
	s.calls.SetRecorder(s.rec.add)
	s.calls.OnCanaryRollback(s.canaryRolledBack)
	return s, nil
}

// Close stops the recording writer. Close the plugin-call service first:
// its shadow worker and calls feed the recorder.
func (s *Service) Close() { s.rec.close() }

// EnsureActive makes the directory's active version of merchantID the one
// the runtime runs. A version that fails to load quarantines the merchant
// (see Quarantine) and is not an error: one merchant's broken version
// never stops the others. Errors are failures to read the directory.
func (s *Service) EnsureActive(ctx context.Context, merchantID string) error {
	err := s.ensureActive(ctx, merchantID)
	if lf, ok := isLoadError(err); ok {
		return s.quarantine(ctx, merchantID, lf)
	}
	return err
}

// ApplyCandidates makes merchantID's shadow, canary and recording, as the
// directory holds them, the plugin-call service's.
func (s *Service) ApplyCandidates(ctx context.Context, merchantID string, sh directory.Shadow, c directory.Canary,
	rec directory.RecordingSettings, recording bool) {
	s.loadShadow(ctx, merchantID, sh)
	s.loadCanary(ctx, merchantID, c)
	s.loadRecording(merchantID, rec, recording)
}

// ensureActive makes the directory's active version the runtime's active one.
func (s *Service) ensureActive(ctx context.Context, merchantID string) error {
	pv, err := s.dir.ActivePluginVersion(ctx, merchantID)
	if errors.Is(err, directory.ErrNotFound) {
		// Served, but every plugin-backed method answers 503 until a
		// plugin is activated; echo works.
		s.log.Warn("merchant has no active plugin", "merchant", merchantID)
		return nil
	}
	if err != nil {
		return err
	}
	if cur, ok := s.rt.Active(merchantID); ok && cur.Version == pv.Version {
		s.endQuarantine(merchantID)
		return nil
	}
	if s.inQuarantine(merchantID, pv.Version) {
		// Failed already; retried at the next start or activation, not
		// at every reload.
		return nil
	}
	loaded := false
	for _, v := range s.rt.Versions(merchantID) {
		loaded = loaded || v.Version == pv.Version
	}
	if !loaded {
		start := time.Now()
		spec, err := s.VersionSpec(ctx, pv)
		if err != nil {
			return err
		}
		info, err := s.rt.Load(ctx, merchantID, spec)
		if err != nil {
			return fmt.Errorf("deploy: merchant %s: %w", merchantID, &pluginLoadError{version: pv.Version, err: err})
		}
		s.log.Info("plugin loaded", "merchant", merchantID, "version", pv.Version, "sha256", pv.SHA256,
			"engine", info.Engine, "cache_hit", info.CacheHit, "took", time.Since(start).Round(time.Millisecond))
	}
	if err := s.rt.Activate(merchantID, pv.Version); err != nil {
		return err
	}
	s.endQuarantine(merchantID)
	return nil
}

// PluginVersions lists merchantID's stored versions, oldest first, with
// which is active, the rollback target and loaded (admin.Backend).
func (s *Service) PluginVersions(ctx context.Context, merchantID string) ([]admin.PluginVersion, error) {
	vs, err := s.dir.PluginVersions(ctx, merchantID)
	if err != nil {
		return nil, err
	}
	active, _ := s.dir.ActivePluginVersion(ctx, merchantID)
	previous, err := s.dir.PreviousPluginVersion(ctx, merchantID)
	if err != nil {
		return nil, err
	}
	loaded := map[string]runtime.VersionInfo{}
	for _, v := range s.rt.Versions(merchantID) {
		loaded[v.Version] = v
	}
	out := make([]admin.PluginVersion, 0, len(vs))
	for _, v := range vs {
		li, ok := loaded[v.Version]
		out = append(out, admin.PluginVersion{Version: v.Version, SHA256: v.SHA256, Size: v.Size, Created: v.Created,
			Active: v.Version == active.Version, RollbackTarget: v.Version == previous && previous != active.Version,
			Loaded: ok, CompileTime: li.CompileTime, CacheHit: li.CacheHit, Ops: li.Ops})
	}
	return out, nil
}

// UploadPlugin checks, compiles and warms a version, stores it and, if
// asked, activates it (admin.Backend). A refused module or configuration
// stores nothing.
func (s *Service) UploadPlugin(ctx context.Context, merchantID string, up admin.PluginUpload) (admin.PluginVersion, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if up.From != "" {
		src, err := s.dir.PluginVersion(ctx, merchantID, up.From)
		if err != nil {
			return admin.PluginVersion{}, fmt.Errorf("%w: --from: %w", admin.ErrInvalid, err)
		}
		up.Wasm = src.Wasm
	}
	if !bytes.HasPrefix(up.Wasm, []byte("\x00asm")) {
		return admin.PluginVersion{}, fmt.Errorf("%w: not a WebAssembly module (no \\0asm header); upload the .wasm file the build wrote",
			admin.ErrPluginRefused)
	}
	sum := sha256.Sum256(up.Wasm)
	got := hex.EncodeToString(sum[:])
	if up.SHA256 != "" && !strings.EqualFold(up.SHA256, got) {
		return admin.PluginVersion{}, fmt.Errorf("%w: sha256 of the upload is %s, you expected %s (corrupted transfer or wrong file)",
			admin.ErrPluginRefused, got, up.SHA256)
	}
	cfg := up.Config
	if len(cfg) == 0 {
		cfg = []byte("{}")
	}
	if existing, err := s.dir.PluginVersion(ctx, merchantID, up.Version); err == nil {
		if existing.SHA256 != got {
			return admin.PluginVersion{}, fmt.Errorf("%w: version %s exists with sha256 %s; versions are immutable, upload under a new version",
				admin.ErrConflict, up.Version, existing.SHA256)
		}
		// The configuration is part of a version too: the same module with
		// another configuration must not be taken as a no-op.
		if !sameJSON(existing.Config, cfg) {
			return admin.PluginVersion{}, fmt.Errorf("%w: version %s exists with another configuration; a version's configuration never changes, upload the module again under a new version",
				admin.ErrConflict, up.Version)
		}
	} else if !errors.Is(err, directory.ErrNotFound) {
		return admin.PluginVersion{}, err
	}
	// Compile and warm before anything is stored: the warm-up call runs
	// the plugin's configuration check, so a refused module or
	// configuration leaves the directory and traffic untouched.
	loadedHere := false
	var ops []string
	if i := slices.IndexFunc(s.rt.Versions(merchantID), func(v runtime.VersionInfo) bool { return v.Version == up.Version }); i >= 0 {
		ops = s.rt.Versions(merchantID)[i].Ops
	} else {
		loadedHere = true
		start := time.Now()
		spec, err := s.VersionSpec(ctx, directory.PluginVersion{MerchantID: merchantID, Version: up.Version, Wasm: up.Wasm, SHA256: got, Config: cfg})
		if err != nil {
			return admin.PluginVersion{}, err
		}
		info, err := s.rt.Load(ctx, merchantID, spec)
		if err != nil {
			var le *runtime.LoadError
			if errors.As(err, &le) {
				return admin.PluginVersion{}, fmt.Errorf("%w: %s", admin.ErrPluginRefused, le.Error())
			}
			return admin.PluginVersion{}, err
		}
		s.log.Info("plugin uploaded and warmed", "merchant", merchantID, "version", up.Version, "sha256", got,
			"engine", info.Engine, "ops", info.Ops, "took", time.Since(start).Round(time.Millisecond))
		ops = info.Ops
	}
	if _, err := s.dir.AddPluginVersion(ctx, directory.PluginVersion{MerchantID: merchantID, Version: up.Version,
		SHA256: got, Wasm: up.Wasm, Config: cfg}); err != nil {
		if loadedHere {
			_ = s.rt.Unload(merchantID, up.Version) // not stored: do not keep it warm
		}
		return admin.PluginVersion{}, err
	}
	if up.Activate {
		if err := s.activate(ctx, merchantID, up.Version); err != nil {
			return admin.PluginVersion{}, err
		}
	}
	if err := s.trimLoaded(ctx, merchantID); err != nil {
		return admin.PluginVersion{}, err
	}
	pv, err := s.version(ctx, merchantID, up.Version)
	if pv.Ops == nil {
		pv.Ops = ops // reported by its warm-up even if it is not kept loaded
	}
	return pv, err
}

func (s *Service) version(ctx context.Context, merchantID, version string) (admin.PluginVersion, error) {
	vs, err := s.PluginVersions(ctx, merchantID)
	if err != nil {
		return admin.PluginVersion{}, err
	}
	for _, v := range vs {
		if v.Version == version {
			return v, nil
		}
	}
	return admin.PluginVersion{}, fmt.Errorf("%w: plugin %s %s", admin.ErrNotFound, merchantID, version)
}

// ActivatePlugin makes a stored version the active one (admin.Backend).
func (s *Service) ActivatePlugin(ctx context.Context, merchantID, version string) (admin.PluginVersion, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.activate(ctx, merchantID, version); err != nil {
		return admin.PluginVersion{}, err
	}
	if err := s.trimLoaded(ctx, merchantID); err != nil {
		return admin.PluginVersion{}, err
	}
	return s.version(ctx, merchantID, version)
}

// activate loads the version if needed (a rollback to a version unloaded
// since), records it and switches the runtime: one atomic pointer swap,
// calls in flight finish on the old version.
func (s *Service) activate(ctx context.Context, merchantID, version string) error {
	pv, err := s.dir.PluginVersion(ctx, merchantID, version)
	if errors.Is(err, directory.ErrNotFound) {
		return fmt.Errorf("%w: plugin %s has no version %s", admin.ErrNotFound, merchantID, version)
	}
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(s.rt.Versions(merchantID), func(v runtime.VersionInfo) bool { return v.Version == version }) {
		spec, err := s.VersionSpec(ctx, pv)
		if err != nil {
			return err
		}
		if _, err := s.rt.Load(ctx, merchantID, spec); err != nil {
			return fmt.Errorf("%w: %v", admin.ErrPluginRefused, err)
		}
	}
	// Under the reload lock: a reload (another host's change seen by
	// sync) that read the directory before this activation must not apply
	// its older active version to the runtime after it.
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if err := s.rt.Activate(merchantID, version); err != nil {
		return err
	}
	if err := s.dir.ActivatePluginVersion(ctx, merchantID, version); err != nil {
		return err
	}
	s.endQuarantine(merchantID)
	return nil
}

// sameJSON reports whether two JSON documents are equal apart from
// insignificant whitespace.
func sameJSON(a, b []byte) bool {
	var ca, cb bytes.Buffer
	if json.Compact(&ca, a) != nil || json.Compact(&cb, b) != nil {
		return bytes.Equal(a, b)
	}
	return bytes.Equal(ca.Bytes(), cb.Bytes())
}

package admin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/otpcgate/otpcgate/host/plugincall"
	"github.com/otpcgate/otpcgate/host/pluginlog"
)

func (s *Server) withStats(merchantID string, vs []PluginVersion) []PluginVersion {
	if s.cfg.Calls == nil {
		return vs
	}
	for i := range vs {
		if st, ok := s.cfg.Calls.Stats(merchantID, vs[i].Version); ok {
			vs[i].Stats = &st
		}
	}
	return vs
}

func (s *Server) listPlugins(c echo.Context) error {
	id := c.Param("id")
	if _, err := s.d.Backend.Merchant(c.Request().Context(), id); err != nil {
		return err
	}
	vs, err := s.d.Backend.PluginVersions(c.Request().Context(), id)
	if err != nil {
		return err
	}
	if vs == nil {
		vs = []PluginVersion{}
	}
	return c.JSON(http.StatusOK, s.withStats(id, vs))
}

// uploadPlugin takes {version, sha256, wasm (base64), config, activate}.
// The body limit is the module limit plus base64 and configuration room.
func (s *Server) uploadPlugin(c echo.Context) error {
	id := c.Param("id")
	ctx := c.Request().Context()
	m, err := s.d.Backend.Merchant(ctx, id)
	if err != nil {
		return err
	}
	maxVersions, maxBytes := s.cfg.MaxPluginVersions, s.cfg.MaxPluginBytes
	if q := m.Quotas; q != nil {
		if q.PluginVersions > 0 {
			maxVersions = int(q.PluginVersions)
		}
		if q.PluginBytes > 0 {
			maxBytes = int(q.PluginBytes)
		}
	}
	// The body is read into memory: bound how many are at once, one per
	// merchant, before reading it.
	release, ok := s.uploads.acquire(id)
	if !ok {
		c.Response().Header().Set("Retry-After", "5")
		return fail(http.StatusTooManyRequests, "another plugin upload is in progress (one per merchant, "+
			fmt.Sprint(s.cfg.MaxUploads)+" on the host)", "retry when it has finished")
	}
	defer release()
	vs, err := s.d.Backend.PluginVersions(ctx, id)
	if err != nil {
		return err
	}
	var up PluginUpload
	if err := bind(c, int64(maxBytes)/3*4+maxJSONBody, &up); err != nil {
		var he *echo.HTTPError
		if errors.As(err, &he) && he.Code == http.StatusRequestEntityTooLarge {
			return fail(http.StatusRequestEntityTooLarge, fmt.Sprintf("plugin over the %d-byte limit", maxBytes),
				"build with -ldflags='-s -w' and check for embedded data; the limit is the admin config's max plugin size")
		}
		return err
	}
	if len(up.Wasm) > maxBytes {
		return s.uploadRefused(c, id, &up, fail(http.StatusRequestEntityTooLarge, fmt.Sprintf("plugin is %d bytes, over the %d-byte limit", len(up.Wasm), maxBytes),
			"build with -ldflags='-s -w' and check for embedded data"))
	}
	if up.Version == "" || len(up.Wasm) == 0 && up.From == "" || len(up.Wasm) > 0 && up.From != "" {
		return s.uploadRefused(c, id, &up, fail(http.StatusBadRequest, "version and one of wasm or from are required", ""))
	}
	if len(vs) >= maxVersions && !slices.ContainsFunc(vs, func(v PluginVersion) bool { return v.Version == up.Version }) {
		return s.uploadRefused(c, id, &up, fail(http.StatusConflict, fmt.Sprintf("merchant %s stores %d plugin versions, the limit", id, len(vs)),
			"delete versions no longer needed: `otpcgate plugins delete --merchant "+id+" VERSION` (never the active one)"))
	}
	before, _ := s.activeVersion(c, id)
	pv, err := s.d.Backend.UploadPlugin(ctx, id, up)
	if err != nil {
		if errors.Is(err, ErrPluginRefused) || errors.Is(err, ErrConflict) || errors.Is(err, ErrInvalid) {
			return s.uploadRefused(c, id, &up, err)
		}
		return err
	}
	if err := s.audit(c, "plugin.upload", MerchantSubject(id), nil,
		uploadRecord{Version: pv.Version, SHA256: pv.SHA256, Size: pv.Size, Activated: up.Activate}); err != nil {
		return err
	}
	if up.Activate {
		if err := s.audit(c, "plugin.activate", MerchantSubject(id), map[string]string{"version": before},
			map[string]string{"version": pv.Version}); err != nil {
			return err
		}
	}
	return c.JSON(http.StatusCreated, s.withStats(id, []PluginVersion{pv})[0])
}

// uploadRecord is an upload's audit payload, named as the API names things.
type uploadRecord struct {
	Version   string `json:"version"`
	SHA256    string `json:"sha256"`
	Size      int    `json:"size"`
	Activated bool   `json:"activated,omitempty"`
	Reason    string `json:"reason,omitempty"`
}

// uploadRefused audits a refused upload with its reason (what the caller
// is told) and returns refusal. Nothing else changed, so a failed audit is
// logged, not answered.
func (s *Server) uploadRefused(c echo.Context, id string, up *PluginUpload, refusal error) error {
	sum := sha256.Sum256(up.Wasm)
	reason := refusal.Error()
	var he *echo.HTTPError
	if errors.As(refusal, &he) {
		if m, ok := he.Message.(apiError); ok {
			reason = m.Error
		}
	}
	rec := uploadRecord{Version: up.Version, SHA256: hex.EncodeToString(sum[:]), Size: len(up.Wasm), Reason: reason}
	if err := s.audit(c, "plugin.upload_refused", MerchantSubject(id), nil, rec); err != nil {
		s.log.Error("refused plugin upload not audited", "merchant", id, "err", err)
	}
	return refusal
}

func (s *Server) activeVersion(c echo.Context, id string) (string, error) {
	vs, err := s.d.Backend.PluginVersions(c.Request().Context(), id)
	if err != nil {
		return "", err
	}
	for _, v := range vs {
		if v.Active {
			return v.Version, nil
		}
	}
	return "", nil
}

func (s *Server) activate(c echo.Context, id, version, action string) error {
	before, err := s.activeVersion(c, id)
	if err != nil {
		return err
	}
	pv, err := s.d.Backend.ActivatePlugin(c.Request().Context(), id, version)
	if err != nil {
		return err
	}
	if err := s.audit(c, action, MerchantSubject(id), map[string]string{"version": before},
		map[string]string{"version": pv.Version, "sha256": pv.SHA256}); err != nil {
		return err
	}
	// The same counters as the listing, not a fresh zero.
	return c.JSON(http.StatusOK, s.withStats(id, []PluginVersion{pv})[0])
}

func (s *Server) activatePlugin(c echo.Context) error {
	return s.activate(c, c.Param("id"), c.Param("version"), "plugin.activate")
}

// rollbackRequest names the version to go back to; empty means the
// version active before the active one.
type rollbackRequest struct {
	Version string `json:"version,omitempty"`
}

func (s *Server) rollbackPlugin(c echo.Context) error {
	var req rollbackRequest
	if c.Request().ContentLength != 0 {
		if err := bind(c, maxJSONBody, &req); err != nil {
			return err
		}
	}
	id := c.Param("id")
	if req.Version == "" {
		vs, err := s.d.Backend.PluginVersions(c.Request().Context(), id)
		if err != nil {
			return err
		}
		var active string
		if i := slices.IndexFunc(vs, func(v PluginVersion) bool { return v.Active }); i >= 0 {
			active = vs[i].Version
		}
		if req.Version = RollbackTarget(vs, active); req.Version == "" {
			return fail(http.StatusConflict, "no earlier version to roll back to",
				"list versions with `otpcgate plugins list` and activate one by name")
		}
	}
	return s.activate(c, id, req.Version, "plugin.rollback")
}

// RollbackTarget is the version a rollback without a name goes back to:
// the one active before active (activation history, marked
// RollbackTarget in vs), or else, for a merchant with no such history, the
// one uploaded just before active (vs is oldest first); "" if none. The
// gateway keeps it loaded beside the active one, so that this rollback is
// instant.
func RollbackTarget(vs []PluginVersion, active string) string {
	if i := slices.IndexFunc(vs, func(v PluginVersion) bool { return v.RollbackTarget && v.Version != active }); i >= 0 {
		return vs[i].Version
	}
	i := slices.IndexFunc(vs, func(v PluginVersion) bool { return v.Version == active })
	if i <= 0 {
		return ""
	}
	return vs[i-1].Version
}

// deletePlugin deletes a stored version that is not active.
func (s *Server) deletePlugin(c echo.Context) error {
	id, version := c.Param("id"), c.Param("version")
	pv, err := s.d.Backend.DeletePlugin(c.Request().Context(), id, version)
	if err != nil {
		return err
	}
	if err := s.audit(c, "plugin.delete", MerchantSubject(id), map[string]string{"version": pv.Version, "sha256": pv.SHA256}, nil); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, pv)
}

// UploadsInProgress is the number of plugin uploads being received or
// checked (exported as otpcgate_admin_uploads_in_progress).
func (s *Server) UploadsInProgress() int {
	s.uploads.mu.Lock()
	defer s.uploads.mu.Unlock()
	return len(s.uploads.active)
}

// uploadSlots bounds uploads in progress: max on the host, one per merchant.
type uploadSlots struct {
	mu     sync.Mutex
	max    int
	active map[string]bool
}

func newUploadSlots(max int) *uploadSlots {
	return &uploadSlots{max: max, active: map[string]bool{}}
}

// acquire takes a slot for merchant without waiting.
func (u *uploadSlots) acquire(merchant string) (release func(), ok bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.active[merchant] || len(u.active) >= u.max {
		return nil, false
	}
	u.active[merchant] = true
	return func() {
		u.mu.Lock()
		delete(u.active, merchant)
		u.mu.Unlock()
	}, true
}

// PluginLogs is the answer of GET /v1/merchants/{id}/plugin-logs: the
// merchant's plugin log lines and failed-call reports after the asked Seq,
// oldest first, and the Seq to ask after next time.
type PluginLogs struct {
	Entries []pluginlog.Entry `json:"entries"`
	Next    uint64            `json:"next"`
}

// maxLogWait bounds a follower's wait for new lines, well inside the
// server's write timeout.
const maxLogWait = 60 * time.Second

// pluginLogs answers the merchant's own buffer only: the merchant named by
// the path, which a merchant token can only be its own.
func (s *Server) pluginLogs(c echo.Context) error {
	if s.d.PluginLogs == nil {
		return fail(http.StatusServiceUnavailable, "plugin logs are not kept on this host", "")
	}
	id := c.Param("id")
	if _, err := s.d.Backend.Merchant(c.Request().Context(), id); err != nil {
		return err
	}
	var after uint64
	if v := c.QueryParam("after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return fail(http.StatusBadRequest, "after must be the next value of an earlier answer", "")
		}
		after = n
	}
	limit := 100
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return fail(http.StatusBadRequest, "limit must be 1..1000", "")
		}
		limit = n
	}
	if v := c.QueryParam("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > maxLogWait {
			return fail(http.StatusBadRequest, "wait must be a duration up to "+maxLogWait.String(), "e.g. wait=30s")
		}
		ctx, cancel := context.WithTimeout(c.Request().Context(), d)
		defer cancel()
		_ = s.d.PluginLogs.Wait(ctx, id, after) // no new line within wait: an empty answer
	}
	es, next := s.d.PluginLogs.Since(id, after, limit)
	version, failures := c.QueryParam("version"), c.QueryParam("failures") == "true"
	out := PluginLogs{Entries: make([]pluginlog.Entry, 0, len(es)), Next: next}
	for _, e := range es {
		if (version == "" || e.Version == version) && (!failures || e.Failure != "") {
			out.Entries = append(out.Entries, e)
		}
	}
	return c.JSON(http.StatusOK, out)
}

// ShadowRequest starts a shadow: the candidate version and the share of
// calls it runs on (default 1, every call).
type ShadowRequest struct {
	Version string  `json:"version"`
	Sample  float64 `json:"sample,omitempty"`
}

func (s *Server) shadowReport(c echo.Context) error {
	rep, err := s.d.Backend.ShadowReport(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, rep)
}

func (s *Server) startShadow(c echo.Context) error {
	var req ShadowRequest
	if err := bind(c, maxJSONBody, &req); err != nil {
		return err
	}
	if req.Version == "" {
		return fail(http.StatusBadRequest, "version is required", "the stored version to run beside the active one")
	}
	if req.Sample == 0 {
		req.Sample = 1
	}
	id := c.Param("id")
	before, err := s.d.Backend.ShadowReport(c.Request().Context(), id)
	if err != nil {
		return err
	}
	rep, err := s.d.Backend.StartShadow(c.Request().Context(), id, req.Version, req.Sample)
	if err != nil {
		return err
	}
	if err := s.audit(c, "plugin.shadow_start", MerchantSubject(id), shadowRecord(before),
		map[string]any{"version": rep.Version, "sample": rep.Sample}); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, rep)
}

func (s *Server) stopShadow(c echo.Context) error {
	id := c.Param("id")
	rep, err := s.d.Backend.StopShadow(c.Request().Context(), id)
	if err != nil {
		return err
	}
	if err := s.audit(c, "plugin.shadow_stop", MerchantSubject(id), shadowRecord(rep), nil); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, rep)
}

// shadowRecord is a shadow's audit payload: what ran and what it found.
func shadowRecord(r plugincall.ShadowReport) any {
	if r.Version == "" {
		return nil
	}
	return map[string]any{"version": r.Version, "sample": r.Sample, "compared": r.Compared, "different": r.Different}
}

func (s *Server) recording(c echo.Context) error {
	st, err := s.d.Backend.Recording(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}

func (s *Server) setRecording(c echo.Context) error {
	var req RecordingRequest
	if err := bind(c, maxJSONBody, &req); err != nil {
		return err
	}
	id := c.Param("id")
	st, err := s.d.Backend.SetRecording(c.Request().Context(), id, req)
	if err != nil {
		return err
	}
	action := "plugin.recording_stop"
	if req.On {
		action = "plugin.recording_start"
	}
	if err := s.audit(c, action, MerchantSubject(id), nil, map[string]any{"on": st.On, "retention": st.Retention, "max": st.Max}); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}

func (s *Server) replay(c echo.Context) error {
	var req ReplayRequest
	if err := bind(c, maxJSONBody, &req); err != nil {
		return err
	}
	rep, err := s.d.Backend.Replay(c.Request().Context(), c.Param("id"), req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, rep)
}

func (s *Server) canaryState(c echo.Context) error {
	st, err := s.d.Backend.CanaryState(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}

func (s *Server) startCanary(c echo.Context) error {
	var req CanaryRequest
	if err := bind(c, maxJSONBody, &req); err != nil {
		return err
	}
	if req.Version == "" {
		return fail(http.StatusBadRequest, "version is required", "the stored version to serve a fraction of new transactions")
	}
	id := c.Param("id")
	st, err := s.d.Backend.StartCanary(c.Request().Context(), id, req)
	if err != nil {
		return err
	}
	if err := s.audit(c, "plugin.canary_start", MerchantSubject(id), nil, map[string]any{"version": st.Version,
		"fraction": st.Fraction, "maxFailures": st.Limits.MaxFailures, "maxLatency": st.Limits.MaxLatency.String()}); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}

func (s *Server) stopCanary(c echo.Context) error    { return s.endCanary(c, false) }
func (s *Server) promoteCanary(c echo.Context) error { return s.endCanary(c, true) }

func (s *Server) endCanary(c echo.Context, promote bool) error {
	id := c.Param("id")
	st, err := s.d.Backend.StopCanary(c.Request().Context(), id, promote)
	if err != nil {
		return err
	}
	action := "plugin.canary_stop"
	if promote {
		action = "plugin.canary_promote"
	}
	if err := s.audit(c, action, MerchantSubject(id), map[string]any{"version": st.Version, "fraction": st.Fraction,
		"calls": st.Calls, "failures": st.Failures}, nil); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}

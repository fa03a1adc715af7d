package admin

import (
	"context"
	"errors"
	"time"

	"github.com/otpcgate/otpcgate/host/ledger"
	"github.com/otpcgate/otpcgate/host/plugincall"
)

// Backend is what the admin API changes in the gateway: merchants with
// their integration, and plugin versions. host/gateway implements it (see
// Gateway.AdminServer); keys, tokens and the audit log are used directly.
type Backend interface {
	// Merchants lists every merchant.
	Merchants(ctx context.Context) ([]Merchant, error)
	// Merchant returns one merchant (ErrNotFound if unknown).
	Merchant(ctx context.Context, id string) (Merchant, error)
	// CreateMerchant creates a merchant, its PIAIDs, keyset (if none is
	// named) and integration, then reloads the routes.
	CreateMerchant(ctx context.Context, actor string, spec MerchantSpec) (Merchant, error)
	// UpdateMerchant changes the integration or adds PIAIDs, then reloads.
	UpdateMerchant(ctx context.Context, id string, u MerchantUpdate) (Merchant, error)
	// SetMerchantDisabled disables (or enables) a merchant, then reloads.
	SetMerchantDisabled(ctx context.Context, id string, disabled bool) (Merchant, error)
	// DeleteMerchant deletes a disabled merchant that never held a record
	// (ErrConflict otherwise, saying why): its PIAIDs, amount rules,
	// integration and plugin versions, with an audit entry by actor, in one
	// transaction that also runs also (the API revokes the merchant's
	// tokens there); then it takes the merchant's own keys out of service
	// and reloads. It returns the merchant as it was.
	DeleteMerchant(ctx context.Context, actor, id string, also func(exec Exec) error) (Merchant, error)
	// ReleasePIAID takes a PIAID that never held a record away from its
	// disabled merchant, audited, so that another merchant can be given it.
	ReleasePIAID(ctx context.Context, actor, id, piaid string) (Merchant, error)
	// PluginVersions lists a merchant's uploaded plugin versions, oldest
	// first.
	PluginVersions(ctx context.Context, merchantID string) ([]PluginVersion, error)
	// UploadPlugin checks, compiles and warms a plugin version and only
	// then stores it; optionally it activates it. A refused module returns
	// an error wrapping ErrPluginRefused and changes nothing.
	UploadPlugin(ctx context.Context, merchantID string, up PluginUpload) (PluginVersion, error)
	// DeletePlugin deletes a stored version that is not active (ErrConflict
	// for the active one) and returns it as it was.
	DeletePlugin(ctx context.Context, merchantID, version string) (PluginVersion, error)
	// ActivatePlugin makes an uploaded version the active one (also a
	// rollback); calls in flight finish on the version they started on.
	ActivatePlugin(ctx context.Context, merchantID, version string) (PluginVersion, error)
	// StartShadow runs a stored version beside the active one on a sample
	// (0 < sample <= 1) of the merchant's calls, comparing answers and
	// keeping nothing of the candidate's; StopShadow ends it and returns
	// its last report; ShadowReport reads it.
	StartShadow(ctx context.Context, merchantID, version string, sample float64) (plugincall.ShadowReport, error)
	StopShadow(ctx context.Context, merchantID string) (plugincall.ShadowReport, error)
	ShadowReport(ctx context.Context, merchantID string) (plugincall.ShadowReport, error)
	// StartCanary sends a fraction of the merchant's new transactions to a
	// stored version, rolled back on its own past its limits; StopCanary
	// ends it (promote: the candidate becomes the active version);
	// CanaryState reads it.
	StartCanary(ctx context.Context, merchantID string, req CanaryRequest) (plugincall.CanaryState, error)
	StopCanary(ctx context.Context, merchantID string, promote bool) (plugincall.CanaryState, error)
	CanaryState(ctx context.Context, merchantID string) (plugincall.CanaryState, error)
	// SetRecording turns the recording of the merchant's plugin calls on
	// (bounded by a retention and a count) or off; Recording reads it.
	SetRecording(ctx context.Context, merchantID string, req RecordingRequest) (RecordingState, error)
	Recording(ctx context.Context, merchantID string) (RecordingState, error)
	// Replay runs a stored version on the merchant's recorded calls and
	// reports where its answers differ from the recorded ones.
	Replay(ctx context.Context, merchantID string, req ReplayRequest) (ReplayReport, error)
}

// Exec runs one statement in the Backend's write transaction and returns
// the number of rows changed.
type Exec func(q string, args ...any) (int64, error)

// Errors the Backend returns for the admin API to map to HTTP statuses.
var (
	// ErrInvalid: the request is malformed or inconsistent (400).
	ErrInvalid = errors.New("admin: invalid request")
	// ErrConflict: the object exists or versions are immutable (409).
	ErrConflict = errors.New("admin: conflict")
	// ErrPluginRefused: the uploaded module was refused (422).
	ErrPluginRefused = errors.New("admin: plugin refused")
)

// Merchant is a merchant with its integration, as the API shows it.
type Merchant struct {
	ID             string    `json:"id"`
	Name           string    `json:"name"`
	Status         string    `json:"status"`
	Created        time.Time `json:"created"`
	BasePath       string    `json:"basePath"`
	Envelope       string    `json:"envelope"`
	KeysetID       string    `json:"keysetId"`
	Environment    string    `json:"environment,omitempty"`
	GoogleEndpoint string    `json:"googleEndpoint,omitempty"`
	PIAIDs         []string  `json:"piaids"`
	// AmountRules are the currencies and amount range each PIAID takes
	// (PIAIDs without rules take any).
	AmountRules  map[string]ledger.AmountRules `json:"amountRules,omitempty"`
	ActivePlugin string                        `json:"activePlugin,omitempty"`
	// KV is the merchant's plugin KV store: used and allowed.
	KV *KVUsage `json:"kv,omitempty"`
	// Quotas are the merchant's own limits, where it has any (the
	// effective ones are in KV).
	Quotas *Quotas `json:"quotas,omitempty"`
}

// KVUsage is a merchant's plugin KV usage against its quota.
type KVUsage struct {
	Keys       int64 `json:"keys"`
	Bytes      int64 `json:"bytes"`
	QuotaKeys  int64 `json:"quotaKeys"`
	QuotaBytes int64 `json:"quotaBytes"`
}

// MerchantSpec creates a merchant.
type MerchantSpec struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	BasePath string   `json:"basePath"`
	Envelope string   `json:"envelope"`
	PIAIDs   []string `json:"piaids"`
	// KeysetID binds an existing keyset; empty creates one named after the
	// merchant in Environment.
	KeysetID string `json:"keysetId,omitempty"`
	// Environment is sandbox (default) or production.
	Environment    string `json:"environment,omitempty"`
	GoogleEndpoint string `json:"googleEndpoint,omitempty"`
	// AmountRules, by PIAID of this merchant, are what generateReferenceNumber
	// may ask for; the host refuses the rest with invalidFieldValue.
	AmountRules map[string]ledger.AmountRules `json:"amountRules,omitempty"`
	// Quotas are the merchant's own limits; unset ones take the host's.
	Quotas *Quotas `json:"quotas,omitempty"`
}

// Quotas are a merchant's own limits on shared resources; a zero field
// takes the host's configured default.
type Quotas struct {
	// KVMaxKeys and KVMaxBytes bound the merchant's plugin KV store
	// (plugin_calls.kv_max_keys / kv_max_bytes by default).
	KVMaxKeys  int64 `json:"kvMaxKeys,omitempty"`
	KVMaxBytes int64 `json:"kvMaxBytes,omitempty"`
	// LogBytesPerMinute bounds its plugin's log lines over time
	// (plugin_calls.log_bytes_per_minute by default).
	LogBytesPerMinute int64 `json:"logBytesPerMinute,omitempty"`
	// PluginVersions bounds the plugin versions it may store
	// (admin.max_plugin_versions by default).
	PluginVersions int64 `json:"pluginVersions,omitempty"`
	// PluginBytes bounds an uploaded module (admin.max_plugin_bytes by
	// default).
	PluginBytes int64 `json:"pluginBytes,omitempty"`
	// PluginMemoryMiB caps each plugin instance's linear memory
	// (plugin_calls.memory_mib by default); versions loaded from then on
	// use it.
	PluginMemoryMiB int64 `json:"pluginMemoryMiB,omitempty"`
}

// Ledger converts q to the ledger's form.
func (q Quotas) Ledger() ledger.MerchantQuotas {
	return ledger.MerchantQuotas{KV: ledger.KVQuota{MaxKeys: q.KVMaxKeys, MaxBytes: q.KVMaxBytes},
		LogBytesPerMinute: q.LogBytesPerMinute, PluginVersions: q.PluginVersions, PluginBytes: q.PluginBytes,
		PluginMemoryMiB: q.PluginMemoryMiB}
}

// QuotasOf converts the ledger's form; nil when the merchant has none.
func QuotasOf(q ledger.MerchantQuotas) *Quotas {
	if q == (ledger.MerchantQuotas{}) {
		return nil
	}
	return &Quotas{KVMaxKeys: q.KV.MaxKeys, KVMaxBytes: q.KV.MaxBytes, LogBytesPerMinute: q.LogBytesPerMinute,
		PluginVersions: q.PluginVersions, PluginBytes: q.PluginBytes, PluginMemoryMiB: q.PluginMemoryMiB}
}

// MerchantUpdate changes a merchant; nil fields stay as they are. PIAIDs
// are added (a PIAID is never taken away from a merchant: Google's
// requests and stored records refer to it).
type MerchantUpdate struct {
	Name           *string  `json:"name,omitempty"`
	BasePath       *string  `json:"basePath,omitempty"`
	Envelope       *string  `json:"envelope,omitempty"`
	KeysetID       *string  `json:"keysetId,omitempty"`
	GoogleEndpoint *string  `json:"googleEndpoint,omitempty"`
	AddPIAIDs      []string `json:"addPiaids,omitempty"`
	// AmountRules replace the rules of the PIAIDs named (an empty object
	// clears them); other PIAIDs keep theirs.
	AmountRules map[string]ledger.AmountRules `json:"amountRules,omitempty"`
	// Quotas replace the merchant's own limits (an empty object returns it
	// to the host's defaults).
	Quotas *Quotas `json:"quotas,omitempty"`
}

// PluginUpload is one plugin build to check, compile, warm and store.
type PluginUpload struct {
	Version string `json:"version"`
	// SHA256, when set, must match the module (hex).
	SHA256 string `json:"sha256,omitempty"`
	Wasm   []byte `json:"wasm"`
	// From, instead of Wasm, takes the module of this stored version: a
	// version's configuration never changes, so a new configuration is
	// the same module stored under a new version.
	From string `json:"from,omitempty"`
	// Config is the plugin configuration JSON; the warm-up call validates
	// it (the plugin parses it there and fails the load if it is wrong).
	Config []byte `json:"config,omitempty"`
	// Activate switches traffic to the version once it is warm.
	Activate bool `json:"activate,omitempty"`
}

// PluginVersion is one stored plugin version with its counters.
type PluginVersion struct {
	Version string    `json:"version"`
	SHA256  string    `json:"sha256"`
	Size    int       `json:"size"`
	Created time.Time `json:"created"`
	Active  bool      `json:"active"`
	// RollbackTarget marks the version a rollback without a name goes
	// back to: the one active before the active one.
	RollbackTarget bool          `json:"rollbackTarget,omitempty"`
	Loaded         bool          `json:"loaded"`
	CompileTime    time.Duration `json:"compileTimeNs,omitempty"`
	CacheHit       bool          `json:"cacheHit,omitempty"`
	// Ops are the ops the plugin has handlers for, as its warm-up reported
	// them (at upload, and while the version is loaded); empty if unknown.
	Ops   []string   `json:"ops,omitempty"`
	Stats *CallStats `json:"stats,omitempty"`
}

// RecordingRequest turns recording on (for Retention, default 24h, keeping
// at most Max recordings, default 10,000) or off.
type RecordingRequest struct {
	On        bool   `json:"on"`
	Retention string `json:"retention,omitempty"`
	Max       int    `json:"max,omitempty"`
}

// RecordingState is a merchant's recording: whether it runs and until
// when, and how many recordings are kept (Dropped: not written because the
// writer was behind).
type RecordingState struct {
	On        bool      `json:"on"`
	Until     time.Time `json:"until,omitzero"`
	Retention string    `json:"retention,omitempty"`
	Max       int       `json:"max,omitempty"`
	Recorded  int64     `json:"recorded"`
	Dropped   int64     `json:"dropped"`
}

// ReplayRequest names the version to replay the recordings on, and at
// most how many (oldest first; default all kept).
type ReplayRequest struct {
	Version string `json:"version"`
	Limit   int    `json:"limit,omitempty"`
}

// ReplayReport is a replay's outcome: how many recordings ran, how many
// answered as recorded, and the first 100 that did not.
type ReplayReport struct {
	Version     string       `json:"version"`
	Replayed    int64        `json:"replayed"`
	Same        int64        `json:"same"`
	Different   int64        `json:"different"`
	Unreadable  int64        `json:"unreadable,omitempty"`
	Differences []ReplayDiff `json:"differences"`
}

// ReplayDiff is one recording the replayed version answered otherwise.
type ReplayDiff struct {
	Recording       string                `json:"recording"`
	RecordedVersion string                `json:"recordedVersion"`
	Op              string                `json:"op"`
	RequestID       string                `json:"requestId,omitempty"`
	At              time.Time             `json:"at"`
	Recorded        plugincall.ShadowSide `json:"recorded"`
	Replayed        plugincall.ShadowSide `json:"replayed"`
	Misses          int                   `json:"misses,omitempty"`
}

// CanaryRequest starts a canary: the candidate, the fraction of new
// transactions it serves, and the limits past which it is rolled back on
// its own (failed calls, default 3; calls slower than MaxLatency, default
// 500ms, as many).
type CanaryRequest struct {
	Version     string  `json:"version"`
	Fraction    float64 `json:"fraction"`
	MaxFailures int     `json:"maxFailures,omitempty"`
	MaxLatency  string  `json:"maxLatency,omitempty"`
}

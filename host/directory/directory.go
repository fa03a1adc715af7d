// Package directory stores what the gateway knows about how each merchant
// is served: its integration (base path, envelope, keyset, Google endpoint),
// its plugin versions and which one is active, the one before it, its shadow
// and canary candidates, and its recording settings and recorded calls. It
// is the only package that reads or writes those tables; the gateway turns
// them into the snapshot the protocol pipeline reads.
package directory

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/otpcgate/otpcgate/host/envelope"
	"github.com/otpcgate/otpcgate/host/server"
	"github.com/otpcgate/otpcgate/internal/db"
)

// component versions the directory's tables in schema_migrations. The name
// is the one the first installations recorded (the tables lived in the
// gateway package then); changing it would re-run every migration.
const component = "gateway"

var migrations = []db.Migration{{Version: 1, SQL: `
CREATE TABLE integrations (
	merchant_id     TEXT PRIMARY KEY,
	base_path       TEXT NOT NULL UNIQUE,
	envelope        TEXT NOT NULL CHECK (envelope IN ('pgp', 'jose')),
	keyset_id       TEXT NOT NULL,
	google_endpoint TEXT NOT NULL DEFAULT '',
	updated_ms      INTEGER NOT NULL
);
CREATE TABLE plugin_versions (
	merchant_id TEXT NOT NULL,
	version     TEXT NOT NULL,
	sha256      TEXT NOT NULL,
	wasm        BLOB NOT NULL,
	config      BLOB NOT NULL,
	created_ms  INTEGER NOT NULL,
	PRIMARY KEY (merchant_id, version)
);
CREATE TABLE plugin_active (
	merchant_id  TEXT PRIMARY KEY,
	version      TEXT NOT NULL,
	activated_ms INTEGER NOT NULL,
	FOREIGN KEY (merchant_id, version) REFERENCES plugin_versions (merchant_id, version)
);`}, {Version: 2, SQL: `
-- The envelope column's CHECK listed the formats a second time; the
-- envelope package's table is the one list (PutIntegration checks it).
CREATE TABLE integrations_v2 (
	merchant_id     TEXT PRIMARY KEY,
	base_path       TEXT NOT NULL UNIQUE,
	envelope        TEXT NOT NULL,
	keyset_id       TEXT NOT NULL,
	google_endpoint TEXT NOT NULL DEFAULT '',
	updated_ms      INTEGER NOT NULL
);
INSERT INTO integrations_v2 SELECT merchant_id, base_path, envelope, keyset_id, google_endpoint, updated_ms FROM integrations;
DROP TABLE integrations;
ALTER TABLE integrations_v2 RENAME TO integrations;`}, {Version: 3, SQL: `
-- The version active before the current one: a rollback without a name
-- goes back to it (activation history, not upload order).
ALTER TABLE plugin_active ADD COLUMN previous TEXT NOT NULL DEFAULT '';`}, {Version: 4, SQL: `
-- A candidate version run beside the active one on a sample of its calls.
CREATE TABLE plugin_shadow (
	merchant_id TEXT PRIMARY KEY,
	version     TEXT NOT NULL,
	sample      REAL NOT NULL,
	started_ms  INTEGER NOT NULL,
	FOREIGN KEY (merchant_id, version) REFERENCES plugin_versions (merchant_id, version)
);`}, {Version: 5, SQL: `
-- Opt-in recording of plugin calls for replay on other versions: each
-- recording is sealed with a key derived from the KEK (it holds the
-- request's payload) and bounded by a retention and a count per merchant.
CREATE TABLE plugin_recording (
	merchant_id  TEXT PRIMARY KEY,
	until_ms     INTEGER NOT NULL,
	retention_ms INTEGER NOT NULL,
	max_records  INTEGER NOT NULL
);
CREATE TABLE plugin_recordings (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	merchant_id TEXT NOT NULL,
	version     TEXT NOT NULL,
	op          INTEGER NOT NULL,
	at_ms       INTEGER NOT NULL,
	sealed      BLOB NOT NULL
);
CREATE INDEX plugin_recordings_merchant ON plugin_recordings (merchant_id, id);`}, {Version: 6, SQL: `
-- A candidate version serving a fraction of a merchant's transactions.
CREATE TABLE plugin_canary (
	merchant_id    TEXT PRIMARY KEY,
	version        TEXT NOT NULL,
	fraction       REAL NOT NULL,
	max_failures   INTEGER NOT NULL,
	max_latency_ms INTEGER NOT NULL,
	started_ms     INTEGER NOT NULL,
	FOREIGN KEY (merchant_id, version) REFERENCES plugin_versions (merchant_id, version)
);`}}

// Integration is how one merchant is reached and protected: its base path
// on the Google-facing listener, its envelope and keyset, and Google's
// endpoint for notifications.
type Integration struct {
	MerchantID     string
	BasePath       string
	Envelope       envelope.Format
	KeysetID       string
	GoogleEndpoint string
}

// PluginVersion is one immutable uploaded plugin build.
type PluginVersion struct {
	MerchantID string
	Version    string
	SHA256     string // hex
	Wasm       []byte
	Config     []byte
	Created    time.Time
}

// Store reads and writes the directory's tables.
type Store struct{ db *sql.DB }

// ErrNotFound is returned for unknown integrations and plugin versions.
var ErrNotFound = errors.New("directory: not found")

// ErrActiveVersion is returned when the active plugin version would be
// deleted.
var ErrActiveVersion = errors.New("directory: the active plugin version cannot be deleted")

// ErrImmutable is returned when a plugin version would be replaced by
// different bytes: versions never change once uploaded.
var ErrImmutable = errors.New("directory: plugin versions are immutable")

// Open migrates the directory's tables in d to this build's schema.
func Open(ctx context.Context, d *sql.DB) (*Store, error) {
	if err := db.Migrate(ctx, d, component, migrations); err != nil {
		return nil, err
	}
	return &Store{db: d}, nil
}

// DeleteMerchant removes a merchant's integration, plugin versions,
// candidates and recordings through exec (the ledger transaction that
// deletes the merchant, so both go or neither).
func (r *Store) DeleteMerchant(exec func(q string, args ...any) (int64, error), merchantID string) error {
	for _, q := range []string{
		`DELETE FROM plugin_shadow WHERE merchant_id = ?`,
		`DELETE FROM plugin_canary WHERE merchant_id = ?`,
		`DELETE FROM plugin_recording WHERE merchant_id = ?`,
		`DELETE FROM plugin_recordings WHERE merchant_id = ?`,
		`DELETE FROM plugin_active WHERE merchant_id = ?`,
		`DELETE FROM plugin_versions WHERE merchant_id = ?`,
		`DELETE FROM integrations WHERE merchant_id = ?`,
	} {
		if _, err := exec(q, merchantID); err != nil {
			return fmt.Errorf("directory: delete merchant %s: %w", merchantID, err)
		}
	}
	return nil
}

// DeletePluginVersion deletes a stored version unless it is the active one
// (ErrActiveVersion), in one statement so a concurrent activation cannot
// slip between the check and the delete.
func (r *Store) DeletePluginVersion(ctx context.Context, merchantID, version string) error {
	res, err := r.db.ExecContext(ctx, `DELETE FROM plugin_versions WHERE merchant_id = ? AND version = ?
		AND NOT EXISTS (SELECT 1 FROM plugin_active a WHERE a.merchant_id = ? AND a.version = ?)
		AND NOT EXISTS (SELECT 1 FROM plugin_shadow s WHERE s.merchant_id = ? AND s.version = ?)
		AND NOT EXISTS (SELECT 1 FROM plugin_canary c WHERE c.merchant_id = ? AND c.version = ?)`,
		merchantID, version, merchantID, version, merchantID, version, merchantID, version)
	if err != nil {
		return fmt.Errorf("directory: delete plugin version: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	if _, err := r.PluginVersion(ctx, merchantID, version); err != nil {
		return err
	}
	if sh, err := r.Shadows(ctx); err == nil && sh[merchantID].Version == version {
		return fmt.Errorf("%w: %s %s runs in shadow; stop the shadow first", ErrActiveVersion, merchantID, version)
	}
	if c, err := r.Canaries(ctx); err == nil && c[merchantID].Version == version {
		return fmt.Errorf("%w: %s %s runs as a canary; stop or promote it first", ErrActiveVersion, merchantID, version)
	}
	return fmt.Errorf("%w: %s %s", ErrActiveVersion, merchantID, version)
}

// PutIntegration creates or replaces a merchant's integration.
func (r *Store) PutIntegration(ctx context.Context, in Integration) error {
	bp, err := server.NormalizeBasePath(in.BasePath)
	if err != nil {
		return err
	}
	if _, err := envelope.New(in.Envelope, envelope.Config{}); err != nil {
		return fmt.Errorf("directory: integration %s: %w", in.MerchantID, err)
	}
	_, err = r.db.ExecContext(ctx, `INSERT INTO integrations
		(merchant_id, base_path, envelope, keyset_id, google_endpoint, updated_ms) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (merchant_id) DO UPDATE SET base_path = excluded.base_path, envelope = excluded.envelope,
		keyset_id = excluded.keyset_id, google_endpoint = excluded.google_endpoint, updated_ms = excluded.updated_ms`,
		in.MerchantID, bp, string(in.Envelope), in.KeysetID, in.GoogleEndpoint, time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("directory: put integration %s: %w", in.MerchantID, err)
	}
	return nil
}

// Integrations lists every integration.
func (r *Store) Integrations(ctx context.Context) ([]Integration, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT merchant_id, base_path, envelope, keyset_id, google_endpoint
		FROM integrations ORDER BY merchant_id`)
	if err != nil {
		return nil, fmt.Errorf("directory: list integrations: %w", err)
	}
	defer rows.Close()
	var out []Integration
	for rows.Next() {
		var in Integration
		var env string
		if err := rows.Scan(&in.MerchantID, &in.BasePath, &env, &in.KeysetID, &in.GoogleEndpoint); err != nil {
			return nil, fmt.Errorf("directory: list integrations: %w", err)
		}
		in.Envelope = envelope.Format(env)
		out = append(out, in)
	}
	return out, rows.Err()
}

// AddPluginVersion stores a new plugin version. Uploading the same bytes
// under the same version again is a no-op; different bytes are refused.
func (r *Store) AddPluginVersion(ctx context.Context, pv PluginVersion) (PluginVersion, error) {
	sum := sha256.Sum256(pv.Wasm)
	got := hex.EncodeToString(sum[:])
	if pv.SHA256 != "" && pv.SHA256 != got {
		return pv, fmt.Errorf("directory: plugin %s %s: sha256 is %s, caller expected %s", pv.MerchantID, pv.Version, got, pv.SHA256)
	}
	pv.SHA256 = got
	if pv.Config == nil {
		pv.Config = []byte("{}")
	}
	pv.Created = time.Now()
	var existing string
	err := r.db.QueryRowContext(ctx, `SELECT sha256 FROM plugin_versions WHERE merchant_id = ? AND version = ?`,
		pv.MerchantID, pv.Version).Scan(&existing)
	switch {
	case err == nil && existing == got:
		return pv, nil
	case err == nil:
		return pv, fmt.Errorf("%w: %s %s exists with sha256 %s", ErrImmutable, pv.MerchantID, pv.Version, existing)
	case !errors.Is(err, sql.ErrNoRows):
		return pv, fmt.Errorf("directory: add plugin version: %w", err)
	}
	if _, err := r.db.ExecContext(ctx, `INSERT INTO plugin_versions
		(merchant_id, version, sha256, wasm, config, created_ms) VALUES (?, ?, ?, ?, ?, ?)`,
		pv.MerchantID, pv.Version, pv.SHA256, pv.Wasm, pv.Config, pv.Created.UnixMilli()); err != nil {
		return pv, fmt.Errorf("directory: add plugin version: %w", err)
	}
	return pv, nil
}

// ActivatePluginVersion records version as the merchant's active plugin.
func (r *Store) ActivatePluginVersion(ctx context.Context, merchantID, version string) error {
	// Every SET expression reads the row as it was, on both engines.
	_, err := r.db.ExecContext(ctx, `INSERT INTO plugin_active (merchant_id, version, activated_ms, previous) VALUES (?, ?, ?, '')
		ON CONFLICT (merchant_id) DO UPDATE SET version = excluded.version, activated_ms = excluded.activated_ms,
			previous = CASE WHEN plugin_active.version = excluded.version THEN plugin_active.previous ELSE plugin_active.version END`,
		merchantID, version, time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("directory: activate plugin %s %s: %w", merchantID, version, err)
	}
	return nil
}

// Shadow is a candidate plugin version run beside a merchant's active one.
type Shadow struct {
	MerchantID, Version string
	// Sample is the share of calls shadowed, 0 < Sample <= 1.
	Sample  float64
	Started time.Time
}

// SetShadow starts (or changes) a merchant's shadow; an empty version
// stops it.
func (r *Store) SetShadow(ctx context.Context, sh Shadow) error {
	var err error
	if sh.Version == "" {
		_, err = r.db.ExecContext(ctx, `DELETE FROM plugin_shadow WHERE merchant_id = ?`, sh.MerchantID)
	} else {
		_, err = r.db.ExecContext(ctx, `INSERT INTO plugin_shadow (merchant_id, version, sample, started_ms) VALUES (?, ?, ?, ?)
			ON CONFLICT (merchant_id) DO UPDATE SET version = excluded.version, sample = excluded.sample, started_ms = excluded.started_ms`,
			sh.MerchantID, sh.Version, sh.Sample, sh.Started.UnixMilli())
	}
	if err != nil {
		return fmt.Errorf("directory: shadow of %s: %w", sh.MerchantID, err)
	}
	return nil
}

// Shadows returns every merchant's shadow, by merchant.
func (r *Store) Shadows(ctx context.Context) (map[string]Shadow, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT merchant_id, version, sample, started_ms FROM plugin_shadow`)
	if err != nil {
		return nil, fmt.Errorf("directory: shadows: %w", err)
	}
	defer rows.Close()
	out := map[string]Shadow{}
	for rows.Next() {
		var sh Shadow
		var started int64
		if err := rows.Scan(&sh.MerchantID, &sh.Version, &sh.Sample, &started); err != nil {
			return nil, err
		}
		sh.Started = time.UnixMilli(started)
		out[sh.MerchantID] = sh
	}
	return out, rows.Err()
}

// PreviousPluginVersion returns the version that was active before the
// merchant's active one, or "" if none was or it has been deleted.
func (r *Store) PreviousPluginVersion(ctx context.Context, merchantID string) (string, error) {
	var prev string
	err := r.db.QueryRowContext(ctx, `SELECT a.previous FROM plugin_active a
		JOIN plugin_versions v ON v.merchant_id = a.merchant_id AND v.version = a.previous
		WHERE a.merchant_id = ?`, merchantID).Scan(&prev)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("directory: previous plugin of %s: %w", merchantID, err)
	}
	return prev, nil
}

// ActivePluginVersion returns the merchant's active plugin version.
func (r *Store) ActivePluginVersion(ctx context.Context, merchantID string) (PluginVersion, error) {
	var pv PluginVersion
	var created int64
	err := r.db.QueryRowContext(ctx, `SELECT v.merchant_id, v.version, v.sha256, v.wasm, v.config, v.created_ms
		FROM plugin_active a JOIN plugin_versions v ON v.merchant_id = a.merchant_id AND v.version = a.version
		WHERE a.merchant_id = ?`, merchantID).Scan(&pv.MerchantID, &pv.Version, &pv.SHA256, &pv.Wasm, &pv.Config, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return pv, fmt.Errorf("%w: no active plugin for %s", ErrNotFound, merchantID)
	}
	if err != nil {
		return pv, fmt.Errorf("directory: active plugin of %s: %w", merchantID, err)
	}
	pv.Created = time.UnixMilli(created)
	return pv, nil
}

// Integration returns one merchant's integration (ErrNotFound if none).
func (r *Store) Integration(ctx context.Context, merchantID string) (Integration, error) {
	var in Integration
	var env string
	err := r.db.QueryRowContext(ctx, `SELECT merchant_id, base_path, envelope, keyset_id, google_endpoint
		FROM integrations WHERE merchant_id = ?`, merchantID).Scan(&in.MerchantID, &in.BasePath, &env, &in.KeysetID, &in.GoogleEndpoint)
	if errors.Is(err, sql.ErrNoRows) {
		return in, fmt.Errorf("%w: no integration for %s", ErrNotFound, merchantID)
	}
	if err != nil {
		return in, fmt.Errorf("directory: integration %s: %w", merchantID, err)
	}
	in.Envelope = envelope.Format(env)
	return in, nil
}

// PluginVersionInfo describes a stored plugin version without its bytes.
type PluginVersionInfo struct {
	Version string
	SHA256  string
	Size    int
	Created time.Time
}

// PluginVersions lists a merchant's plugin versions, oldest first.
func (r *Store) PluginVersions(ctx context.Context, merchantID string) ([]PluginVersionInfo, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT version, sha256, length(wasm), created_ms FROM plugin_versions
		WHERE merchant_id = ? ORDER BY created_ms, version`, merchantID)
	if err != nil {
		return nil, fmt.Errorf("directory: plugin versions of %s: %w", merchantID, err)
	}
	defer rows.Close()
	var out []PluginVersionInfo
	for rows.Next() {
		var pv PluginVersionInfo
		var created int64
		if err := rows.Scan(&pv.Version, &pv.SHA256, &pv.Size, &created); err != nil {
			return nil, fmt.Errorf("directory: plugin versions of %s: %w", merchantID, err)
		}
		pv.Created = time.UnixMilli(created)
		out = append(out, pv)
	}
	return out, rows.Err()
}

// PluginVersion returns one stored version with its bytes.
func (r *Store) PluginVersion(ctx context.Context, merchantID, version string) (PluginVersion, error) {
	pv := PluginVersion{MerchantID: merchantID, Version: version}
	var created int64
	err := r.db.QueryRowContext(ctx, `SELECT sha256, wasm, config, created_ms FROM plugin_versions
		WHERE merchant_id = ? AND version = ?`, merchantID, version).Scan(&pv.SHA256, &pv.Wasm, &pv.Config, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return pv, fmt.Errorf("%w: plugin %s %s", ErrNotFound, merchantID, version)
	}
	if err != nil {
		return pv, fmt.Errorf("directory: plugin %s %s: %w", merchantID, version, err)
	}
	pv.Created = time.UnixMilli(created)
	return pv, nil
}

// Canary is a candidate version serving a fraction of a merchant's new
// transactions.
type Canary struct {
	MerchantID, Version string
	Fraction            float64
	// MaxFailures and MaxLatency are the limits beyond which the
	// candidate is rolled back.
	MaxFailures int
	MaxLatency  time.Duration
	Started     time.Time
}

// Canaries returns every merchant's canary, by merchant.
func (r *Store) Canaries(ctx context.Context) (map[string]Canary, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT merchant_id, version, fraction, max_failures, max_latency_ms, started_ms FROM plugin_canary`)
	if err != nil {
		return nil, fmt.Errorf("directory: canaries: %w", err)
	}
	defer rows.Close()
	out := map[string]Canary{}
	for rows.Next() {
		var c Canary
		var latency, started int64
		if err := rows.Scan(&c.MerchantID, &c.Version, &c.Fraction, &c.MaxFailures, &latency, &started); err != nil {
			return nil, err
		}
		c.MaxLatency, c.Started = time.Duration(latency)*time.Millisecond, time.UnixMilli(started)
		out[c.MerchantID] = c
	}
	return out, rows.Err()
}

// SetCanary starts or changes a merchant's canary (c.Version non-empty) or
// ends it.
func (r *Store) SetCanary(ctx context.Context, c Canary) error {
	var err error
	if c.Version == "" {
		_, err = r.db.ExecContext(ctx, `DELETE FROM plugin_canary WHERE merchant_id = ?`, c.MerchantID)
	} else {
		_, err = r.db.ExecContext(ctx, `INSERT INTO plugin_canary (merchant_id, version, fraction, max_failures, max_latency_ms, started_ms)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (merchant_id) DO UPDATE SET version = excluded.version, fraction = excluded.fraction,
			max_failures = excluded.max_failures, max_latency_ms = excluded.max_latency_ms, started_ms = excluded.started_ms`,
			c.MerchantID, c.Version, c.Fraction, c.MaxFailures, c.MaxLatency.Milliseconds(), c.Started.UnixMilli())
	}
	if err != nil {
		return fmt.Errorf("directory: canary of %s: %w", c.MerchantID, err)
	}
	return nil
}

// RecordingSettings is a merchant's recording: on until Until, keeping
// recordings for Retention, at most Max of them.
type RecordingSettings struct {
	Until     time.Time
	Retention time.Duration
	Max       int
}

// RecordingSettings returns the settings of every merchant that records.
func (r *Store) RecordingSettings(ctx context.Context) (map[string]RecordingSettings, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT merchant_id, until_ms, retention_ms, max_records FROM plugin_recording`)
	if err != nil {
		return nil, fmt.Errorf("directory: recording settings: %w", err)
	}
	defer rows.Close()
	out := map[string]RecordingSettings{}
	for rows.Next() {
		var id string
		var until, retention int64
		var st RecordingSettings
		if err := rows.Scan(&id, &until, &retention, &st.Max); err != nil {
			return nil, err
		}
		st.Until, st.Retention = time.UnixMilli(until), time.Duration(retention)*time.Millisecond
		out[id] = st
	}
	return out, rows.Err()
}

// SetRecording starts (st non-nil) or stops a merchant's recording.
func (r *Store) SetRecording(ctx context.Context, merchantID string, st *RecordingSettings) error {
	var err error
	if st == nil {
		_, err = r.db.ExecContext(ctx, `DELETE FROM plugin_recording WHERE merchant_id = ?`, merchantID)
	} else {
		_, err = r.db.ExecContext(ctx, `INSERT INTO plugin_recording (merchant_id, until_ms, retention_ms, max_records) VALUES (?, ?, ?, ?)
			ON CONFLICT (merchant_id) DO UPDATE SET until_ms = excluded.until_ms, retention_ms = excluded.retention_ms, max_records = excluded.max_records`,
			merchantID, st.Until.UnixMilli(), st.Retention.Milliseconds(), st.Max)
	}
	if err != nil {
		return fmt.Errorf("directory: recording of %s: %w", merchantID, err)
	}
	return nil
}

// Recorded is one stored recording, still sealed.
type Recorded struct {
	ID      int64
	Version string
	Sealed  []byte
}

// AddRecordings stores sealed recordings and then applies each merchant's
// bounds in the same transaction: recordings past the retention, and the
// oldest beyond the maximum count, go. Recordings of a merchant that
// stopped recording meanwhile are not stored.
func (r *Store) AddRecordings(ctx context.Context, recs []NewRecording) error {
	settings, err := r.RecordingSettings(ctx)
	if err != nil {
		return err
	}
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("directory: add recordings: %w", err)
	}
	defer tx.Rollback()
	touched := map[string]bool{}
	for _, rec := range recs {
		st, ok := settings[rec.MerchantID]
		if !ok || time.Now().After(st.Until) {
			continue
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO plugin_recordings (merchant_id, version, op, at_ms, sealed) VALUES (?, ?, ?, ?, ?)`,
			rec.MerchantID, rec.Version, rec.Op, rec.At.UnixMilli(), rec.Sealed); err != nil {
			return fmt.Errorf("directory: add recordings: %w", err)
		}
		touched[rec.MerchantID] = true
	}
	for m := range touched {
		st := settings[m]
		if _, err := tx.ExecContext(ctx, `DELETE FROM plugin_recordings WHERE merchant_id = ? AND (at_ms < ? OR id <= (
			SELECT id FROM plugin_recordings WHERE merchant_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?))`,
			m, time.Now().Add(-st.Retention).UnixMilli(), m, st.Max); err != nil {
			return fmt.Errorf("directory: trim recordings of %s: %w", m, err)
		}
	}
	return tx.Commit()
}

// NewRecording is a sealed recording to store.
type NewRecording struct {
	MerchantID, Version string
	Op                  int
	At                  time.Time
	Sealed              []byte
}

// RecordingCount returns how many recordings a merchant has stored.
func (r *Store) RecordingCount(ctx context.Context, merchantID string) (int64, error) {
	var n int64
	if err := r.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM plugin_recordings WHERE merchant_id = ?`, merchantID).Scan(&n); err != nil {
		return 0, fmt.Errorf("directory: recordings of %s: %w", merchantID, err)
	}
	return n, nil
}

// Recordings returns a merchant's oldest limit recordings, oldest first.
func (r *Store) Recordings(ctx context.Context, merchantID string, limit int) ([]Recorded, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT id, version, sealed FROM plugin_recordings WHERE merchant_id = ? ORDER BY id LIMIT ?`,
		merchantID, limit)
	if err != nil {
		return nil, fmt.Errorf("directory: recordings of %s: %w", merchantID, err)
	}
	defer rows.Close()
	var out []Recorded
	for rows.Next() {
		var rec Recorded
		if err := rows.Scan(&rec.ID, &rec.Version, &rec.Sealed); err != nil {
			return nil, fmt.Errorf("directory: recordings of %s: %w", merchantID, err)
		}
		out = append(out, rec)
	}
	return out, rows.Err()
}

package ledger

import (
	"context"
	"errors"
	"fmt"
)

// MerchantQuotas are a merchant's own limits on what it shares with the
// other merchants of the host. A zero field takes the host's configured
// default (KV: Options.KVQuota; the others: the plugin runtime's and the
// admin API's).
type MerchantQuotas struct {
	// KV bounds the merchant's plugin KV store.
	KV KVQuota
	// LogBytesPerMinute bounds its plugin's log lines over time.
	LogBytesPerMinute int64
	// PluginVersions bounds the plugin versions it may store.
	PluginVersions int64
	// PluginBytes bounds an uploaded module of its plugin.
	PluginBytes int64
	// PluginMemoryMiB caps each of its plugin instances' linear memory.
	PluginMemoryMiB int64
}

// Or returns q with each zero field taken from d (the host's defaults).
func (q MerchantQuotas) Or(d MerchantQuotas) MerchantQuotas {
	q.KV = q.KV.Or(d.KV)
	for _, f := range []struct{ v, d *int64 }{{&q.LogBytesPerMinute, &d.LogBytesPerMinute},
		{&q.PluginVersions, &d.PluginVersions}, {&q.PluginBytes, &d.PluginBytes}, {&q.PluginMemoryMiB, &d.PluginMemoryMiB}} {
		if *f.v == 0 {
			*f.v = *f.d
		}
	}
	return q
}

const (
	quotaColumns = `kv_max_keys, kv_max_bytes, log_bytes_per_minute, plugin_versions, plugin_bytes, plugin_memory_mib`
	sqlQuotas    = `SELECT ` + quotaColumns + ` FROM merchant_quotas`
)

// scanQuotas scans quotaColumns, after lead (e.g. the merchant id).
func scanQuotas(s rowScanner, lead ...any) (MerchantQuotas, error) {
	var q MerchantQuotas
	err := s.Scan(append(lead, &q.KV.MaxKeys, &q.KV.MaxBytes, &q.LogBytesPerMinute, &q.PluginVersions, &q.PluginBytes,
		&q.PluginMemoryMiB)...)
	return q, err
}

// MerchantQuotas returns a merchant's own limits as stored (zero fields
// where it takes the host's).
func (l *Ledger) MerchantQuotas(ctx context.Context, merchantID string) (MerchantQuotas, error) {
	q, err := scanQuotas(l.readRow(ctx, sqlQuotas+` WHERE merchant_id = ?`, merchantID))
	if err := notFound(err); err != nil && !errors.Is(err, ErrNotFound) {
		return MerchantQuotas{}, fmt.Errorf("ledger: merchant quotas: %w", err)
	}
	return q, nil
}

// AllMerchantQuotas returns the own limits of every merchant that has any.
func (l *Ledger) AllMerchantQuotas(ctx context.Context) (map[string]MerchantQuotas, error) {
	rows, err := l.readRows(ctx, `SELECT merchant_id, `+quotaColumns+` FROM merchant_quotas`)
	if err != nil {
		return nil, fmt.Errorf("ledger: merchant quotas: %w", err)
	}
	defer rows.Close()
	out := map[string]MerchantQuotas{}
	for rows.Next() {
		var id string
		q, err := scanQuotas(rows, &id)
		if err != nil {
			return nil, fmt.Errorf("ledger: merchant quotas: %w", err)
		}
		out[id] = q
	}
	return out, rows.Err()
}

// KVQuotaOf returns the KV quota a merchant's namespace is held to: its own
// where set, else the default.
func (l *Ledger) KVQuotaOf(ctx context.Context, merchantID string) (KVQuota, error) {
	q, err := l.MerchantQuotas(ctx, merchantID)
	return q.KV.Or(l.opts.KVQuota), err
}

func (tx *Tx) merchantQuotas(merchantID string) (MerchantQuotas, error) {
	q, err := scanQuotas(tx.w.queryRow(sqlQuotas+` WHERE merchant_id = ?`, merchantID))
	if err := notFound(err); err != nil && !errors.Is(err, ErrNotFound) {
		return MerchantQuotas{}, fmt.Errorf("ledger: merchant quotas: %w", err)
	}
	return q, nil
}

// SetMerchantQuotas replaces a merchant's own limits; the zero value
// returns it to the host's. Lowering the KV quota below the usage is
// allowed: the merchant's plugin can then only delete until it is under.
func (tx *Tx) SetMerchantQuotas(merchantID string, q MerchantQuotas) error {
	if err := tx.check(); err != nil {
		return err
	}
	if q.KV.MaxKeys < 0 || q.KV.MaxBytes < 0 || q.LogBytesPerMinute < 0 || q.PluginVersions < 0 ||
		q.PluginBytes < 0 || q.PluginMemoryMiB < 0 {
		return fmt.Errorf("ledger: quotas must not be negative: %+v", q)
	}
	if q == (MerchantQuotas{}) {
		_, err := tx.w.exec(`DELETE FROM merchant_quotas WHERE merchant_id = ?`, merchantID)
		return err
	}
	_, err := tx.w.exec(`INSERT INTO merchant_quotas(merchant_id, kv_max_keys, kv_max_bytes, log_bytes_per_minute, plugin_versions,
		plugin_bytes, plugin_memory_mib, updated_ms)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (merchant_id) DO UPDATE SET kv_max_keys = excluded.kv_max_keys, kv_max_bytes = excluded.kv_max_bytes,
		log_bytes_per_minute = excluded.log_bytes_per_minute, plugin_versions = excluded.plugin_versions,
		plugin_bytes = excluded.plugin_bytes, plugin_memory_mib = excluded.plugin_memory_mib, updated_ms = excluded.updated_ms`,
		merchantID, q.KV.MaxKeys, q.KV.MaxBytes, q.LogBytesPerMinute, q.PluginVersions, q.PluginBytes, q.PluginMemoryMiB, tx.now)
	if err != nil {
		return fmt.Errorf("ledger: set quotas of %s: %w", merchantID, err)
	}
	return nil
}

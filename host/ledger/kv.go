package ledger

import (
	"context"
	"errors"
	"fmt"
)

// Limits of plugin key-value data, enforced on every change set.
const (
	MaxKVKeyBytes   = 256
	MaxKVValueBytes = 64 << 10
	MaxKVChanges    = 256
)

// KVQuota bounds one namespace's plugin KV data: the number of keys and
// the bytes of keys and values together. A change set that would leave a
// namespace above either bound, and grows it, fails with ErrKVQuota and
// commits nothing; deletions are always allowed.
type KVQuota struct {
	MaxKeys  int64
	MaxBytes int64
}

// DefaultKVQuota is each merchant's KV quota unless configured: room for a
// busy merchant's state, small enough that one merchant cannot fill the
// disk every merchant shares.
var DefaultKVQuota = KVQuota{MaxKeys: 100_000, MaxBytes: 64 << 20}

// Or fills q's unset (zero) bounds from d: a merchant's own quota over the
// host's default.
func (q KVQuota) Or(d KVQuota) KVQuota {
	if q.MaxKeys <= 0 {
		q.MaxKeys = d.MaxKeys
	}
	if q.MaxBytes <= 0 {
		q.MaxBytes = d.MaxBytes
	}
	return q
}

// KVUsage is a namespace's plugin KV data: keys and bytes of keys and
// values together.
type KVUsage struct {
	Keys, Bytes int64
}

// KVUsage returns a namespace's committed KV usage.
func (l *Ledger) KVUsage(ctx context.Context, namespace string) (KVUsage, error) {
	var u KVUsage
	err := l.readRow(ctx, `SELECT keys, bytes FROM kv_usage WHERE namespace = ?`, namespace).Scan(&u.Keys, &u.Bytes)
	if err := notFound(err); err != nil && !errors.Is(err, ErrNotFound) {
		return KVUsage{}, fmt.Errorf("ledger: kv usage: %w", err)
	}
	return u, nil
}

// KVUsages returns every namespace's committed KV usage.
func (l *Ledger) KVUsages(ctx context.Context) (map[string]KVUsage, error) {
	rows, err := l.readRows(ctx, `SELECT namespace, keys, bytes FROM kv_usage`)
	if err != nil {
		return nil, fmt.Errorf("ledger: kv usage: %w", err)
	}
	defer rows.Close()
	out := map[string]KVUsage{}
	for rows.Next() {
		var ns string
		var u KVUsage
		if err := rows.Scan(&ns, &u.Keys, &u.Bytes); err != nil {
			return nil, fmt.Errorf("ledger: kv usage: %w", err)
		}
		out[ns] = u
	}
	return out, rows.Err()
}

// KVQuota returns the default quota: what a merchant without an override
// of its own is held to.
func (l *Ledger) KVQuota() KVQuota { return l.opts.KVQuota }

// KVChange is one write of a plugin's change set: Value is stored under Key,
// or Key is removed if Delete is set.
type KVChange struct {
	Key    string
	Value  []byte
	Delete bool
}

// KVGet returns a committed value from namespace (the merchant id).
func (l *Ledger) KVGet(ctx context.Context, namespace, key string) (value []byte, ok bool, err error) {
	err = l.readRow(ctx, sqlKVGet, namespace, key).Scan(&value)
	return kvResult(value, err)
}

// KVGet reads a value inside the transaction, seeing its own changes.
func (tx *Tx) KVGet(namespace, key string) (value []byte, ok bool, err error) {
	if err := tx.check(); err != nil {
		return nil, false, err
	}
	err = tx.w.queryRow(sqlKVGet, namespace, key).Scan(&value)
	return kvResult(value, err)
}

const sqlKVGet = `SELECT value FROM kv WHERE namespace = ? AND key = ?`

func kvResult(v []byte, err error) ([]byte, bool, error) {
	if err := notFound(err); err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("ledger: kv get: %w", err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, true, nil
}

// ApplyKV applies a plugin's change set to namespace. The whole set is
// validated first (ErrKVLimit), so either every change applies or none.
func (tx *Tx) ApplyKV(namespace string, changes []KVChange) error {
	if err := tx.check(); err != nil {
		return err
	}
	if namespace == "" {
		return errors.New("ledger: kv namespace is empty")
	}
	if len(changes) > MaxKVChanges {
		return fmt.Errorf("%w: %d changes, at most %d", ErrKVLimit, len(changes), MaxKVChanges)
	}
	for _, c := range changes {
		if c.Key == "" || len(c.Key) > MaxKVKeyBytes {
			return fmt.Errorf("%w: key of %d bytes (1..%d)", ErrKVLimit, len(c.Key), MaxKVKeyBytes)
		}
		if len(c.Value) > MaxKVValueBytes {
			return fmt.Errorf("%w: value of %d bytes, at most %d", ErrKVLimit, len(c.Value), MaxKVValueBytes)
		}
	}
	var delta KVUsage
	for _, c := range changes {
		var old int64
		err := tx.w.queryRow(`SELECT octet_length(key) + octet_length(value) FROM kv WHERE namespace = ? AND key = ?`, namespace, c.Key).Scan(&old)
		existed := err == nil
		if err := notFound(err); err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("ledger: kv write: %w", err)
		}
		if existed {
			delta.Keys--
			delta.Bytes -= old
		}
		if !c.Delete {
			delta.Keys++
			delta.Bytes += int64(len(c.Key) + len(c.Value))
		}
		if c.Delete {
			_, err = tx.w.exec(`DELETE FROM kv WHERE namespace = ? AND key = ?`, namespace, c.Key)
		} else {
			v := c.Value
			if v == nil {
				v = []byte{}
			}
			_, err = tx.w.exec(`INSERT INTO kv(namespace, key, value, updated_ms) VALUES (?, ?, ?, ?)
				ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms`,
				namespace, c.Key, v, tx.now)
		}
		if err != nil {
			return fmt.Errorf("ledger: kv write: %w", err)
		}
	}
	if delta == (KVUsage{}) {
		return nil
	}
	var u KVUsage
	if err := tx.w.queryRow(`INSERT INTO kv_usage(namespace, keys, bytes) VALUES (?, ?, ?)
		ON CONFLICT (namespace) DO UPDATE SET keys = kv_usage.keys + excluded.keys, bytes = kv_usage.bytes + excluded.bytes
		RETURNING keys, bytes`, namespace, delta.Keys, delta.Bytes).Scan(&u.Keys, &u.Bytes); err != nil {
		return fmt.Errorf("ledger: kv usage: %w", err)
	}
	own, err := tx.merchantQuotas(namespace)
	if err != nil {
		return err
	}
	q := own.KV.Or(tx.l.opts.KVQuota)
	if (delta.Keys > 0 && u.Keys > q.MaxKeys) || (delta.Bytes > 0 && u.Bytes > q.MaxBytes) {
		// The caller's closure fails, so its savepoint (or transaction)
		// rolls all of this back.
		return fmt.Errorf("%w: namespace %s would hold %d keys and %d bytes, quota %d keys and %d bytes",
			ErrKVQuota, namespace, u.Keys, u.Bytes, q.MaxKeys, q.MaxBytes)
	}
	return nil
}

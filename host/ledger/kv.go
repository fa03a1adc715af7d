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
	for _, c := range changes {
		var err error
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
	return nil
}

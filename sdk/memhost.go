package sdk

import (
	"context"
	"crypto/rand"
	"log/slog"
	"time"
)

// MemHost is an in-memory Host for native tests of plugin logic: a map for
// KV, a fixed request time and configuration, and log lines kept in Logs.
// It is not safe for concurrent use.
type MemHost struct {
	KV         map[string][]byte
	Now        time.Time
	ConfigJSON []byte
	// Logs holds each logged message and Levels its level, index by index.
	Logs   []string
	Levels []Level
	// Logger, if set, also receives log lines at their level.
	Logger *slog.Logger
}

// NewMemHost returns a MemHost with an empty KV.
func NewMemHost(now time.Time, config []byte) *MemHost {
	return &MemHost{KV: map[string][]byte{}, Now: now, ConfigJSON: config}
}

// Log records msg with its level.
func (h *MemHost) Log(level Level, msg string) {
	h.Logs = append(h.Logs, msg)
	h.Levels = append(h.Levels, level)
	if h.Logger != nil {
		h.Logger.Log(context.Background(), level.slog(), "plugin log", "line", msg)
	}
}

// KVGet returns a copy of key's value.
func (h *MemHost) KVGet(key string) ([]byte, bool) {
	v, ok := h.KV[key]
	return append([]byte(nil), v...), ok
}

// KVPut stores a copy of value.
func (h *MemHost) KVPut(key string, value []byte) { h.KV[key] = append([]byte{}, value...) }

// KVDelete removes key.
func (h *MemHost) KVDelete(key string) { delete(h.KV, key) }

// Random fills b from crypto/rand.
func (h *MemHost) Random(b []byte) { _, _ = rand.Read(b) }

// NowMillis returns Now in Unix milliseconds.
func (h *MemHost) NowMillis() int64 { return h.Now.UnixMilli() }

// Config returns ConfigJSON.
func (h *MemHost) Config() []byte { return h.ConfigJSON }

// slog maps l to the slog level the host logs it at.
func (l Level) slog() slog.Level {
	switch l {
	case LevelDebug:
		return slog.LevelDebug
	case LevelWarn:
		return slog.LevelWarn
	case LevelError:
		return slog.LevelError
	}
	return slog.LevelInfo
}

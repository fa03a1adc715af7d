package otpc

import (
	"time"

	"github.com/otpcgate/otpcgate/sdk/otpc/internal/jsonx"
)

// TimestampOf returns the Timestamp of t, truncated to milliseconds.
func TimestampOf(t time.Time) Timestamp { return Timestamp{EpochMillis: t.UnixMilli()} }

// Time returns the timestamp as a time.Time in UTC.
func (t Timestamp) Time() time.Time { return time.UnixMilli(t.EpochMillis).UTC() }

// IsZero reports whether the timestamp is absent (zero epochMillis).
func (t Timestamp) IsZero() bool { return t.EpochMillis == 0 }

// itoa formats v in base 10 (strconv is avoided to keep the guest small).
func itoa(v int64) string {
	var b [20]byte
	return string(appendInt(b[:0], v))
}

func appendInt(dst []byte, v int64) []byte { return jsonx.AppendInt(dst, v) }

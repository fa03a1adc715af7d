package otpc

import "time"

// TimestampOf returns the Timestamp of t, truncated to milliseconds.
func TimestampOf(t time.Time) Timestamp { return Timestamp{EpochMillis: t.UnixMilli()} }

// Time returns the timestamp as a time.Time in UTC.
func (t Timestamp) Time() time.Time { return time.UnixMilli(t.EpochMillis).UTC() }

// IsZero reports whether the timestamp is absent (zero epochMillis).
func (t Timestamp) IsZero() bool { return t.EpochMillis == 0 }

// itoa formats v in base 10 without strconv's larger tables.
func itoa(v int64) string {
	var b [20]byte
	return string(appendInt(b[:0], v))
}

func appendInt(dst []byte, v int64) []byte {
	if v < 0 {
		dst = append(dst, '-')
		u := uint64(-v) // correct for MinInt64 too: two's complement wraps to 1<<63
		return appendUint(dst, u)
	}
	return appendUint(dst, uint64(v))
}

func appendUint(dst []byte, u uint64) []byte {
	var b [20]byte
	i := len(b)
	for u >= 10 {
		i--
		b[i] = byte('0' + u%10)
		u /= 10
	}
	i--
	b[i] = byte('0' + u)
	return append(dst, b[i:]...)
}

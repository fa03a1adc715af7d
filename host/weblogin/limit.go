package weblogin

import (
	"sync"
	"time"
)

// limiter counts events per key in fixed windows: once a key reaches max
// events in its window it is blocked until the window ends. It bounds its
// memory by dropping expired entries, then (under a flood of distinct
// keys) everything, when it holds more than maxKeys.
type limiter struct {
	mu      sync.Mutex
	max     int
	window  time.Duration
	maxKeys int
	m       map[string]*window
}

type window struct {
	n     int
	until time.Time
}

func newLimiter(max int, win time.Duration, maxKeys int) *limiter {
	return &limiter{max: max, window: win, maxKeys: maxKeys, m: map[string]*window{}}
}

// blocked reports whether key is over its limit now.
func (l *limiter) blocked(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.m[key]
	return w != nil && now.Before(w.until) && w.n >= l.max
}

// add counts one event for key and reports whether key is now blocked.
func (l *limiter) add(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.m[key]
	if w == nil || !now.Before(w.until) {
		if len(l.m) >= l.maxKeys {
			l.prune(now)
		}
		w = &window{until: now.Add(l.window)}
		l.m[key] = w
	}
	w.n++
	return w.n >= l.max
}

func (l *limiter) prune(now time.Time) {
	for k, w := range l.m {
		if !now.Before(w.until) {
			delete(l.m, k)
		}
	}
	if len(l.m) >= l.maxKeys {
		// A flood of distinct keys: forgetting is safer than growing.
		clear(l.m)
	}
}

package web

import (
	"sync"
	"time"
)

// limiter counts failures per key (an order, a client address) in fixed windows: a key
// with max failures in its current window is blocked until that window ends. Windows start
// at a key's first failure, so an idle key costs nothing.
type limiter struct {
	now    func() time.Time
	window time.Duration

	mu   sync.Mutex
	keys map[string]*failures // guarded by mu
}

type failures struct {
	start time.Time
	n     int
}

// sweepAt is the map size at which expired entries are dropped, so that a flood of
// distinct keys (random order ids) cannot grow it without bound for longer than a window.
const sweepAt = 4096

func newLimiter(now func() time.Time, window time.Duration) *limiter {
	return &limiter{now: now, window: window, keys: map[string]*failures{}}
}

// blocked returns how long key stays blocked (0: not blocked).
func (l *limiter) blocked(key string, max int) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.keys[key]
	if f == nil {
		return 0
	}
	left := f.start.Add(l.window).Sub(l.now())
	if left <= 0 || f.n < max {
		return 0
	}
	return left
}

// fail counts one failure of key.
func (l *limiter) fail(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	f := l.keys[key]
	if f == nil || !now.Before(f.start.Add(l.window)) {
		if len(l.keys) >= sweepAt {
			for k, v := range l.keys {
				if !now.Before(v.start.Add(l.window)) {
					delete(l.keys, k)
				}
			}
		}
		l.keys[key] = &failures{start: now, n: 1}
		return
	}
	f.n++
}

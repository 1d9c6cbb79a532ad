package mqtt

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// warnings logs warnings that can repeat once per message (a refused event, a gap, an
// undecodable payload) at most once per interval per kind: the first of a kind is
// logged at once, the ones after it within the interval are only counted, and the
// count goes out with the last one's attributes when the interval is over (on the next
// warning of the kind or the next flush, whichever comes first). A fleet in trouble
// then writes a few lines a minute instead of one per message.
type warnings struct {
	log   *slog.Logger
	now   func() time.Time
	every time.Duration

	mu    sync.Mutex
	kinds map[string]*warnKind // guarded by mu
}

type warnKind struct {
	level slog.Level
	since time.Time // start of the interval
	n     int       // warnings counted since, not yet logged
	last  []any     // attributes of the last one counted
}

func newWarnings(log *slog.Logger, now func() time.Time, every time.Duration) *warnings {
	return &warnings{log: log, now: now, every: every, kinds: map[string]*warnKind{}}
}

// Warn logs msg (the kind) with args at level Warn, or counts it if msg was logged
// less than an interval ago.
func (w *warnings) Warn(msg string, args ...any) { w.log1(slog.LevelWarn, msg, args) }

// Error is Warn at level Error.
func (w *warnings) Error(msg string, args ...any) { w.log1(slog.LevelError, msg, args) }

func (w *warnings) log1(level slog.Level, msg string, args []any) {
	now := w.now()
	w.mu.Lock()
	defer w.mu.Unlock()
	k := w.kinds[msg]
	if k != nil && now.Sub(k.since) < w.every {
		k.n++
		k.last = args
		return
	}
	if k != nil {
		w.emit(msg, k, now)
	}
	w.kinds[msg] = &warnKind{level: level, since: now}
	w.log.Log(context.Background(), level, msg, args...)
}

// flush logs the counts of kinds whose interval is over and forgets kinds that have
// been quiet for a whole interval.
func (w *warnings) flush() {
	now := w.now()
	w.mu.Lock()
	defer w.mu.Unlock()
	for msg, k := range w.kinds {
		if now.Sub(k.since) < w.every {
			continue
		}
		if k.n == 0 {
			delete(w.kinds, msg)
			continue
		}
		w.emit(msg, k, now)
		k.since, k.n, k.last = now, 0, nil
	}
}

func (w *warnings) emit(msg string, k *warnKind, now time.Time) {
	if k.n == 0 {
		return
	}
	args := append([]any{"repeated", k.n, "seconds", now.Sub(k.since).Seconds()}, k.last...)
	w.log.Log(context.Background(), k.level, msg, args...)
}

// run flushes every interval until done is closed.
func (w *warnings) run(done <-chan struct{}) {
	t := time.NewTicker(w.every)
	defer t.Stop()
	for {
		select {
		case <-done:
			w.flush()
			return
		case <-t.C:
			w.flush()
		}
	}
}

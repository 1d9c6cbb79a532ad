package edge

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/larder-lockers/larder/edge/hw"
)

// FakeLatch is a behavioural Latch for tests and benchmarks: Unlock succeeds at once
// unless the compartment is jammed (hw.ErrJammed) or Offline is set (hw.ErrBoardOffline),
// and records when each call arrived. OnUnlock, if set, runs inside Unlock (to emit the
// door events a real bank would). Safe for concurrent use.
type FakeLatch struct {
	mu       sync.Mutex // guards the fields below
	calls    []int
	at       []time.Time
	jammed   map[int]bool
	offline  bool
	OnUnlock func(compartment int)
}

// Unlock implements Latch.
func (f *FakeLatch) Unlock(ctx context.Context, c int) error {
	now := time.Now()
	f.mu.Lock()
	f.calls = append(f.calls, c)
	f.at = append(f.at, now)
	jam, off, hook := f.jammed[c], f.offline, f.OnUnlock
	f.mu.Unlock()
	if hook != nil {
		hook(c)
	}
	switch {
	case off:
		return fmt.Errorf("fake latch %d: %w", c, hw.ErrBoardOffline)
	case jam:
		return fmt.Errorf("fake latch %d: %w", c, hw.ErrJammed)
	}
	return ctx.Err()
}

// Calls returns the compartments unlocked so far, in order.
func (f *FakeLatch) Calls() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.calls...)
}

// LastAt is when the last Unlock call arrived (zero: none).
func (f *FakeLatch) LastAt() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.at) == 0 {
		return time.Time{}
	}
	return f.at[len(f.at)-1]
}

// SetJammed makes compartment c jam (or not).
func (f *FakeLatch) SetJammed(c int, jammed bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.jammed == nil {
		f.jammed = map[int]bool{}
	}
	f.jammed[c] = jammed
}

// SetOffline makes every Unlock fail as if the board did not answer.
func (f *FakeLatch) SetOffline(off bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.offline = off
}

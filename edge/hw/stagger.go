package hw

import (
	"context"
	"sync"
	"time"
)

// DefaultStaggerGap spaces latch pulses so that simultaneous openings do not
// sum their 0.2–0.4 A inrush on one power supply (HARDWARE.md: ~100 ms).
const DefaultStaggerGap = 100 * time.Millisecond

// Stagger hands out pulse start times at least Gap apart. Every driver
// that fires latches on one power supply shares one Stagger. The zero value
// uses DefaultStaggerGap; a negative Gap disables staggering.
type Stagger struct {
	Gap time.Duration

	mu   sync.Mutex // guards next
	next time.Time  // earliest start of the next pulse
}

// Wait blocks until the caller may start a pulse, and reserves that slot.
// Callers are served in the order they reserve, not the order they wake. If
// ctx ends first the slot stays reserved (one gap is lost): simpler than
// handing it back and harmless.
func (s *Stagger) Wait(ctx context.Context) error {
	gap := s.Gap
	if gap == 0 {
		gap = DefaultStaggerGap
	}
	if gap < 0 {
		return ctx.Err()
	}
	s.mu.Lock()
	now := time.Now()
	start := s.next
	if start.Before(now) {
		start = now
	}
	s.next = start.Add(gap)
	s.mu.Unlock()

	d := time.Until(start)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

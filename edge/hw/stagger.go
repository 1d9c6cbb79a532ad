package hw

import (
	"context"
	"sync"
	"time"
)

// DefaultStaggerGap spaces latch pulses so that simultaneous openings do not
// sum their 0.2–0.4 A inrush at 12 V on one power supply: relays switch in
// under 10 ms and latches need about 50 ms, so 100 ms apart the pulses barely
// overlap (docs/lock-boards.md, Timings).
const DefaultStaggerGap = 100 * time.Millisecond

// Stagger hands out pulse start times at least Gap apart. Every driver
// that fires latches on one power supply shares one Stagger. The zero value
// uses DefaultStaggerGap; a negative Gap disables staggering.
type Stagger struct {
	Gap time.Duration

	mu   sync.Mutex // guards next and last
	next time.Time  // earliest start of the next caller to reserve
	last time.Time  // start of the latest pulse granted
}

// Wait blocks until the caller may start a pulse, at least Gap after the
// previous pulse actually started, and records now as this pulse's start:
// call it immediately before the pulse. Callers are served in the order they
// called. If ctx ends first the reserved slot is lost (one gap), which is
// simpler than handing it back and harmless.
func (s *Stagger) Wait(ctx context.Context) error {
	gap := s.Gap
	if gap == 0 {
		gap = DefaultStaggerGap
	}
	if gap < 0 {
		return ctx.Err()
	}
	s.mu.Lock()
	start := s.next
	if now := time.Now(); start.Before(now) {
		start = now
	}
	s.next = start.Add(gap)
	s.mu.Unlock()

	for {
		if err := sleep(ctx, time.Until(start)); err != nil {
			return err
		}
		// A late wake-up of the previous caller moves its pulse, and with
		// it the earliest start of this one.
		s.mu.Lock()
		now := time.Now()
		if !s.last.IsZero() && now.Before(s.last.Add(gap)) {
			start = s.last.Add(gap)
			s.mu.Unlock()
			continue
		}
		s.last = now
		if s.next.Before(now.Add(gap)) {
			s.next = now.Add(gap)
		}
		s.mu.Unlock()
		return nil
	}
}

func sleep(ctx context.Context, d time.Duration) error {
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

package sim

import (
	"sync"
	"time"
)

// Clock tells the simulated world what time it is. The physics is a pure
// function of the times at which things happened, evaluated lazily when
// somebody looks, so a fake clock makes unit tests exact.
type Clock interface {
	Now() time.Time
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// RealClock is the wall clock (also the fake clock of a testing/synctest bubble).
var RealClock Clock = realClock{}

// FakeClock is a manually advanced Clock for tests. Safe for concurrent use.
type FakeClock struct {
	mu  sync.Mutex
	now time.Time
}

// NewFakeClock returns a clock stopped at t.
func NewFakeClock(t time.Time) *FakeClock { return &FakeClock{now: t} }

// Now returns the clock's time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

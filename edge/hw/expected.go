package hw

import (
	"context"
	"errors"
	"sync"
	"time"
)

// DefaultExpectWindow is how long after an unlock command an opening of the
// same compartment counts as commanded. Spring-pop latches open the door at
// once; a person pulling a door that did not pop needs a few seconds more.
const DefaultExpectWindow = 15 * time.Second

// Expected records commanded unlocks so that the Poller can tell a commanded
// opening from an uncommanded one. Safe for concurrent use. The zero value
// is ready and uses DefaultExpectWindow.
type Expected struct {
	Window time.Duration

	mu sync.Mutex        // guards at
	at map[int]time.Time // compartment → time of the last unlock command
}

// Expect records that compartment is about to be unlocked now. Call it
// before the command goes out: the poller may see the door open before
// Unlock returns.
func (e *Expected) Expect(compartment int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.at == nil {
		e.at = make(map[int]time.Time)
	}
	e.at[compartment] = time.Now()
}

// Take reports whether an opening of compartment seen at time at is
// explained by an unlock recorded within the window before it, and consumes
// that record: one unlock explains one opening.
func (e *Expected) Take(compartment int, at time.Time) bool {
	w := e.Window
	if w <= 0 {
		w = DefaultExpectWindow
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	t, ok := e.at[compartment]
	if !ok {
		return false
	}
	delete(e.at, compartment)
	// A small tolerance for clocks read in different goroutines: the unlock
	// is recorded before the command, the opening after a reply.
	return !at.Before(t.Add(-time.Second)) && at.Sub(t) <= w
}

// Tracked wraps a Latch: it records every unlock in Expected before
// delegating, and emits an EventLockJammed when the latch reports ErrJammed.
// Compartment-to-board resolution for the event uses Map (optional).
type Tracked struct {
	Latch    Latch
	Expected *Expected   // may be nil
	Map      Map         // may be nil: events then carry Board 0
	Emit     func(Event) // may be nil
}

// Unlock implements Latch.
func (t *Tracked) Unlock(ctx context.Context, compartment int) error {
	if t.Expected != nil {
		t.Expected.Expect(compartment)
	}
	err := t.Latch.Unlock(ctx, compartment)
	if errors.Is(err, ErrJammed) && t.Emit != nil {
		t.Emit(Event{Kind: EventLockJammed, Compartment: compartment, Board: t.Map[compartment].Board, At: time.Now()})
	}
	return err
}

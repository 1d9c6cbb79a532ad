// Package hwtest is a behavioural fake of a locker bank for tests of code
// that consumes edge/hw roles (pickup and loading flows, the daemon). Like
// periph's gpiotest it has exported knobs instead of scripted expectations.
// Tests of the drivers themselves use larder-sim instead.
package hwtest

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/larder-lockers/larder/edge/hw"
)

// Bank is compartments 1..N on one pseudo-board 0. It implements hw.Latch,
// hw.Sensors and hw.Halter and is safe for concurrent use. A successful
// Unlock opens the door, as a spring-pop latch does.
type Bank struct {
	mu      sync.Mutex // guards everything below
	n       int
	door    map[int]hw.Door
	occ     map[int]hw.Occupancy
	jammed  map[int]bool
	unlocks map[int]int
	offline bool
	halts   int
}

// NewBank returns n compartments, all closed and empty, board online.
func NewBank(n int) *Bank {
	b := &Bank{n: n, door: map[int]hw.Door{}, occ: map[int]hw.Occupancy{}, jammed: map[int]bool{}, unlocks: map[int]int{}}
	for c := 1; c <= n; c++ {
		b.door[c], b.occ[c] = hw.DoorClosed, hw.Empty
	}
	return b
}

// Unlock implements hw.Latch.
func (b *Bank) Unlock(ctx context.Context, c int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case c < 1 || c > b.n:
		return fmt.Errorf("hwtest: unlock %d: %w", c, hw.ErrUnknownCompartment)
	case b.offline:
		return fmt.Errorf("hwtest: unlock %d: %w", c, hw.ErrBoardOffline)
	}
	b.unlocks[c]++
	if b.jammed[c] {
		return fmt.Errorf("hwtest: unlock %d: %w", c, hw.ErrJammed)
	}
	b.door[c] = hw.DoorOpen
	return nil
}

// Snapshot implements hw.Sensors.
func (b *Bank) Snapshot(ctx context.Context) (hw.Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return hw.Snapshot{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	s := hw.Snapshot{At: time.Now(), Compartments: map[int]hw.CompartmentState{}, Boards: map[int]hw.BoardState{0: {Online: !b.offline}}}
	for c := 1; c <= b.n; c++ {
		cs := hw.CompartmentState{Door: b.door[c], Occupancy: b.occ[c]}
		if b.offline {
			cs.Door, cs.Occupancy = hw.DoorUnknown, hw.OccupancyUnknown
		}
		s.Compartments[c] = cs
	}
	return s, nil
}

// Halt implements hw.Halter; it only counts calls.
func (b *Bank) Halt() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.halts++
	return nil
}

// SetDoor is a person opening or closing compartment c's door.
func (b *Bank) SetDoor(c int, d hw.Door) { b.mu.Lock(); b.door[c] = d; b.mu.Unlock() }

// SetOccupancy is an item put in or taken out.
func (b *Bank) SetOccupancy(c int, o hw.Occupancy) { b.mu.Lock(); b.occ[c] = o; b.mu.Unlock() }

// Jam makes compartment c's latch jam (Unlock returns hw.ErrJammed).
func (b *Bank) Jam(c int, jammed bool) { b.mu.Lock(); b.jammed[c] = jammed; b.mu.Unlock() }

// SetOnline takes the board down (silent) or back up.
func (b *Bank) SetOnline(on bool) { b.mu.Lock(); b.offline = !on; b.mu.Unlock() }

// Unlocks is how many unlock pulses compartment c received.
func (b *Bank) Unlocks(c int) int { b.mu.Lock(); defer b.mu.Unlock(); return b.unlocks[c] }

// Halts is how many times Halt was called.
func (b *Bank) Halts() int { b.mu.Lock(); defer b.mu.Unlock(); return b.halts }

var (
	_ hw.Latch   = (*Bank)(nil)
	_ hw.Sensors = (*Bank)(nil)
	_ hw.Halter  = (*Bank)(nil)
)

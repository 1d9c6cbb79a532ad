package hw

import (
	"fmt"
	"slices"
)

// Addr is where a compartment's lock is wired: the board's wire address on
// its bus and the 1-based lock number on that board.
type Addr struct {
	Board int
	Lock  int
}

// Map maps compartment numbers (1..N) to lock addresses. One driver owns one
// Map; it is read-only once the driver is built.
type Map map[int]Addr

// Sequential numbers compartments 1..len(boards)*locksPerBoard, filling each
// board's locks 1..locksPerBoard in the order the boards are given. It is
// the usual wiring of a bank: board 0 holds compartments 1–16, board 1 17–32.
func Sequential(boards []int, locksPerBoard int) Map {
	m := make(Map, len(boards)*locksPerBoard)
	n := 1
	for _, b := range boards {
		for l := 1; l <= locksPerBoard; l++ {
			m[n] = Addr{Board: b, Lock: l}
			n++
		}
	}
	return m
}

// Lookup returns the address of compartment c.
func (m Map) Lookup(c int) (Addr, error) {
	a, ok := m[c]
	if !ok {
		return Addr{}, fmt.Errorf("compartment %d: %w", c, ErrUnknownCompartment)
	}
	return a, nil
}

// Compartments returns the compartment numbers in increasing order.
func (m Map) Compartments() []int {
	cs := make([]int, 0, len(m))
	for c := range m {
		cs = append(cs, c)
	}
	slices.Sort(cs)
	return cs
}

// Boards returns the distinct board addresses in increasing order.
func (m Map) Boards() []int {
	var bs []int
	for _, a := range m {
		if !slices.Contains(bs, a.Board) {
			bs = append(bs, a.Board)
		}
	}
	slices.Sort(bs)
	return bs
}

// Find returns the compartment wired to lock on board, if any.
func (m Map) Find(board, lock int) (int, bool) {
	for c, a := range m {
		if a.Board == board && a.Lock == lock {
			return c, true
		}
	}
	return 0, false
}

// Validate checks that compartments are positive, locks are 1..maxLock,
// boards lie in [minBoard, maxBoard] and no lock drives two compartments.
func (m Map) Validate(minBoard, maxBoard, maxLock int) error {
	if len(m) == 0 {
		return fmt.Errorf("hw: empty compartment map")
	}
	seen := make(map[Addr]int, len(m))
	for _, c := range m.Compartments() {
		a := m[c]
		switch {
		case c < 1:
			return fmt.Errorf("hw: compartment %d: numbers start at 1", c)
		case a.Board < minBoard || a.Board > maxBoard:
			return fmt.Errorf("hw: compartment %d: board %d outside %d..%d", c, a.Board, minBoard, maxBoard)
		case a.Lock < 1 || a.Lock > maxLock:
			return fmt.Errorf("hw: compartment %d: lock %d outside 1..%d", c, a.Lock, maxLock)
		}
		if prev, dup := seen[a]; dup {
			return fmt.Errorf("hw: compartments %d and %d both on board %d lock %d", prev, c, a.Board, a.Lock)
		}
		seen[a] = c
	}
	return nil
}

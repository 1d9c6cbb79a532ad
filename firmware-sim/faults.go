package sim

import (
	"fmt"
	"math"
	"time"
)

// Fault kinds accepted by World.ApplyFault, the control API and scenarios.
const (
	// FaultJammedLatch (compartment): unlock pulses click the relay but the
	// latch never releases, so the door never opens.
	FaultJammedLatch = "jammed_latch"
	// FaultDoorLeftOpen (compartment): the door is opened (whatever its
	// latch) and held open; closing is refused until the fault is cleared.
	FaultDoorLeftOpen = "door_left_open"
	// FaultRelayStuck (compartment): the relay is welded on, the latch stays
	// released while powered, so the door springs ajar and will not stay shut.
	FaultRelayStuck = "relay_stuck"
	// FaultIRStuck (compartment, value): the infrared sensor reads value
	// whatever the contents (kerong only has IR).
	FaultIRStuck = "ir_stuck"
	// FaultBoardUnplugged (board): the board never answers.
	FaultBoardUnplugged = "board_unplugged"
	// FaultBoardReset (board): one-shot; the board reboots (silent for
	// BootTime) and any latch pulse in progress is cut.
	FaultBoardReset = "board_reset"
	// FaultSlowReplies (ms, optional board; all boards if absent): replies
	// come ms later than the normal turnaround.
	FaultSlowReplies = "slow_replies"
	// FaultGarble (rate): each byte on the line, either direction, has one
	// random bit flipped with probability rate.
	FaultGarble = "garble"
	// FaultDrop (rate): each byte on the line, either direction, is lost
	// with probability rate.
	FaultDrop = "drop"
	// FaultProbeFailure (zone): the zone's temperature probe reads nothing.
	FaultProbeFailure = "probe_failure"
)

// Fault is one fault to inject (or, with Off, to clear). Which fields
// matter depends on Kind; see the Fault* constants.
type Fault struct {
	Kind        string  `json:"kind"`
	Compartment int     `json:"compartment,omitempty"`
	Board       *int    `json:"board,omitempty"` // pointer: kerong board 0 is valid
	Zone        string  `json:"zone,omitempty"`
	Rate        float64 `json:"rate,omitempty"`
	MS          int     `json:"ms,omitempty"`
	Value       *bool   `json:"value,omitempty"`
	Off         bool    `json:"off,omitempty"`
}

// ApplyFault injects (or with f.Off clears) one fault.
func (w *World) ApplyFault(f Fault) error {
	now := w.lockNow()
	defer w.mu.Unlock()
	bad := func(format string, a ...any) error {
		return fmt.Errorf("sim: fault %s: "+format+": %w", append(append([]any{f.Kind}, a...), ErrInvalid)...)
	}
	on := !f.Off
	switch f.Kind {
	case FaultJammedLatch, FaultDoorLeftOpen, FaultRelayStuck, FaultIRStuck:
		c, err := w.comp(f.Compartment)
		if err != nil {
			return err
		}
		switch f.Kind {
		case FaultJammedLatch:
			c.jammed = on
			if on {
				c.releasedUntil = minTime(c.releasedUntil, now)
			}
		case FaultDoorLeftOpen:
			c.leftOpen = on
			if on && !c.doorOpen {
				c.doorOpen = true
				c.zone.doorsOpen++
			}
		case FaultRelayStuck:
			c.relayStuck = on
			if on && w.powered && !c.jammed {
				if c.latched(now) {
					c.releasedFrom = now
				}
				c.releasedUntil = forever
			} else if !on && !c.relay {
				c.releasedUntil = minTime(c.releasedUntil, now)
			}
		case FaultIRStuck:
			if on && f.Value == nil {
				return bad("needs value true or false")
			}
			c.irStuck = nil
			if on {
				v := *f.Value
				c.irStuck = &v
			}
		}
	case FaultBoardUnplugged, FaultBoardReset:
		if f.Board == nil {
			return bad("needs board")
		}
		b := w.board(*f.Board)
		if b == nil {
			return fmt.Errorf("sim: fault %s: board %d: %w", f.Kind, *f.Board, ErrNotFound)
		}
		if f.Kind == FaultBoardUnplugged {
			b.unplugged = on
			break
		}
		if on {
			b.bootUntil = now.Add(w.cfg.BootTime)
			for _, c := range w.comps {
				if c.board == b.addr && !c.relayStuck {
					c.releasedUntil = minTime(c.releasedUntil, now)
				}
				if c.board == b.addr {
					c.relay = false // a rebooted modbus-rtu board has every coil off
				}
			}
		}
	case FaultSlowReplies:
		if on && (f.MS <= 0 || f.MS > 60_000) {
			return bad("ms %d, want 1-60000", f.MS)
		}
		d := time.Duration(f.MS) * time.Millisecond
		if !on {
			d = 0
		}
		if f.Board != nil {
			b := w.board(*f.Board)
			if b == nil {
				return fmt.Errorf("sim: fault %s: board %d: %w", f.Kind, *f.Board, ErrNotFound)
			}
			b.slow = d
			break
		}
		for _, b := range w.boards {
			b.slow = d
		}
	case FaultGarble, FaultDrop:
		if math.IsNaN(f.Rate) || f.Rate < 0 || f.Rate > 1 {
			return bad("rate %v, want 0-1", f.Rate)
		}
		r := f.Rate
		if !on {
			r = 0
		}
		if f.Kind == FaultGarble {
			w.garble = r
		} else {
			w.drop = r
		}
	case FaultProbeFailure:
		z := w.zoneOf(f.Zone)
		if z == nil {
			return fmt.Errorf("sim: fault %s: zone %q: %w", f.Kind, f.Zone, ErrNotFound)
		}
		z.probeFail = on
	default:
		return bad("unknown kind")
	}
	return nil
}

// ClearFaults clears every fault. A door held open by door_left_open stays
// open (a person must close it); a board reset in progress completes.
func (w *World) ClearFaults() {
	now := w.lockNow()
	defer w.mu.Unlock()
	for _, c := range w.comps {
		if c.relayStuck && !c.relay { // a coil still on keeps its latch released
			c.releasedUntil = minTime(c.releasedUntil, now)
		}
		c.jammed, c.relayStuck, c.leftOpen, c.irStuck = false, false, false, nil
	}
	for _, b := range w.boards {
		b.unplugged, b.slow = false, 0
	}
	for _, z := range w.zones {
		z.probeFail = false
	}
	w.garble, w.drop = 0, 0
}

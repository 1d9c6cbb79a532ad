package edge

import (
	"context"
	"slices"

	"github.com/larder-lockers/larder/edge/hw"
	"github.com/larder-lockers/larder/protocol"
)

// HandleHW applies one hardware event from the poller: it updates the in-memory view of
// doors and occupancy, writes the event to the outbox, and completes sessions whose doors
// are now closed with the infrared agreeing. Call it from one goroutine, in the poller's
// order.
func (l *Locker) HandleHW(ctx context.Context, ev hw.Event) {
	now := l.clock.Now()
	c := ev.Compartment
	l.mu.Lock()
	p := l.phys[c]
	switch ev.Kind {
	case hw.EventDoorOpened:
		p.Door = hw.DoorOpen
		l.openSince[c] = now
		delete(l.leftOpen, c)
	case hw.EventDoorClosed:
		p.Door = hw.DoorClosed
		l.closes[c]++
		delete(l.openSince, c)
		delete(l.leftOpen, c)
	case hw.EventOccupancyChanged:
		p.Occupancy = ev.Occupancy
		l.occChanges[c]++
	case hw.EventBoardOffline:
		l.boards[ev.Board] = false
	case hw.EventBoardOnline:
		l.boards[ev.Board] = true
	}
	if c > 0 {
		p.Board = ev.Board
		l.phys[c] = p
	}
	opsCred, ops := l.opsOpen[c]
	if ev.Kind == hw.EventDoorOpened {
		delete(l.opsOpen, c)
	}
	l.mu.Unlock()

	var err error
	board := ev.Board
	switch ev.Kind {
	case hw.EventDoorOpened:
		err = l.cfg.Store.Update(func(tx Tx) error {
			cred, why := protocol.CredNone, ""
			if ops {
				cred = opsCred
			}
			ss, err := tx.Sessions()
			if err != nil {
				return err
			}
			for _, s := range ss {
				if slices.Contains(s.Compartments, c) {
					cred, why = s.Credential, s.eventReason()
				}
			}
			comp, _, err := tx.Compartment(c)
			if err != nil {
				return err
			}
			return enqueue(tx, now, protocol.Event{Kind: protocol.EventDoorOpened, Credential: cred, Compartment: c, Generation: comp.Generation, Reason: why})
		})
	case hw.EventDoorClosed:
		err = l.cfg.Store.Update(func(tx Tx) error {
			return enqueue(tx, now, protocol.Event{Kind: protocol.EventDoorClosed, Credential: protocol.CredNone, Compartment: c})
		})
	case hw.EventUncommandedOpen:
		err = l.cfg.Store.Update(func(tx Tx) error {
			if err := tx.Audit(AuditEntry{At: now, Compartment: c, Reason: "uncommanded", Credential: protocol.CredNone}); err != nil {
				return err
			}
			return enqueue(tx, now, protocol.Event{Kind: protocol.EventUncommandedOpen, Credential: protocol.CredNone, Compartment: c})
		})
	case hw.EventBoardOffline, hw.EventBoardOnline:
		kind := protocol.EventBoardOffline
		if ev.Kind == hw.EventBoardOnline {
			kind = protocol.EventBoardOnline
		}
		l.m.boardOnline(board, ev.Kind == hw.EventBoardOnline)
		err = l.cfg.Store.Update(func(tx Tx) error {
			return enqueue(tx, now, protocol.Event{Kind: kind, Credential: protocol.CredNone, Board: &board})
		})
	case hw.EventOccupancyChanged:
		// Not an event of the protocol: it matters through the sessions it ends.
	default:
		// lock_jammed is reported by the flow that pulsed the latch, which knows the order.
		return
	}
	if err != nil {
		l.log.Error("recording hardware event failed", "event", string(ev.Kind), "compartment", c, "err", err)
	}
	l.notify()
	l.m.DoorsOpen.Set(float64(l.openCount()))
	if ev.Kind == hw.EventDoorClosed || ev.Kind == hw.EventOccupancyChanged {
		l.evaluate(ctx, c)
	}
}

func (l *Locker) openCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.openSince)
}

// Physical returns the last known door and occupancy of compartment c.
func (l *Locker) Physical(c int) hw.CompartmentState {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.phys[c]
}

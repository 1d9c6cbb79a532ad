package edge

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/larder-lockers/larder/edge/hw"
	"github.com/larder-lockers/larder/protocol"
)

// A session ends when every door it opened is closed again and the infrared agrees:
// empty for a pickup or a return, occupied for loading. "Closed again" means a
// door_closed event (or an infrared change: the poller may miss a quick open-close
// cycle between two reads) arrived after the session started, so that a stale "closed"
// read before the door popped is never taken for the end. A session resumed after a restart
// has no such history: it ends when its doors are closed and the infrared says empty
// (pickup, return) or occupied (loading). Without infrared (bcc8a, modbus-rtu boards) a close alone
// ends it. A session whose doors are all closed but disagree with the infrared past
// SessionTimeout is abandoned: the order goes back to where it was.

// trackSession remembers how many closes each door had when s started.
func (l *Locker) trackSession(s Session) {
	l.mu.Lock()
	defer l.mu.Unlock()
	base := map[int]int{}
	for _, c := range s.Compartments {
		base[c] = l.closes[c]
		base[-c] = l.occChanges[c]
	}
	l.sessionBase[s.ID] = base
}

// verdict says what the sensors say about one door of a session.
type verdict int

const (
	vWaiting  verdict = iota // door open, or not yet closed again
	vDone                    // closed, infrared agrees (or there is none)
	vDisagree                // closed, infrared disagrees (maybe it has not caught up)
)

func (l *Locker) doorVerdict(s Session, c int) verdict {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.phys[c]
	if p.Door != hw.DoorClosed {
		return vWaiting
	}
	base, tracked := l.sessionBase[s.ID]
	closedAgain := tracked && l.closes[c] > base[c]
	// The poller may miss a whole open-close cycle between two reads (a quick driver),
	// but not the infrared's change: that too says the door was opened and closed again.
	occChanged := tracked && l.occChanges[c] > base[-c]
	want := hw.Empty
	if s.Kind == SessionLoading {
		want = hw.Occupied
	}
	switch {
	case p.Occupancy == hw.OccupancyUnknown:
		if closedAgain {
			return vDone
		}
		return vWaiting
	case p.Occupancy == want && (closedAgain || occChanged || !tracked):
		return vDone
	case closedAgain || !tracked:
		return vDisagree
	}
	return vWaiting
}

// evaluate completes the sessions that include compartment c if their doors agree.
func (l *Locker) evaluate(ctx context.Context, c int) {
	var ss []Session
	_ = l.cfg.Store.View(func(tx Tx) error {
		all, err := tx.Sessions()
		for _, s := range all {
			if slices.Contains(s.Compartments, c) {
				ss = append(ss, s)
			}
		}
		return err
	})
	for _, s := range ss {
		l.settle(ctx, s, false)
	}
}

// evaluateAll settles every session; timeouts apply when expire is true.
func (l *Locker) evaluateAll(ctx context.Context) { l.settleAll(ctx, false) }

func (l *Locker) settleAll(ctx context.Context, expire bool) {
	var ss []Session
	if err := l.cfg.Store.View(func(tx Tx) error {
		var err error
		ss, err = tx.Sessions()
		return err
	}); err != nil {
		l.log.Error("reading sessions failed", "err", err)
		return
	}
	for _, s := range ss {
		l.settle(ctx, s, expire)
	}
}

// settle ends s if its doors say so, or abandons it when expire is set and it has timed out.
func (l *Locker) settle(ctx context.Context, s Session, expire bool) {
	done, disagree := true, false
	for _, c := range s.Compartments {
		if slices.Contains(s.Jammed, c) {
			continue
		}
		switch l.doorVerdict(s, c) {
		case vWaiting:
			done = false
		case vDisagree:
			done, disagree = false, true
		}
	}
	timedOut := expire && l.clock.Now().Sub(s.Started) >= l.cfg.SessionTimeout
	var err error
	switch {
	case done:
		err = l.complete(s, true)
	case timedOut && s.Kind == SessionLoading && disagree:
		err = l.complete(s, false) // closed and still empty: nothing was loaded
	case timedOut && l.allClosed(s):
		err = l.abandon(s)
	default:
		return
	}
	if err != nil {
		l.log.Error("settling session failed", "session_kind", string(s.Kind), "order", s.Order, "err", err)
	}
}

func (l *Locker) allClosed(s Session) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range s.Compartments {
		if l.phys[c].Door == hw.DoorOpen {
			return false
		}
	}
	return true
}

// complete records the outcome of a session in one transaction with its events:
// picked_up, expired_removed, or loaded (ok false for loading: nothing was loaded).
func (l *Locker) complete(s Session, ok bool) error {
	now := l.clock.Now()
	lasts := l.zoneLasts()
	var loadedZone protocol.Zone
	err := l.cfg.Store.Update(func(tx Tx) error {
		loadedZone = ""
		cur, found, err := tx.Session(s.ID)
		if err != nil || !found {
			return err // already settled
		}
		s = cur
		if err := tx.DeleteSession(s.ID); err != nil {
			return err
		}
		r, found, err := tx.Reservation(s.Order)
		if err != nil || !found {
			return err
		}
		switch s.Kind {
		case SessionPickup, SessionReturn:
			want, final, kind := OrderPicking, OrderPickedUp, protocol.EventPickedUp
			if s.Kind == SessionReturn {
				want, final, kind = OrderReturning, OrderRemoved, protocol.EventExpiredRemoved
			}
			if r.State != want || r.Session != s.ID {
				return nil
			}
			r.State, r.Session, r.Finished = final, "", now
			cold := r.closeColdChain(lasts[r.Zone], l.limits[r.Zone].LimitC, now)
			for _, slot := range r.Slots {
				comp, _, err := tx.Compartment(slot.Compartment)
				if err != nil {
					return err
				}
				comp.Order, comp.State, comp.Since = "", StateFree, now
				if slices.Contains(s.Jammed, slot.Compartment) {
					comp.State, comp.Reason = StateJammed, "did not open for "+string(s.Kind)
				}
				if err := tx.PutCompartment(comp); err != nil {
					return err
				}
			}
			if err := tx.PutReservation(r); err != nil {
				return err
			}
			ev := protocol.Event{Kind: kind, Credential: s.Credential, Order: r.Order, Reason: s.eventReason(), ColdChain: cold}
			if len(s.Jammed) > 0 {
				ev.Reason = strings.TrimPrefix(ev.Reason+"; partial: some doors did not open", "; ")
			}
			return enqueue(tx, now, ev)
		case SessionLoading:
			for _, c := range s.Compartments {
				comp, _, err := tx.Compartment(c)
				if err != nil {
					return err
				}
				slot, has := r.Slot(c)
				if !has || comp.Order != r.Order || comp.State != StateLoading {
					continue
				}
				comp.Since = now
				if !ok {
					comp.State = StateReserved
					if err := tx.PutCompartment(comp); err != nil {
						return err
					}
					continue
				}
				comp.State = StateLoaded
				slot.Loaded = true
				if r.LoadedAt.IsZero() {
					r.LoadedAt = now // the cold-chain record starts with the first item in
					r.PeakC = loadedPeak(lasts[r.Zone], now)
					loadedZone = r.Zone
				}
				if err := tx.PutCompartment(comp); err != nil {
					return err
				}
				if err := enqueue(tx, now, protocol.Event{Kind: protocol.EventLoaded, Credential: s.Credential,
					Order: r.Order, Compartment: c, Generation: slot.Generation}); err != nil {
					return err
				}
			}
			if r.State == OrderReserved && r.AllLoaded() {
				r.State = OrderLoaded
			}
			return tx.PutReservation(r)
		}
		return nil
	})
	l.forget(s)
	if err == nil && loadedZone != "" {
		l.forgetPeak(loadedZone)
	}
	if err == nil {
		l.log.Info("session completed", "session_kind", string(s.Kind), "order", s.Order, "loaded", ok)
		l.notify()
		l.refreshGauges()
	}
	return err
}

// abandon ends a session whose doors are closed but never agreed with the infrared: the
// order returns to the state it had (its code keeps working).
func (l *Locker) abandon(s Session) error {
	now := l.clock.Now()
	err := l.cfg.Store.Update(func(tx Tx) error {
		if _, found, err := tx.Session(s.ID); err != nil || !found {
			return err
		}
		if err := tx.DeleteSession(s.ID); err != nil {
			return err
		}
		r, found, err := tx.Reservation(s.Order)
		if err != nil || !found {
			return err
		}
		for _, c := range s.Compartments {
			comp, _, err := tx.Compartment(c)
			if err != nil {
				return err
			}
			if comp.Order != r.Order {
				continue
			}
			slot, _ := r.Slot(c)
			comp.State, comp.Since = StateReserved, now
			if slot != nil && slot.Loaded {
				comp.State = StateLoaded
			}
			if err := tx.PutCompartment(comp); err != nil {
				return err
			}
		}
		if r.Session == s.ID {
			r.Session = ""
			switch r.State {
			case OrderPicking:
				r.State = OrderLoaded
			case OrderReturning:
				r.State = OrderCancelled
				if l.expired(&r, now) {
					r.State = OrderLoaded
				}
			}
		}
		return tx.PutReservation(r)
	})
	l.forget(s)
	if err == nil {
		l.log.Warn("session abandoned: doors closed but the infrared disagrees", "session_kind", string(s.Kind), "order", s.Order)
	}
	return err
}

// forget drops the in-memory history of a finished session and remembers its doors for
// the kiosk's status page.
func (l *Locker) forget(s Session) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.sessionBase, s.ID)
	if l.finished == nil {
		l.finished = map[string]finishedSession{}
	}
	now := l.clock.Now()
	for id, f := range l.finished {
		if now.Sub(f.at) > 10*time.Minute {
			delete(l.finished, id)
		}
	}
	l.finished[s.ID] = finishedSession{s: s, at: now}
}

type finishedSession struct {
	s  Session
	at time.Time
}

// SessionStatus is what the kiosk polls while a person stands at the open doors.
func (l *Locker) SessionStatus(id string) (doors []Door, done bool, err error) {
	var s Session
	var found bool
	if err := l.cfg.Store.View(func(tx Tx) error {
		s, found, err = tx.Session(id)
		return err
	}); err != nil {
		return nil, false, internal("session", err)
	}
	if !found {
		l.mu.Lock()
		f, ok := l.finished[id]
		l.mu.Unlock()
		if !ok {
			return nil, false, errorf(CodeNotFound, "session", "This session has ended.", "本次操作已结束。")
		}
		s, done = f.s, true
	}
	for _, c := range s.Compartments {
		doors = append(doors, l.door(c, slices.Contains(s.Jammed, c)))
	}
	return doors, done, nil
}

// Sessions lists the sessions in progress (for tests and the status page).
func (l *Locker) Sessions() ([]Session, error) {
	var ss []Session
	err := l.cfg.Store.View(func(tx Tx) error {
		var err error
		ss, err = tx.Sessions()
		return err
	})
	return ss, err
}

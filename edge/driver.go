package edge

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/larder-lockers/larder/protocol"
)

// DriverLogin checks a driver's loading credential (synced from the cloud as a digest)
// and returns a kiosk token valid for DriverSession. Tokens live in memory: a restart
// logs drivers out, which costs them one scan.
func (l *Locker) DriverLogin(credential string) (token, driver string, err error) {
	if credential == "" || len(credential) > 256 {
		return "", "", errorf(CodeBadRequest, "driver login", "Please scan your driver code.", "请扫描配送员码。")
	}
	now := l.clock.Now()
	d := protocol.CredentialDigest(l.cfg.SiteKey, credential)
	var c Credential
	var found bool
	if err := l.cfg.Store.View(func(tx Tx) error {
		c, found, err = tx.CredentialByDigest(d)
		return err
	}); err != nil {
		return "", "", internal("driver login", err)
	}
	if !found || !protocol.DigestEqual(c.Digest, d) {
		return "", "", errorf(CodeBadCredential, "driver login", "This driver code is not valid here.", "该配送员码在此无效。")
	}
	if !now.Before(c.ExpiresAt) {
		return "", "", errorf(CodeExpired, "driver login", "This driver code has expired. Please get a new one in the driver app.",
			"该配送员码已过期，请在配送员应用中重新获取。")
	}
	token = newToken()
	l.mu.Lock()
	for t, dt := range l.drivers {
		if now.After(dt.expires) {
			delete(l.drivers, t)
		}
	}
	exp := now.Add(l.cfg.DriverSession)
	if c.ExpiresAt.Before(exp) {
		exp = c.ExpiresAt
	}
	l.drivers[token] = driverToken{driver: c.Driver, credID: c.ID, expires: exp}
	l.mu.Unlock()
	return token, c.Driver, nil
}

// DriverLogout ends a kiosk driver session.
func (l *Locker) DriverLogout(token string) {
	l.mu.Lock()
	delete(l.drivers, token)
	l.mu.Unlock()
}

// Driver returns the driver id of a kiosk token, or bad_credential.
func (l *Locker) Driver(token string) (string, error) {
	now := l.clock.Now()
	l.mu.Lock()
	dt, ok := l.drivers[token]
	l.mu.Unlock()
	if !ok || !now.Before(dt.expires) {
		return "", errorf(CodeBadCredential, "driver", "Your driver session has ended. Please scan your code again.",
			"配送员会话已结束，请重新扫码。")
	}
	// A revoked credential ends its sessions at once.
	var still bool
	_ = l.cfg.Store.View(func(tx Tx) error {
		cs, err := tx.Credentials()
		for _, c := range cs {
			if c.ID == dt.credID {
				still = true
			}
		}
		return err
	})
	if !still {
		l.DriverLogout(token)
		return "", errorf(CodeBadCredential, "driver", "Your driver code was revoked.", "您的配送员码已被撤销。")
	}
	return dt.driver, nil
}

// ManifestOrder is one order of the driver's manifest.
type ManifestOrder struct {
	Order      string        `json:"order"`
	Zone       protocol.Zone `json:"zone"`
	Accessible bool          `json:"accessible"`
	State      string        `json:"state"` // reserved, loaded or expired
	Doors      []Door        `json:"doors"`
}

// Manifest lists the site's orders a driver deals with: to load, loaded, and expired (to
// return).
func (l *Locker) Manifest() ([]ManifestOrder, error) {
	now := l.clock.Now()
	var out []ManifestOrder
	err := l.cfg.Store.View(func(tx Tx) error {
		return tx.Reservations(func(r Reservation) bool {
			var state string
			switch {
			case r.State == OrderCancelled || (r.State == OrderLoaded || r.State == OrderInvalidated) && l.expired(&r, now):
				state = "expired"
			case r.State == OrderReserved:
				state = "reserved"
			case r.State == OrderLoaded:
				state = "loaded"
			default:
				return true
			}
			m := ManifestOrder{Order: r.Order, Zone: r.Zone, Accessible: r.Accessible, State: state}
			for _, s := range r.Slots {
				m.Doors = append(m.Doors, l.door(s.Compartment, false))
			}
			out = append(out, m)
			return true
		})
	})
	if err != nil {
		return nil, internal("manifest", err)
	}
	return out, nil
}

// DriverOpen opens compartment c of order for loading. The compartment is recorded
// loaded when its door closes and the infrared sees the item.
func (l *Locker) DriverOpen(ctx context.Context, driver, order string, c int) (Door, error) {
	now := l.clock.Now()
	var outcome *Error
	var s Session
	err := l.cfg.Store.Update(func(tx Tx) error {
		outcome = nil
		r, comp, e, err := l.loadable(tx, order, c)
		if err != nil || e != nil {
			outcome = e
			return err
		}
		if comp.State == StateLoading {
			// Opened again (the driver closed it on nothing, or pressed twice): reuse.
			if err := endLoadingSessions(tx, c); err != nil {
				return err
			}
		}
		s = Session{ID: newToken(), Kind: SessionLoading, Order: r.Order, Compartments: []int{c},
			Credential: protocol.CredDriver, Actor: driver, Started: now}
		return l.openDoors(tx, s, "loading", now)
	})
	if err != nil {
		return Door{}, internal("driver open", err)
	}
	if outcome != nil {
		return Door{}, outcome
	}
	return l.pulseLoading(ctx, s)
}

// loadable checks that compartment c of order can be opened for loading.
func (l *Locker) loadable(tx Tx, order string, c int) (Reservation, Compartment, *Error, error) {
	r, found, err := tx.Reservation(order)
	if err != nil {
		return r, Compartment{}, nil, err
	}
	if !found || r.State != OrderReserved {
		return r, Compartment{}, errorf(CodeNotFound, "driver open", "This order is not waiting to be loaded here.", "该订单不在此处待放入。"), nil
	}
	slot, ok := r.Slot(c)
	if !ok || slot.Loaded {
		return r, Compartment{}, errorf(CodeConflict, "driver open", "This door is not one to load for the order.", "此柜门不属于该订单的待放入柜门。"), nil
	}
	comp, _, err := tx.Compartment(c)
	if err != nil {
		return r, comp, nil, err
	}
	if comp.Order != r.Order || (comp.State != StateReserved && comp.State != StateLoading) {
		return r, comp, errorf(CodeConflict, "driver open", "This door cannot be opened for the order now.", "此柜门目前无法为该订单打开。"), nil
	}
	return r, comp, nil, nil
}

// pulseLoading opens a loading session's door; on failure the compartment goes back to
// reserved and the driver is told to report the problem (which reassigns the order).
func (l *Locker) pulseLoading(ctx context.Context, s Session) (Door, error) {
	l.trackSession(s)
	c := s.Compartments[0]
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := l.unlock(ctx, c); err != nil {
		l.log.Warn("door did not open for loading", "compartment", c, "order", s.Order, "err", err)
		l.recordJams(s, []int{c}, []error{err})
		_ = l.abandon(s)
		return l.door(c, true), unlockErr("driver open", err)
	}
	d := l.door(c, false)
	d.State = "open"
	return d, nil
}

// DriverProblem moves an order's compartment c, which the driver found jammed, faulty or
// full, to another free compartment of the same zone and the same or a larger size
// (smallest first; below 120 cm for accessible orders), opens it for loading and reports
// reassigned. The order's code keeps working.
func (l *Locker) DriverProblem(ctx context.Context, driver, order string, c int, reason string) (Door, error) {
	switch reason {
	case "jammed", "faulty", "full":
	default:
		return Door{}, errorf(CodeBadRequest, "driver problem", "Please say what is wrong with the door.", "请说明柜门的问题。")
	}
	now := l.clock.Now()
	var outcome *Error
	var s Session
	err := l.cfg.Store.Update(func(tx Tx) error {
		outcome = nil
		r, comp, e, err := l.loadable(tx, order, c)
		if err != nil || e != nil {
			outcome = e
			return err
		}
		to, ok, err := l.reassign(tx, &r, comp, reason, protocol.CredDriver, now)
		if err != nil {
			return err
		}
		if !ok {
			outcome = errorf(CodeNoCompartment, "driver problem", "There is no other free compartment for this order. Please take it back.",
				"没有其他可用的柜格，请将订单带回。")
			return nil
		}
		if err := tx.PutReservation(r); err != nil {
			return err
		}
		// A loading session on the old door ends with it.
		if err := endLoadingSessions(tx, c); err != nil {
			return err
		}
		s = Session{ID: newToken(), Kind: SessionLoading, Order: r.Order, Compartments: []int{to},
			Credential: protocol.CredDriver, Actor: driver, Started: now}
		return l.openDoors(tx, s, "loading", now)
	})
	if err != nil {
		return Door{}, internal("driver problem", err)
	}
	if outcome != nil {
		return Door{}, outcome
	}
	l.notify()
	l.refreshGauges()
	return l.pulseLoading(ctx, s)
}

// reassign moves r's slot in comp to the best free compartment, marks comp jammed or out
// of service, and enqueues reassigned. The new slot's generation is the compartment's
// last generation plus one: the cloud learns it from the event.
func (l *Locker) reassign(tx Tx, r *Reservation, comp Compartment, reason string, cred protocol.CredentialKind, now time.Time) (to int, ok bool, err error) {
	slot, _ := r.Slot(comp.Number)
	from := l.layout.specs[comp.Number]
	all, err := tx.Compartments()
	if err != nil {
		return 0, false, err
	}
	l.mu.Lock()
	var cands []CompartmentSpec
	for _, cc := range all {
		sp, known := l.layout.specs[cc.Number]
		if !known || cc.State != StateFree || cc.Number == comp.Number {
			continue
		}
		if sp.Zone != from.Zone || sp.Size.Rank() < slot.Size.Rank() || sp.Size.Rank() < from.Size.Rank() && slot.Size == "" {
			continue
		}
		if r.Accessible && sp.HeightCM >= AccessibleMaxHeightCM {
			continue
		}
		if online, seen := l.boards[sp.Board]; seen && !online {
			continue
		}
		cands = append(cands, sp)
	}
	l.mu.Unlock()
	if len(cands) == 0 {
		return 0, false, nil
	}
	slices.SortFunc(cands, func(a, b CompartmentSpec) int {
		return cmp.Or(cmp.Compare(a.Size.Rank(), b.Size.Rank()), cmp.Compare(a.Number, b.Number))
	})
	best := cands[0]
	nc, _, err := tx.Compartment(best.Number)
	if err != nil {
		return 0, false, err
	}
	gen := nc.Generation + 1
	nc.State, nc.Order, nc.Generation, nc.Since, nc.Reason = StateReserved, r.Order, gen, now, ""
	if err := tx.PutCompartment(nc); err != nil {
		return 0, false, err
	}
	old := comp
	old.Order, old.Since, old.Reason = "", now, reason
	old.State = StateOutOfService
	if reason == "jammed" {
		old.State = StateJammed
	}
	if err := tx.PutCompartment(old); err != nil {
		return 0, false, err
	}
	// Remember where the cloud's compartment went, so a desired state sent before the
	// cloud learnt of the move maps onto the new one.
	if r.Moved == nil {
		r.Moved = map[int]int{}
	}
	orig := comp.Number
	for k, v := range r.Moved {
		if v == comp.Number {
			orig = k
		}
	}
	r.Moved[orig] = best.Number
	slot.Compartment, slot.Generation = best.Number, gen
	if slot.Size == "" {
		slot.Size = best.Size
	}
	if err := enqueue(tx, now, protocol.Event{Kind: protocol.EventReassigned, Credential: cred, Order: r.Order,
		Compartment: comp.Number, To: best.Number, Generation: gen, Reason: reason}); err != nil {
		return 0, false, err
	}
	l.log.Info("order reassigned", "order", r.Order, "compartment", comp.Number, "to", best.Number, "reason", reason)
	return best.Number, true, nil
}

// DriverReturn opens the doors of an expired (or cancelled) order so the driver can take
// it back; expired_removed is recorded once the doors close and the infrared sees them
// empty.
func (l *Locker) DriverReturn(ctx context.Context, driver, order string) ([]Door, error) {
	now := l.clock.Now()
	var outcome *Error
	var s Session
	var r Reservation
	err := l.cfg.Store.Update(func(tx Tx) error {
		outcome = nil
		var found bool
		var err error
		r, found, err = tx.Reservation(order)
		if err != nil {
			return err
		}
		returnable := found && (r.State == OrderCancelled ||
			(r.State == OrderLoaded || r.State == OrderInvalidated) && l.expired(&r, now))
		if !returnable {
			outcome = errorf(CodeConflict, "driver return", "This order is not waiting to be returned.", "该订单不需要取回。")
			return nil
		}
		s = Session{ID: newToken(), Kind: SessionReturn, Order: r.Order, Credential: protocol.CredDriver, Actor: driver, Started: now}
		for _, sl := range r.Slots {
			s.Compartments = append(s.Compartments, sl.Compartment)
		}
		r.State, r.Session = OrderReturning, s.ID
		if err := tx.PutReservation(r); err != nil {
			return err
		}
		return l.openDoors(tx, s, "return", now)
	})
	if err != nil {
		return nil, internal("driver return", err)
	}
	if outcome != nil {
		return nil, outcome
	}
	res, err := l.pulseSession(ctx, s, r, false)
	return res.Doors, err
}

// endLoadingSessions ends the loading sessions that hold compartment c.
func endLoadingSessions(tx Tx, c int) error {
	ss, err := tx.Sessions()
	if err != nil {
		return err
	}
	for _, s := range ss {
		if s.Kind == SessionLoading && contains(s.Compartments, c) {
			if err := tx.DeleteSession(s.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

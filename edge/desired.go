package edge

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/larder-lockers/larder/protocol"
)

// DesiredOutcome is what applying one desired-state message did.
type DesiredOutcome int

// Outcomes of ApplyDesired.
const (
	DesiredApplied   DesiredOutcome = iota + 1 // the version is now current
	DesiredDuplicate                           // seen id, or a version the edge already has
	DesiredGap                                 // a delta beyond current+1: nothing applied; ask for a snapshot
)

// ApplyDesired applies a desired-state message by version, in one transaction with the
// inbox record of its id: a snapshot newer than the edge's version replaces everything,
// the next delta applies on top, anything older or already seen is a duplicate, and a
// delta beyond the next version is a gap.
//
// Reservations are checked one by one; one that cannot be honoured (a compartment that
// does not exist, a stale generation for a compartment another order is using, a code
// digest another live order has) is refused and logged, and the rest applies. A
// reservation in a compartment that is out of service or jammed is moved at once, like a
// driver's reassignment. Finished orders (picked up, removed) are never brought back: a
// code is single use.
func (l *Locker) ApplyDesired(ctx context.Context, id string, d protocol.Desired) (DesiredOutcome, error) {
	now := l.clock.Now()
	var out DesiredOutcome
	var refused []string
	err := l.cfg.Store.Update(func(tx Tx) error {
		refused = refused[:0]
		seen, err := tx.Seen(id)
		if err != nil {
			return err
		}
		cur, err := tx.DesiredVersion()
		if err != nil {
			return err
		}
		switch {
		case seen || d.Version <= cur:
			out = DesiredDuplicate
			return nil
		case !d.Full && d.Version > cur+1:
			out = DesiredGap
			return nil
		}
		out = DesiredApplied
		if err := tx.MarkSeen(id, now.Add(l.cfg.InboxTTL)); err != nil {
			return err
		}
		if err := tx.SetDesiredVersion(d.Version); err != nil {
			return err
		}
		cancel := slices.Clone(d.Cancel)
		if d.Full {
			want := map[string]bool{}
			for _, r := range d.Reservations {
				want[r.Order] = true
			}
			var gone []string
			err := tx.Reservations(func(r Reservation) bool {
				if !want[r.Order] {
					if r.State.Holds() {
						cancel = append(cancel, r.Order)
					} else {
						gone = append(gone, r.Order) // a tombstone the cloud has forgotten
					}
				}
				return true
			})
			if err != nil {
				return err
			}
			for _, o := range gone {
				if err := tx.DeleteReservation(o); err != nil {
					return err
				}
			}
		}
		for _, o := range cancel {
			if err := l.cancel(tx, o, now); err != nil {
				return err
			}
		}
		for _, r := range d.Reservations {
			why, err := l.upsert(tx, r, now)
			if err != nil {
				return err
			}
			if why != "" {
				refused = append(refused, r.Order+": "+why)
			}
		}
		return l.applyCredentials(tx, d)
	})
	if err != nil {
		return 0, wrap("apply desired", err)
	}
	for _, why := range refused {
		l.log.Warn("desired reservation refused", "version", d.Version, "why", why)
	}
	if out == DesiredApplied {
		l.log.Info("desired state applied", "version", d.Version, "full", d.Full, "reservations", len(d.Reservations))
		l.notify()
		l.refreshGauges()
	}
	return out, nil
}

// DesiredVersion is the version of the last applied desired state.
func (l *Locker) DesiredVersion() (uint64, error) {
	var v uint64
	err := l.cfg.Store.View(func(tx Tx) error {
		var err error
		v, err = tx.DesiredVersion()
		return err
	})
	return v, err
}

func (l *Locker) applyCredentials(tx Tx, d protocol.Desired) error {
	if d.Full {
		old, err := tx.Credentials()
		if err != nil {
			return err
		}
		keep := map[string]bool{}
		for _, c := range d.Credentials {
			keep[c.ID] = true
		}
		for _, c := range old {
			if !keep[c.ID] {
				if err := tx.DeleteCredential(c.ID); err != nil {
					return err
				}
			}
		}
	}
	for _, id := range d.Revoke {
		if err := tx.DeleteCredential(id); err != nil {
			return err
		}
	}
	for _, c := range d.Credentials {
		if err := tx.PutCredential(Credential{ID: c.ID, Digest: c.Digest, Driver: c.Driver, ExpiresAt: c.ExpiresAt}); err != nil {
			return err
		}
	}
	return nil
}

// cancel ends an order the cloud no longer wants: an unloaded one frees its
// compartments; a loaded one stays (the food is inside) as cancelled, awaiting return,
// with its code dead. An order whose doors are open is left alone.
func (l *Locker) cancel(tx Tx, order string, now time.Time) error {
	r, found, err := tx.Reservation(order)
	if err != nil || !found {
		return err
	}
	switch {
	case !r.State.Holds():
		return tx.DeleteReservation(order)
	case r.State == OrderPicking || r.State == OrderReturning:
		return nil
	}
	anyLoaded := slices.ContainsFunc(r.Slots, func(s Slot) bool { return s.Loaded })
	if anyLoaded {
		r.State = OrderCancelled
		return tx.PutReservation(r)
	}
	for _, s := range r.Slots {
		comp, ok, err := tx.Compartment(s.Compartment)
		if err != nil {
			return err
		}
		if ok && comp.Order == order {
			comp.Order, comp.Since = "", now
			if comp.State.Held() {
				comp.State = StateFree
			}
			if err := tx.PutCompartment(comp); err != nil {
				return err
			}
		}
	}
	// Sessions of a cancelled order (a driver mid-loading) end with it.
	ss, err := tx.Sessions()
	if err != nil {
		return err
	}
	for _, s := range ss {
		if s.Order == order {
			if err := tx.DeleteSession(s.ID); err != nil {
				return err
			}
		}
	}
	return tx.DeleteReservation(order)
}

// upsert applies one reservation; a non-empty reason means it was refused.
func (l *Locker) upsert(tx Tx, in protocol.Reservation, now time.Time) (string, error) {
	r, found, err := tx.Reservation(in.Order)
	if err != nil {
		return "", err
	}
	if found && !r.State.Holds() {
		return "order already finished (" + string(r.State) + ")", nil
	}
	if other, ok, err := tx.OrderByCode(in.CodeDigest); err != nil {
		return "", err
	} else if ok && other != in.Order {
		return "code digest already used by another live order", nil
	}
	if found {
		// Map the cloud's compartments through the edge's own moves.
		slots := make([]Slot, len(in.Slots))
		for i, s := range in.Slots {
			c := s.Compartment
			if to, moved := r.Moved[c]; moved {
				c = to
			}
			slots[i] = Slot{Compartment: c, Generation: s.Generation, Size: s.Size}
		}
		same := len(slots) == len(r.Slots)
		for _, s := range slots {
			if _, ok := r.Slot(s.Compartment); !ok {
				same = false
			}
		}
		if !same {
			if r.State != OrderReserved || slices.ContainsFunc(r.Slots, func(s Slot) bool { return s.Loaded }) {
				return "compartments of a loaded order cannot change", nil
			}
			// Not loaded yet: release and claim afresh below.
			if err := l.cancel(tx, r.Order, now); err != nil {
				return "", err
			}
			found = false
		} else {
			if r.CodeDigest != in.CodeDigest && r.State == OrderInvalidated {
				// A reissued code revives the order.
				r.State, r.WrongAttempts = OrderReserved, 0
				if r.AllLoaded() {
					r.State = OrderLoaded
				}
			}
			// The cloud's generations win (after a reassignment the edge guessed one).
			for _, sl := range slots {
				mine, _ := r.Slot(sl.Compartment)
				if mine.Generation == sl.Generation {
					continue
				}
				mine.Generation = sl.Generation
				comp, _, err := tx.Compartment(sl.Compartment)
				if err != nil {
					return "", err
				}
				if comp.Order == r.Order {
					comp.Generation = sl.Generation
					if err := tx.PutCompartment(comp); err != nil {
						return "", err
					}
				}
			}
			r.CodeDigest, r.FactorDigest = in.CodeDigest, in.SecondFactorDigest
			r.ExpiresAt, r.MaxExpiresAt, r.BudgetSeconds, r.Accessible = in.ExpiresAt, in.MaxExpiresAt, in.BudgetSeconds, in.Accessible
			if r.State == OrderCancelled {
				r.State = OrderLoaded // the cloud wants it after all
			}
			return "", tx.PutReservation(r)
		}
	}
	// A new reservation: claim every slot or none.
	r = Reservation{Order: in.Order, State: OrderReserved, CodeDigest: in.CodeDigest, FactorDigest: in.SecondFactorDigest,
		ExpiresAt: in.ExpiresAt, MaxExpiresAt: in.MaxExpiresAt, Zone: in.Zone, BudgetSeconds: in.BudgetSeconds, Accessible: in.Accessible}
	type claim struct {
		comp Compartment
		slot Slot
	}
	var claims []claim
	var broken []claim
	for _, s := range in.Slots {
		spec, known := l.layout.specs[s.Compartment]
		if !known {
			return fmt.Sprintf("compartment %d does not exist", s.Compartment), nil
		}
		comp, _, err := tx.Compartment(s.Compartment)
		if err != nil {
			return "", err
		}
		if r.Accessible && spec.HeightCM >= AccessibleMaxHeightCM {
			return fmt.Sprintf("compartment %d is too high for an accessible order", s.Compartment), nil
		}
		switch {
		case s.Generation < comp.Generation:
			return fmt.Sprintf("stale generation %d for compartment %d (now %d)", s.Generation, s.Compartment, comp.Generation), nil
		case comp.State.Held() && comp.Order != in.Order:
			return fmt.Sprintf("compartment %d is in use by another order", s.Compartment), nil
		}
		size := s.Size
		if size == "" {
			size = spec.Size
		}
		c := claim{comp, Slot{Compartment: s.Compartment, Generation: s.Generation, Size: size}}
		if comp.State == StateOutOfService || comp.State == StateJammed {
			broken = append(broken, c)
			continue
		}
		claims = append(claims, c)
	}
	if len(broken) > 1 {
		return "more than one of its compartments is out of service", nil
	}
	for _, b := range broken {
		// Move it now, as a driver would, so the order still has a door. Done before any
		// other write so that a refusal leaves nothing behind.
		r.Slots = append(r.Slots, b.slot)
		if _, ok, err := l.moveBroken(tx, &r, b.comp, now); err != nil {
			return "", err
		} else if !ok {
			return fmt.Sprintf("compartment %d is out of service and no other is free", b.comp.Number), nil
		}
	}
	for _, c := range claims {
		c.comp.State, c.comp.Order, c.comp.Generation, c.comp.Since, c.comp.Reason = StateReserved, r.Order, c.slot.Generation, now, ""
		if err := tx.PutCompartment(c.comp); err != nil {
			return "", err
		}
		r.Slots = append(r.Slots, c.slot)
	}
	return "", tx.PutReservation(r)
}

// moveBroken reassigns a slot whose compartment was broken before the order arrived.
func (l *Locker) moveBroken(tx Tx, r *Reservation, comp Compartment, now time.Time) (int, bool, error) {
	reason := comp.Reason
	if comp.State == StateJammed {
		reason = "jammed"
	}
	keep := comp
	to, ok, err := l.reassign(tx, r, comp, reasonOr(reason, "faulty"), protocol.CredSystem, now)
	if err != nil || !ok {
		return 0, ok, err
	}
	// reassign marks the old compartment broken again; keep its original record.
	return to, true, tx.PutCompartment(keep)
}

func reasonOr(r, def string) string {
	if r == "" {
		return def
	}
	return r
}

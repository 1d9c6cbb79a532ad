package cloud

import (
	"context"
	"errors"
	"fmt"

	"github.com/larder-lockers/larder/cloud/assign"
	"github.com/larder-lockers/larder/protocol"
)

// ReassignSlot moves one not-yet-loaded compartment of an order to another free one after
// a driver reported a problem with it (driver, ops, admin): the parcels of that slot are
// planned again by the policy, the new compartments get bumped generations, the edge gets
// the new reservation and the code keeps working. The reported compartment goes out of
// service (and the edge is told), except for reasons that say nothing is wrong with it
// ("too_small", "full"). This is the online path of the kiosk's "problem" button, which
// the edge handles itself (EventReassigned) when the cloud is out of reach.
func (s *Service) ReassignSlot(ctx context.Context, p Principal, orderID string, compartment int, reason string) (Order, error) {
	if err := require(p, RoleDriver, RoleOps, RoleAdmin); err != nil {
		return Order{}, err
	}
	if reason == "" || len(reason) > 64 || !printable(reason) {
		return Order{}, Invalid("reason", "want 1 to 64 printable characters")
	}
	var out Order
	err := s.store.Update(ctx, func(tx Tx) error {
		o, err := loadOrder(tx, orderID)
		if err != nil {
			return err
		}
		if o.State != StateAssigned {
			return Errorf(EConflict, "an order in state %s is not being loaded", o.State)
		}
		idx := -1
		for i, sl := range o.Slots {
			if sl.Compartment == compartment {
				idx = i
			}
		}
		if idx < 0 {
			return &Error{Code: EInvalid, Field: "compartment", Message: "the order does not hold this compartment"}
		}
		if o.Slots[idx].Loaded {
			return Errorf(EConflict, "compartment %d is already loaded", compartment)
		}
		st, err := loadSite(tx, o.Site)
		if err != nil {
			return err
		}
		bad := o.Slots[idx]
		need := map[string]int{}
		var parcels []assign.Parcel
		for _, pi := range bad.Parcels {
			pc := o.Parcels[pi]
			need[string(pc.Zone)]++
			parcels = append(parcels, assign.Parcel{Size: pc.Size, Zone: pc.Zone})
		}
		free, err := freeCandidates(tx, st.ID, need, o.Accessible)
		if err != nil {
			return err
		}
		picks, err := assign.Plan(parcels, o.Accessible, free)
		if errors.Is(err, assign.ErrNoFit) {
			return &Error{Code: ENoCapacity, Field: "compartment", Message: fmt.Sprintf("no other compartment of site %s can take these parcels", st.ID)}
		}
		if err != nil {
			return Invalid("compartment", "%v", err)
		}
		old := *o
		// The old compartment: freed, and out of service unless it is merely unsuitable.
		c, ok, err := getComp(tx, st.ID, compartment)
		if err != nil {
			return err
		}
		oos := reason != "too_small" && reason != "full"
		if ok && c.Order == o.ID {
			oc := c
			c.Order, c.Occupied = "", false
			if oos {
				c.InService, c.OOSReason = false, "driver reported: "+reason
			}
			if err := putComp(tx, c, &oc); err != nil {
				return err
			}
		}
		slots := append(append([]Slot(nil), o.Slots[:idx]...), o.Slots[idx+1:]...)
		for _, pk := range picks {
			nc, ok, err := getComp(tx, st.ID, pk.Compartment)
			if err != nil {
				return err
			}
			if !ok || !nc.free() {
				return Errorf(EInternal, "free index of site %s lists compartment %d, which is not free", st.ID, pk.Compartment)
			}
			onc := nc
			nc.Generation++
			nc.Order = o.ID
			if err := putComp(tx, nc, &onc); err != nil {
				return err
			}
			var idxs []int
			for _, j := range pk.Parcels {
				idxs = append(idxs, bad.Parcels[j])
			}
			slots = append(slots, Slot{Compartment: nc.Number, Generation: nc.Generation, Size: nc.Size, Zone: nc.Zone, Parcels: idxs})
		}
		o.Slots = slots
		if err := s.update(tx, st, o, &old); err != nil {
			return err
		}
		if oos {
			if _, err := s.command(tx, st.ID, protocol.Command{Kind: protocol.CmdOutOfService, Compartment: compartment,
				Reason: "driver reported: " + reason, Actor: p.Subject}); err != nil {
				return err
			}
		}
		audit(tx, s.now(), AuditEntry{Site: st.ID, Actor: p.Subject, Role: p.Role, Action: "slot_reassigned",
			Compartment: compartment, Order: o.ID, Reason: reason})
		if err := s.note(tx, NoteReassigned, o, func(n *Notification) { n.Reason = reason }); err != nil {
			return err
		}
		out = *o
		return nil
	})
	return out, internal("reassign slot", err)
}

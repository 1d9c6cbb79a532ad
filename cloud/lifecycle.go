package cloud

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/larder-lockers/larder/cloud/assign"
	"github.com/larder-lockers/larder/protocol"
)

// The order lifecycle.
//
//	(new) ──create──▶ assigned ──loaded (last slot)──▶ loaded ──picked_up──▶ picked_up
//	                   │  │  │                           │ │
//	                   │  │  │                           │ └──expire (Sweep)──▶ expired ──expired_removed──▶ returned
//	                   │  │  └──expire, once partly loaded (Sweep)──────────────▶ expired
//	                   │  └──cancel / lapse (never loaded) / displaced with no room──▶ cancelled
//	                   └──compromised (edge; also from loaded and expired)──▶ compromised ──▶ picked_up | returned
//
//	compromised, expired, returned, picked_up once compromised ──redeliver──▶ (same state), replaced_by
//	                                                                  └──▶ the replacement: (new) ──create──▶ assigned
//
// An outage during which a loaded order expired brings it back from expired to loaded
// when the extended deadline is still ahead (the edge went on honouring it).
//
// Every live state (assigned, loaded, expired, compromised) holds compartments and a
// code; picked_up, returned and cancelled are final. Each thing that can happen to an
// order is a happening; the table below says, for each happening, from which states it
// applies, the next state and the effects it runs, in order. [Service.apply] is the one
// function that changes an order's state: the REST operations (orders.go), the edge's
// facts (edge.go) and the sweep (sweep.go) only pick the happening.
//
// A happening no row applies to (the order's state is not listed, or the guards of the
// rows that list it do not hold) is refused with EConflict and changes nothing: that is
// how the API says "not in this state". The edge reports facts, which
// the cloud cannot refuse, so every happening an edge reports lists every state, the
// ones it does not apply to as ignored rows.

// happening is something that happens to an order.
type happening string

// Happenings.
const (
	onCreate         happening = "create"          // a platform's order is admitted (CreateOrder)
	onLoaded         happening = "loaded"          // the edge: a compartment of the order was loaded
	onPickedUp       happening = "picked_up"       // the edge: the resident took the order
	onReturned       happening = "returned"        // the edge: a driver took an expired order back (expired_removed)
	onCompromised    happening = "compromised"     // the edge: the food was out of temperature too long
	onReassigned     happening = "reassigned"      // the edge: a driver moved a slot to another compartment
	onCodeLockout    happening = "code_lockout"    // the edge: too many wrong tries invalidated the code
	onCancel         happening = "cancel"          // a platform or ops cancel (CancelOrder)
	onLapse          happening = "lapse"           // time: never loaded by the window's end plus LoadGrace
	onExpire         happening = "expire"          // time: the hold is over
	onReminder       happening = "reminder"        // time: 50 % or 90 % of the hold has passed
	onExtend         happening = "extend"          // a platform or ops extend the hold (ExtendOrder)
	onOutage         happening = "outage"          // the edge came back after an outage: deadlines move
	onReissue        happening = "reissue"         // a new code is drawn (ReissueCode)
	onSlotReassigned happening = "slot_reassigned" // a driver reported a slot unusable (ReassignSlot)
	onDisplaced      happening = "displaced"       // the edge put another order into this one's compartment
	onRedeliver      happening = "redeliver"       // the platform sends the food again (RedeliverOrder)
	onCodeApplied    happening = "code_applied"    // the edge applied the desired version carrying a held code
)

// rule is one row of the table: happening on, from one of the states from, when the
// guard holds (nil: always), moves the order to the state to (same: no change of state)
// and runs the effects do, in order; then the order is saved. An ignore row leaves the
// order as it was: its effects only log or raise an alarm.
type rule struct {
	on     happening
	from   []OrderState
	when   guard
	to     OrderState
	reason string // the reason recorded on the order and its notice ("": the caller's)
	do     []effect
	ignore bool
}

// same as a rule's next state keeps the order's state.
const same OrderState = "(same)"

// stateNew is the state of an order not yet stored.
const stateNew OrderState = ""

var (
	none  = []OrderState{stateNew}
	live  = []OrderState{StateAssigned, StateLoaded, StateExpired, StateCompromised}
	final = []OrderState{StatePickedUp, StateReturned, StateCancelled}
)

func in(states ...OrderState) []OrderState { return states }

func fx(effects ...effect) []effect { return effects }

// lifecycle is the transition table. Rows of one happening are tried in order; the first
// whose state and guard match applies.
var lifecycle = []rule{
	{on: onCreate, from: none, to: StateAssigned,
		do: fx(planOrRefuse, bindPlanned, holdFromWindow, drawFirstCode, publishReservation, notice(NoteCreated))},

	{on: onLoaded, from: in(StateAssigned), when: notHeld, ignore: true, do: fx(warnNotHeld)},
	{on: onLoaded, from: in(StateAssigned), when: lastSlot, to: StateLoaded,
		do: fx(markSlotLoaded, markOccupied, tellArrivalCode, holdFromLoading, publishReservation, noticeWithCode(NoteLoaded))},
	{on: onLoaded, from: in(StateAssigned), to: StateAssigned, do: fx(markSlotLoaded, markOccupied)},
	{on: onLoaded, from: in(StateLoaded, StateExpired, StateCompromised), ignore: true},
	{on: onLoaded, from: final, ignore: true},

	{on: onPickedUp, from: live, to: StatePickedUp,
		do: fx(closeOrder, recordColdChain, freeCompartments, dropOrderCode, publishCancel, notice(NotePickedUp))},
	{on: onPickedUp, from: final, ignore: true},

	{on: onReturned, from: live, to: StateReturned, reason: "expired_removed",
		do: fx(closeOrder, recordColdChain, freeCompartments, dropOrderCode, publishCancel, notice(NoteReturned))},
	{on: onReturned, from: final, ignore: true},

	{on: onCompromised, from: in(StateAssigned, StateLoaded, StateExpired), to: StateCompromised,
		do: fx(recordOutOfTemp, notice(NoteCompromised))},
	{on: onCompromised, from: in(StateCompromised), ignore: true},
	{on: onCompromised, from: final, ignore: true},

	{on: onReassigned, from: live, when: notMovable, ignore: true},
	{on: onReassigned, from: live, when: targetUnknown, ignore: true, do: fx(warnTargetUnknown)},
	{on: onReassigned, from: live, when: targetFull, ignore: true, do: fx(warnTargetFull, raiseTargetConflict)},
	{on: onReassigned, from: live, to: same, do: fx(evictOccupant, moveSlot, publishReservation, noticeMoved)},
	{on: onReassigned, from: final, ignore: true},

	{on: onCodeLockout, from: live, when: codeInvalid, ignore: true},
	{on: onCodeLockout, from: live, to: same, reason: "code_lockout",
		do: fx(invalidateCode, dropOrderCode, notice(NoteCodeInvalidated))},
	{on: onCodeLockout, from: final, ignore: true},

	{on: onCancel, from: in(StateAssigned), when: nothingLoaded, to: StateCancelled,
		do: fx(closeOrder, freeCompartments, dropOrderCode, publishCancel, notice(NoteCancelled))},

	{on: onLapse, from: in(StateAssigned), when: nothingLoaded, to: StateCancelled, reason: "not_loaded",
		do: fx(closeOrder, freeCompartments, dropOrderCode, publishCancel, notice(NoteCancelled))},

	{on: onExpire, from: in(StateLoaded), to: StateExpired, do: fx(eraseHeldCode, notice(NoteExpired))},
	{on: onExpire, from: in(StateAssigned), when: partlyLoaded, to: StateExpired, do: fx(eraseHeldCode, notice(NoteExpired))},

	{on: onReminder, from: in(StateLoaded), to: StateLoaded, do: fx(countReminder, notice(NoteReminder))},

	{on: onExtend, from: in(StateAssigned, StateLoaded), to: same,
		do: fx(extendWithinCap, publishReservation, notice(NoteExtended))},

	{on: onOutage, from: in(StateAssigned, StateLoaded), when: capReached, ignore: true},
	{on: onOutage, from: in(StateAssigned, StateLoaded), to: same, reason: "edge_outage",
		do: fx(extendByOutage, gatherReservation, notice(NoteExtended))},
	{on: onOutage, from: in(StateExpired), when: expiredInOutage, to: StateLoaded, reason: "edge_outage",
		do: fx(extendByOutage, gatherReservation, notice(NoteExtended))},
	{on: onOutage, from: in(StateExpired, StateCompromised), ignore: true},
	{on: onOutage, from: final, ignore: true},

	{on: onReissue, from: in(StateAssigned, StateLoaded, StateCompromised), to: same,
		do: fx(drawNewCode, publishReservation, auditBy("code_reissued"), handOverCode)},

	// A held code is told once the edge has the digest (code.go): a code not applied yet
	// waits for a later report.
	{on: onCodeApplied, from: live, when: codeNotApplied, ignore: true},
	{on: onCodeApplied, from: live, to: same, do: fx(tellHeldCode)},
	{on: onCodeApplied, from: final, ignore: true},

	{on: onSlotReassigned, from: in(StateAssigned), to: StateAssigned,
		do: fx(planReplacement, releaseReported, bindReplacement, publishReservation, reportedOutOfService,
			auditBy("slot_reassigned"), notice(NoteReassigned))},

	// The occupant of a compartment the edge filled with another order: it was evicted
	// (its compartments and code released, see evictOccupant) and is planned again, or
	// cancelled when nothing else is free. Only an order with nothing loaded is evicted.
	{on: onDisplaced, from: in(StateAssigned, StateCompromised), when: roomElsewhere, to: same, reason: "displaced",
		do: fx(bindPlanned, restoreCode, publishReservation, notice(NoteReassigned))},
	{on: onDisplaced, from: in(StateAssigned, StateCompromised), to: StateCancelled, reason: "displaced: no compartment free",
		do: fx(closeOrder, freeCompartments, dropOrderCode, publishCancel, notice(NoteCancelled))},

	// The platform's decision for food the resident did not get as it should have: it
	// was compromised (still in the locker, taken back, or taken by the resident despite
	// the kiosk's warning), or it expired and is (being) taken back. The order keeps its
	// state (the edge still reports what happens to the food in the locker); the
	// replacement is a new order, admitted like any other.
	{on: onRedeliver, from: in(StateCompromised, StateExpired, StateReturned), to: same,
		do: fx(createReplacement, recordRefund, auditBy("redelivered"))},
	{on: onRedeliver, from: in(StatePickedUp), when: wasCompromised, to: same,
		do: fx(createReplacement, recordRefund, auditBy("redelivered"))},
}

// refusals are the messages of a happening asked for by the API from a state it does not
// apply to (EConflict); %s is the order's state.
var refusals = map[happening]string{
	onCancel:         "an order in state %s (or already loaded) cannot be cancelled",
	onExtend:         "an order in state %s cannot be extended",
	onReissue:        "an order in state %s has no code to reissue",
	onSlotReassigned: "an order in state %s is not being loaded",
	onRedeliver:      "an order in state %s cannot be redelivered: only one that was compromised, expired or returned can",
}

// rulesOf indexes the table by happening, in table order. It is filled by init: an
// initialiser would be a cycle (effects apply other happenings through it).
var rulesOf = map[happening][]rule{}

func init() {
	for _, r := range lifecycle {
		rulesOf[r.on] = append(rulesOf[r.on], r)
	}
}

// step is one happening being applied to one order inside a transaction: its
// particulars, what guards and effects work out on the way, and what the caller gets
// back.
type step struct {
	on happening
	at time.Time // when it happened: the edge's clock for facts, the cloud's otherwise
	by Principal // who asked, for the audit log (API operations)
	// ev is the edge's fact, for the happenings edges report.
	ev protocol.Event
	// compartment is the compartment a driver reported (slot_reassigned).
	compartment int
	// reason is why: the caller's, or the row's fixed reason.
	reason string
	// extend is the extension asked for (extend) or the outage's length (outage).
	extend time.Duration
	// batch gathers the reservations of an outage's orders into one delta.
	batch *[]protocol.Reservation
	// redeliver is the platform's request (redeliver); replacement is the order it made.
	redeliver   *RedeliverRequest
	replacement *Order
	// applied is the desired version the edge has applied (code_applied).
	applied uint64

	// code is a plain code an effect drew; toCaller says it goes back in the API
	// response (the platform delivers it) rather than in a notice.
	code     string
	toCaller bool

	s  *Service
	tx Tx
	st *Site
	o  *Order
	// picks is the planner's choice of compartments (create, displaced, slot_reassigned).
	picks []assign.Pick
	// target and occupant are the compartment the edge moved a slot to and the other
	// order it held (reassigned), read once.
	target   *Compartment
	occupant *Order
}

type (
	effect func(*step) error
	guard  func(*step) (bool, error)
)

// apply runs happening c.on on order o of site st inside tx: it finds the row of the
// table for o's state, moves o to the next state, runs the row's effects and saves o
// (an ignore row runs its effects only; no row is EConflict).
// Desired deltas bump st.DesiredVersion: the caller saves st once, after its last
// change, so that a transaction writes the site record once.
func (s *Service) apply(tx Tx, st *Site, o *Order, c *step) error {
	c.s, c.tx, c.st, c.o = s, tx, st, o
	if c.at.IsZero() {
		c.at = s.now().UTC()
	}
	r, err := c.match()
	if err != nil {
		return err
	}
	if r == nil {
		msg, ok := refusals[c.on]
		if !ok {
			msg = "%s does not apply to an order in state %s"
			return Errorf(EConflict, msg, c.on, o.State)
		}
		return Errorf(EConflict, msg, o.State)
	}
	if r.reason != "" {
		c.reason = r.reason
	}
	var old *Order
	if o.State != stateNew {
		prev := *o
		prev.Slots = append([]Slot(nil), o.Slots...)
		old = &prev
	}
	if !r.ignore && r.to != same {
		o.State = r.to
	}
	for _, e := range r.do {
		if err := e(c); err != nil {
			return err
		}
	}
	if r.ignore {
		return nil
	}
	return s.putOrder(tx, o, old)
}

// match returns the first row of c.on that applies to c.o, nil if none does.
func (c *step) match() (*rule, error) {
	rules := rulesOf[c.on]
	for i := range rules {
		r := &rules[i]
		if !slices.Contains(r.from, c.o.State) {
			continue
		}
		if r.when != nil {
			ok, err := r.when(c)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
		}
		return r, nil
	}
	return nil, nil
}

// Guards.

func nothingLoaded(c *step) (bool, error) { return !anyLoaded(c.o), nil }

func partlyLoaded(c *step) (bool, error) { return anyLoaded(c.o), nil }

// notHeld: the edge's loaded event names a compartment the order does not hold.
func notHeld(c *step) (bool, error) { return slotIndex(c.o, c.ev.Compartment) < 0, nil }

// lastSlot: every other slot of the order is loaded already.
func lastSlot(c *step) (bool, error) {
	for _, sl := range c.o.Slots {
		if sl.Compartment != c.ev.Compartment && !sl.Loaded {
			return false, nil
		}
	}
	return true, nil
}

func codeInvalid(c *step) (bool, error) { return c.o.CodeInvalid, nil }

func wasCompromised(c *step) (bool, error) { return c.o.Compromised, nil }

// codeNotApplied: no held code waits for the edge, or the edge has not applied its
// version yet.
func codeNotApplied(c *step) (bool, error) {
	return c.o.HeldVersion == 0 || c.o.HeldVersion > c.applied, nil
}

// capReached: the food-safety cap leaves nothing of the outage to add.
func capReached(c *step) (bool, error) {
	return !c.s.pol.outageExpiry(c.o, c.extend).After(c.o.ExpiresAt), nil
}

// expiredInOutage: a loaded order whose hold ended during the outage (the edge went on
// honouring it, residents could not be told) and whose extended deadline is still
// ahead: it is loaded again, as if the sweep had not run meanwhile.
func expiredInOutage(c *step) (bool, error) {
	o := c.o
	if o.LoadedAt.IsZero() || !o.ExpiresAt.After(c.at.Add(-c.extend)) {
		return false, nil
	}
	return c.s.pol.outageExpiry(o, c.extend).After(c.at), nil
}

// notMovable: the order does not hold the compartment the edge moved from, or already
// holds the one it moved to (the event was applied).
func notMovable(c *step) (bool, error) {
	return slotIndex(c.o, c.ev.Compartment) < 0 || slotIndex(c.o, c.ev.To) >= 0, nil
}

func targetUnknown(c *step) (bool, error) {
	_, ok, err := c.targetComp()
	return !ok, err
}

// targetFull: the compartment the edge moved to holds another order that is (partly)
// loaded. A partly loaded order cannot be planned again as a whole.
func targetFull(c *step) (bool, error) {
	to, _, err := c.targetComp()
	if err != nil || to.Order == "" || to.Order == c.o.ID {
		return false, err
	}
	if to.Occupied {
		return true, nil
	}
	other, err := c.occupantOrder()
	if err != nil {
		return false, err
	}
	return anyLoaded(other), nil
}

// roomElsewhere plans the order's parcels on the free compartments (keeping the plan for
// bindPlanned).
func roomElsewhere(c *step) (bool, error) {
	free, err := freeCandidates(c.tx, c.st.ID, zoneNeeds(c.o.Parcels), c.o.Accessible)
	if err != nil {
		return false, err
	}
	c.picks, err = assign.Plan(assignParcels(c.o.Parcels), c.o.Accessible, free)
	if errors.Is(err, assign.ErrNoFit) {
		return false, nil
	}
	if err != nil {
		return false, Invalid("parcels", "%v", err)
	}
	return true, nil
}

func (c *step) targetComp() (Compartment, bool, error) {
	if c.target == nil {
		to, ok, err := getComp(c.tx, c.st.ID, c.ev.To)
		if err != nil || !ok {
			return to, ok, err
		}
		c.target = &to
	}
	return *c.target, true, nil
}

func (c *step) occupantOrder() (*Order, error) {
	if c.occupant == nil {
		other, err := loadOrder(c.tx, c.target.Order)
		if err != nil {
			return nil, err
		}
		c.occupant = other
	}
	return c.occupant, nil
}

// Effects: admission and compartments.

// planOrRefuse plans compartments for the order's parcels; a site that cannot hold them
// refuses with ENoCapacity, naming the nearest sites that can.
func planOrRefuse(c *step) error {
	parcels := assignParcels(c.o.Parcels)
	zones := zoneNeeds(c.o.Parcels)
	free, err := freeCandidates(c.tx, c.st.ID, zones, c.o.Accessible)
	if err != nil {
		return err
	}
	c.picks, err = assign.Plan(parcels, c.o.Accessible, free)
	if errors.Is(err, assign.ErrNoFit) {
		near, nerr := c.s.nearby(c.tx, c.st, parcels, c.o.Accessible, zones)
		if nerr != nil {
			return nerr
		}
		return &Error{Code: ENoCapacity, Field: "parcels", Detail: near,
			Message: fmt.Sprintf("site %s cannot hold this order in its window", c.st.ID)}
	}
	if err != nil {
		return Invalid("parcels", "%v", err)
	}
	return nil
}

// bindPlanned gives the planned compartments to the order, bumping each one's
// generation; they become the order's slots.
func bindPlanned(c *step) error {
	c.o.Slots = nil
	for _, pk := range c.picks {
		comp, err := bindCompartment(c.tx, c.st.ID, pk.Compartment, c.o.ID)
		if err != nil {
			return err
		}
		c.o.Slots = append(c.o.Slots, Slot{Compartment: comp.Number, Generation: comp.Generation, Size: comp.Size, Zone: comp.Zone, Parcels: pk.Parcels})
	}
	return nil
}

func freeCompartments(c *step) error { return releaseCompartments(c.tx, c.o) }

func markSlotLoaded(c *step) error {
	c.o.Slots[slotIndex(c.o, c.ev.Compartment)].Loaded = true
	return nil
}

// markOccupied records that the compartment holds the order's food now.
func markOccupied(c *step) error {
	comp, ok, err := getComp(c.tx, c.st.ID, c.ev.Compartment)
	if err != nil || !ok || comp.Order != c.o.ID || comp.Occupied {
		return err
	}
	old := comp
	comp.Occupied = true
	return putComp(c.tx, comp, &old)
}

// Effects: time.

// holdFromWindow: before loading, the code works until the window's end plus the hold.
func holdFromWindow(c *step) error {
	h, _ := c.s.pol.hold(c.o)
	c.o.ExpiresAt = c.o.Window.End.Add(h)
	return nil
}

// holdFromLoading starts the hold at loading, extensions granted before included, within
// the food-safety cap.
func holdFromLoading(c *step) error {
	o, at := c.o, c.at
	h, max := c.s.pol.hold(o)
	o.LoadedAt = at
	o.ExpiresAt = at.Add(h + o.Extended)
	if o.ExpiresAt.After(at.Add(max)) {
		o.ExpiresAt = at.Add(max)
	}
	return nil
}

// extendWithinCap moves the expiry by c.extend, never beyond the food-safety cap of the
// order's zones (MaxHold after loading).
func extendWithinCap(c *step) error {
	o := c.o
	_, max := c.s.pol.hold(o)
	limit := holdBase(o).Add(max)
	next := o.ExpiresAt.Add(c.extend)
	if next.After(limit) {
		return &Error{Code: EFoodSafety, Field: "seconds", Message: fmt.Sprintf(
			"the %s order may wait at most %s after loading; it can be extended until %s",
			o.Zone, max, limit.UTC().Format(time.RFC3339))}
	}
	o.ExpiresAt = next
	o.Extended += c.extend
	return nil
}

// extendByOutage moves the expiry by the outage's length, clamped to the cap: the edge
// kept serving pickups meanwhile, but residents could not be told anything.
func extendByOutage(c *step) error {
	next := c.s.pol.outageExpiry(c.o, c.extend)
	c.o.Extended += next.Sub(c.o.ExpiresAt)
	c.o.ExpiresAt = next
	return nil
}

func (p Policy) outageExpiry(o *Order, outage time.Duration) time.Time {
	next, limit := o.ExpiresAt.Add(outage), p.maxExpiry(o)
	if next.After(limit) {
		return limit
	}
	return next
}

// maxExpiry is the latest an outage may move o's deadline to: the food-safety cap
// (MaxHold after loading), or the deadline itself if it is later already. The edge
// gets it with the reservation (max_expires_at), to extend by the same rule while it
// cannot reach the cloud.
func (p Policy) maxExpiry(o *Order) time.Time {
	_, max := p.hold(o)
	if limit := holdBase(o).Add(max); limit.After(o.ExpiresAt) {
		return limit
	}
	return o.ExpiresAt
}

// countReminder counts the reminder due; one reminder, even if the sweep ran late and
// several are due.
func countReminder(c *step) error {
	o := c.o
	for o.Reminders++; o.Reminders < 2 && !reminderAt(o).After(c.at); o.Reminders++ {
	}
	return nil
}

// closeOrder records why and when the order ended.
func closeOrder(c *step) error {
	c.o.Reason, c.o.ClosedAt = c.reason, c.s.now().UTC()
	return nil
}

// Effects: codes.

// drawFirstCode draws the order's code at admission: its digest goes to the edge with
// the reservation, before the order can be loaded. A platform that delivers codes gets
// it in the response, once; otherwise it is held sealed on the order until the arrival
// notice tells the resident (code.go).
func drawFirstCode(c *step) error {
	code, digest, err := issueCode(c.tx, c.st, c.o.ID)
	if err != nil {
		return err
	}
	c.o.CodeDigest = digest
	c.o.FactorDigest = protocol.SecondFactorDigest(c.st.Key, c.o.ID, LastFour(c.o.Recipient.Phone))
	c.o.CodeIssues = 1
	if c.o.Delivery == DeliverByPlatform {
		c.code, c.toCaller = code, true
		return nil
	}
	return c.s.holdCode(c.tx, c.o, code, 0)
}

// tellArrivalCode unseals the held code for the arrival notice and erases the sealed
// copy: the edge has had its digest since the reservation reached it (it reported the
// loading). A reissued code the edge has not applied yet stays held (tellHeldCode tells
// it), and an invalidated code was erased with the lockout: then the notice has no code.
func tellArrivalCode(c *step) error {
	o := c.o
	if o.HeldCode == nil || o.HeldVersion > c.st.EdgeDesiredVersion {
		return nil
	}
	code, err := c.s.openHeld(o)
	if err != nil {
		return redrawHeld(c, err)
	}
	c.code = code
	return eraseHeld(c.tx, o)
}

// tellHeldCode: the edge applied the version carrying the held code. The resident of a
// loaded order is told it now (order.code_issued); an order not loaded yet keeps it for
// the arrival notice.
func tellHeldCode(c *step) error {
	o := c.o
	if o.LoadedAt.IsZero() {
		o.HeldVersion = 0
		return c.tx.Delete(bCodeWaits, o.Site+"/"+o.ID)
	}
	code, err := c.s.openHeld(o)
	if err != nil {
		return redrawHeld(c, err)
	}
	if err := eraseHeld(c.tx, o); err != nil {
		return err
	}
	return c.s.codeNote(c.tx, c.st, o, code)
}

// redrawHeld replaces a held code that cannot be unsealed (the code key changed since it
// was sealed) with a new one, sent to the edge and held until the edge applies it.
func redrawHeld(c *step, why error) error {
	c.s.log.Warn("held code unreadable, drawing a new one", "site", c.st.ID, "order", c.o.ID, "err", why)
	code, err := c.drawCode()
	if err != nil {
		return err
	}
	c.s.publishDelta(c.tx, c.st, protocol.Desired{Reservations: []protocol.Reservation{c.s.reservation(c.o)}})
	return c.s.holdCode(c.tx, c.o, code, c.st.DesiredVersion)
}

// drawNewCode replaces the order's code (and any held one); the old one stops working at
// the edge with the next desired delta.
func drawNewCode(c *step) error {
	if err := eraseHeld(c.tx, c.o); err != nil {
		return err
	}
	code, err := c.drawCode()
	if err != nil {
		return err
	}
	c.code, c.o.CodeInvalid = code, false
	return nil
}

// drawCode replaces the order's live code with a new one and returns it.
func (c *step) drawCode() (string, error) {
	if err := dropCode(c.tx, c.o); err != nil {
		return "", err
	}
	code, digest, err := issueCode(c.tx, c.st, c.o.ID)
	if err != nil {
		return "", err
	}
	c.o.CodeDigest = digest
	c.o.CodeIssues++
	return code, nil
}

// handOverCode gives a reissued code to the platform in the response if it delivers
// codes itself and asked; else it is held for the resident until the edge has applied
// the delta just published (tellHeldCode), and, before loading, until the arrival notice.
func handOverCode(c *step) error {
	if c.o.Delivery == DeliverByPlatform && c.by.Role == RolePlatform {
		c.toCaller = true
		return nil
	}
	return c.s.holdCode(c.tx, c.o, c.code, c.st.DesiredVersion)
}

// dropOrderCode ends the order's code: out of the live codes, and its held copy erased.
func dropOrderCode(c *step) error {
	if err := dropCode(c.tx, c.o); err != nil {
		return err
	}
	return eraseHeld(c.tx, c.o)
}

// eraseHeldCode erases a code nobody will be told now (the order expired).
func eraseHeldCode(c *step) error { return eraseHeld(c.tx, c.o) }

// invalidateCode records the edge's lockout: the code is dead until a reissue.
func invalidateCode(c *step) error {
	c.o.CodeInvalid = true
	return nil
}

// restoreCode puts the order's code back into the index after its eviction released it
// (unless the code was invalidated).
func restoreCode(c *step) error {
	if c.o.CodeInvalid {
		return nil
	}
	return c.tx.Put(bCodes, c.st.ID+"/"+c.o.CodeDigest, []byte(c.o.ID))
}

// recordOutOfTemp keeps how long the food was out of temperature, for the notice.
func recordOutOfTemp(c *step) error {
	c.o.OutOfTempS, c.o.Compromised = c.ev.Seconds, true
	c.reason = fmt.Sprintf("out of temperature for %.0f s", c.ev.Seconds)
	return nil
}

// recordColdChain keeps the edge's cold-chain record of the order (picked_up,
// expired_removed): unknown when the edge sent none (protocol 1.0) or one that cannot
// be true, which is logged and otherwise changes nothing of the event.
func recordColdChain(c *step) error {
	cc := ColdChain{}
	if r := c.ev.ColdChain; r != nil {
		if err := r.Check(); err != nil {
			c.s.log.Warn("impossible cold-chain record: recorded as unknown", "site", c.st.ID, "order", c.o.ID, "err", err)
		} else {
			rec := *r
			cc = ColdChain{Known: true, ColdChain: &rec}
		}
	}
	c.o.ColdChain = &cc
	return nil
}

// Effects: the edge's reassignment and the displaced order.

// evictOccupant makes room in the target compartment: the unloaded order holding it
// gives up its compartments and code, the target is held for the moving order, and the
// occupant is displaced (planned again, or cancelled when nothing is free).
func evictOccupant(c *step) error {
	to, _, err := c.targetComp()
	if err != nil || to.Order == "" || to.Order == c.o.ID {
		return err
	}
	other, err := c.occupantOrder()
	if err != nil {
		return err
	}
	if err := c.s.displace(c.tx, c.st, other, to.Number, c.at); err != nil {
		return err
	}
	fresh, _, err := getComp(c.tx, c.st.ID, to.Number)
	c.target = &fresh
	return err
}

// displace releases the unloaded order other from compartment n and applies onDisplaced
// to it. n stays held until the caller gives it to the order the edge put there, so that
// the planner cannot pick it again for other.
func (s *Service) displace(tx Tx, st *Site, other *Order, n int, at time.Time) error {
	if anyLoaded(other) {
		return Errorf(EInternal, "compartment %d of site %s holds loaded order %s but is not marked occupied", n, st.ID, other.ID)
	}
	if err := releaseCompartments(tx, other); err != nil {
		return err
	}
	if err := dropCode(tx, other); err != nil {
		return err
	}
	comp, _, err := getComp(tx, st.ID, n)
	if err != nil {
		return err
	}
	old := comp
	comp.Order = "(displacing)"
	if err := putComp(tx, comp, &old); err != nil {
		return err
	}
	return s.apply(tx, st, other, &step{on: onDisplaced, at: at, by: System})
}

// moveSlot follows the edge: the slot leaves the compartment it was in (which goes out of
// service if the driver found it jammed or faulty) and takes the target with a new
// generation. The edge is the authority for where the food is.
func moveSlot(c *step) error {
	o, ev := c.o, c.ev
	idx := slotIndex(o, ev.Compartment)
	from, _, err := getComp(c.tx, c.st.ID, ev.Compartment)
	if err != nil {
		return err
	}
	if from.Order == o.ID {
		old := from
		from.Order, from.Occupied = "", false
		if ev.Reason == "jammed" || ev.Reason == "faulty" {
			from.InService, from.OOSReason = false, "reassigned: "+ev.Reason
		}
		if err := putComp(c.tx, from, &old); err != nil {
			return err
		}
	}
	to := *c.target
	old := to
	to.Generation++
	to.Order = o.ID
	to.Occupied = o.Slots[idx].Loaded
	if err := putComp(c.tx, to, &old); err != nil {
		return err
	}
	c.target = &to
	sl := o.Slots[idx]
	o.Slots[idx] = Slot{Compartment: to.Number, Generation: to.Generation, Size: to.Size, Zone: to.Zone, Parcels: sl.Parcels, Loaded: sl.Loaded}
	return nil
}

func noticeMoved(c *step) error {
	return c.s.note(c.tx, c.st, NoteReassigned, c.o, func(n *Notification) { n.Compartments = []int{c.target.Number}; n.Reason = c.ev.Reason })
}

// raiseTargetConflict: the edge says it put the order into a compartment the cloud knows
// to be full. The facts disagree: the cloud keeps its record (one live reservation per
// compartment) and raises an alarm for ops to look at the locker.
func raiseTargetConflict(c *step) error {
	_, err := c.s.raise(c.tx, c.st.ID, c.s.now(), protocol.Event{Kind: protocol.EventReassigned, Compartment: c.ev.To,
		Reason: "conflict: occupied by " + c.target.Order})
	return err
}

func warnNotHeld(c *step) error {
	c.s.log.Warn("loaded event for a compartment the order does not hold", "site", c.st.ID, "order", c.o.ID, "compartment", c.ev.Compartment)
	return nil
}

func warnTargetUnknown(c *step) error {
	c.s.log.Warn("reassigned to an unknown compartment", "site", c.st.ID, "order", c.o.ID, "compartment", c.ev.To)
	return nil
}

func warnTargetFull(c *step) error {
	c.s.log.Warn("reassigned into an occupied compartment", "site", c.st.ID, "order", c.o.ID, "compartment", c.ev.To)
	return nil
}

// Effects: a driver's problem report (ReassignSlot).

// planReplacement plans the parcels of the reported slot again, on the free compartments.
func planReplacement(c *step) error {
	idx := slotIndex(c.o, c.compartment)
	if idx < 0 {
		return &Error{Code: EInvalid, Field: "compartment", Message: "the order does not hold this compartment"}
	}
	if c.o.Slots[idx].Loaded {
		return Errorf(EConflict, "compartment %d is already loaded", c.compartment)
	}
	need := map[string]int{}
	var parcels []assign.Parcel
	for _, pi := range c.o.Slots[idx].Parcels {
		pc := c.o.Parcels[pi]
		need[string(pc.Zone)]++
		parcels = append(parcels, assign.Parcel{Size: pc.Size, Zone: pc.Zone})
	}
	free, err := freeCandidates(c.tx, c.st.ID, need, c.o.Accessible)
	if err != nil {
		return err
	}
	c.picks, err = assign.Plan(parcels, c.o.Accessible, free)
	if errors.Is(err, assign.ErrNoFit) {
		return &Error{Code: ENoCapacity, Field: "compartment", Message: fmt.Sprintf("no other compartment of site %s can take these parcels", c.st.ID)}
	}
	if err != nil {
		return Invalid("compartment", "%v", err)
	}
	return nil
}

// reportedOOS says whether the driver's reason means something is wrong with the
// compartment ("too_small" and "full" say it is merely unsuitable).
func (c *step) reportedOOS() bool { return c.reason != "too_small" && c.reason != "full" }

// releaseReported frees the reported compartment, out of service unless it is merely
// unsuitable.
func releaseReported(c *step) error {
	comp, ok, err := getComp(c.tx, c.st.ID, c.compartment)
	if err != nil || !ok || comp.Order != c.o.ID {
		return err
	}
	old := comp
	comp.Order, comp.Occupied = "", false
	if c.reportedOOS() {
		comp.InService, comp.OOSReason = false, "driver reported: "+c.reason
	}
	return putComp(c.tx, comp, &old)
}

// bindReplacement replaces the reported slot with the planned compartments.
func bindReplacement(c *step) error {
	o := c.o
	idx := slotIndex(o, c.compartment)
	bad := o.Slots[idx]
	slots := append(append([]Slot(nil), o.Slots[:idx]...), o.Slots[idx+1:]...)
	for _, pk := range c.picks {
		comp, err := bindCompartment(c.tx, c.st.ID, pk.Compartment, o.ID)
		if err != nil {
			return err
		}
		var idxs []int
		for _, j := range pk.Parcels {
			idxs = append(idxs, bad.Parcels[j])
		}
		slots = append(slots, Slot{Compartment: comp.Number, Generation: comp.Generation, Size: comp.Size, Zone: comp.Zone, Parcels: idxs})
	}
	o.Slots = slots
	return nil
}

// reportedOutOfService tells the edge the reported compartment is out of service.
func reportedOutOfService(c *step) error {
	if !c.reportedOOS() {
		return nil
	}
	_, err := c.s.command(c.tx, c.st.ID, protocol.Command{Kind: protocol.CmdOutOfService, Compartment: c.compartment,
		Reason: "driver reported: " + c.reason, Actor: c.by.Subject})
	return err
}

// Effects: redelivery.

// createReplacement admits the replacement order (same platform, recipient, site,
// parcels and code delivery; the platform's window; a new code) through the create row,
// and links the two orders. An order is redelivered once.
func createReplacement(c *step) error {
	o, rq := c.o, c.redeliver
	if o.ReplacedBy != "" {
		return &Error{Code: EConflict, Message: fmt.Sprintf("order %s was redelivered already, as %s", o.ID, o.ReplacedBy)}
	}
	if id := c.tx.Get(bExtIDs, o.Platform+"/"+rq.ExternalID); id != nil {
		return &Error{Code: EConflict, Field: "external_id", Message: "external_id is already used by order " + string(id)}
	}
	r := &Order{ID: sortableID("ord_", c.s.now()), Platform: o.Platform, ExternalID: rq.ExternalID, Site: o.Site,
		Recipient: o.Recipient, Accessible: o.Accessible, Parcels: o.Parcels, Window: rq.Window,
		Delivery: o.Delivery, State: stateNew, Zone: o.Zone, Created: c.s.now().UTC(), Replaces: o.ID}
	create := &step{on: onCreate, by: c.by}
	if err := c.s.apply(c.tx, c.st, r, create); err != nil {
		return err
	}
	o.ReplacedBy = r.ID
	c.replacement, c.code, c.toCaller = r, create.code, create.toCaller
	c.reason = "replaced by " + r.ID
	return nil
}

// recordRefund keeps the refund the platform says it made.
func recordRefund(c *step) error {
	if rf := c.redeliver.Refund; rf != nil {
		r := *rf
		c.o.Refund = &r
	}
	return nil
}

// Effects: messages.

// publishReservation sends the edge the order's reservation as it is now.
func publishReservation(c *step) error {
	c.s.publishDelta(c.tx, c.st, protocol.Desired{Reservations: []protocol.Reservation{c.s.reservation(c.o)}})
	return nil
}

// gatherReservation adds the order's reservation to the batch its caller publishes as one
// delta.
func gatherReservation(c *step) error {
	*c.batch = append(*c.batch, c.s.reservation(c.o))
	return nil
}

// publishCancel tells the edge the reservation is over.
func publishCancel(c *step) error {
	c.s.publishDelta(c.tx, c.st, protocol.Desired{Cancel: []string{c.o.ID}})
	return nil
}

// notice sends the notification typ about the order, with the step's reason.
func notice(typ string) effect {
	return func(c *step) error {
		return c.s.note(c.tx, c.st, typ, c.o, func(n *Notification) { n.Reason = c.reason })
	}
}

// noticeWithCode is notice carrying the code drawn in this step, if any.
func noticeWithCode(typ string) effect {
	return func(c *step) error {
		return c.s.note(c.tx, c.st, typ, c.o, func(n *Notification) {
			n.Reason = c.reason
			if c.code != "" {
				n.Code, n.QR = c.code, QRPayload(c.o.Site, c.code)
			}
		})
	}
}

// auditBy records action by the caller in the audit log.
func auditBy(action string) effect {
	return func(c *step) error {
		audit(c.tx, c.s.now(), AuditEntry{Site: c.o.Site, Actor: c.by.Subject, Role: c.by.Role, Action: action,
			Compartment: c.compartment, Order: c.o.ID, Reason: c.reason})
		return nil
	}
}

// Deadlines: the time rules of the lifecycle.

// hold is the shortest hold among the order's zones; max likewise for the food-safety cap.
func (p Policy) hold(o *Order) (hold, max time.Duration) {
	for i, pc := range o.Parcels {
		h, m := p.Hold[pc.Zone], p.MaxHold[pc.Zone]
		if i == 0 || h < hold {
			hold = h
		}
		if i == 0 || m < max {
			max = m
		}
	}
	return hold, max
}

// holdBase is when the hold starts: loading, or the window's end before it.
func holdBase(o *Order) time.Time {
	if !o.LoadedAt.IsZero() {
		return o.LoadedAt
	}
	return o.Window.End
}

// deadline is the next time the sweep must look at o (zero: none).
func (p Policy) deadline(o *Order) time.Time {
	switch o.State {
	case StateAssigned:
		if anyLoaded(o) {
			return o.ExpiresAt
		}
		return o.Window.End.Add(p.LoadGrace)
	case StateLoaded:
		if r := reminderAt(o); !r.IsZero() {
			return r
		}
		return o.ExpiresAt
	}
	return time.Time{}
}

// reminderAt is when the next reminder is due (50 % and 90 % of the hold), zero if none.
func reminderAt(o *Order) time.Time {
	span := o.ExpiresAt.Sub(o.LoadedAt)
	switch o.Reminders {
	case 0:
		return o.LoadedAt.Add(span / 2)
	case 1:
		return o.LoadedAt.Add(span * 9 / 10)
	}
	return time.Time{}
}

// Small helpers of the order's shape.

func anyLoaded(o *Order) bool {
	for _, sl := range o.Slots {
		if sl.Loaded {
			return true
		}
	}
	return false
}

// slotIndex is the index of o's slot in compartment n, -1 if o does not hold it.
func slotIndex(o *Order, n int) int {
	for i, sl := range o.Slots {
		if sl.Compartment == n {
			return i
		}
	}
	return -1
}

// coldest returns the coldest zone of parcels (it sets the budget).
func coldest(ps []Parcel) protocol.Zone {
	for _, z := range protocol.Zones() {
		for _, p := range ps {
			if p.Zone == z {
				return z
			}
		}
	}
	return ""
}

func assignParcels(ps []Parcel) []assign.Parcel {
	var out []assign.Parcel
	for _, p := range ps {
		out = append(out, assign.Parcel{Size: p.Size, Zone: p.Zone})
	}
	return out
}

// zoneNeeds counts parcels by zone, for the free index's reads.
func zoneNeeds(ps []Parcel) map[string]int {
	zones := map[string]int{}
	for _, p := range ps {
		zones[string(p.Zone)]++
	}
	return zones
}

package cloud

import (
	"context"
	"fmt"
	"time"

	"github.com/larder-lockers/larder/protocol"
)

// Facts from edges. The fleet adapter (cloud/mqtt) decodes messages and calls these; each
// is idempotent, so MQTT's redeliveries change nothing.

// ApplyBirth records an edge's inventory: compartments are created or updated (size,
// zone, height, wiring), keeping their business state; compartments missing from the
// birth become "missing" and take no new orders. It returns whether the edge is behind
// the cloud's desired version and needs a full snapshot.
func (s *Service) ApplyBirth(ctx context.Context, site string, at time.Time, b protocol.Birth) (needSnapshot bool, err error) {
	if err := b.Validate(); err != nil {
		return false, Invalid("birth", "%v", err)
	}
	s.live.touch(site, at)
	err = s.store.Update(ctx, func(tx Tx) error {
		st, err := loadSite(tx, site)
		if err != nil {
			return err
		}
		comps, err := siteComps(tx, site)
		if err != nil {
			return err
		}
		have := map[int]Compartment{}
		for _, c := range comps {
			have[c.Number] = c
		}
		seen := map[int]bool{}
		for _, pc := range b.Compartments {
			seen[pc.Number] = true
			c, ok := have[pc.Number]
			if !ok {
				c = Compartment{Site: site, InService: true}
			}
			old := c
			c.Compartment = pc
			c.Present = true
			var oldp *Compartment
			if ok {
				oldp = &old
			}
			if !ok || old != c {
				if err := putComp(tx, c, oldp); err != nil {
					return err
				}
			}
		}
		for n, c := range have {
			if !seen[n] && c.Present {
				old := c
				c.Present = false
				if err := putComp(tx, c, &old); err != nil {
					return err
				}
			}
		}
		st.Software = b.Software
		st.EdgeDesiredVersion = b.DesiredVersion
		s.markOnline(st, at)
		if b.OutboxHighWater < st.EventSeq {
			// The edge's outbox restarted (a wiped or replaced edge computer): accept its
			// new sequence from the start rather than dropping its events as duplicates.
			st.EventSeq = 0
		}
		needSnapshot = b.DesiredVersion != st.DesiredVersion || st.DesiredVersion == 0
		return putSite(tx, st)
	})
	return needSnapshot, internal("apply birth", err)
}

// markOnline flips a site online (caller saves st) after a birth. It does not settle an
// outage: the edge's status message, which every connect publishes too, does that
// (ApplyPresence), so that a birth and a status of one reconnect extend deadlines once.
func (s *Service) markOnline(st *Site, at time.Time) {
	if at.After(st.LastSeen) {
		st.LastSeen = at.UTC()
	}
	st.Online = true
}

func (s *Service) extendForOutage(tx Tx, st *Site, outage time.Duration) error {
	orders, err := siteOrders(tx, st.ID, true)
	if err != nil {
		return err
	}
	var ups []protocol.Reservation
	for i := range orders {
		o := &orders[i]
		if o.State != StateLoaded && o.State != StateAssigned {
			continue
		}
		_, max := s.hold(o)
		next := o.ExpiresAt.Add(outage)
		if limit := holdBase(o).Add(max); next.After(limit) {
			next = limit
		}
		if !next.After(o.ExpiresAt) {
			continue
		}
		old := *o
		o.Extended += next.Sub(o.ExpiresAt)
		o.ExpiresAt = next
		if err := s.putOrder(tx, o, &old); err != nil {
			return err
		}
		ups = append(ups, s.reservation(o))
		if err := s.note(tx, NoteExtended, o, func(n *Notification) { n.ExpiresAt = next; n.Reason = "edge_outage" }); err != nil {
			return err
		}
	}
	if len(ups) > 0 {
		s.publishDelta(tx, st, protocol.Desired{Reservations: ups})
	}
	return nil
}

// ApplyStatus records an edge's presence (its retained status or Last Will).
func (s *Service) ApplyStatus(ctx context.Context, site string, at time.Time, st protocol.Status) error {
	return s.ApplyPresence(ctx, site, Presence{Online: st.Online, At: at, Software: st.Software})
}

// Presence is an edge going online or offline, as the fleet adapter saw it.
type Presence struct {
	Online bool
	At     time.Time
	// Outage, on an offline→online change, is how long the edge was out of reach as the
	// adapter measured it (from its last message); zero means "use the stored offline
	// time".
	Outage   time.Duration
	Software string
}

// ApplyPresence records an edge's presence. Coming back after an outage (the edge's own,
// or the cloud's loss of the broker, which the fleet adapter reports as an outage of
// every site) extends the site's pickup deadlines by the outage's length within the
// food-safety caps: the edge kept serving pickups meanwhile, but residents could not
// be told anything. A repeated state changes nothing.
func (s *Service) ApplyPresence(ctx context.Context, site string, p Presence) error {
	at := p.At
	if p.Online {
		s.live.touch(site, at)
	}
	return internal("apply status", s.store.Update(ctx, func(tx Tx) error {
		rec, err := loadSite(tx, site)
		if err != nil {
			return err
		}
		if !p.Online {
			if !rec.Online && !rec.OfflineSince.IsZero() {
				return nil
			}
			rec.Online = false
			rec.OfflineSince = at.UTC()
			return putSite(tx, rec)
		}
		outage := p.Outage
		if outage <= 0 && !rec.OfflineSince.IsZero() {
			outage = at.Sub(rec.OfflineSince)
		}
		if rec.Online && rec.OfflineSince.IsZero() && outage <= 0 {
			return nil
		}
		rec.Online = true
		rec.OfflineSince = time.Time{}
		if at.After(rec.LastSeen) {
			rec.LastSeen = at.UTC()
		}
		if p.Software != "" {
			rec.Software = p.Software
		}
		if outage > time.Minute {
			if err := s.extendForOutage(tx, rec, outage); err != nil {
				return err
			}
		}
		return putSite(tx, rec)
	}))
}

// ApplyTelemetry records an edge's periodic health in memory; it touches the store only
// to close a temperature alarm of a zone back in range.
func (s *Service) ApplyTelemetry(ctx context.Context, site string, at time.Time, t protocol.Telemetry) error {
	s.live.mu.Lock()
	ls := s.live.get(site)
	if at.After(ls.LastSeen) {
		ls.LastSeen = at
	}
	ls.Telemetry = at
	ls.Zones = append([]protocol.ZoneReading(nil), t.Zones...)
	ls.Boards = append([]protocol.BoardHealth(nil), t.Boards...)
	ls.Outbox = t.OutboxDepth
	ls.Uptime = t.UptimeSeconds
	var closeZones []protocol.Zone
	for _, z := range t.Zones {
		if !z.Excursion && ls.excursion[z.Zone] {
			closeZones = append(closeZones, z.Zone)
			delete(ls.excursion, z.Zone)
		}
	}
	s.live.mu.Unlock()
	if len(closeZones) == 0 {
		return nil
	}
	return internal("apply telemetry", s.store.Update(ctx, func(tx Tx) error {
		for _, z := range closeZones {
			if err := tx.Delete(bAlarms, alarmKey(site, protocol.EventTempExcursion, string(z))); err != nil {
				return err
			}
		}
		return nil
	}))
}

// alarmKey is site/ID, and an alarm's ID is kind:what (what: compartment, board, zone).
func alarmKey(site string, kind protocol.EventKind, what string) string {
	return site + "/" + alarmID(kind, what)
}

func alarmID(kind protocol.EventKind, what string) string { return string(kind) + ":" + what }

// ErrEventGap is the code of an event that arrived ahead of a missing one.
const ErrEventGap = EConflict

// ApplyEdgeEvent applies one event from a site's outbox and returns the sequence to
// acknowledge (protocol.EventAck, cumulative). Events apply strictly in sequence: a
// duplicate (seq already applied) changes nothing and returns the current
// acknowledgement; an event ahead of a missing one is not applied and returns an
// EConflict error along with the acknowledgement, so the edge resends from there.
// Events about unknown orders are recorded in the audit log and acknowledged: the edge
// reports facts and the cloud cannot refuse them.
func (s *Service) ApplyEdgeEvent(ctx context.Context, site string, m protocol.Message) (ack uint64, err error) {
	ev, ok := m.Body.(protocol.Event)
	if !ok {
		return 0, Invalid("type", "want an event, got %s", m.Type)
	}
	if m.Seq == 0 {
		return 0, Invalid("seq", "events are sequenced")
	}
	s.live.touch(site, m.Time)
	var raised bool
	err = s.store.Update(ctx, func(tx Tx) error {
		raised = false
		st, err := loadSite(tx, site)
		if err != nil {
			return err
		}
		ack = st.EventSeq
		if m.Seq <= st.EventSeq {
			return nil
		}
		if m.Seq != st.EventSeq+1 {
			return Errorf(ErrEventGap, "event %d of site %s arrived before %d", m.Seq, site, st.EventSeq+1)
		}
		st.EventSeq = m.Seq
		ack = m.Seq
		raised, err = s.applyEvent(tx, st, m.Time, ev)
		if err != nil {
			return err
		}
		return putSite(tx, st)
	})
	if err != nil {
		return ack, internal("apply event", err)
	}
	s.stats.EventsApplied.Add(1)
	if raised {
		s.stats.AlarmsRaised.Add(1)
	}
	if ev.Kind == protocol.EventCodeLockout {
		s.stats.CodeLockouts.Add(1)
	}
	if ev.Kind == protocol.EventLockJammed {
		s.stats.UnlockFailures.Add(1)
	}
	return ack, nil
}

// applyEvent is the state machine driven by edge facts. st is saved by the caller.
func (s *Service) applyEvent(tx Tx, st *Site, at time.Time, ev protocol.Event) (alarm bool, err error) {
	at = at.UTC()
	auditEv := func(action string) {
		audit(tx, s.now(), AuditEntry{Time: at, Site: st.ID, Actor: "edge", Action: action, Compartment: ev.Compartment,
			Order: ev.Order, Reason: ev.Reason, Credential: ev.Credential})
	}
	order := func() (*Order, error) {
		o, err := loadOrder(tx, ev.Order)
		if ErrorCode(err) == ENotFound || (err == nil && o.Site != st.ID) {
			auditEv(string(ev.Kind) + ":unknown_order")
			s.log.Warn("edge event for unknown order", "site", st.ID, "order", ev.Order, "kind", ev.Kind)
			return nil, nil
		}
		return o, err
	}
	switch ev.Kind {
	case protocol.EventDoorOpened:
		auditEv("door_opened")
	case protocol.EventDoorClosed:
		return false, s.closeAlarms(tx, st.ID, fmt.Sprint(ev.Compartment), protocol.EventDoorLeftOpen, protocol.EventUncommandedOpen)
	case protocol.EventLoaded:
		o, err := order()
		if o == nil || err != nil {
			return false, err
		}
		return false, s.loaded(tx, st, o, ev.Compartment, at)
	case protocol.EventPickedUp:
		o, err := order()
		if o == nil || err != nil {
			return false, err
		}
		auditEv("picked_up")
		if !o.State.Live() {
			return false, nil
		}
		return false, s.finish(tx, st, o, StatePickedUp, "", NotePickedUp)
	case protocol.EventExpiredRemoved:
		o, err := order()
		if o == nil || err != nil {
			return false, err
		}
		auditEv("expired_removed")
		if !o.State.Live() {
			return false, nil
		}
		return false, s.finish(tx, st, o, StateReturned, "expired_removed", NoteReturned)
	case protocol.EventOrderCompromised:
		o, err := order()
		if o == nil || err != nil {
			return false, err
		}
		auditEv("order_compromised")
		if o.State != StateLoaded && o.State != StateExpired && o.State != StateAssigned {
			return false, nil
		}
		old := *o
		o.State, o.OutOfTempS = StateCompromised, ev.Seconds
		if err := s.putOrder(tx, o, &old); err != nil {
			return false, err
		}
		return false, s.note(tx, NoteCompromised, o, func(n *Notification) { n.Reason = fmt.Sprintf("out of temperature for %.0f s", ev.Seconds) })
	case protocol.EventReassigned:
		o, err := order()
		if o == nil || err != nil {
			return false, err
		}
		auditEv("reassigned")
		return false, s.reassigned(tx, st, o, ev)
	case protocol.EventCodeLockout:
		auditEv("code_lockout")
		if ev.Order == "" {
			return false, nil
		}
		o, err := order()
		if o == nil || err != nil {
			return false, err
		}
		if !o.State.Live() || o.CodeInvalid {
			return false, nil
		}
		old := *o
		o.CodeInvalid = true
		if err := dropCode(tx, o); err != nil {
			return false, err
		}
		if err := s.putOrder(tx, o, &old); err != nil {
			return false, err
		}
		return false, s.note(tx, NoteCodeInvalidated, o, func(n *Notification) { n.Reason = "code_lockout" })
	case protocol.EventBoardOnline:
		if ev.Board != nil {
			return false, tx.Delete(bAlarms, alarmKey(st.ID, protocol.EventBoardOffline, fmt.Sprint(*ev.Board)))
		}
	case protocol.EventUncommandedOpen, protocol.EventDoorLeftOpen, protocol.EventLockJammed,
		protocol.EventBoardOffline, protocol.EventTempExcursion, protocol.EventHelpRequested:
		if ev.Kind == protocol.EventUncommandedOpen {
			auditEv("uncommanded_open")
		}
		return s.raise(tx, st.ID, at, ev)
	default:
		auditEv(string(ev.Kind))
	}
	return false, nil
}

// raise opens (or refreshes) an alarm; it reports whether a new one was opened.
func (s *Service) raise(tx Tx, site string, at time.Time, ev protocol.Event) (bool, error) {
	what := ""
	a := Alarm{Site: site, Kind: ev.Kind, Since: at, Updated: at, Count: 1, Reason: ev.Reason}
	switch ev.Kind {
	case protocol.EventBoardOffline:
		what = fmt.Sprint(*ev.Board)
		b := *ev.Board
		a.Board = &b
	case protocol.EventTempExcursion:
		what = string(ev.Zone)
		a.Zone = ev.Zone
		if ev.Celsius != nil {
			a.Reason = fmt.Sprintf("%.1f °C for %.0f s", *ev.Celsius, ev.Seconds)
		}
		s.live.mu.Lock()
		s.live.get(site).excursion[ev.Zone] = true
		s.live.mu.Unlock()
	case protocol.EventHelpRequested:
		what = "kiosk"
	default:
		what = fmt.Sprint(ev.Compartment)
		a.Compartment = ev.Compartment
	}
	k := alarmKey(site, ev.Kind, what)
	a.ID = alarmID(ev.Kind, what)
	var prev Alarm
	ok, err := getJSON(tx, bAlarms, k, &prev)
	if err != nil {
		return false, err
	}
	if ok {
		prev.Updated, prev.Count = at, prev.Count+1
		if a.Reason != "" {
			prev.Reason = a.Reason
		}
		return false, putJSON(tx, bAlarms, k, prev)
	}
	return true, putJSON(tx, bAlarms, k, a)
}

func (s *Service) closeAlarms(tx Tx, site, what string, kinds ...protocol.EventKind) error {
	for _, k := range kinds {
		if err := tx.Delete(bAlarms, alarmKey(site, k, what)); err != nil {
			return err
		}
	}
	return nil
}

// ResolveAlarm closes an open alarm by id (ops, admin), e.g. a help request answered.
func (s *Service) ResolveAlarm(ctx context.Context, p Principal, site, id string) error {
	if err := require(p, RoleOps, RoleAdmin); err != nil {
		return err
	}
	return internal("resolve alarm", s.store.Update(ctx, func(tx Tx) error {
		k := site + "/" + id
		if tx.Get(bAlarms, k) == nil {
			return &Error{Code: ENotFound, Message: "no open alarm " + id + " at site " + site}
		}
		audit(tx, s.now(), AuditEntry{Site: site, Actor: p.Subject, Role: p.Role, Action: "alarm_resolved:" + id})
		return tx.Delete(bAlarms, k)
	}))
}

// loaded marks one compartment of o loaded; when all are, the order is loaded and its
// hold starts.
func (s *Service) loaded(tx Tx, st *Site, o *Order, compartment int, at time.Time) error {
	if o.State != StateAssigned {
		return nil
	}
	old := *o
	o.Slots = append([]Slot(nil), o.Slots...)
	found := false
	for i := range o.Slots {
		if o.Slots[i].Compartment == compartment {
			o.Slots[i].Loaded, found = true, true
		}
	}
	if !found {
		s.log.Warn("loaded event for a compartment the order does not hold", "site", st.ID, "order", o.ID, "compartment", compartment)
		return nil
	}
	if c, ok, err := getComp(tx, st.ID, compartment); err != nil {
		return err
	} else if ok && c.Order == o.ID && !c.Occupied {
		oc := c
		c.Occupied = true
		if err := putComp(tx, c, &oc); err != nil {
			return err
		}
	}
	for _, sl := range o.Slots {
		if !sl.Loaded {
			return s.putOrder(tx, o, &old)
		}
	}
	var code string
	if o.Delivery == DeliverByNotifier && !o.CodeInvalid {
		// The resident's code is drawn now and travels only in the arrival notice.
		if err := dropCode(tx, o); err != nil {
			return err
		}
		c, digest, err := issueCode(tx, st, o.ID)
		if err != nil {
			return err
		}
		code, o.CodeDigest = c, digest
		o.CodeIssues++
	}
	h, _ := s.hold(o)
	o.State, o.LoadedAt = StateLoaded, at
	o.ExpiresAt = at.Add(h + o.Extended)
	if _, max := s.hold(o); o.ExpiresAt.After(at.Add(max)) {
		o.ExpiresAt = at.Add(max)
	}
	if err := s.update(tx, st, o, &old); err != nil {
		return err
	}
	var doors []int
	for _, sl := range o.Slots {
		doors = append(doors, sl.Compartment)
	}
	r := o.Recipient
	return s.note(tx, NoteLoaded, o, func(n *Notification) {
		n.Recipient, n.Compartments, n.ExpiresAt = &r, doors, o.ExpiresAt
		if code != "" {
			n.Code, n.QR = code, QRPayload(o.Site, code)
		}
	})
}

// reassigned follows the edge moving an order from one compartment to another (a driver
// found it jammed, faulty or full). The edge is the authority for where the food is: the
// order takes the new compartment with a new generation; an unloaded order that the cloud
// had put there moves elsewhere or, if nothing is free, is cancelled. A jammed or faulty
// compartment goes out of service.
func (s *Service) reassigned(tx Tx, st *Site, o *Order, ev protocol.Event) error {
	if !o.State.Live() {
		return nil
	}
	idx := -1
	for i, sl := range o.Slots {
		if sl.Compartment == ev.Compartment {
			idx = i
		}
		if sl.Compartment == ev.To {
			return nil // already applied
		}
	}
	if idx < 0 {
		return nil
	}
	to, ok, err := getComp(tx, st.ID, ev.To)
	if err != nil {
		return err
	}
	if !ok {
		s.log.Warn("reassigned to an unknown compartment", "site", st.ID, "order", o.ID, "compartment", ev.To)
		return nil
	}
	conflict := to.Occupied
	if to.Order != "" && to.Order != o.ID && !conflict {
		other, err := loadOrder(tx, to.Order)
		if err != nil {
			return err
		}
		// A partly loaded order cannot be re-planned as a whole.
		conflict = anyLoaded(other)
	}
	if to.Order != "" && to.Order != o.ID && conflict {
		// The edge says it put the order into a compartment the cloud knows to be full:
		// the facts disagree. Keep the cloud's record (one live reservation per
		// compartment) and raise an alarm for ops to look at the locker.
		s.log.Warn("reassigned into an occupied compartment", "site", st.ID, "order", o.ID, "compartment", ev.To)
		_, err := s.raise(tx, st.ID, s.now(), protocol.Event{Kind: protocol.EventReassigned, Compartment: ev.To, Reason: "conflict: occupied by " + to.Order})
		return err
	}
	if to.Order != "" && to.Order != o.ID {
		if err := s.displace(tx, st, to.Order, ev.To); err != nil {
			return err
		}
		if to, _, err = getComp(tx, st.ID, ev.To); err != nil {
			return err
		}
	}
	old := *o
	o.Slots = append([]Slot(nil), o.Slots...)
	from, _, err := getComp(tx, st.ID, ev.Compartment)
	if err != nil {
		return err
	}
	if from.Order == o.ID {
		of := from
		from.Order, from.Occupied = "", false
		if ev.Reason == "jammed" || ev.Reason == "faulty" {
			from.InService, from.OOSReason = false, "reassigned: "+ev.Reason
		}
		if err := putComp(tx, from, &of); err != nil {
			return err
		}
	}
	ot := to
	to.Generation++
	to.Order = o.ID
	to.Occupied = o.Slots[idx].Loaded
	if err := putComp(tx, to, &ot); err != nil {
		return err
	}
	sl := o.Slots[idx]
	o.Slots[idx] = Slot{Compartment: to.Number, Generation: to.Generation, Size: to.Size, Zone: to.Zone, Parcels: sl.Parcels, Loaded: sl.Loaded}
	if err := s.update(tx, st, o, &old); err != nil {
		return err
	}
	return s.note(tx, NoteReassigned, o, func(n *Notification) { n.Compartments = []int{to.Number}; n.Reason = ev.Reason })
}

// displace moves the unloaded order id out of compartment n, which the edge has just
// filled with another order.
func (s *Service) displace(tx Tx, st *Site, id string, n int) error {
	other, err := loadOrder(tx, id)
	if err != nil {
		return err
	}
	if anyLoaded(other) {
		return Errorf(EInternal, "compartment %d of site %s holds loaded order %s but is not marked occupied", n, st.ID, id)
	}
	old := *other
	if err := s.release(tx, other); err != nil {
		return err
	}
	// Hold n (the caller gives it to the order the edge put there) so that the planner
	// cannot pick it again for the displaced order.
	c, _, err := getComp(tx, st.ID, n)
	if err != nil {
		return err
	}
	oc := c
	c.Order = "(displacing)"
	if err := putComp(tx, c, &oc); err != nil {
		return err
	}
	if err := s.assignSlots(tx, st, other, nil); err != nil {
		if ErrorCode(err) != ENoCapacity {
			return err
		}
		*other = old
		other.Slots = old.Slots
		return s.finish(tx, st, other, StateCancelled, "displaced: no compartment free", NoteCancelled)
	}
	// release dropped its code index; put it back (unless the code was invalidated).
	if !other.CodeInvalid {
		if err := tx.Put(bCodes, st.ID+"/"+other.CodeDigest, []byte(other.ID)); err != nil {
			return err
		}
	}
	if err := s.update(tx, st, other, &old); err != nil {
		return err
	}
	return s.note(tx, NoteReassigned, other, func(nt *Notification) { nt.Reason = "displaced" })
}

// EventHighWater is the sequence of the last event of site applied (0 for an unknown
// site): what the fleet adapter acknowledges.
func (s *Service) EventHighWater(ctx context.Context, site string) (uint64, error) {
	var seq uint64
	err := s.store.View(ctx, func(tx Tx) error {
		st, err := loadSite(tx, site)
		if ErrorCode(err) == ENotFound {
			return nil
		}
		if err == nil {
			seq = st.EventSeq
		}
		return err
	})
	return seq, internal("event high water", err)
}

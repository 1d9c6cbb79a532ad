package cloud

import (
	"context"
	"slices"
	"sync/atomic"
	"time"

	"github.com/larder-lockers/larder/protocol"
)

// Facts from edges. The fleet adapter (cloud/mqtt) decodes messages and calls these; each
// is idempotent, so MQTT's redeliveries change nothing. An edge event goes, in one step
// of the routes table below, to the lifecycle happening it causes for its order
// (lifecycle.go), to an alarm raised or closed (alarms.go), or only to the audit log.

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
		if err := s.tellAppliedCodes(tx, st, b.DesiredVersion); err != nil {
			return err
		}
		markOnline(st, at)
		if b.OutboxHighWater < st.EventSeq {
			// The edge's outbox restarted (a wiped or replaced edge computer): accept its
			// new sequence from the start rather than dropping its events as duplicates.
			st.EventSeq = 0
		}
		needSnapshot = b.DesiredVersion != st.DesiredVersion || st.DesiredVersion == 0
		return putSite(tx, st)
	})
	if err == nil {
		s.live.mu.Lock()
		s.live.get(site).DesiredVersion = b.DesiredVersion // the newest report, even a lower one
		s.live.mu.Unlock()
	}
	return needSnapshot, internal("apply birth", err)
}

// markOnline flips a site online (caller saves st) after a birth. It does not settle an
// outage: the edge's status message, which every connect publishes too, does that
// (ApplyPresence), so that a birth and a status of one reconnect extend deadlines once.
func markOnline(st *Site, at time.Time) {
	if at.After(st.LastSeen) {
		st.LastSeen = at.UTC()
	}
	st.Online = true
}

// Span is an interval of time, From to To.
type Span struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// keepOutages is how many of a site's outages Site.Outages remembers: enough for the
// evidence of both sides about one outage to meet, whichever arrives first (the edge's
// may wait in its outbox through several later reconnects).
const keepOutages = 16

// settleOutage counts the outage out, seen by either side, for site st (saved by the
// caller): the cloud's own evidence (ApplyPresence: a Last Will, a lost broker, the
// cloud's downtime) or the edge's (its outage event). The part of out that no counted
// outage covers already (st.Outages) moves the deadlines of the site's orders, if it
// is longer than minOutage; so an outage both sides saw extends once, whichever side
// tells first, and one seen by one side alone still extends. Shorter remainders (the
// two sides' clocks and detection delays differ by seconds) are not worth a new
// deadline and a notice to every resident.
func (s *Service) settleOutage(tx Tx, st *Site, out Span) error {
	add := uncovered(out, st.Outages)
	if add <= minOutage {
		return nil
	}
	st.Outages = append(st.Outages, out)
	slices.SortFunc(st.Outages, func(a, b Span) int { return a.To.Compare(b.To) })
	if n := len(st.Outages); n > keepOutages {
		st.Outages = slices.Delete(st.Outages, 0, n-keepOutages)
	}
	return s.extendForOutage(tx, st, add, out.To)
}

// maxReportedOutage bounds the outage an edge may report: longer than any hold's cap,
// so it changes no deadline, and far from overflowing a Duration (a confused clock).
const maxReportedOutage = 30 * 24 * time.Hour

// reportedOutage is the span of an edge's outage event: seconds long (at most
// maxReportedOutage), ending at the event's time.
func reportedOutage(end time.Time, seconds float64) Span {
	d := maxReportedOutage
	if seconds < d.Seconds() {
		d = time.Duration(seconds * float64(time.Second))
	}
	return Span{From: end.Add(-d), To: end}
}

// uncovered is how much of out none of spans covers.
func uncovered(out Span, spans []Span) time.Duration {
	sorted := slices.Clone(spans)
	slices.SortFunc(sorted, func(a, b Span) int { return a.From.Compare(b.From) })
	var left time.Duration
	at := out.From
	for _, sp := range sorted {
		if !sp.To.After(at) {
			continue
		}
		if !sp.From.Before(out.To) {
			break
		}
		if sp.From.After(at) {
			left += sp.From.Sub(at)
		}
		at = sp.To
		if !at.Before(out.To) {
			return left
		}
	}
	return left + out.To.Sub(at)
}

// extendForOutage moves the deadlines of every live order of st by outage, which ended
// at end; the reservations that moved go to the edge in one delta.
func (s *Service) extendForOutage(tx Tx, st *Site, outage time.Duration, end time.Time) error {
	orders, err := siteOrders(tx, st.ID, true)
	if err != nil {
		return err
	}
	var ups []protocol.Reservation
	for i := range orders {
		if err := s.apply(tx, st, &orders[i], &step{on: onOutage, at: end.UTC(), by: System, extend: outage, batch: &ups}); err != nil {
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
// food-safety caps (settleOutage: a part the edge's own report counted already is not
// counted again): the edge kept serving pickups meanwhile, but residents could not be
// told anything. A repeated state changes nothing.
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
		if outage > 0 {
			if err := s.settleOutage(tx, rec, Span{From: at.Add(-outage).UTC(), To: at.UTC()}); err != nil {
				return err
			}
		}
		return putSite(tx, rec)
	}))
}

// minOutage is the shortest absence that moves deadlines, the edge's as well: a
// reconnect within a minute (a broker or cloud restart, a flaky uplink) is not worth a
// new deadline and a notice to every resident of the site.
const minOutage = protocol.MinOutage

// aliveKey (bucket bMeta) holds the cloud's heartbeat: the last moment this cloud was
// known to be running. Service.Run rewrites it every aliveEvery and Service.Stop on a
// clean shutdown; Resume reads it on the next start. With several replicas the cloud
// is running while any of them is: the one holding the periodic work (Options.Work)
// rewrites it, and a replica that starts while another is alive finds it fresh.
const aliveKey = "alive"

// aliveEvery is how often Run rewrites the heartbeat. A crash is counted from the last
// heartbeat, so its outage reads up to this much longer than it was; one small write
// every 15 s is cheap.
const aliveEvery = 15 * time.Second

type aliveRecord struct {
	At time.Time `json:"at"`
}

// Resume accounts for the time this cloud was not running, on start, before the fleet
// adapter connects. While the cloud is down nobody can store an edge's Last Will (with
// the embedded broker, the broker dies with the cloud), so the cloud uses its own
// evidence: its last heartbeat. If that is older than minOutage, every online site is
// marked offline since the heartbeat (a site already offline keeps its earlier time);
// each edge's first status after the restart then extends its deadlines through
// ApplyPresence, as after the edge's own outage. It returns the gap found (zero on a
// first start, when there is no heartbeat yet), then starts the heartbeat. The edge's
// own report of the same outage (its outage event) then finds it counted.
//
// Resume rewrites the heartbeat in the transaction that accounts for the gap, whether
// or not this process holds the periodic work: that write is the record that the
// outage up to now is counted, so of several replicas starting together after the
// whole cloud was down, the first counts it and the others find a fresh heartbeat
// (with a store that retries conflicting transactions, as a serializable one does).
// A replica starting while another is alive finds the heartbeat at most aliveEvery
// old, well under minOutage, and counts nothing.
func (s *Service) Resume(ctx context.Context) (time.Duration, error) {
	now := s.now()
	var gap time.Duration
	err := s.store.Update(ctx, func(tx Tx) error {
		gap = 0
		var last aliveRecord
		if err := indexAudit(tx); err != nil {
			return err
		}
		ok, err := getJSON(tx, bMeta, aliveKey, &last)
		if err != nil {
			return err
		}
		if ok {
			gap = now.Sub(last.At)
		}
		if gap > minOutage {
			if err := markAllOffline(tx, last.At); err != nil {
				return err
			}
		}
		return putJSON(tx, bMeta, aliveKey, aliveRecord{At: now.UTC()})
	})
	if err != nil {
		return 0, internal("resume", err)
	}
	s.resumed.Store(true)
	return gap, nil
}

// markAllOffline marks every online site offline since at.
func markAllOffline(tx Tx, at time.Time) error {
	sites, err := allSites(tx)
	if err != nil {
		return internal("decode site", err)
	}
	for i := range sites {
		if !sites[i].Online {
			continue
		}
		sites[i].Online = false
		if sites[i].OfflineSince.IsZero() {
			// Not online since an outage of its own that no status has settled yet
			// (a birth came first): that earlier start stands.
			sites[i].OfflineSince = at.UTC()
		}
		if err := putSite(tx, &sites[i]); err != nil {
			return err
		}
	}
	return nil
}

// heartbeat records that the cloud is running now. Before Resume it writes nothing: the
// stored heartbeat is then the evidence of the last outage, not yet accounted for (a
// start that fails halfway must not erase it). Only the holder of the periodic work
// writes it, under the work lease's fence.
func (s *Service) heartbeat(ctx context.Context) error {
	if !s.resumed.Load() {
		return nil
	}
	ctx, ok := s.work(ctx)
	if !ok {
		return nil
	}
	return internal("heartbeat", s.store.Update(ctx, func(tx Tx) error {
		return putJSON(tx, bMeta, aliveKey, aliveRecord{At: s.now().UTC()})
	}))
}

// Stop records the cloud's last heartbeat on a clean shutdown: the time until the next
// start is an outage like a crash's (see Resume). Call it after Run has returned and the
// fleet adapter has closed, before giving up the work lease (a replica without it
// writes nothing: the holder's heartbeat goes on).
func (s *Service) Stop(ctx context.Context) error { return s.heartbeat(ctx) }

// ApplyTelemetry records an edge's periodic health in memory; it touches the store only
// to close a temperature alarm of a zone back in range, and to tell the held codes that
// waited for the desired version the edge reports applied (codesApplied). This process
// knows the alarms it raised; one raised before it heard the site (by a replica that
// owned it before, or before a restart) is closed by the first telemetry it hears with
// the zone in range.
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
	if t.DesiredVersion > 0 {
		ls.DesiredVersion = t.DesiredVersion
	}
	var closeZones []protocol.Zone
	for _, z := range t.Zones {
		if !z.Excursion && (ls.excursion[z.Zone] || !ls.heard) {
			closeZones = append(closeZones, z.Zone)
			delete(ls.excursion, z.Zone)
		}
	}
	ls.heard = true
	s.live.mu.Unlock()
	if t.DesiredVersion > 0 {
		if err := s.codesApplied(ctx, site, t.DesiredVersion); err != nil {
			return err
		}
	}
	if len(closeZones) == 0 {
		return nil
	}
	// Most zones of a first telemetry have no alarm open: look before writing, so that a
	// start does not cost a commit per site.
	var open []protocol.Zone
	err := s.store.View(ctx, func(tx Tx) error {
		open = open[:0]
		for _, z := range closeZones {
			if tx.Get(bAlarms, alarmKey(site, protocol.EventTempExcursion, string(z))) != nil {
				open = append(open, z)
			}
		}
		return nil
	})
	if err != nil || len(open) == 0 {
		return internal("apply telemetry", err)
	}
	return internal("apply telemetry", s.store.Update(ctx, func(tx Tx) error {
		for _, z := range open {
			if err := closeAlarms(tx, site, string(z), protocol.EventTempExcursion); err != nil {
				return err
			}
		}
		return nil
	}))
}

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
	if err := checkEvent(m); err != nil {
		return 0, err
	}
	s.live.touch(site, m.Time)
	var tally eventTally
	err = s.store.Update(ctx, func(tx Tx) error {
		tally = eventTally{}
		st, err := loadSite(tx, site)
		if err != nil {
			return err
		}
		applied, err := s.applySeq(tx, st, m, &tally)
		ack = st.EventSeq
		if err != nil || !applied {
			return err
		}
		return putSite(tx, st)
	})
	if err != nil {
		return ack, internal("apply event", err)
	}
	s.count(tally)
	return ack, nil
}

// EdgeEvents is a run of one site's events, in sequence order, for ApplyEdgeEvents.
type EdgeEvents struct {
	Site   string
	Events []protocol.Message
}

// EdgeAck is what ApplyEdgeEvents did with one run.
type EdgeAck struct {
	Site string
	// Ack is the sequence to acknowledge to the edge: the site's event high water after
	// the commit (or as it stands, if nothing of the run committed).
	Ack uint64
	// Applied counts the run's events that took effect (not duplicates).
	Applied int
	// Err is the first event of the run that was refused: one ahead of a missing one
	// (ErrEventGap), an invalid one, an unknown site, or a store failure. As with
	// ApplyEdgeEvent, a refused event changes nothing and the run goes on after it.
	Err error
}

// ApplyEdgeEvents applies runs of events of many sites in one durable transaction: the
// effect is that of ApplyEdgeEvent called for every event of every run in order (a
// duplicate is skipped, an event after a gap is refused), but a whole batch costs one
// commit instead of one per event. Runs of different sites are independent; a site must not appear twice.
// If the shared transaction fails (an event's effect failed after writing, which
// ApplyEdgeEvent would have rolled back alone), every event is applied again on its
// own, so that one bad event holds back only the events of its own site after it.
// It returns one EdgeAck per run, in the order of runs.
func (s *Service) ApplyEdgeEvents(ctx context.Context, runs []EdgeEvents) []EdgeAck {
	out := make([]EdgeAck, len(runs))
	for i, r := range runs {
		out[i].Site = r.Site
		for _, m := range r.Events {
			s.live.touch(r.Site, m.Time)
		}
	}
	var tally eventTally
	err := s.store.Update(ctx, func(tx Tx) error {
		// The store may run this more than once: start afresh every time.
		tally = eventTally{}
		for i, r := range runs {
			out[i] = EdgeAck{Site: r.Site}
			if err := s.applyRun(tx, r, &out[i], &tally); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		s.count(tally)
		return out
	}
	if ctx.Err() != nil {
		for i := range out {
			out[i] = EdgeAck{Site: runs[i].Site, Err: internal("apply events", err)}
		}
		return out
	}
	s.log.Warn("edge events: shared transaction failed, applying one by one", "runs", len(runs), "err", err)
	for i, r := range runs {
		out[i] = EdgeAck{Site: r.Site}
		for _, m := range r.Events {
			before := out[i].Ack
			ack, err := s.ApplyEdgeEvent(ctx, r.Site, m)
			out[i].Ack = max(ack, before)
			if err != nil && out[i].Err == nil {
				out[i].Err = err
			}
			if err == nil && ack > before {
				out[i].Applied++
			}
		}
	}
	return out
}

// applyRun applies one site's run within tx and fills res. It returns an error only
// when the transaction can no longer commit (an effect failed, perhaps after writing);
// an unknown site, a gap or an invalid event writes nothing and is reported in res.Err.
func (s *Service) applyRun(tx Tx, r EdgeEvents, res *EdgeAck, tally *eventTally) error {
	st, err := loadSite(tx, r.Site)
	if err != nil {
		if ErrorCode(err) == EInternal {
			return err
		}
		res.Err = err
		return nil
	}
	res.Ack = st.EventSeq
	for _, m := range r.Events {
		err := checkEvent(m)
		applied := false
		if err == nil {
			applied, err = s.applySeq(tx, st, m, tally)
		}
		if err != nil && ErrorCode(err) != ErrEventGap && ErrorCode(err) != EInvalid {
			return err
		}
		if err != nil && res.Err == nil {
			res.Err = err
		}
		if applied {
			res.Applied++
		}
	}
	if res.Applied == 0 {
		return nil
	}
	res.Ack = st.EventSeq
	return putSite(tx, st)
}

// checkEvent rejects what is not a sequenced event (or the rejection of one).
func checkEvent(m protocol.Message) error {
	switch m.Body.(type) {
	case protocol.Event, protocol.RejectedEvent:
	default:
		return Invalid("type", "want an event, got %s", m.Type)
	}
	if m.Seq == 0 {
		return Invalid("seq", "events are sequenced")
	}
	return nil
}

// applySeq applies m to site st (saved by the caller) if it is the next in sequence: a
// duplicate changes nothing (false, nil), an event ahead of a missing one is an
// ErrEventGap error, written nothing.
func (s *Service) applySeq(tx Tx, st *Site, m protocol.Message, tally *eventTally) (applied bool, err error) {
	if m.Seq <= st.EventSeq {
		return false, nil
	}
	if m.Seq != st.EventSeq+1 {
		return false, Errorf(ErrEventGap, "event %d of site %s arrived before %d", m.Seq, st.ID, st.EventSeq+1)
	}
	if rj, ok := m.Body.(protocol.RejectedEvent); ok {
		s.rejectEvent(tx, st, m.Time, rj.Rejection)
		st.EventSeq = m.Seq
		return true, nil
	}
	ev := m.Body.(protocol.Event)
	r := routeOf(ev.Kind)
	raised, err := s.applyEvent(tx, st, m.Time, ev, r)
	if err != nil {
		return false, err
	}
	st.EventSeq = m.Seq
	tally.applied++
	if raised {
		tally.raised++
	}
	if r.counter != nil {
		tally.counters = append(tally.counters, r.counter)
	}
	return true, nil
}

// rejectEvent records that the event at r.Seq did not decode and will never apply: the
// fleet adapter acknowledges it as rejected (protocol.EventAck.Rejected) so that the
// site's stream goes on, and ops find it in the audit log ("event_rejected"), with the
// field and reason but not the payload (the edge keeps that). The adapter logs it.
func (s *Service) rejectEvent(tx Tx, st *Site, at time.Time, r protocol.Rejection) {
	reason := string(r.Error) + ": " + r.Message
	if r.Field != "" {
		reason = string(r.Error) + ": " + r.Field + ": " + r.Message
	}
	audit(tx, s.now(), AuditEntry{Time: at.UTC(), Site: st.ID, Actor: "edge", Action: "event_rejected", Reason: reason})
}

// eventTally is what a transaction's events add to Stats, counted only once it commits.
type eventTally struct {
	applied, raised uint64
	counters        []func(*Stats) *atomic.Uint64
}

func (s *Service) count(t eventTally) {
	s.stats.EventsApplied.Add(t.applied)
	s.stats.AlarmsRaised.Add(t.raised)
	for _, c := range t.counters {
		c(&s.stats).Add(1)
	}
}

// route is what one kind of edge event does, in one step: an audit entry, a lifecycle
// happening for the event's order, an alarm raised, or alarms closed; and a counter.
type route struct {
	// audit is the action recorded in the audit log. For an event about an order it is
	// recorded once the order is known (an unknown one is recorded as
	// "<kind>:unknown_order" instead), unless orderOptional.
	audit string
	// on is the lifecycle happening applied to the event's order (lifecycle.go).
	on happening
	// orderOptional: the event may name no order (a lockout on codes that matched none):
	// the audit entry is written first, whatever the order.
	orderOptional bool
	// raise opens or refreshes the alarm the event stands for (alarms.go); with
	// orderOptional, only for an event that names no order.
	raise bool
	// closes are the kinds of alarm the fact closes, about the event's compartment or
	// board.
	closes []protocol.EventKind
	// counter is the Stats counter the event adds to.
	counter func(*Stats) *atomic.Uint64
	// outage: the event is the edge's evidence of an outage of Seconds ending at its
	// time (settleOutage).
	outage bool
}

// routes is the dispatch table of edge events.
var routes = map[protocol.EventKind]route{
	protocol.EventDoorOpened:       {audit: "door_opened"},
	protocol.EventDoorClosed:       {closes: []protocol.EventKind{protocol.EventDoorLeftOpen, protocol.EventUncommandedOpen}},
	protocol.EventLoaded:           {on: onLoaded},
	protocol.EventPickedUp:         {audit: "picked_up", on: onPickedUp},
	protocol.EventExpiredRemoved:   {audit: "expired_removed", on: onReturned},
	protocol.EventOrderCompromised: {audit: "order_compromised", on: onCompromised},
	protocol.EventReassigned:       {audit: "reassigned", on: onReassigned},
	// A lockout naming an order invalidates its code; one naming none is the keypad's
	// wrong-code budget spent: someone is guessing, and ops get an alarm.
	protocol.EventCodeLockout: {audit: "code_lockout", on: onCodeLockout, orderOptional: true, raise: true,
		counter: func(st *Stats) *atomic.Uint64 { return &st.CodeLockouts }},
	protocol.EventBoardOnline:     {closes: []protocol.EventKind{protocol.EventBoardOffline}},
	protocol.EventUncommandedOpen: {audit: "uncommanded_open", raise: true},
	protocol.EventDoorLeftOpen:    {raise: true},
	protocol.EventLockJammed: {raise: true,
		counter: func(st *Stats) *atomic.Uint64 { return &st.UnlockFailures }},
	protocol.EventBoardOffline:  {raise: true},
	protocol.EventTempExcursion: {raise: true},
	protocol.EventHelpRequested: {raise: true},
	// The edge's evidence of an outage: the part the cloud has not counted moves deadlines.
	protocol.EventOutage: {audit: "outage", outage: true},
}

// routeOf returns the route of kind; a kind the cloud does not act on is only recorded
// in the audit log.
func routeOf(kind protocol.EventKind) route {
	if r, ok := routes[kind]; ok {
		return r
	}
	return route{audit: string(kind)}
}

// applyEvent does what route r says for ev, at site st (saved by the caller). It reports
// whether a new alarm was opened.
func (s *Service) applyEvent(tx Tx, st *Site, at time.Time, ev protocol.Event, r route) (raised bool, err error) {
	at = at.UTC()
	record := func(action string) {
		audit(tx, s.now(), AuditEntry{Time: at, Site: st.ID, Actor: "edge", Action: action, Compartment: ev.Compartment,
			Order: ev.Order, Reason: ev.Reason, Credential: ev.Credential})
	}
	if r.on == "" {
		if r.audit != "" {
			record(r.audit)
		}
		for _, kind := range r.closes {
			if kind == protocol.EventBoardOffline && ev.Board == nil {
				continue
			}
			if err := closeAlarms(tx, st.ID, alarmWhat(kind, ev), kind); err != nil {
				return false, err
			}
		}
		if r.raise {
			return s.raise(tx, st.ID, at, ev)
		}
		if r.outage {
			return false, s.settleOutage(tx, st, reportedOutage(at, ev.Seconds))
		}
		return false, nil
	}
	if r.orderOptional {
		record(r.audit)
		if ev.Order == "" {
			if r.raise {
				return s.raise(tx, st.ID, at, ev)
			}
			return false, nil
		}
	}
	o, err := loadOrder(tx, ev.Order)
	if ErrorCode(err) == ENotFound || (err == nil && o.Site != st.ID) {
		record(string(ev.Kind) + ":unknown_order")
		s.log.Warn("edge event for unknown order", "site", st.ID, "order", ev.Order, "kind", ev.Kind)
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !r.orderOptional && r.audit != "" {
		record(r.audit)
	}
	return false, s.apply(tx, st, o, &step{on: r.on, at: at, by: System, ev: ev})
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

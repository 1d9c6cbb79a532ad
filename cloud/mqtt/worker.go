package mqtt

import (
	"errors"
	"slices"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/protocol"
)

// worker handles the messages of the sites that hash to it. Everything it keeps per
// site is touched only by its own goroutine, so it needs no lock. Events are staged
// per site in sequence order and committed together ([worker.commit]); every other
// message but a command ack commits first the staged events when its site has some, so
// a site's messages take effect in arrival order (command acks: [worker.commandAck]).
type worker struct {
	a     *Adapter
	q     *queue
	sites map[string]*siteState // owned by the worker goroutine

	staged  []string // sites with staged events, in the order they were staged
	nstaged int      // events staged, all sites
	acks    []string // sites owed an EventAck after the current batch
	// inflight are acks published but not yet confirmed by the broker: checked later
	// rather than waited for, so the next batch does not wait on a round trip.
	inflight []pendingAck
	// progress are the round's command acks, recorded with its commit (commitRound).
	progress []cmdAck
}

type cmdAck struct {
	site string
	at   time.Time
	ack  protocol.CommandAck
}

type pendingAck struct {
	site string
	seq  uint64
	tok  paho.Token
}

// siteState is what the adapter remembers of one site between messages.
type siteState struct {
	// hw is the committed event high water as far as this process knows; hwKnown
	// false means "read it from the domain before the next event".
	hw      uint64
	hwKnown bool
	// run are the events after hw staged for the next commit, consecutive.
	run []protocol.Message
	// held are events received after a gap, by sequence, waiting for the gap to fill.
	held map[uint64]protocol.Message
	// ackDue: an EventAck should go out at the end of the current batch.
	ackDue bool
	// rejected are the site's latest rejected events (at most maxRejections), repeated
	// in every ack while within maxEdgeWindow of the high water: an edge that missed
	// the ack naming one learns it from a later one.
	rejected []protocol.Rejection

	// statusID and statusGen identify the last status message and the connection it
	// came on, to drop a duplicate delivery (MQTT is at least once; a subscription
	// racing a retained publish also yields the message twice).
	statusID  string
	statusGen uint64

	lastSeen     time.Time // last message of any kind from the site
	onlineKnown  bool      // a status was seen by this process
	online       bool
	offlineSince time.Time // last sign of life before the edge went offline
}

// next is the sequence the site's next staged event must have.
func (s *siteState) next() uint64 { return s.hw + uint64(len(s.run)) + 1 }

func (w *worker) site(id string) *siteState {
	s, ok := w.sites[id]
	if !ok {
		s = &siteState{}
		w.sites[id] = s
	}
	return s
}

func (w *worker) run() {
	var buf []task
	for {
		batch := w.q.take(buf)
		if batch == nil {
			return
		}
		for i, t := range batch {
			switch {
			case (t.kind == taskMessage || t.kind == taskTimeout) && !w.a.owns(t.site):
				// Queued before the site was lost (or in flight while it moved).
				if t.kind == taskMessage {
					w.a.unowned(t.site, t.ch)
				} else {
					w.a.jobs.forget(t.timeoutCmd) // the owner arms its own
				}
			case t.isEvent():
				w.stage(t)
			case t.kind == taskMessage && t.ch == protocol.ChanCommandAck:
				w.commandAck(t)
			default:
				// A site's messages take effect in arrival order, so its staged events
				// commit before its other message; other sites' staged events wait for
				// the round's shared commit (a burst of births after a restart would
				// otherwise cost a commit per site, every edge's ack waiting for all).
				if s, ok := w.sites[t.site]; ok && len(s.run) > 0 {
					w.commit()
				}
				w.handle(t)
			}
			batch[i] = task{} // release the payload
		}
		w.commitRound()
		w.flushAcks()
		buf = batch
	}
}

// commandAck decodes a command ack for the round's commit (commitRound). Unlike a
// site's other messages it does not commit the site's staged events first: a command's
// state never depends on the site's events (the edge reports SUCCEEDED once the door
// event is in its outbox, not once the cloud has it).
func (w *worker) commandAck(t task) {
	m, ok := w.decode(t)
	if !ok {
		return
	}
	w.site(t.site).lastSeen = t.at
	w.progress = append(w.progress, cmdAck{site: t.site, at: t.at, ack: m.Body.(protocol.CommandAck)})
}

// commitRound commits the round's staged events and, at the same time, records its
// command acks, each site's in arrival order and the sites side by side: each ack is
// its own store Update, and they share the round's commit with the events (the store's
// group commit), instead of one commit after another, each holding every other site of
// the worker (at 10,000 edges an operator's remote open waited most of its time here).
func (w *worker) commitRound() {
	bySite := map[string][]cmdAck{}
	for _, c := range w.progress {
		bySite[c.site] = append(bySite[c.site], c)
	}
	var wg sync.WaitGroup
	for _, acks := range bySite {
		wg.Go(func() {
			for _, c := range acks {
				w.a.jobs.progress(c.site, c.ack, c.at)
			}
		})
	}
	w.commit()
	wg.Wait()
	clear(w.progress)
	w.progress = w.progress[:0]
}

func (w *worker) ackLater(site string, s *siteState) {
	if !s.ackDue {
		s.ackDue = true
		w.acks = append(w.acks, site)
	}
}

// flushAcks publishes one cumulative EventAck per site that needs one. It does not wait
// for the PUBACKs (a PUBACK proves nothing to the edge, which resends whatever stays
// unacknowledged): it checks them on later rounds, and waits only when too many are
// outstanding.
func (w *worker) flushAcks() {
	a := w.a
	for _, id := range w.acks {
		s, ok := w.sites[id]
		if !ok {
			continue // lost and forgotten since: the new owner acknowledges
		}
		s.ackDue = false
		if s.hw == 0 || !a.owns(id) {
			// A replica that lost the site stays silent even about what it committed:
			// its ack, not advancing, would spend the edge's fast resend before the new
			// owner subscribed (protocol rule ack.resume).
			continue
		}
		tok, err := a.publishAsync(id, protocol.ChanEventAck, protocol.Header{}, protocol.EventAck{Seq: s.hw, Rejected: s.rejections()})
		if err != nil {
			a.warn.Warn("mqtt: event ack not sent", "site", id, "seq", s.hw, "err", err)
			continue
		}
		w.inflight = append(w.inflight, pendingAck{id, s.hw, tok})
	}
	w.acks = w.acks[:0]
	keep := w.inflight[:0]
	for i, p := range w.inflight {
		wait := len(w.inflight)-i > maxInflightAcks
		if !wait {
			select {
			case <-p.tok.Done():
			default:
				keep = append(keep, p)
				continue
			}
		}
		if err := a.wait(a.ctx, p.tok); err != nil {
			// The edge resends unacknowledged events; they are acked again.
			a.warn.Warn("mqtt: event ack not confirmed", "site", p.site, "seq", p.seq, "err", err)
		}
	}
	clear(w.inflight[len(keep):])
	w.inflight = keep
}

// maxInflightAcks bounds the acks a worker has published without a PUBACK yet.
const maxInflightAcks = 1024

// maxRejections bounds the rejected events a site's acks repeat.
const maxRejections = 16

// noteRejected remembers r for the site's next acks (once per sequence).
func (s *siteState) noteRejected(r protocol.Rejection) {
	for _, have := range s.rejected {
		if have.Seq == r.Seq {
			return
		}
	}
	if len(s.rejected) == maxRejections {
		s.rejected = s.rejected[1:]
	}
	s.rejected = append(s.rejected, r)
}

// rejections are the rejected events an ack of s.hw names: those at or below it and
// within the largest window, which an edge may still hold.
func (s *siteState) rejections() []protocol.Rejection {
	keep := s.rejected[:0]
	for _, r := range s.rejected {
		if r.Seq+maxEdgeWindow > s.hw {
			keep = append(keep, r)
		}
	}
	s.rejected = keep
	var out []protocol.Rejection
	for _, r := range keep {
		if r.Seq <= s.hw {
			out = append(out, r)
		}
	}
	return out
}

func (w *worker) handle(t task) {
	a := w.a
	switch t.kind {
	case taskTimeout:
		a.jobs.expire(t.site, t.timeoutCmd)
		return
	case taskGained:
		w.gained(t.site)
		return
	case taskLost:
		w.lost(t.site)
		return
	case taskAckAgain:
		if s, ok := w.sites[t.site]; ok && s.hwKnown && a.owns(t.site) {
			w.ackLater(t.site, s)
		}
		return
	case taskAckKnown:
		for id, s := range w.sites {
			if a.owns(id) && (s.hwKnown || w.readHighWater(id, s)) {
				w.ackLater(id, s)
			}
		}
		return
	}
	m, ok := w.decode(t)
	if !ok {
		return
	}
	s := w.site(t.site)
	switch t.ch {
	case protocol.ChanStatus:
		if m.ID == s.statusID && t.gen == s.statusGen {
			return
		}
		s.statusID, s.statusGen = m.ID, t.gen
		w.status(t, s, m.Body.(protocol.Status))
		return // an offline status is the broker's, not a sign of life
	case protocol.ChanBirth:
		w.birth(t, s, m.Body.(protocol.Birth))
	case protocol.ChanTelemetry:
		ctx, cancel, f, ok := a.callFor(t.site)
		if !ok {
			return
		}
		err := a.cfg.Fleet.SiteTelemetry(ctx, t.site, m.Body.(protocol.Telemetry), t.at)
		cancel()
		w.domainErr(t.site, f, t.ch, err)
	case protocol.ChanDesiredGet:
		w.publishSnapshot(t.site)
	}
	s.lastSeen = t.at
}

// domainErr reports a failed call into the domain made for site with fence f. One that
// the store refused for its fence means the lease moved: the site is lost.
func (w *worker) domainErr(site string, f cloud.Fence, ch protocol.Channel, err error) {
	if err == nil {
		return
	}
	if isFenced(err) {
		w.a.leaseLost(site, f)
		return
	}
	w.a.m.fleetErrors.WithLabelValues(ch.String()).Inc()
	w.a.warn.Error("mqtt: domain refused message", "site", site, "channel", ch.String(), "err", err)
}

func (w *worker) status(t task, s *siteState, st protocol.Status) {
	a := w.a
	ch := StatusChange{Online: st.Online, At: t.at, LastSeen: s.lastSeen, Software: st.Software}
	wasOnline := s.onlineKnown && s.online
	if st.Online {
		switch lost := time.Unix(0, a.lostAt.Load()); {
		case s.onlineKnown && !s.online && !s.offlineSince.IsZero():
			ch.Outage = t.at.Sub(s.offlineSince)
		case wasOnline && a.lostAt.Load() != 0 && s.lastSeen.Before(lost):
			// The cloud lost the broker after it last heard from this site and now
			// hears its retained status again on resubscribing: a central outage.
			// The edge served pickups meanwhile, but could not reach the cloud.
			ch.Outage = t.at.Sub(lost)
		}
		s.lastSeen = t.at
		if !wasOnline {
			a.m.sitesOnline.Inc()
		}
	} else {
		if !s.onlineKnown || s.online {
			s.offlineSince = s.lastSeen
		}
		if wasOnline {
			a.m.sitesOnline.Dec()
		}
	}
	s.onlineKnown, s.online = true, st.Online
	ctx, cancel, f, ok := a.callFor(t.site)
	if !ok {
		return
	}
	defer cancel()
	w.domainErr(t.site, f, t.ch, a.cfg.Fleet.SiteStatus(ctx, t.site, ch))
	if ch.Outage > 0 {
		a.log.Info("mqtt: site back online", "site", t.site, "outage_seconds", ch.Outage.Seconds())
	}
}

func (w *worker) birth(t task, s *siteState, b protocol.Birth) {
	a := w.a
	ctx, cancel, f, ok := a.callFor(t.site)
	if !ok {
		return
	}
	err := a.cfg.Fleet.SiteBirth(ctx, t.site, b)
	cancel()
	if err != nil {
		w.domainErr(t.site, f, t.ch, err)
		return
	}
	if s.hwKnown && b.OutboxHighWater < s.hw {
		a.log.Warn("mqtt: edge outbox started over", "site", t.site, "edge_high_water", b.OutboxHighWater, "cloud_high_water", s.hw)
	}
	// The domain may have reset the high water (outbox started over): read it again.
	s.hwKnown = false
	s.held = nil
	w.publishSnapshot(t.site)
	a.jobs.republish(t.site)
}

func (w *worker) publishSnapshot(site string) {
	a := w.a
	ctx, cancel, f, ok := a.callFor(site)
	if !ok {
		return
	}
	d, err := a.cfg.Fleet.DesiredSnapshot(ctx, site)
	cancel()
	if isFenced(err) {
		w.a.leaseLost(site, f)
		return
	}
	if err != nil {
		a.m.fleetErrors.WithLabelValues(protocol.ChanDesired.String()).Inc()
		a.log.Error("mqtt: desired snapshot", "site", site, "err", err)
		return
	}
	d.Full = true
	if err := a.publish(a.ctx, site, protocol.ChanDesired, protocol.Header{Seq: d.Version}, d); err != nil {
		a.log.Warn("mqtt: desired snapshot not published", "site", site, "version", d.Version, "err", err)
	}
}

// decode decodes t's payload; an undecodable one is counted and warned about, and
// reported not ok.
func (w *worker) decode(t task) (protocol.Message, bool) {
	m, err := protocol.DecodeOn(t.ch, t.payload)
	if err != nil {
		w.a.m.rejected.WithLabelValues(t.ch.String()).Inc()
		w.a.warn.Warn("mqtt: invalid message from edge", "site", t.site, "channel", t.ch.String(), "err", err)
		return protocol.Message{}, false
	}
	return m, true
}

// stage decodes an event and stages it for the next commit if it is the site's next in
// sequence (with the held events that follow it); see the package doc. An event that
// does not decode but names its sequence is staged as a [protocol.RejectedEvent]: the
// domain records the rejection at that sequence and the ack names it, so the site's
// stream goes on (resending it would change nothing).
func (w *worker) stage(t task) {
	a := w.a
	m, err := protocol.DecodeOn(t.ch, t.payload)
	if err != nil {
		a.m.rejected.WithLabelValues(t.ch.String()).Inc()
		r, ok := protocol.RejectEvent(t.payload, err)
		if !ok {
			// No sequence to name: nothing can be acknowledged for it.
			a.warn.Warn("mqtt: invalid message from edge", "site", t.site, "channel", t.ch.String(), "err", err)
			return
		}
		a.warn.Warn("mqtt: malformed event rejected", "site", t.site, "seq", r.Seq, "field", r.Field, "err", err)
		m = protocol.Message{Header: protocol.Header{Seq: r.Seq, Time: t.at}, Type: protocol.TypeEvent, Body: protocol.RejectedEvent{Rejection: r}}
	}
	s := w.site(t.site)
	s.lastSeen = t.at
	if m.Seq == 0 {
		a.m.rejected.WithLabelValues(t.ch.String()).Inc()
		a.warn.Warn("mqtt: event without sequence", "site", t.site)
		return
	}
	if !s.hwKnown {
		// Unknown: first event of the site since start, or after a birth that may have
		// reset it (a stale value would acknowledge a restarted outbox's new events as
		// duplicates). Afterwards this worker is the only one that advances it. Nothing
		// of the site is staged then: a birth commits the staged events first.
		if !w.readHighWater(t.site, s) {
			return
		}
	}
	switch next := s.next(); {
	case m.Seq < next:
		a.m.duplicate.Inc()
		if rj, ok := m.Body.(protocol.RejectedEvent); ok && m.Seq <= s.hw {
			s.noteRejected(rj.Rejection) // resent: its ack was missed
		}
		w.ackLater(t.site, s) // the edge may have missed the ack
		return
	case m.Seq > next:
		if s.held == nil {
			s.held = map[uint64]protocol.Message{}
		}
		if _, dup := s.held[m.Seq]; dup {
			a.m.duplicate.Inc()
		} else if m.Seq-s.hw > uint64(a.cfg.GapHold) {
			// Beyond any window an edge may use: not accepted, not acknowledged; the
			// edge sends it again once the events before it are acknowledged.
			a.m.refused.Inc()
			a.warn.Warn("mqtt: event beyond the gap hold refused", "site", t.site, "seq", m.Seq, "high_water", s.hw)
		} else {
			s.held[m.Seq] = m
			a.m.held.Inc()
			a.warn.Warn("mqtt: event after a gap held", "site", t.site, "seq", m.Seq, "missing", next)
		}
		w.ackLater(t.site, s) // tells the edge where to resume
		return
	}
	if len(s.run) == 0 {
		w.staged = append(w.staged, t.site)
	}
	for {
		s.run = append(s.run, m)
		w.nstaged++
		next, ok := s.held[s.next()]
		if !ok {
			break
		}
		delete(s.held, next.Seq)
		m = next
	}
	if w.nstaged >= a.cfg.BatchMax {
		// A long queue: commit and acknowledge what is staged now, so the edges may send
		// on while the rest is applied.
		w.commit()
		w.flushAcks()
	}
}

// commit makes every staged event durable in one call into the domain (one shared
// transaction), then records the new high waters; the acks go out after the batch.
// Events of a site that the domain did not apply go back to the held events, to be
// applied when the edge resends the first of them.
func (w *worker) commit() {
	if len(w.staged) == 0 {
		return
	}
	a := w.a
	// A site lost since its events were staged is not committed: its events stay
	// unacknowledged, and the edge resends them to the new owner.
	w.staged = slices.DeleteFunc(w.staged, func(id string) bool {
		if a.owns(id) {
			return false
		}
		s := w.sites[id]
		a.m.unownedEvents.Add(float64(len(s.run)))
		w.nstaged -= len(s.run)
		clear(s.run)
		s.run = s.run[:0]
		return true
	})
	if len(w.staged) == 0 {
		return
	}
	runs := make([]EventRun, len(w.staged))
	fences := make([]cloud.Fence, len(w.staged))
	for i, id := range w.staged {
		runs[i] = EventRun{Site: id, Events: w.sites[id].run}
		fences[i], _ = a.fence(id)
	}
	res := w.siteEvents(runs, fences)
	var fenced []int
	for i, id := range w.staged {
		s := w.sites[id]
		var r EventResult
		if i < len(res) {
			r = res[i]
		} else {
			r = EventResult{Ack: s.hw, Err: errMissingResult}
		}
		applied, rejected := 0, 0
		for _, m := range s.run {
			if m.Seq <= r.Ack {
				if rj, ok := m.Body.(protocol.RejectedEvent); ok {
					rejected++
					s.noteRejected(rj.Rejection)
				} else {
					applied++
				}
				continue
			}
			if s.held == nil {
				s.held = map[uint64]protocol.Message{}
			}
			s.held[m.Seq] = m
		}
		a.m.ingested.Add(float64(applied))
		a.m.rejectedEvents.Add(float64(rejected))
		if r.Err != nil && isFenced(r.Err) {
			a.m.unownedEvents.Add(float64(len(s.run) - applied - rejected))
			fenced = append(fenced, i)
		} else if r.Err != nil {
			a.m.failed.Add(float64(len(s.run) - applied - rejected))
			w.domainErr(id, fences[i], protocol.ChanEvents, r.Err)
		}
		s.hw = max(s.hw, r.Ack)
		if r.Err != nil {
			s.hwKnown = false // read the domain's own before the next event
		}
		clear(s.run)
		s.run = s.run[:0]
		// Anything still held at or below the high water is a duplicate now.
		for seq := range s.held {
			if seq <= s.hw {
				delete(s.held, seq)
			}
		}
		w.ackLater(id, s)
	}
	for _, i := range fenced {
		w.a.leaseLost(w.staged[i], fences[i])
	}
	w.staged = w.staged[:0]
	w.nstaged = 0
}

// siteEvents calls [Events.SiteEvents] with the fences of every run's site. A shared
// store fails the whole transaction when one fence no longer holds, and then every run
// reports [cloud.ErrFenced]; so the fenced runs of a call for several sites are applied
// again one by one, each with its own fence only, to tell the sites that moved from
// those that did not.
func (w *worker) siteEvents(runs []EventRun, fences []cloud.Fence) []EventResult {
	a := w.a
	ctx, cancel := a.call()
	if a.own != nil {
		ctx = cloud.WithFences(ctx, fences...)
	}
	res := a.cfg.Fleet.SiteEvents(ctx, runs)
	cancel()
	if len(runs) < 2 {
		return res
	}
	for i := range min(len(res), len(runs)) {
		if !isFenced(res[i].Err) {
			continue
		}
		ctx, cancel := a.call()
		one := a.cfg.Fleet.SiteEvents(cloud.WithFences(ctx, fences[i]), runs[i:i+1])
		cancel()
		if len(one) == 1 {
			res[i] = one[0]
		}
	}
	return res
}

// readHighWater reads the site's committed event high water from the domain into s.
func (w *worker) readHighWater(site string, s *siteState) bool {
	a := w.a
	ctx, cancel, f, ok := a.callFor(site)
	if !ok {
		return false
	}
	hw, err := a.cfg.Fleet.EventHighWater(ctx, site)
	cancel()
	if err != nil {
		w.domainErr(site, f, protocol.ChanEvents, err)
		return false
	}
	s.hw, s.hwKnown = hw, true
	return true
}

// gained takes up a site this replica just gained (its topics are subscribed by now):
// the high water it may remember is stale, so it reads it afresh and
// acknowledges it at once, and again after gainAckRepeat. The edge may hold events the
// previous owner never committed (they died with its queue): a 1.1 edge resends them
// on a non-advancing ack. The first ack is that for an edge that saw its old owner's
// last ack; for one that did not (the old owner died between commit and ack) the first
// ack advances and the repeat is the non-advancing one. Then the site's pending
// commands are republished and their timers armed: the owner times them out.
func (w *worker) gained(site string) {
	a := w.a
	if !a.owns(site) {
		return // lost again since
	}
	s := w.site(site)
	s.hwKnown, s.held = false, nil
	if w.readHighWater(site, s) {
		w.ackLater(site, s)
		time.AfterFunc(gainAckRepeat, func() { a.dispatch(task{site: site, kind: taskAckAgain}) })
	}
	a.jobs.republish(site)
	// After the repeated ack has brought the edge's resend: a birth resets what the
	// worker holds of the site, which would drop a resend in progress.
	time.AfterFunc(2*gainAckRepeat, func() {
		if a.owns(site) {
			a.resync(site)
		}
	})
}

// lost forgets a site this replica lost: its held events (unacknowledged: the edge
// resends them to the new owner), its cached high water and presence, and its command
// timers. Its staged events were dropped by the commit before this task.
func (w *worker) lost(site string) {
	if w.a.owns(site) {
		return // gained again since: the gain's task follows
	}
	w.forget(site)
	w.a.jobs.disarmSite(site)
}

// forget drops what the worker keeps of site (nothing of it may be staged).
func (w *worker) forget(site string) {
	s, ok := w.sites[site]
	if !ok {
		return
	}
	if s.onlineKnown && s.online {
		w.a.m.sitesOnline.Dec() // the new owner counts it
	}
	delete(w.sites, site)
}

var errMissingResult = errors.New("the domain returned no result for the run")

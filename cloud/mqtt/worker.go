package mqtt

import (
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/larder-lockers/larder/protocol"
)

// worker handles the messages of the sites that hash to it, one at a time. Everything
// it keeps per site is touched only by its own goroutine, so it needs no lock.
type worker struct {
	a     *Adapter
	q     *queue
	sites map[string]*siteState // owned by the worker goroutine
}

// siteState is what the adapter remembers of one site between messages.
type siteState struct {
	// hw is the event high water as far as this process knows; hwKnown false means
	// "read it from the domain before the next event".
	hw      uint64
	hwKnown bool
	// held are events received after a gap, by sequence, waiting for the gap to fill.
	held map[uint64]protocol.Message
	// ackDue: an EventAck should go out at the end of the current batch.
	ackDue bool

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
	var acks []string
	for {
		batch := w.q.take(buf)
		if batch == nil {
			return
		}
		for i, t := range batch {
			w.handle(t)
			batch[i] = task{} // release the payload
			if s := w.sites[t.site]; s != nil && s.ackDue && !containsSite(acks, t.site) {
				acks = append(acks, t.site)
			}
		}
		w.flushAcks(acks)
		acks = acks[:0]
		buf = batch
	}
}

func containsSite(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// flushAcks publishes one cumulative EventAck per site that needs one, then waits for
// the PUBACKs together: under load one ack covers many events.
func (w *worker) flushAcks(sites []string) {
	a := w.a
	type pending struct {
		site string
		tok  paho.Token
	}
	var toks []pending
	for _, id := range sites {
		s := w.sites[id]
		s.ackDue = false
		if s.hw == 0 {
			continue
		}
		tok, err := a.publishAsync(id, protocol.ChanEventAck, protocol.Header{}, protocol.EventAck{Seq: s.hw})
		if err != nil {
			a.log.Warn("mqtt: event ack not sent", "site", id, "seq", s.hw, "err", err)
			continue
		}
		toks = append(toks, pending{id, tok})
	}
	for _, p := range toks {
		if err := a.wait(a.ctx, p.tok); err != nil {
			// The edge resends unacknowledged events; the next one is acked again.
			a.log.Warn("mqtt: event ack not confirmed", "site", p.site, "err", err)
		}
	}
}

func (w *worker) handle(t task) {
	a := w.a
	if t.timeoutCmd != "" {
		a.jobs.expire(t.site, t.timeoutCmd)
		return
	}
	m, err := protocol.DecodeOn(t.ch, t.payload)
	if err != nil {
		a.m.rejected.WithLabelValues(t.ch.String()).Inc()
		a.log.Warn("mqtt: invalid message from edge", "site", t.site, "channel", t.ch.String(), "err", err)
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
	case protocol.ChanEvents:
		w.event(t, s, m)
	case protocol.ChanTelemetry:
		ctx, cancel := a.call()
		err = a.cfg.Fleet.SiteTelemetry(ctx, t.site, m.Body.(protocol.Telemetry), t.at)
		cancel()
		w.domainErr(t, err)
	case protocol.ChanCommandAck:
		a.jobs.progress(t.site, m.Body.(protocol.CommandAck), t.at)
	case protocol.ChanDesiredGet:
		w.publishSnapshot(t.site)
	}
	s.lastSeen = t.at
}

func (w *worker) domainErr(t task, err error) {
	if err == nil {
		return
	}
	w.a.m.fleetErrors.WithLabelValues(t.ch.String()).Inc()
	w.a.log.Error("mqtt: domain refused message", "site", t.site, "channel", t.ch.String(), "err", err)
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
	ctx, cancel := a.call()
	defer cancel()
	w.domainErr(t, a.cfg.Fleet.SiteStatus(ctx, t.site, ch))
	if ch.Outage > 0 {
		a.log.Info("mqtt: site back online", "site", t.site, "outage_seconds", ch.Outage.Seconds())
	}
}

func (w *worker) birth(t task, s *siteState, b protocol.Birth) {
	a := w.a
	ctx, cancel := a.call()
	err := a.cfg.Fleet.SiteBirth(ctx, t.site, b)
	cancel()
	if err != nil {
		w.domainErr(t, err)
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
	ctx, cancel := a.call()
	d, err := a.cfg.Fleet.DesiredSnapshot(ctx, site)
	cancel()
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

// event applies one edge event in sequence order; see the package doc.
func (w *worker) event(t task, s *siteState, m protocol.Message) {
	a := w.a
	if m.Seq == 0 {
		a.m.rejected.WithLabelValues(t.ch.String()).Inc()
		a.log.Warn("mqtt: event without sequence", "site", t.site)
		return
	}
	if !s.hwKnown {
		// Unknown: first event of the site since start, or after a birth that may have
		// reset it (a stale value would acknowledge a restarted outbox's new events as
		// duplicates). Afterwards this worker is the only one that advances it.
		ctx, cancel := a.call()
		hw, err := a.cfg.Fleet.EventHighWater(ctx, t.site)
		cancel()
		if err != nil {
			w.domainErr(t, err)
			return
		}
		s.hw, s.hwKnown = hw, true
	}
	switch {
	case m.Seq <= s.hw:
		a.m.events.WithLabelValues("duplicate").Inc()
		s.ackDue = true // the edge may have missed the ack
		return
	case m.Seq > s.hw+1:
		if s.held == nil {
			s.held = map[uint64]protocol.Message{}
		}
		if _, dup := s.held[m.Seq]; !dup && len(s.held) >= a.cfg.GapHold {
			a.m.events.WithLabelValues("dropped").Inc()
		} else {
			s.held[m.Seq] = m
			a.m.events.WithLabelValues("held").Inc()
		}
		s.ackDue = true // tells the edge where to resume
		return
	}
	for {
		ctx, cancel := a.call()
		err := a.cfg.Fleet.SiteEvent(ctx, t.site, m)
		cancel()
		if err != nil {
			a.m.events.WithLabelValues("failed").Inc()
			w.domainErr(t, err)
			s.ackDue = true
			return
		}
		a.m.events.WithLabelValues("ingested").Inc()
		s.hw = m.Seq
		s.ackDue = true
		next, ok := s.held[s.hw+1]
		if !ok {
			break
		}
		delete(s.held, s.hw+1)
		m = next
	}
	// Anything still held at or below the high water is a duplicate now.
	for seq := range s.held {
		if seq <= s.hw {
			delete(s.held, seq)
		}
	}
}

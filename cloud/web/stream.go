package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"sync"
	"time"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/cloud/notify"
	"github.com/larder-lockers/larder/protocol"
)

// The ops stream (GET /ops/stream, server-sent events).
//
// The service has no change feed, so one poller per Handler re-reads what is being
// watched every PollEvery, and only while someone watches: the fleet for the "fleet"
// topic, one site's detail for each "site:<id>" topic. An event that differs from the
// last one sent is pushed to every subscriber of its topic. Each subscriber holds at
// most one pending event: a slow client skips to the newest instead of queueing stale
// ones. A new subscriber gets the last event at once.
//
// A "site" event is the site's whole detail. A "fleet" event is the fleet's counts and
// the sites that changed since the previous poll (each site's summary is compared by a
// hash of it without its last-seen time, which moves with every message): the console
// then re-reads the page it shows. A client that skipped an event has missed changes,
// which is harmless as long as it re-reads its page on the next one.
//
// The cost is one read of the fleet index per PollEvery for the whole dashboard
// audience, not per viewer (about 10 ms and a hash of each summary at 10,000 sites).

// pollPrincipal reads for the poller. The data is the same for every ops viewer, and each
// viewer's own key is checked when the stream opens and every minute after.
var pollPrincipal = cloud.Principal{Role: cloud.RoleOps, Subject: "ops-stream"}

// FleetEvent is the data of a "fleet" event.
type FleetEvent struct {
	// Seq numbers the fleet events of this stream's poller.
	Seq uint64 `json:"seq"`
	// Fleet is the number of sites; Totals counts them by state, Health by health.
	Fleet  int                      `json:"fleet"`
	Totals map[cloud.FleetState]int `json:"totals"`
	Health map[cloud.Health]int     `json:"health"`
	// Changed are the sites whose summary changed since the previous fleet event (every
	// site in the first), at most MaxChanged of them; More counts the rest.
	Changed []cloud.SiteSummary `json:"changed"`
	More    int                 `json:"more,omitempty"`
	// Backlog counts the notification outbox by state; absent without a Backlog.
	Backlog *notify.Stats `json:"backlog,omitempty"`
}

// MaxChanged is the most changed sites one fleet event carries.
const MaxChanged = 100

type hub struct {
	h    *Handler
	wake chan struct{}
	done chan struct{}

	mu      sync.Mutex
	topics  map[string]*topic // guarded by mu
	running bool              // a poller goroutine runs; guarded by mu
	closed  bool              // guarded by mu
	// freshFleet: the fleet topic was created since the last poll, so the next fleet
	// event compares with nothing; guarded by mu.
	freshFleet bool

	// Used by the poller goroutine only: each site's summary hash as of the last fleet
	// event, and that event's number.
	prints      map[string]uint64
	fleetSeq    uint64
	lastBacklog *notify.Stats
}

type topic struct {
	subs map[*subscriber]struct{}
	last []byte // the last snapshot sent, nil before the first
}

type subscriber struct {
	ch chan []byte // capacity 1: the newest snapshot not yet written
}

func newHub(h *Handler) *hub {
	return &hub{h: h, wake: make(chan struct{}, 1), done: make(chan struct{}), topics: map[string]*topic{}}
}

func (hb *hub) subscribe(name string) (*subscriber, bool) {
	s := &subscriber{ch: make(chan []byte, 1)}
	hb.mu.Lock()
	defer hb.mu.Unlock()
	if hb.closed {
		return nil, false
	}
	t := hb.topics[name]
	if t == nil {
		t = &topic{subs: map[*subscriber]struct{}{}}
		hb.topics[name] = t
		hb.freshFleet = hb.freshFleet || name == "fleet"
	}
	t.subs[s] = struct{}{}
	if t.last != nil {
		s.ch <- t.last
	}
	if !hb.running {
		hb.running = true
		go hb.poll()
	}
	select {
	case hb.wake <- struct{}{}:
	default:
	}
	return s, true
}

func (hb *hub) unsubscribe(name string, s *subscriber) {
	hb.mu.Lock()
	defer hb.mu.Unlock()
	if t := hb.topics[name]; t != nil {
		delete(t.subs, s)
		if len(t.subs) == 0 {
			delete(hb.topics, name)
		}
	}
}

func (hb *hub) close() {
	hb.mu.Lock()
	defer hb.mu.Unlock()
	if !hb.closed {
		hb.closed = true
		close(hb.done)
	}
}

// poll runs while any topic has subscribers.
func (hb *hub) poll() {
	t := time.NewTicker(hb.h.opt.PollEvery)
	defer t.Stop()
	for {
		select {
		case <-hb.done:
			hb.mu.Lock()
			hb.running = false
			hb.mu.Unlock()
			return
		case <-hb.wake:
		case <-t.C:
		}
		hb.mu.Lock()
		names := make([]string, 0, len(hb.topics))
		for n := range hb.topics {
			names = append(names, n)
		}
		if len(names) == 0 {
			hb.running = false
			hb.mu.Unlock()
			return
		}
		if hb.freshFleet {
			hb.prints, hb.freshFleet = nil, false
		}
		hb.mu.Unlock()
		for _, n := range names {
			var data []byte
			var err error
			if n == "fleet" {
				data, err = hb.fleetChanges(context.Background())
			} else {
				data, err = hb.h.snapshot(context.Background(), n)
			}
			if err != nil {
				hb.h.log.Warn("ops stream snapshot", "topic", topicKind(n), "err", err)
				continue
			}
			if data != nil {
				hb.publish(n, data)
			}
		}
	}
}

func (hb *hub) publish(name string, data []byte) {
	hb.mu.Lock()
	defer hb.mu.Unlock()
	t := hb.topics[name]
	if t == nil || bytes.Equal(t.last, data) {
		return
	}
	t.last = data
	for s := range t.subs {
		select {
		case <-s.ch: // drop the stale snapshot the client has not taken yet
		default:
		}
		s.ch <- data
	}
}

func topicKind(name string) string {
	if name == "fleet" {
		return name
	}
	return "site"
}

// fleetChanges reads the fleet and returns a "fleet" event of what changed since the
// last one, or nil if nothing did.
func (hb *hub) fleetChanges(ctx context.Context) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	m, err := hb.h.svc.Fleet(ctx, pollPrincipal, cloud.FleetFilter{Sort: "id"})
	if err != nil {
		return nil, err
	}
	ev := FleetEvent{Fleet: m.Fleet, Totals: m.Totals, Health: m.Health, Changed: []cloud.SiteSummary{}}
	if hb.h.backlog != nil {
		st, err := hb.h.backlog.Stats(ctx)
		if err != nil {
			return nil, err
		}
		ev.Backlog = &st
	}
	prints := make(map[string]uint64, len(m.Sites))
	for _, s := range m.Sites {
		unseen := s
		unseen.LastSeen = time.Time{}
		b, err := json.Marshal(unseen)
		if err != nil {
			return nil, err
		}
		h := fnv.New64a()
		h.Write(b)
		prints[s.ID] = h.Sum64()
		if old, ok := hb.prints[s.ID]; ok && old == prints[s.ID] {
			continue
		}
		if len(ev.Changed) < MaxChanged {
			ev.Changed = append(ev.Changed, s)
		} else {
			ev.More++
		}
	}
	backlogSame := hb.lastBacklog != nil && ev.Backlog != nil && *hb.lastBacklog == *ev.Backlog
	hb.prints = prints
	if hb.fleetSeq > 0 && len(ev.Changed) == 0 && (ev.Backlog == nil || backlogSame) {
		return nil, nil
	}
	hb.lastBacklog = ev.Backlog
	hb.fleetSeq++
	ev.Seq = hb.fleetSeq
	return sseEvent("fleet", ev)
}

// snapshot reads one site's detail as a "site" event.
func (h *Handler) snapshot(ctx context.Context, name string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	d, err := h.svc.GetSite(ctx, pollPrincipal, name[len("site:"):])
	if err != nil {
		return nil, err
	}
	return sseEvent("site", d)
}

// sseEvent is an SSE event (event line and data line).
func sseEvent(event string, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	// json.Marshal never emits a raw newline, so one data line carries the whole object.
	return fmt.Appendf(nil, "event: %s\ndata: %s\n\n", event, b), nil
}

// stream serves GET /ops/stream[?site=<id>]: "fleet" events (FleetEvent), or "site"
// events (cloud.SiteDetail) for one site; a "signed_out" event and the end of the stream
// when the key is revoked.
func (h *Handler) stream(w http.ResponseWriter, r *http.Request) {
	p, key, err := h.streamPrincipal(r)
	if err != nil {
		h.domainError(w, r, err)
		return
	}
	name := "fleet"
	if site := r.URL.Query().Get("site"); site != "" {
		if !protocol.ValidSite(site) {
			h.domainError(w, r, cloud.Invalid("site", "not a valid site id"))
			return
		}
		if _, err := h.svc.GetSite(r.Context(), p, site); err != nil {
			h.domainError(w, r, err)
			return
		}
		name = "site:" + site
	}
	rc := http.NewResponseController(w)
	// A server WriteTimeout would cut the stream: this response has no deadline.
	rc.SetWriteDeadline(time.Time{})
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	// Reconnect after 3 s when the connection drops; EventSource does it by itself.
	if _, err := w.Write([]byte("retry: 3000\n\n")); err != nil {
		return
	}
	rc.Flush()

	s, ok := h.hub.subscribe(name)
	if !ok {
		return
	}
	defer h.hub.unsubscribe(name, s)
	h.met.streamOpened()
	defer h.met.streamClosed()
	beat := time.NewTicker(h.opt.Heartbeat)
	defer beat.Stop()
	recheck := time.NewTicker(time.Minute)
	defer recheck.Stop()
	for {
		var out []byte
		select {
		case <-r.Context().Done():
			return
		case <-h.hub.done:
			return
		case out = <-s.ch:
		case <-beat.C:
			out = []byte(": ping\n\n")
		case <-recheck.C:
			if _, err := h.svc.Authenticate(r.Context(), key); cloud.ErrorCode(err) == cloud.EUnauthorized {
				w.Write([]byte("event: signed_out\ndata: {}\n\n"))
				rc.Flush()
				return
			}
			continue
		}
		if _, err := w.Write(out); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

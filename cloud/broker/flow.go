package broker

import (
	"bytes"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/mochi-mqtt/server/v2/system"
	"github.com/prometheus/client_golang/prometheus"
)

// flowWait bounds how long a publisher is held for a full window. It is far below the
// edges' keepalive (a held publisher's PINGREQ is not read meanwhile), and a cloud that
// acknowledges nothing for this long is stuck, not slow: the message then goes to mochi's
// bounded write queue and, beyond it, is dropped and counted.
const flowWait = 5 * time.Second

// flowHook is the back-pressure of the fleet's fan-in. mochi acknowledges a PUBLISH and
// hands it to every subscriber without waiting for any of them; a QoS 1 message for a
// subscriber whose in-flight window (MaxInflight) or write queue (MaxWritesPending) is
// full is dropped. The cloud's one connection receives the whole fleet, so a burst of
// edges would lose events there. flowHook therefore holds a publisher in OnPublish
// (which runs on the publisher's own read goroutine, before mochi acknowledges and
// delivers) while a connected service-account subscriber has its window full; the
// held publisher's PUBACKs and next packets wait, so its own window throttles it.
//
// Only service-account connections are gated: an edge subscriber receives only from
// the cloud, whose one read goroutine must never wait for a single slow edge (it also
// carries the cloud's PUBACKs for the whole fleet). An edge's inbound traffic is bounded
// by its protocol (acks of its own outbox window, desired, commands) far below the
// window.
type flowHook struct {
	mochi.HookBase
	serviceUser []byte
	window      int
	srv         *mochi.Server
	log         *slog.Logger

	// gates is the gate of every connected service-account client, copied on write
	// (read on every publish, changed on a service connect or disconnect).
	gates   atomic.Pointer[[]*gate]
	gatesMu sync.Mutex // serialises writers of gates

	held, timedOut prometheus.Counter // nil when metrics are off

	// timeouts counts holds that ran out; lastDropped, lastInflightDropped and
	// lastTimeouts are the counts at the last OnSysInfoTick, so that drops and timeouts
	// are logged once a tick, aggregated.
	timeouts                                       atomic.Int64
	lastDropped, lastInflightDropped, lastTimeouts int64
	// ends counts the connections that ended with an error (quietDrops), logged once a
	// tick too.
	ends *connEnds
}

// gate is one service-account client's window: the QoS 1 messages mochi holds in
// flight for it (Inflight.Len: queued or written, not yet acknowledged), the QoS 0
// messages in its write queue, and the publishers admitted but not yet through mochi's
// delivery. Admission keeps the sum below window, which is below the write queue's and
// the in-flight window's sizes, so neither fills.
type gate struct {
	cl     *mochi.Client
	window int

	mu sync.Mutex // guards the fields below
	// admitted holds each publisher between OnPublish and OnPublished (one message
	// each: a publisher's packets are processed one at a time on its read goroutine);
	// the value is true for a QoS 0 message for cl, which then counts in queued0.
	admitted map[*mochi.Client]bool
	// queued0 is the QoS 0 messages for cl handed to its write queue and not yet
	// written (OnPacketSent) or dropped. It may dip below zero for a moment, when the
	// write loop sends a message before its publisher's OnPublished. A QoS 0 message
	// that reaches cl without passing OnPublish (a retained one on subscribe) would
	// leave it one too low for the connection's life; the protocol retains none.
	queued0 int
	// waiters are held publishers in arrival order; each is woken by one send.
	waiters []chan struct{}
	closed  bool // the client disconnected: nobody waits for it any more
}

func (h *flowHook) ID() string { return "larder-flow" }

func (h *flowHook) Provides(b byte) bool {
	switch b {
	case mochi.OnSubscribed, mochi.OnDisconnect, mochi.OnPublish, mochi.OnPublished,
		mochi.OnPublishDropped, mochi.OnPacketSent, mochi.OnQosComplete, mochi.OnQosDropped,
		mochi.OnSysInfoTick:
		return true
	}
	return false
}

func (h *flowHook) gateList() []*gate {
	if g := h.gates.Load(); g != nil {
		return *g
	}
	return nil
}

// OnSubscribed opens a gate for a service-account connection at its first
// subscription (a connection that subscribes to nothing receives nothing: the raw
// publishers of larder-load, say).
func (h *flowHook) OnSubscribed(cl *mochi.Client, _ packets.Packet, _ []byte) {
	if !bytes.Equal(cl.Properties.Username, h.serviceUser) || h.gateOf(cl) != nil {
		return
	}
	h.gatesMu.Lock()
	defer h.gatesMu.Unlock()
	gs := append(slices.Clone(h.gateList()), &gate{cl: cl, window: h.window, admitted: map[*mochi.Client]bool{}})
	h.gates.Store(&gs)
}

func (h *flowHook) gateOf(cl *mochi.Client) *gate {
	for _, g := range h.gateList() {
		if g.cl == cl {
			return g
		}
	}
	return nil
}

// OnDisconnect closes a departing service client's gate (releasing its waiters) and
// frees any admission a departing publisher still holds (mochi skips OnPublished when
// the PUBACK cannot be written).
func (h *flowHook) OnDisconnect(cl *mochi.Client, _ error, _ bool) {
	for _, g := range h.gateList() {
		if g.cl == cl {
			h.gatesMu.Lock()
			gs := slices.DeleteFunc(slices.Clone(h.gateList()), func(x *gate) bool { return x == g })
			h.gates.Store(&gs)
			h.gatesMu.Unlock()
			g.close()
			continue
		}
		g.release(cl)
	}
}

// OnPublish admits the publish at every gate but the publisher's own, waiting (at most
// flowWait) for room.
func (h *flowHook) OnPublish(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	for _, g := range h.gateList() {
		if g.cl == cl {
			continue
		}
		forMe := func() bool { return h.subscribes(g.cl, pk.TopicName, true) }
		qos0 := pk.FixedHeader.Qos == 0
		// QoS 0 is counted in the gate only when it surely goes there: a shared
		// subscription's message goes to one member, and an uncounted one would never
		// leave queued0.
		if qos0 && !h.subscribes(g.cl, pk.TopicName, false) {
			continue
		}
		switch g.acquire(cl, qos0, forMe) {
		case admitHeld:
			if h.held != nil {
				h.held.Inc()
			}
		case admitTimedOut:
			h.timeouts.Add(1) // logged once a tick (OnSysInfoTick)
			if h.held != nil {
				h.held.Inc()
				h.timedOut.Inc()
			}
		}
	}
	return pk, nil
}

// subscribes reports whether cl receives messages on topic (or may, through a shared
// subscription, if shared), so that a full gate holds only the publishes that would go
// to it.
func (h *flowHook) subscribes(cl *mochi.Client, topic string, shared bool) bool {
	subs := h.srv.Topics.Subscribers(topic)
	if _, ok := subs.Subscriptions[cl.ID]; ok {
		return true
	}
	if !shared {
		return false
	}
	for _, group := range subs.Shared {
		if _, ok := group[cl.ID]; ok {
			return true
		}
	}
	return false
}

// OnPublished frees the publisher's admission: its message is now in the subscriber's
// in-flight window (or was not for it).
func (h *flowHook) OnPublished(cl *mochi.Client, _ packets.Packet) {
	for _, g := range h.gateList() {
		g.release(cl)
	}
}

// OnQosComplete: the subscriber acknowledged a message, so its window has room.
func (h *flowHook) OnQosComplete(cl *mochi.Client, _ packets.Packet) { h.wake(cl) }

// OnPacketSent and OnPublishDropped: a QoS 0 message left the write queue.
func (h *flowHook) OnPacketSent(cl *mochi.Client, pk packets.Packet, _ []byte) {
	if pk.FixedHeader.Type == packets.Publish && pk.FixedHeader.Qos == 0 {
		h.unqueue(cl)
	}
}

func (h *flowHook) OnPublishDropped(cl *mochi.Client, pk packets.Packet) {
	if pk.FixedHeader.Qos == 0 {
		h.unqueue(cl)
	}
}

func (h *flowHook) unqueue(cl *mochi.Client) {
	if g := h.gateOf(cl); g != nil {
		g.mu.Lock()
		g.queued0--
		g.wakeOne()
		g.mu.Unlock()
	}
}

// OnQosDropped: mochi gave up a message in flight (expired), which also makes room.
func (h *flowHook) OnQosDropped(cl *mochi.Client, _ packets.Packet) { h.wake(cl) }

func (h *flowHook) wake(cl *mochi.Client) {
	if g := h.gateOf(cl); g != nil {
		g.mu.Lock()
		g.wakeOne()
		g.mu.Unlock()
	}
}

// OnSysInfoTick logs mochi's drops and the holds that ran out since the last tick as
// one line each: both are counted (larder_broker_*) but a line per message would flood
// the log exactly when something is wrong.
func (h *flowHook) OnSysInfoTick(info *system.Info) {
	d, i := atomic.LoadInt64(&info.MessagesDropped), atomic.LoadInt64(&info.InflightDropped)
	if d != h.lastDropped || i != h.lastInflightDropped {
		h.log.Warn("broker: messages dropped for subscribers that fell behind",
			"write_queue_full", d-h.lastDropped, "inflight_window_full", i-h.lastInflightDropped)
	}
	if t := h.timeouts.Load(); t != h.lastTimeouts {
		h.log.Warn("broker: publishers released after the longest hold: the cloud's connection acknowledged nothing meanwhile",
			"holds", t-h.lastTimeouts, "longest_hold", flowWait)
		h.lastTimeouts = t
	}
	h.lastDropped, h.lastInflightDropped = d, i
	if h.ends == nil {
		return
	}
	if n := h.ends.n.Swap(0); n > 0 {
		last := ""
		if p := h.ends.last.Load(); p != nil {
			last = *p
		}
		h.log.Warn("broker: connections ended with an error", "connections", n, "last_error", last)
	}
}

type admission int

const (
	admitAtOnce admission = iota
	admitHeld
	admitTimedOut
)

// acquire admits pub at g, waiting while the window is full and forMe says the message
// goes to g's client. Waiters are served in arrival order, and a newcomer queues behind
// them, so no publisher starves.
func (g *gate) acquire(pub *mochi.Client, qos0 bool, forMe func() bool) admission {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return admitAtOnce
	}
	if len(g.waiters) == 0 && g.room() {
		g.admitted[pub] = qos0
		return admitAtOnce
	}
	if !qos0 { // a QoS 0 message is known to be for g.cl
		g.mu.Unlock()
		mine := forMe() // outside the lock: a topic-tree walk
		g.mu.Lock()
		if !mine || g.closed {
			return admitAtOnce
		}
		if len(g.waiters) == 0 && g.room() { // room was made while we looked
			g.admitted[pub] = false
			return admitAtOnce
		}
	}
	timer := time.NewTimer(flowWait)
	defer timer.Stop()
	ch := make(chan struct{}, 1)
	g.waiters = append(g.waiters, ch)
	for {
		g.mu.Unlock()
		var timedOut bool
		select {
		case <-ch:
		case <-timer.C:
			timedOut = true
		}
		g.mu.Lock()
		switch {
		case g.closed:
			return admitHeld
		case timedOut:
			if i := slices.Index(g.waiters, ch); i >= 0 {
				g.waiters = slices.Delete(g.waiters, i, i+1)
			} else {
				g.wakeOne() // the wake-up sent to us as we gave up goes to the next one
			}
			g.admitted[pub] = qos0
			return admitTimedOut
		case g.room():
			g.admitted[pub] = qos0
			g.wakeOne() // there may be room for more than us
			return admitHeld
		}
		// Woken for room someone else's message took: first in line again.
		g.waiters = slices.Insert(g.waiters, 0, ch)
	}
}

// room reports whether one more message fits in the window. g.mu held.
func (g *gate) room() bool {
	return g.cl.State.Inflight.Len()+g.queued0+len(g.admitted) < g.window
}

// wakeOne wakes the first waiter, if any. g.mu held.
func (g *gate) wakeOne() {
	if len(g.waiters) == 0 {
		return
	}
	ch := g.waiters[0]
	g.waiters = g.waiters[1:]
	ch <- struct{}{}
}

// release frees pub's admission, if it holds one, and wakes a waiter: the message may
// not have entered the window after all. A QoS 0 message for g.cl is in its write queue
// now (or was dropped, and OnPublishDropped took it off queued0).
func (g *gate) release(pub *mochi.Client) {
	g.mu.Lock()
	defer g.mu.Unlock()
	qos0, ok := g.admitted[pub]
	if !ok {
		return
	}
	delete(g.admitted, pub)
	if qos0 {
		g.queued0++
	}
	g.wakeOne()
}

// close releases every waiter for good.
func (g *gate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	for len(g.waiters) > 0 {
		g.wakeOne()
	}
}

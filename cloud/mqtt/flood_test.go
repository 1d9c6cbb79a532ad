package mqtt_test

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/larder-lockers/larder/cloud/broker"
	cloudmqtt "github.com/larder-lockers/larder/cloud/mqtt"
	"github.com/larder-lockers/larder/protocol"
)

// Many edges drain their outboxes at once, each with the largest window an edge may
// use, into one worker whose every commit costs 2 ms: far more events are in flight
// than a queue of the old fixed length held, and arrive far faster than one commit per
// event could take them. Nothing may be lost or refused, every event must reach the
// domain exactly once and in order, every ack must be cumulative and cover only
// committed events, and no edge may need to resend anything.
func TestFloodOfEdgesLosesNothing(t *testing.T) {
	const (
		sites  = 24
		events = 2000
		window = 1000 // edge/mqtt's largest OutboxWindow
	)
	tg := embeddedWith(t, func(c *broker.Config) {
		// Room for every edge's whole window on the cloud's one connection, so that the
		// broker itself never drops: the test is about the cloud's queues.
		c.MaxInflight = 65535
		c.MaxWritesPending = 65535
	})
	f := newMemFleet()
	f.commitDelay = 2 * time.Millisecond
	var ids []string
	for i := range sites {
		ids = append(ids, uniqueSite(fmt.Sprintf("flood%02d", i)))
	}
	reg := prometheus.NewRegistry()
	startAdapter(t, tg, f, ids, func(c *cloudmqtt.Config) {
		c.Workers = 1
		c.Registry = reg
	})

	var wg sync.WaitGroup
	errs := make([]error, sites)
	resent := make([]int, sites)
	for i, site := range ids {
		user, pass := tg.edgeLogin(site)
		c := paho.NewClient(paho.NewClientOptions().AddBroker(tg.url).SetClientID(broker.EdgeClientID(site)).
			// In order, so that the check below sees the acks as the cloud sent them (the
			// handler only records; it never blocks).
			SetUsername(user).SetPassword(pass).SetOrderMatters(true).SetAutoReconnect(false).
			SetConnectTimeout(5 * time.Second).SetWriteTimeout(10 * time.Second))
		if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("edge %s connect: %v", site, tok.Error())
		}
		t.Cleanup(func() { c.Disconnect(50) })
		var prev uint64
		acks := newAckTracker(events, func(seq uint64) error {
			// Cumulative and never ahead of what the domain committed.
			f.mu.Lock()
			hw := f.hw[site]
			f.mu.Unlock()
			if seq < prev || seq > hw {
				return fmt.Errorf("ack %d after %d, domain high water %d", seq, prev, hw)
			}
			prev = seq
			return nil
		})
		tok := c.Subscribe(protocol.Topic(site, protocol.ChanEventAck), 1, acks.handle)
		if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("edge %s subscribe: %v", site, tok.Error())
		}
		payloads := eventPayloads(site, events)
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The edge's own ack timeout (30 s) never passes unless the cloud loses or
			// refuses something: then the edge resends, and the test counts it. (10 s
			// did pass on a 2-core machine at load 20, with nothing refused: 24 windows
			// through the broker and one worker took that long there.)
			resent[i], errs[i] = drainLikeAnEdge(c, protocol.Topic(site, protocol.ChanEvents), payloads, acks,
				window, 30*time.Second, 120*time.Second)
			if errs[i] == nil {
				acks.mu.Lock()
				errs[i] = acks.err
				acks.mu.Unlock()
			}
		}()
	}
	wg.Wait()

	want := make([]uint64, events)
	for i := range want {
		want[i] = uint64(i + 1)
	}
	for i, site := range ids {
		if errs[i] != nil {
			t.Errorf("edge %s: %v", site, errs[i])
		}
		if resent[i] != 0 {
			t.Errorf("edge %s resent %d events: the cloud left them unacknowledged", site, resent[i])
		}
		if got := f.eventSeqs(site); !slices.Equal(got, want) {
			t.Errorf("edge %s: domain got %d events (first %v), want 1..%d once each in order", site, len(got), got[:min(len(got), 5)], events)
		}
	}
	f.mu.Lock()
	redundant, calls := f.redundant, len(f.batches)
	f.mu.Unlock()
	if redundant != 0 {
		t.Errorf("%d events reached the domain again after it had applied them", redundant)
	}
	for _, outcome := range []string{"refused", "failed"} {
		if n := eventsOf(t, reg, outcome); n != 0 {
			t.Errorf("events %s: %v, want 0", outcome, n)
		}
	}
	if n := eventsOf(t, reg, "ingested"); n != sites*events {
		t.Errorf("events ingested: %v, want %d", n, sites*events)
	}
	t.Logf("%d events of %d sites in %d commits", sites*events, sites, calls)
}

// eventsOf reads larder_fleet_events_total{outcome} from reg (0 if absent).
func eventsOf(t *testing.T, reg *prometheus.Registry, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "larder_fleet_events_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "outcome" && lp.GetValue() == outcome {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// An event too far past the high water is refused, not held: it is not acknowledged,
// and the edge's resend after the gap closes is applied like any other.
func TestEventBeyondGapHoldRefusedThenResent(t *testing.T) {
	tg := embedded(t)
	f := newMemFleet()
	site := uniqueSite("hold")
	reg := prometheus.NewRegistry()
	startAdapter(t, tg, f, []string{site}, func(c *cloudmqtt.Config) { c.GapHold = 2; c.Registry = reg })
	e := newEdge(t, tg, site)
	e.event(1)
	e.waitAck(1)
	e.event(3) // held: 2 past the high water
	e.event(5) // 4 past it: refused
	e.noAckAbove(1)
	e.event(2)
	e.event(4)
	if got := e.waitAck(4); got != 4 {
		t.Fatalf("ack %d once 2 arrived, want 4 (3 held, 5 refused)", got)
	}
	e.noAckAbove(4)
	e.event(5) // the edge resends what stays unacknowledged
	e.waitAck(5)
	if got, want := f.eventSeqs(site), []uint64{1, 2, 3, 4, 5}; !slices.Equal(got, want) {
		t.Fatalf("ingested %v, want %v", got, want)
	}
	if n := eventsOf(t, reg, "refused"); n != 1 {
		t.Errorf("events refused: %v, want 1", n)
	}
}

// An edge that ignores its window pays for it alone. While the worker is held in a
// commit, a greedy edge floods its site with ten times SiteQueue events and a polite
// edge on the same worker sends its window: every polite event is queued and applied
// without a resend, the greedy site's events past SiteQueue are dropped unacknowledged
// (counted as refused, warned once, not once per event), and its resends bring every
// one of them in, each applied once and in order.
func TestEdgeBeyondItsWindowPaysAlone(t *testing.T) {
	const (
		siteQueue    = 100
		greedyEvents = 10 * siteQueue
		politeEvents = 500
		politeWindow = siteQueue / 2 // a window keeps a site within SiteQueue, resend included
	)
	tg := embedded(t)
	f := newMemFleet()
	entered, release := make(chan struct{}), make(chan struct{})
	var hold sync.Once
	f.enter = func() {
		hold.Do(func() {
			close(entered)
			<-release
		})
	}
	greedy, polite := uniqueSite("greedy"), uniqueSite("polite")
	reg := prometheus.NewRegistry()
	var logs lockedBuffer
	startAdapter(t, tg, f, []string{greedy, polite}, func(c *cloudmqtt.Config) {
		c.Workers = 1 // both sites on one worker
		c.SiteQueue = siteQueue
		c.Registry = reg
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	ge, pe := edgeClient(t, tg, greedy), edgeClient(t, tg, polite)
	gAcks, pAcks := newAckTracker(greedyEvents, nil), newAckTracker(politeEvents, nil)
	for _, x := range []struct {
		c    paho.Client
		site string
		acks *ackTracker
	}{{ge, greedy, gAcks}, {pe, polite, pAcks}} {
		if tok := x.c.Subscribe(protocol.Topic(x.site, protocol.ChanEventAck), 1, x.acks.handle); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe: %v", tok.Error())
		}
	}
	gPayloads, pPayloads := eventPayloads(greedy, greedyEvents), eventPayloads(polite, politeEvents)
	gTopic, pTopic := protocol.Topic(greedy, protocol.ChanEvents), protocol.Topic(polite, protocol.ChanEvents)

	// The greedy site's first event takes the worker into a commit, held there.
	if err := publishBounded(ge, gTopic, gPayloads[:1]); err != nil {
		t.Fatal(err)
	}
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the worker never committed the first event")
	}
	// Meanwhile: the greedy edge sends everything, the polite one its window.
	if err := publishBounded(ge, gTopic, gPayloads[1:]); err != nil {
		t.Fatal(err)
	}
	if err := publishBounded(pe, pTopic, pPayloads[:politeWindow]); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for metricValue(t, reg, "larder_fleet_messages_received_total") < greedyEvents+politeWindow {
		if time.Now().After(deadline) {
			t.Fatalf("the cloud received %v of %d events", metricValue(t, reg, "larder_fleet_messages_received_total"), greedyEvents+politeWindow)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got, want := eventsOf(t, reg, "refused"), float64(greedyEvents-1-siteQueue); got != want {
		t.Errorf("events refused while the worker was held: %v, want %v (the greedy site's past SiteQueue, no polite one)", got, want)
	}
	close(release)

	// Both edges now drain as edges do, from the start (the greedy drain's first pass
	// is its resend of the refused events), the greedy one still beyond its window.
	var wg sync.WaitGroup
	var gResent, pResent int
	var gErr, pErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		gResent, gErr = drainLikeAnEdge(ge, gTopic, gPayloads, gAcks, greedyEvents, 300*time.Millisecond, 60*time.Second)
	}()
	go func() {
		defer wg.Done()
		pResent, pErr = drainLikeAnEdge(pe, pTopic, pPayloads, pAcks, politeWindow, 30*time.Second, 120*time.Second)
	}()
	wg.Wait()
	if gErr != nil || pErr != nil {
		t.Fatalf("greedy: %v; polite: %v", gErr, pErr)
	}
	if pResent != 0 {
		t.Errorf("the polite edge resent %d events: the greedy one made the cloud refuse them", pResent)
	}
	for site, n := range map[string]int{greedy: greedyEvents, polite: politeEvents} {
		want := make([]uint64, n)
		for i := range want {
			want[i] = uint64(i + 1)
		}
		if got := f.eventSeqs(site); !slices.Equal(got, want) {
			t.Errorf("site %s: domain got %d events, want 1..%d once each in order", site, len(got), n)
		}
	}
	if lines := strings.Count(logs.String(), "beyond its window"); lines != 1 {
		t.Errorf("%d log lines about events beyond the window within WarnEvery, want 1 (with the count later):\n%s", lines, logs.String())
	}
	t.Logf("greedy edge: %v events refused, %d resent", eventsOf(t, reg, "refused"), gResent)
}

// edgeClient connects a bare paho client as site's edge.
func edgeClient(t *testing.T, tg target, site string) paho.Client {
	t.Helper()
	user, pass := tg.edgeLogin(site)
	c := paho.NewClient(paho.NewClientOptions().AddBroker(tg.url).SetClientID(broker.EdgeClientID(site)).
		SetUsername(user).SetPassword(pass).SetOrderMatters(false).SetAutoReconnect(false).
		SetConnectTimeout(5 * time.Second).SetWriteTimeout(10 * time.Second))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("edge %s connect: %v", site, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c
}

// lockedBuffer is a log sink safe for the adapter's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

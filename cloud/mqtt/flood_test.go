package mqtt_test

import (
	"fmt"
	"slices"
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
			// An ack timeout of 10 s never passes unless the cloud loses or refuses
			// something: then the edge resends, and the test counts it.
			resent[i], errs[i] = drainLikeAnEdge(c, protocol.Topic(site, protocol.ChanEvents), payloads, acks,
				window, 10*time.Second, 60*time.Second)
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

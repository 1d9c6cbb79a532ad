package mqtt_test

import (
	"container/heap"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/larder-lockers/larder/edge/mqtt"
	"github.com/larder-lockers/larder/edge/mqtt/mqtttest"
	"github.com/larder-lockers/larder/protocol"
)

func TestBackoff(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 1))
	lo, hi := 2*time.Second, 5*time.Minute
	for _, tc := range []struct {
		attempt int
		ceil    time.Duration
	}{
		{0, 2 * time.Second}, {1, 4 * time.Second}, {5, 64 * time.Second}, {8, 5 * time.Minute},
		{40, 5 * time.Minute}, {1000, 5 * time.Minute},
	} {
		var sum time.Duration
		const n = 2000
		for range n {
			d := mqtt.Backoff(tc.attempt, lo, hi, r)
			if d < 0 || d > tc.ceil {
				t.Fatalf("attempt %d: delay %v outside [0, %v]", tc.attempt, d, tc.ceil)
			}
			sum += d
		}
		// Full jitter: uniform over [0, ceil], so the mean is near ceil/2. A fleet
		// reconnecting together spreads over the whole window.
		mean := sum / n
		if mean < tc.ceil*4/10 || mean > tc.ceil*6/10 {
			t.Errorf("attempt %d: mean delay %v, want about %v", tc.attempt, mean, tc.ceil/2)
		}
	}
}

// TestBackoffSpreadsFleet simulates 100,000 edges that lost a broker at the same instant
// (a regional outage) and a broker that accepts 5,000 connections per second and times
// out the rest. With full jitter the fleet is back far sooner and the broker sees far
// smaller bursts than with paho-style doubling without jitter, where every edge that
// was turned away comes back in the same instant as all the others.
func TestBackoffSpreadsFleet(t *testing.T) {
	const fleet, capacity = 100_000, 5_000
	cfg := mqtt.DefaultConfig()
	jitter := rand.New(rand.NewPCG(42, 42))
	full := func(n int) time.Duration { return mqtt.Backoff(n, cfg.BackoffMin, cfg.BackoffMax, jitter) }
	lockstep := func(n int) time.Duration {
		d := cfg.BackoffMin << min(n, 20)
		return min(d, cfg.BackoffMax)
	}
	jDone, jPeak := simulateFleet(fleet, capacity, full)
	lDone, lPeak := simulateFleet(fleet, capacity, lockstep)
	t.Logf("full jitter: all back after %v, peak %d attempts/s; lockstep: %v, peak %d attempts/s", jDone, jPeak, lDone, lPeak)
	if jDone*2 > lDone {
		t.Errorf("full jitter took %v to reconnect the fleet, lockstep %v: want at most half", jDone, lDone)
	}
	// The first retries spread evenly over BackoffMin; none of the later ones pile up
	// above that.
	if even := fleet / int(cfg.BackoffMin/time.Second); jPeak > even*3/2 {
		t.Errorf("full jitter peaked at %d attempts/s, want about %d (the fleet over BackoffMin)", jPeak, even)
	}
}

// simulateFleet returns when the last edge got in and the largest number of attempts
// the broker saw in any one second.
func simulateFleet(fleet, capacity int, delay func(attempt int) time.Duration) (time.Duration, int) {
	h := &attemptHeap{}
	for range fleet {
		*h = append(*h, fleetEdge{at: delay(0)})
	}
	heap.Init(h)
	accepted := map[time.Duration]int{} // by second
	attempts := map[time.Duration]int{}
	var last time.Duration
	for h.Len() > 0 {
		e := heap.Pop(h).(fleetEdge)
		sec := e.at.Truncate(time.Second)
		attempts[sec]++
		if accepted[sec] < capacity {
			accepted[sec]++
			last = e.at
			continue
		}
		e.attempt++
		e.at += delay(e.attempt)
		heap.Push(h, e)
	}
	peak := 0
	for _, n := range attempts {
		peak = max(peak, n)
	}
	return last, peak
}

// fleetEdge is one simulated edge: when it tries next and how many times it failed.
type fleetEdge struct {
	at      time.Duration
	attempt int
}

type attemptHeap []fleetEdge

func (h attemptHeap) Len() int           { return len(h) }
func (h attemptHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h attemptHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *attemptHeap) Push(x any)        { *h = append(*h, x.(fleetEdge)) }
func (h *attemptHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func TestConfigValidate(t *testing.T) {
	good := mqtt.DefaultConfig()
	good.Site = "courtyard-7"
	good.Broker = "tcp://broker:1883"
	if err := good.Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for _, tc := range []struct {
		name string
		mod  func(*mqtt.Config)
	}{
		{"no site", func(c *mqtt.Config) { c.Site = "" }},
		{"wildcard site", func(c *mqtt.Config) { c.Site = "a/#" }},
		{"no broker", func(c *mqtt.Config) { c.Broker = "" }},
		{"bad scheme", func(c *mqtt.Config) { c.Broker = "http://x:1" }},
		{"no host", func(c *mqtt.Config) { c.Broker = "tcp://" }},
		{"zero keepalive", func(c *mqtt.Config) { c.KeepAlive = 0 }},
		{"sub-second keepalive", func(c *mqtt.Config) { c.KeepAlive = 500 * time.Millisecond }},
		{"backoff inverted", func(c *mqtt.Config) { c.BackoffMax = time.Millisecond }},
		{"window 0", func(c *mqtt.Config) { c.OutboxWindow = 0 }},
		{"window huge", func(c *mqtt.Config) { c.OutboxWindow = 70000 }},
		{"negative grace", func(c *mqtt.Config) { c.GapGrace = -1 }},
		{"zero queue", func(c *mqtt.Config) { c.InboundQueue = 0 }},
		{"zero telemetry", func(c *mqtt.Config) { c.TelemetryInterval = 0 }},
	} {
		c := good
		tc.mod(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", tc.name, c)
		}
	}
	for _, u := range []string{"ssl://b:8883", "ws://b:80/mqtt", "wss://b/mqtt", "mqtts://b:8883"} {
		c := good
		c.Broker = u
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
}

// FuzzHandle feeds arbitrary topics and payloads to the inbound handler of a lost
// connection: it must never panic and never block, whatever arrives (on a live
// connection a full queue waits, TestFullQueueHolds).
func FuzzHandle(f *testing.F) {
	const site = "fuzz-site"
	exp := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, body := range []protocol.Body{
		protocol.EventAck{Seq: 3},
		protocol.Desired{Version: 2, Full: true},
		protocol.Desired{Version: 9, Cancel: []string{"o1"}},
		protocol.Command{ID: "c1", Kind: protocol.CmdOpen, Compartment: 2, Purpose: protocol.PurposeOps, Reason: "x", ExpiresAt: exp},
		protocol.Command{ID: "c2", Kind: protocol.CmdResync, ExpiresAt: exp},
	} {
		payload, err := protocol.Encode(protocol.Header{Seq: 1}, body)
		if err != nil {
			f.Fatal(err)
		}
		for _, ch := range []protocol.Channel{protocol.ChanEventAck, protocol.ChanDesired, protocol.ChanCommands} {
			f.Add(protocol.Topic(site, ch), payload)
		}
	}
	f.Add("larder/v1/other/desired", []byte(`{}`))
	f.Add(protocol.Topic(site, protocol.ChanStatus), []byte(`{"v":1}`))
	f.Add("garbage", []byte{0xff, 0x00})

	cfg := mqtt.DefaultConfig()
	cfg.Site = site
	cfg.Broker = "tcp://127.0.0.1:1"
	cfg.InboundQueue = 4 // nobody drains it: on a lost connection a full queue gives up
	c, err := mqtt.New(cfg, mqtttest.NewStore().Ports(), nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	lost := make(chan struct{})
	close(lost)
	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		done := make(chan struct{})
		go func() { c.Handle(topic, payload, lost); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("Handle(%q) blocked", topic)
		}
	})
}

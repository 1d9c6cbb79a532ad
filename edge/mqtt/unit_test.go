package mqtt_test

import (
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

// TestBackoffSpreadsFleet: 100,000 edges that lost the broker at the same instant do
// not come back in the same second.
func TestBackoffSpreadsFleet(t *testing.T) {
	r := rand.New(rand.NewPCG(42, 42))
	cfg := mqtt.DefaultConfig()
	perSecond := map[int64]int{}
	for range 100_000 {
		perSecond[int64(mqtt.Backoff(0, cfg.BackoffMin, cfg.BackoffMax, r)/time.Second)]++
	}
	for s, n := range perSecond {
		if n > 60_000 {
			t.Errorf("%d of 100000 first retries fall in second %d", n, s)
		}
	}
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

// FuzzHandle feeds arbitrary topics and payloads to the inbound handler: it must never
// panic and never block, whatever arrives.
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
	cfg.InboundQueue = 4 // nobody drains it: a full queue must drop, not block
	c, err := mqtt.New(cfg, mqtttest.NewStore().Ports(), nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		done := make(chan struct{})
		go func() { c.Handle(topic, payload); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("Handle(%q) blocked", topic)
		}
	})
}

package mqtt_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/larder-lockers/larder/edge/mqtt"
	"github.com/larder-lockers/larder/edge/mqtt/mqtttest"
	"github.com/larder-lockers/larder/protocol"
)

// benchEvents is how many events are queued before the drain starts.
const benchEvents = 5000

// BenchmarkOutboxDrain drains 5,000 queued events through a broker to a cloud that
// acknowledges cumulatively, and measures in the same run the raw paho publish rate
// through the same broker (same payload, same bound on messages in flight, a subscriber
// that decodes each envelope like the cloud does). ns/op is one drain of 5,000 events;
// drain_msgs/s, raw_msgs/s and drain/raw are reported per broker.
//
//	go test -run '^$' -bench OutboxDrain -benchtime 5x ./edge/mqtt
func BenchmarkOutboxDrain(b *testing.B) {
	b.Run("mosquitto", func(b *testing.B) { benchDrain(b, mqtttest.Mosquitto(b)) })
	b.Run("mochi", func(b *testing.B) { benchDrain(b, mqtttest.StartMochi(b).URL()) })
}

func benchDrain(b *testing.B, url string) {
	var drainTotal, rawTotal time.Duration
	rawGot := 0
	window := mqttDefaultWindow()
	for range b.N {
		b.StopTimer()
		site := newSite(b, url)
		store := mqtttest.NewStore()
		cloud := mqtttest.NewCloud(b, url, site)
		cfg := testConfig(site, url)
		cfg.TelemetryInterval = time.Hour
		cfg.PollInterval = time.Hour // only Notify wakes the drainer
		cfg.AckTimeout = time.Minute // no resends
		store.Notify = func() {}     // queue everything first; the drain starts on e.Notify
		e := startEdge(b, cfg, store)
		cloud.Wait(b, wait, "edge connected", func(s mqtttest.Snapshot) bool { return len(s.Births) == 1 })
		waitFor(b, wait, "drainer idle", e.Connected)
		time.Sleep(20 * time.Millisecond) // let the drainer's first, empty pass finish
		for i := range benchEvents {
			store.Append(doorEvent(i))
		}
		payload, err := store.Pending(0, 1)
		if err != nil || len(payload) != 1 || metric(b, e.reg, "larder_mqtt_outbox_published_total") != 0 {
			b.Fatalf("the drain started before it was notified (pending %d, err %v)", len(payload), err)
		}
		n, d := rawPublish(b, url, site+"-raw", payload[0].Payload, window)
		rawTotal += d
		rawGot += n

		drained := make(chan struct{})
		store.OnAck = func(acked uint64) {
			if acked == benchEvents {
				close(drained)
			}
		}
		b.StartTimer()
		start := time.Now()
		e.Notify()
		select {
		case <-drained:
		case <-time.After(time.Minute):
			b.Fatalf("drain of %d events not acknowledged within a minute", benchEvents)
		}
		drainTotal += time.Since(start)
		b.StopTimer()
		if s := cloud.Seen(); len(s.Processed) != benchEvents {
			b.Fatalf("cloud processed %d of %d", len(s.Processed), benchEvents)
		}
		e.stop()
		cloud.Close()
	}
	drainRate := float64(benchEvents*b.N) / drainTotal.Seconds()
	rawRate := float64(rawGot) / rawTotal.Seconds()
	b.ReportMetric(drainRate, "drain_msgs/s")
	b.ReportMetric(rawRate, "raw_msgs/s")
	b.ReportMetric(drainRate/rawRate, "drain/raw")
	b.ReportMetric(float64(benchEvents*b.N-rawGot), "raw_lost")
	fmt.Printf("outbox drain %s: %d events ×%d, %.0f msgs/s drained (acked by the cloud, none lost) vs %.0f msgs/s raw paho publish (same broker, payload %d B, ≤%d in flight, %d of %d lost): ratio %.2f\n",
		b.Name(), benchEvents, b.N, drainRate, rawRate, len(mustPayload(b)), window, benchEvents*b.N-rawGot, benchEvents*b.N, drainRate/rawRate)
}

// mqttDefaultWindow is the drain's default bound on unacknowledged events, which the
// raw publisher gets too.
func mqttDefaultWindow() int { return mqtt.DefaultConfig().OutboxWindow }

func mustPayload(tb testing.TB) []byte {
	p, err := protocol.Encode(protocol.Header{Seq: 1}, doorEvent(1))
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// rawPublish publishes benchEvents copies of payload with plain paho QoS 1, at most
// window unacknowledged (PUBACK) at a time, to a subscriber that decodes each envelope.
// It returns how many arrived and the time from the first publish to the last arrival.
// A PUBACK-bounded publisher can outrun the subscriber: Mosquitto then drops what
// exceeds max_queued_messages (1000 by default) without telling anyone, so the count
// can fall short; the drain, bounded by the cloud's own acks, cannot overrun it.
func rawPublish(b *testing.B, url, site string, payload []byte, window int) (int, time.Duration) {
	b.Helper()
	topic := protocol.Topic(site, protocol.ChanEvents)
	var got, last atomic.Int64
	done := make(chan struct{})
	sub := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("larder-bench-sub-" + site).SetOrderMatters(true))
	if tok := sub.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		b.Fatalf("raw subscriber: %v", tok.Error())
	}
	defer sub.Disconnect(50)
	tok := sub.Subscribe(topic, 1, func(_ paho.Client, m paho.Message) {
		if _, err := protocol.Decode(m.Payload()); err != nil {
			panic(err)
		}
		last.Store(time.Now().UnixNano())
		if got.Add(1) == benchEvents {
			close(done)
		}
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		b.Fatalf("raw subscribe: %v", tok.Error())
	}
	pub := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("larder-bench-pub-" + site))
	if tok := pub.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		b.Fatalf("raw publisher: %v", tok.Error())
	}
	defer pub.Disconnect(50)

	toks := make([]paho.Token, benchEvents)
	start := time.Now()
	for i := range benchEvents {
		if i >= window {
			if t := toks[i-window]; !t.WaitTimeout(10*time.Second) || t.Error() != nil {
				b.Fatalf("raw publish %d: %v", i-window, t.Error())
			}
		}
		toks[i] = pub.Publish(topic, 1, false, payload)
	}
	for _, t := range toks[benchEvents-window:] {
		t.WaitTimeout(10 * time.Second)
	}
	// Wait for the last arrival: all of them, or nothing new for a second.
	for {
		n := got.Load()
		select {
		case <-done:
			return benchEvents, time.Duration(last.Load() - start.UnixNano())
		case <-time.After(time.Second):
		}
		if got.Load() == n {
			return int(n), time.Duration(last.Load() - start.UnixNano())
		}
	}
}

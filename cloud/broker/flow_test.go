package broker_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/larder-lockers/larder/cloud/broker"
	"github.com/larder-lockers/larder/protocol"
)

// TestSlowSubscriberLosesNothing is the fleet's fan-in: a few hundred edges each
// publishing a burst of QoS 1 events through an outbox window of 100 unacknowledged,
// and QoS 0 telemetry among them, into the one cloud connection, which is slower than
// all of them together. With the shipped sizes every message must arrive and the
// broker must count no drop: the publishers are held back (their next PUBACK waits)
// instead.
func TestSlowSubscriberLosesNothing(t *testing.T) {
	const (
		edges  = 300
		per    = 60
		window = 100
		total  = edges * per
	)
	creds := broker.StaticCredentials{}
	site := func(i int) string { return fmt.Sprintf("flow-%03d", i) }
	for i := range edges {
		creds[site(i)] = broker.PasswordDigest("pw-" + site(i))
	}
	reg := prometheus.NewRegistry()
	b := startBrokerWith(t, creds, func(c *broker.Config) { c.Registry = reg })

	var got atomic.Int64
	all := make(chan struct{})
	// OrderMatters: paho calls the handler in order and acknowledges after it returns,
	// so a slow handler is a slow subscriber as the broker sees it (~10k msg/s at most).
	sub := mustConnect(t, b, "larder-cloud-flow", svcUser, svcPass, func(o *paho.ClientOptions) {
		o.SetOrderMatters(true)
	})
	defer sub.Disconnect(50)
	slow := func(_ paho.Client, _ paho.Message) {
		for start := time.Now(); time.Since(start) < 100*time.Microsecond; {
		}
		if got.Add(1) == total {
			close(all)
		}
	}
	subscribe(t, sub, protocol.Root+"/+/events", slow)
	if tok := sub.Subscribe(protocol.Root+"/+/telemetry", 0, slow); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe telemetry: %v", tok.Error())
	}

	pubs := make([]paho.Client, edges)
	for i := range pubs {
		pubs[i] = mustConnect(t, b, broker.EdgeClientID(site(i)), site(i), "pw-"+site(i))
		defer pubs[i].Disconnect(50)
	}
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i, p := range pubs {
		wg.Go(func() {
			toks := make(chan paho.Token, window)
			done := make(chan struct{})
			go func() {
				defer close(done)
				for tok := range toks {
					if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
						failed.Add(1)
					}
				}
			}()
			for n := range per {
				ch := protocol.ChanEvents
				if n%4 == 3 {
					ch = protocol.ChanTelemetry
				}
				toks <- p.Publish(protocol.Topic(site(i), ch), ch.QoS(), false, fmt.Sprintf("%s %d", site(i), n))
			}
			close(toks)
			<-done
		})
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.Errorf("%d publishes not acknowledged", failed.Load())
	}
	select {
	case <-all:
	case <-time.After(30 * time.Second):
	}
	m := gather(t, reg)
	if got.Load() != total || m["larder_broker_messages_dropped_total"] != 0 || m["larder_broker_inflight_dropped_total"] != 0 {
		t.Fatalf("%d of %d arrived; dropped: write queue %v, in-flight window %v", got.Load(), total,
			m["larder_broker_messages_dropped_total"], m["larder_broker_inflight_dropped_total"])
	}
	t.Logf("%d of %d arrived; publishes held %v, holds timed out %v", got.Load(), total,
		m["larder_broker_publishes_held_total"], m["larder_broker_publishes_hold_timeouts_total"])
}

// gather reads the value of every unlabelled metric of reg.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		got[mf.GetName()] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
	}
	return got
}

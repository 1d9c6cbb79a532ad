package mqtt_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/larder-lockers/larder/cloud/broker"
	cloudmqtt "github.com/larder-lockers/larder/cloud/mqtt"
	"github.com/larder-lockers/larder/protocol"
)

// Ingestion benchmark, run by `make bench` as
//
//	go test -run '^$' -bench Ingest -benchtime 1x ./cloud/mqtt
//
// For each broker it measures, in the same run and with the same payload and the same
// publisher (one paho client, QoS 1, at most benchInFlight publishes awaiting PUBACK):
//
//   - raw: paho publisher → broker → paho subscriber, until all messages arrived;
//   - ingest: an edge's events → broker → fleet adapter → in-memory domain, until the
//     adapter's cumulative EventAck covers the last event (so every event was decoded,
//     deduplicated, "committed" and acknowledged);
//
// and reports both rates and their ratio (target ≥ 0.5).

const (
	benchEvents = 10000
	// benchRounds alternates raw and ingest measurements so that load from other
	// processes on the machine hits both alike; the medians are reported.
	benchRounds   = 3
	benchInFlight = 100
	// benchWindow bounds events sent but not yet acknowledged by the cloud, as a real
	// edge's outbox drainer does. Mosquitto's default max_queued_messages (1000) drops
	// QoS 1 messages beyond it for a slow subscriber, so a larger window would measure
	// resend timeouts (production Mosquitto must raise it for the cloud's client).
	benchWindow = 1000
)

// fastFleet is the cheapest domain that keeps the documented semantics.
type fastFleet struct {
	mu  sync.Mutex
	ids map[string]struct{}
	hw  map[string]uint64
}

func newFastFleet() *fastFleet {
	return &fastFleet{ids: make(map[string]struct{}, benchEvents), hw: map[string]uint64{}}
}

func (f *fastFleet) SiteStatus(context.Context, string, cloudmqtt.StatusChange) error { return nil }
func (f *fastFleet) SiteBirth(context.Context, string, protocol.Birth) error          { return nil }
func (f *fastFleet) SiteTelemetry(context.Context, string, protocol.Telemetry, time.Time) error {
	return nil
}
func (f *fastFleet) DesiredSnapshot(context.Context, string) (protocol.Desired, error) {
	return protocol.Desired{Version: 1, Full: true}, nil
}
func (f *fastFleet) CommandProgress(context.Context, string, protocol.CommandAck, time.Time) error {
	return nil
}
func (f *fastFleet) PendingCommands(context.Context, string) ([]cloudmqtt.PendingCommand, error) {
	return nil, nil
}
func (f *fastFleet) SiteEvent(_ context.Context, site string, m protocol.Message) error {
	f.mu.Lock()
	f.ids[m.ID] = struct{}{}
	f.hw[site] = max(f.hw[site], m.Seq)
	f.mu.Unlock()
	return nil
}
func (f *fastFleet) EventHighWater(_ context.Context, site string) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hw[site], nil
}

func benchPayloads(site string, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		seq := uint64(i + 1)
		p, err := protocol.Encode(protocol.Header{ID: fmt.Sprintf("%s-%d", site, seq), Seq: seq, Time: time.Now()},
			protocol.Event{Kind: protocol.EventDoorClosed, Credential: protocol.CredPickup, Compartment: 12, Generation: 3, Order: "o-123456"})
		if err != nil {
			panic(err)
		}
		out[i] = p
	}
	return out
}

func benchClient(b *testing.B, url, id, user, pass string) paho.Client {
	b.Helper()
	o := paho.NewClientOptions().AddBroker(url).SetClientID(id).SetUsername(user).SetPassword(pass).
		SetOrderMatters(false).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second).SetWriteTimeout(10 * time.Second)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		b.Fatalf("connect %s: %v", id, tok.Error())
	}
	b.Cleanup(func() { c.Disconnect(50) })
	return c
}

// publishBounded publishes every payload with at most benchInFlight awaiting PUBACK.
func publishBounded(b *testing.B, c paho.Client, topic string, payloads [][]byte) {
	b.Helper()
	toks := make([]paho.Token, len(payloads))
	for i, p := range payloads {
		if i >= benchInFlight && !toks[i-benchInFlight].WaitTimeout(10*time.Second) {
			b.Fatalf("no PUBACK for message %d", i-benchInFlight)
		}
		toks[i] = c.Publish(topic, 1, false, p)
	}
}

// drainLikeAnEdge publishes events as an edge's outbox drainer does: at most
// benchInFlight awaiting PUBACK, at most benchWindow beyond the cloud's last ack, and
// back to the last ack when acks stop advancing (a broker may drop QoS 1 messages for
// a subscriber that falls behind). It returns how many events it resent.
func drainLikeAnEdge(b *testing.B, c paho.Client, topic string, payloads [][]byte, acked *atomic.Uint64) int {
	b.Helper()
	n := uint64(len(payloads))
	var toks []paho.Token
	next, resent := uint64(1), 0
	lastAck, lastProgress := uint64(0), time.Now()
	deadline := time.Now().Add(60 * time.Second)
	for acked.Load() < n {
		if time.Now().After(deadline) {
			b.Fatalf("acked %d of %d after 60 s", acked.Load(), n)
		}
		if a := acked.Load(); a != lastAck {
			lastAck, lastProgress = a, time.Now()
		}
		if next <= n && next <= lastAck+benchWindow {
			if len(toks) >= benchInFlight {
				if !toks[0].WaitTimeout(10 * time.Second) {
					b.Fatal("no PUBACK within 10 s")
				}
				toks = toks[1:]
			}
			toks = append(toks, c.Publish(topic, 1, false, payloads[next-1]))
			next++
			continue
		}
		if time.Since(lastProgress) > 500*time.Millisecond {
			resent += int(next - (lastAck + 1))
			next, lastProgress = lastAck+1, time.Now()
			continue
		}
		time.Sleep(100 * time.Microsecond)
	}
	return resent
}

func measureRaw(b *testing.B, tg target, site string) float64 {
	pubUser, pubPass := tg.edgeLogin(site)
	sub := benchClient(b, tg.url, "bench-sub-"+site, tg.user, tg.pass)
	pub := benchClient(b, tg.url, broker.EdgeClientID(site), pubUser, pubPass)
	topic := protocol.Topic(site, protocol.ChanEvents)
	var got atomic.Int64
	done := make(chan struct{})
	tok := sub.Subscribe(topic, 1, func(paho.Client, paho.Message) {
		if got.Add(1) == benchEvents {
			close(done)
		}
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		b.Fatal(tok.Error())
	}
	payloads := benchPayloads(site, benchEvents)
	start := time.Now()
	publishBounded(b, pub, topic, payloads)
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		b.Fatalf("raw: %d of %d arrived (the broker dropped QoS 1 messages)", got.Load(), benchEvents)
	}
	return benchEvents / time.Since(start).Seconds()
}

func measureIngest(b *testing.B, tg target, site string) (rate float64, resent int) {
	f := newFastFleet()
	startAdapter(b, tg, f, []string{site})
	user, pass := tg.edgeLogin(site)
	pub := benchClient(b, tg.url, broker.EdgeClientID(site), user, pass)
	var acked atomic.Uint64
	done := make(chan struct{})
	var doneOnce sync.Once
	tok := pub.Subscribe(protocol.Topic(site, protocol.ChanEventAck), 1, func(_ paho.Client, msg paho.Message) {
		m, err := protocol.DecodeOn(protocol.ChanEventAck, msg.Payload())
		if err != nil {
			return
		}
		seq := m.Body.(protocol.EventAck).Seq
		for {
			old := acked.Load()
			if seq <= old || acked.CompareAndSwap(old, seq) {
				break
			}
		}
		if seq == benchEvents {
			doneOnce.Do(func() { close(done) })
		}
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		b.Fatal(tok.Error())
	}
	payloads := benchPayloads(site, benchEvents)
	start := time.Now()
	resent = drainLikeAnEdge(b, pub, protocol.Topic(site, protocol.ChanEvents), payloads, &acked)
	<-done
	rate = benchEvents / time.Since(start).Seconds()
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := len(f.ids); n != benchEvents {
		b.Fatalf("ingested %d events, want %d", n, benchEvents)
	}
	return rate, resent
}

func BenchmarkIngest(b *testing.B) {
	for _, bk := range []struct {
		name string
		mk   func(testing.TB) target
	}{{"embedded", embedded}, {"mosquitto", mosquitto}} {
		mk := bk.mk
		b.Run(bk.name, func(b *testing.B) {
			tg := mk(b)
			var raws, ingests, ratios []float64
			var resent int
			for range b.N * benchRounds {
				raw := measureRaw(b, tg, uniqueSite("bench-raw"))
				ingest, n := measureIngest(b, tg, uniqueSite("bench-ingest"))
				raws, ingests, ratios = append(raws, raw), append(ingests, ingest), append(ratios, ingest/raw)
				resent += n
			}
			raw, ingest, ratio := median(raws), median(ingests), median(ratios)
			b.ReportMetric(raw, "raw_msgs/s")
			b.ReportMetric(ingest, "events/s")
			b.ReportMetric(ratio, "ratio")
			b.ReportMetric(float64(resent), "resent")
			b.ReportMetric(0, "ns/op")
			b.Logf("%s: edge events ingested %.0f/s, raw pub→sub %.0f msg/s, ratio %.2f (target ≥ 0.5; medians of %d rounds), events resent %d",
				tg.name, ingest, raw, ratio, len(ratios), resent)
		})
	}
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

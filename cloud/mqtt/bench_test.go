package mqtt_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/cloud/bolt"
	"github.com/larder-lockers/larder/cloud/broker"
	"github.com/larder-lockers/larder/cloud/cloudd"
	"github.com/larder-lockers/larder/protocol"
)

// Ingestion benchmark, run by `make bench` (LARDER_BENCH=1) as
//
//	LARDER_BENCH=1 go test -run '^$' -bench Ingest -benchtime 1x ./cloud/mqtt
//
// For each broker and fleet size (1 and 16 edges) it measures, in the same run, with the
// same payloads and the same publishers (one paho client per edge, QoS 1, at most
// drainInFlight publishes awaiting PUBACK each):
//
//   - raw: the edges' paho publishers → broker → one paho subscriber, until every message
//     arrived;
//   - ingest: the edges' events (at most benchWindow beyond the cloud's last ack, as
//     edge/mqtt drains its outbox) → broker → fleet adapter → the real domain
//     (cloud.Service, as larder-cloud wires it) → bbolt with fsync, until each edge's
//     cumulative EventAck covers its last event (every event decoded, applied,
//     committed durably and acknowledged);
//
// and reports both rates and their ratio. It fails when the median ratio through the
// embedded broker misses benchTarget.
const (
	benchEvents = 20000 // per measurement, split among the edges
	// benchRounds alternates raw and ingest measurements so that load from other
	// processes on the machine hits both alike; the medians are reported.
	benchRounds = 3
	// benchWindow is edge/mqtt's default OutboxWindow.
	benchWindow = 100
	// benchTarget is the ingest / raw ratio the benchmark asserts with the embedded
	// broker: issue 10's 0.5. With one edge the ingest rate is bound by the edge's window
	// and the commit latency (two fsyncs): a window of 100 makes two commits of about
	// 50 per round trip, so the ratio swings with the disk and the machine's load: on
	// the loaded 2-core machine of this change single rounds ran 0.57–1.10 with one edge
	// (medians 0.62–1.05) and 0.54–1.34 with 16 (medians 0.69–1.09). With many edges it
	// is bound by the broker's delivery to the one consumer, as raw is. 100 edges are
	// measured by larder-load (docs/load.md), each in its own process: 100 publishers
	// in this one process starve the cloud's client, whose in-flight messages then grow
	// until mochi's NextPacketID, scanning them under the client's lock for every
	// publish, stalls the publishers past their 10 s PUBACK wait.
	benchTarget = 0.5
)

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

// publishBounded publishes every payload with at most drainInFlight awaiting PUBACK.
func publishBounded(c paho.Client, topic string, payloads [][]byte) error {
	toks := make([]paho.Token, len(payloads))
	for i, p := range payloads {
		if i >= drainInFlight && !toks[i-drainInFlight].WaitTimeout(10*time.Second) {
			return fmt.Errorf("no PUBACK for message %d", i-drainInFlight)
		}
		toks[i] = c.Publish(topic, 1, false, p)
	}
	return nil
}

func benchSites(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = uniqueSite(fmt.Sprintf("%s%02d", prefix, i))
	}
	return out
}

func measureRaw(b *testing.B, tg target, edges int) (float64, error) {
	sites := benchSites("raw", edges)
	per := benchEvents / edges
	sub := benchClient(b, tg.url, "bench-sub-"+sites[0], tg.user, tg.pass)
	var got atomic.Int64
	done := make(chan struct{})
	filters := map[string]byte{}
	for _, s := range sites {
		filters[protocol.Topic(s, protocol.ChanEvents)] = 1
	}
	tok := sub.SubscribeMultiple(filters, func(paho.Client, paho.Message) {
		if got.Add(1) == int64(per*edges) {
			close(done)
		}
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		b.Fatal(tok.Error())
	}
	pubs := make([]paho.Client, edges)
	payloads := make([][][]byte, edges)
	for i, s := range sites {
		user, pass := tg.edgeLogin(s)
		pubs[i] = benchClient(b, tg.url, broker.EdgeClientID(s), user, pass)
		payloads[i] = eventPayloads(s, per)
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, edges)
	for i, s := range sites {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = publishBounded(pubs[i], protocol.Topic(s, protocol.ChanEvents), payloads[i])
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		return 0, fmt.Errorf("raw: %d of %d arrived (the broker dropped QoS 1 messages)", got.Load(), per*edges)
	}
	return float64(per*edges) / time.Since(start).Seconds(), nil
}

// benchDomain is larder-cloud's domain on a fresh bbolt file (fsync on), with sites
// provisioned for the edges.
func benchDomain(b testing.TB, sites []string) (*cloud.Service, *bolt.DB) {
	db, err := bolt.Open(filepath.Join(b.TempDir(), "cloud.db"), bolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	svc := cloud.New(cloud.Options{Store: db})
	ctx := context.Background()
	admin := cloud.Principal{Role: cloud.RoleAdmin, Subject: "bench"}
	for _, s := range sites {
		name := "Bench " + s
		if _, err := svc.CreateSite(ctx, admin, cloud.SiteInput{ID: s, Name: &name}); err != nil {
			b.Fatal(err)
		}
		if _, err := svc.ApplyBirth(ctx, s, time.Now(), protocol.Birth{Software: "bench",
			Compartments: []protocol.Compartment{{Number: 1, Size: protocol.SizeM, Zone: protocol.ZoneChilled}}}); err != nil {
			b.Fatal(err)
		}
	}
	return svc, db
}

type ingestResult struct {
	rate            float64
	resent          int
	commits, events uint64
}

func measureIngest(b *testing.B, tg target, edges int) ingestResult {
	sites := benchSites("ing", edges)
	per := benchEvents / edges
	svc, db := benchDomain(b, sites)
	startAdapter(b, tg, cloudd.NewFleet(svc), sites)
	commits0 := db.Stats().Commits.Load()
	type edge struct {
		c        paho.Client
		acks     *ackTracker
		payloads [][]byte
	}
	es := make([]edge, edges)
	for i, s := range sites {
		user, pass := tg.edgeLogin(s)
		c := benchClient(b, tg.url, broker.EdgeClientID(s), user, pass)
		acks := newAckTracker(uint64(per), nil)
		tok := c.Subscribe(protocol.Topic(s, protocol.ChanEventAck), 1, acks.handle)
		if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			b.Fatal(tok.Error())
		}
		es[i] = edge{c, acks, eventPayloads(s, per)}
	}
	applied0 := svc.Stats().EventsApplied.Load()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, edges)
	resent := make([]int, edges)
	for i, s := range sites {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Resend after 2 s without ack progress: the edge's own default is 30 s, and
			// any resend at all shows up in the report.
			resent[i], errs[i] = drainLikeAnEdge(es[i].c, protocol.Topic(s, protocol.ChanEvents), es[i].payloads,
				es[i].acks, benchWindow, 2*time.Second, 120*time.Second)
		}()
	}
	wg.Wait()
	rate := float64(per*edges) / time.Since(start).Seconds()
	r := ingestResult{rate: rate, commits: db.Stats().Commits.Load() - commits0}
	for i, err := range errs {
		if err != nil {
			b.Fatalf("edge %s: %v", sites[i], err)
		}
		r.resent += resent[i]
	}
	r.events = svc.Stats().EventsApplied.Load() - applied0
	if r.events != uint64(per*edges) {
		b.Fatalf("applied %d events, want %d", r.events, per*edges)
	}
	for _, s := range sites {
		if hw, err := svc.EventHighWater(context.Background(), s); err != nil || hw != uint64(per) {
			b.Fatalf("site %s: high water %d (%v), want %d", s, hw, err, per)
		}
	}
	return r
}

func BenchmarkIngest(b *testing.B) {
	if os.Getenv("LARDER_BENCH") == "" {
		b.Skip("LARDER_BENCH=1 (make bench) runs the ingestion benchmark")
	}
	// Many publishers fan in to the one consumer faster than it reads, so the brokers'
	// per-client queues are made to hold every edge's window, for raw and ingest alike:
	// this measures the consumer, not the broker's flow control (with cloud/broker's
	// defaults a service-account subscriber's window, 384 messages, holds the
	// publishers back: flow.go). Mosquitto's default max_queued_messages (1000) would
	// drop beyond it, which is why Mosquitto is measured with one edge only.
	roomy := func(t testing.TB) target {
		return embeddedWith(t, func(c *broker.Config) { c.MaxInflight, c.MaxWritesPending = 65535, 65535 })
	}
	for _, bk := range []struct {
		name  string
		mk    func(testing.TB) target
		edges []int
		// assert: with Mosquitto's defaults the ratio measured 0.10 here, with
		// set_tcp_nodelay true (and max_queued_messages 100000) 0.59: by default
		// Mosquitto lets Nagle hold back the small EventAcks. The machine's Mosquitto
		// has the defaults, so its figure is reported, not asserted.
		assert bool
	}{{"embedded", roomy, []int{1, 16}, true}, {"mosquitto", mosquitto, []int{1}, false}} {
		for _, edges := range bk.edges {
			b.Run(fmt.Sprintf("%s/edges=%d", bk.name, edges), func(b *testing.B) {
				tg := bk.mk(b)
				var raws, ingests, ratios []float64
				var resent int
				var commits, events uint64
				for range b.N * benchRounds {
					raw, err := measureRaw(b, tg, edges)
					if err != nil && !bk.assert {
						// Mosquitto's default max_queued_messages (1000) drops QoS 1
						// messages for a subscriber that falls behind.
						b.Skipf("%s: %v", tg.name, err)
					}
					if err != nil {
						b.Fatal(err)
					}
					in := measureIngest(b, tg, edges)
					raws, ingests, ratios = append(raws, raw), append(ingests, in.rate), append(ratios, in.rate/raw)
					resent += in.resent
					commits += in.commits
					events += in.events
				}
				raw, ingest, ratio := median(raws), median(ingests), median(ratios)
				b.ReportMetric(raw, "raw_msgs/s")
				b.ReportMetric(ingest, "events/s")
				b.ReportMetric(ratio, "ratio")
				b.ReportMetric(float64(resent), "resent")
				b.ReportMetric(float64(events)/float64(max(commits, 1)), "events/commit")
				b.ReportMetric(0, "ns/op")
				b.Logf("%s, %d edges: edge events ingested (real domain, bbolt fsync) %.0f/s, raw pub→sub %.0f msg/s, ratio %.2f (target ≥ %.2f; medians of %d rounds), %.1f events per commit, events resent %d",
					tg.name, edges, ingest, raw, ratio, benchTarget, len(ratios), float64(events)/float64(max(commits, 1)), resent)
				b.Logf("rounds: raw %.0f, ingest %.0f, ratio %.2f", raws, ingests, ratios)
				if bk.assert && ratio < benchTarget {
					b.Errorf("ingest/raw ratio %.2f below the target %.2f", ratio, benchTarget)
				}
			})
		}
	}
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

package mqtt_test

import (
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/larder-lockers/larder/edge/mqtt/mqtttest"
	"github.com/larder-lockers/larder/protocol"
)

// ownerCloud is a cloud replica that took a site over: it counts every event it
// receives by sequence and acknowledges only when told to, so a test decides what it
// "holds".
type ownerCloud struct {
	t    testing.TB
	site string
	cli  paho.Client

	mu     sync.Mutex
	copies map[uint64]int // receptions per sequence
}

func newOwnerCloud(t testing.TB, url, site string) *ownerCloud {
	t.Helper()
	o := &ownerCloud{t: t, site: site, copies: map[uint64]int{}}
	o.cli = paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("larder-owner-test-" + site).
		SetOrderMatters(false).SetAutoReconnect(false))
	if tok := o.cli.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("owner connect: %v", tok.Error())
	}
	t.Cleanup(func() { o.cli.Disconnect(50) })
	tok := o.cli.Subscribe(protocol.Topic(site, protocol.ChanEvents), 1, func(_ paho.Client, msg paho.Message) {
		m, err := protocol.DecodeOn(protocol.ChanEvents, msg.Payload())
		if err != nil {
			t.Errorf("owner: undecodable event: %v", err)
			return
		}
		o.mu.Lock()
		o.copies[m.Seq]++
		o.mu.Unlock()
	})
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("owner subscribe: %v", tok.Error())
	}
	return o
}

func (o *ownerCloud) ack(seq uint64) {
	o.t.Helper()
	payload, err := protocol.Encode(protocol.Header{}, protocol.EventAck{Seq: seq})
	if err != nil {
		o.t.Fatal(err)
	}
	if tok := o.cli.Publish(protocol.Topic(o.site, protocol.ChanEventAck), 1, false, payload); !tok.WaitTimeout(wait) || tok.Error() != nil {
		o.t.Fatalf("owner ack %d: %v", seq, tok.Error())
	}
}

func (o *ownerCloud) count(seq uint64) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.copies[seq]
}

// waitCopies waits until every sequence in [from, to] arrived n times, within d.
func (o *ownerCloud) waitCopies(t *testing.T, from, to uint64, n int, d time.Duration) {
	t.Helper()
	waitFor(t, d, "events received again", func() bool {
		for seq := from; seq <= to; seq++ {
			if o.count(seq) < n {
				return false
			}
		}
		return true
	})
}

// TestNonAdvancingAckResendsAtOnce: an EventAck equal to the last one while later events
// are on the wire (a new owner after a failover) makes the edge resend them at once,
// long before AckTimeout; a cloud that keeps re-acknowledging gets at most one fast
// resend per AckTimeout/4, not one per ack.
func TestNonAdvancingAckResendsAtOnce(t *testing.T) {
	m := mqtttest.StartMochi(t)
	site := newSite(t, m.URL())
	owner := newOwnerCloud(t, m.URL(), site)
	store := mqtttest.NewStore()
	cfg := testConfig(site, m.URL())
	cfg.OutboxWindow = 10
	cfg.AckTimeout = 4 * time.Second // long against the fast path; its quarter is the guard interval
	e := startEdge(t, cfg, store)

	for i := range 5 {
		store.Append(doorEvent(i))
	}
	owner.waitCopies(t, 1, 5, 1, wait)
	owner.ack(5)
	waitFor(t, wait, "outbox acked 5", func() bool { a, _ := store.Acked(); return a == 5 })
	for i := range 5 {
		store.Append(doorEvent(5 + i))
	}
	owner.waitCopies(t, 6, 10, 1, wait)

	// The old owner died holding 6..10; the new one acknowledges what committed.
	resent0 := metric(t, e.reg, "larder_mqtt_outbox_resent_total")
	start := time.Now()
	owner.ack(5)
	owner.waitCopies(t, 6, 10, 2, cfg.AckTimeout/2)
	if took := time.Since(start); took >= cfg.AckTimeout/2 {
		t.Fatalf("resent after %v, want well before AckTimeout %v", took, cfg.AckTimeout)
	}
	if got := metric(t, e.reg, "larder_mqtt_outbox_resent_total") - resent0; got != 1 {
		t.Errorf("resends = %v, want 1", got)
	}

	// A cloud that keeps re-acknowledging 5 (every resend is a duplicate or a gap to it)
	// must not start a storm: 30 re-acks within 3/4 of AckTimeout bring at most one fast
	// resend per quarter (the first is above), and none from the AckTimeout, which
	// counts from the last resend.
	const reAcks = 30
	reAckFor := cfg.AckTimeout * 3 / 4
	for i := range reAcks {
		owner.ack(5)
		time.Sleep(time.Until(start.Add(reAckFor * time.Duration(i+1) / reAcks)))
	}
	maxCopies := 2 + int(reAckFor/(cfg.AckTimeout/4))
	if got := owner.count(6); got > maxCopies || got < 3 {
		t.Fatalf("event 6 received %d times while the cloud re-acked %d times without progress, want 3..%d", got, reAcks, maxCopies)
	}

	// After progress, a non-advancing ack resends what follows it.
	owner.ack(7)
	waitFor(t, wait, "outbox acked 7", func() bool { a, _ := store.Acked(); return a == 7 })
	before := owner.count(8)
	time.Sleep(cfg.AckTimeout / 4) // past the guard interval of the last fast resend
	owner.ack(7)
	waitFor(t, cfg.AckTimeout/2, "a fast resend after progress", func() bool { return owner.count(8) > before && owner.count(10) > before })
	owner.ack(10)
	waitFor(t, wait, "outbox acked 10", func() bool { a, _ := store.Acked(); return a == 10 })
}

// TestNonAdvancingAckWithNothingOnTheWire: an ack equal to the last one when every sent
// event is acknowledged (a duplicate re-ack) resends nothing.
func TestNonAdvancingAckWithNothingOnTheWire(t *testing.T) {
	m := mqtttest.StartMochi(t)
	site := newSite(t, m.URL())
	owner := newOwnerCloud(t, m.URL(), site)
	store := mqtttest.NewStore()
	cfg := testConfig(site, m.URL())
	cfg.AckTimeout = 4 * time.Second
	e := startEdge(t, cfg, store)
	for i := range 3 {
		store.Append(doorEvent(i))
	}
	owner.waitCopies(t, 1, 3, 1, wait)
	owner.ack(3)
	waitFor(t, wait, "outbox acked 3", func() bool { a, _ := store.Acked(); return a == 3 })
	owner.ack(3)
	owner.ack(3)
	// Nothing resent within a quarter of AckTimeout (the ack timeout itself never
	// resends acknowledged events).
	time.Sleep(cfg.AckTimeout / 4)
	for seq := uint64(1); seq <= 3; seq++ {
		if got := owner.count(seq); got != 1 {
			t.Errorf("event %d received %d times, want 1", seq, got)
		}
	}
	if got := metric(t, e.reg, "larder_mqtt_outbox_resent_total"); got > 0 {
		t.Errorf("resends = %v, want 0", got)
	}
}

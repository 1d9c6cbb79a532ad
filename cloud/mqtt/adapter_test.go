package mqtt_test

import (
	"context"
	"errors"
	"net"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	cloudmqtt "github.com/larder-lockers/larder/cloud/mqtt"
	"github.com/larder-lockers/larder/protocol"
)

func TestEventsAckedInOrder(t *testing.T) {
	for _, mk := range targets(t) {
		tg := mk(t)
		t.Run(tg.name, func(t *testing.T) {
			f := newMemFleet()
			site := uniqueSite("ev")
			startAdapter(t, tg, f, []string{site})
			e := newEdge(t, tg, site)
			for seq := uint64(1); seq <= 5; seq++ {
				e.event(seq)
			}
			e.waitAck(5)
			if got, want := f.eventSeqs(site), []uint64{1, 2, 3, 4, 5}; !slices.Equal(got, want) {
				t.Fatalf("ingested %v, want %v", got, want)
			}
		})
	}
}

func TestDuplicateEventsIngestedOnceAndReacked(t *testing.T) {
	tg := embedded(t)
	f := newMemFleet()
	site := uniqueSite("dup")
	startAdapter(t, tg, f, []string{site})
	e := newEdge(t, tg, site)
	e.event(1)
	e.event(2)
	e.waitAck(2)
	// The edge missed the ack and resends: each duplicate is acknowledged again.
	e.event(1)
	e.event(2)
	if got := e.waitAck(2); got != 2 {
		t.Fatalf("re-ack %d, want 2", got)
	}
	if got, want := f.eventSeqs(site), []uint64{1, 2}; !slices.Equal(got, want) {
		t.Fatalf("ingested %v, want %v", got, want)
	}
}

func TestGapWaitsForResend(t *testing.T) {
	tg := embedded(t)
	f := newMemFleet()
	site := uniqueSite("gap")
	startAdapter(t, tg, f, []string{site})
	e := newEdge(t, tg, site)
	e.event(1)
	e.waitAck(1)
	e.event(3) // 2 was lost
	e.event(4)
	e.noAckAbove(1)
	if got, want := f.eventSeqs(site), []uint64{1}; !slices.Equal(got, want) {
		t.Fatalf("ingested %v during the gap, want %v", got, want)
	}
	e.event(2) // the edge resends from the last ack
	e.waitAck(4)
	if got, want := f.eventSeqs(site), []uint64{1, 2, 3, 4}; !slices.Equal(got, want) {
		t.Fatalf("ingested %v, want %v", got, want)
	}
}

func TestFailedEventIsNotAcked(t *testing.T) {
	tg := embedded(t)
	f := newMemFleet()
	fail := true
	f.failEvent = func(m protocol.Message) error {
		if m.Seq == 2 && fail {
			return errors.New("disk full")
		}
		return nil
	}
	site := uniqueSite("fail")
	startAdapter(t, tg, f, []string{site})
	e := newEdge(t, tg, site)
	e.event(1)
	e.event(2)
	e.event(3)
	e.waitAck(1)
	e.noAckAbove(1)
	f.mu.Lock()
	fail = false
	f.mu.Unlock()
	e.event(2)
	e.event(3)
	e.waitAck(3)
	if got, want := f.eventSeqs(site), []uint64{1, 2, 3}; !slices.Equal(got, want) {
		t.Fatalf("ingested %v, want %v", got, want)
	}
	// A well-formed event that could not be applied for now is retried, never rejected.
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.rejected) != 0 {
		t.Fatalf("acks rejected %+v, want none", e.rejected)
	}
}

func TestBirthPublishesSnapshotAndResetsOutbox(t *testing.T) {
	tg := embedded(t)
	f := newMemFleet()
	site := uniqueSite("birth")
	f.version[site] = 7
	startAdapter(t, tg, f, []string{site})
	e := newEdge(t, tg, site)
	e.publish(protocol.ChanBirth, protocol.Header{}, birth(0))
	d := e.waitMsg(protocol.ChanDesired, 1)[0]
	if body := d.Body.(protocol.Desired); body.Version != 7 || !body.Full || d.Seq != 7 {
		t.Fatalf("snapshot %+v seq %d, want full version 7 with seq 7", body, d.Seq)
	}
	for seq := uint64(1); seq <= 3; seq++ {
		e.event(seq)
	}
	e.waitAck(3)

	// The edge was reinstalled: its new outbox starts at 1 again with new ids.
	e.publish(protocol.ChanBirth, protocol.Header{}, birth(1))
	e.waitMsg(protocol.ChanDesired, 2)
	e.publish(protocol.ChanEvents, protocol.Header{ID: "fresh-1", Seq: 1},
		protocol.Event{Kind: protocol.EventHelpRequested, Credential: protocol.CredNone})
	e.waitAck(1)
	f.waitUntil(t, "the new outbox's first event", func() bool { return len(f.events[site]) == 4 })
	if got := f.events[site][3].ID; got != "fresh-1" {
		t.Fatalf("4th event id %q, want fresh-1", got)
	}
}

func TestDesiredGetAndTelemetry(t *testing.T) {
	tg := embedded(t)
	f := newMemFleet()
	site := uniqueSite("dg")
	f.version[site] = 3
	startAdapter(t, tg, f, []string{site})
	e := newEdge(t, tg, site)
	e.publish(protocol.ChanDesiredGet, protocol.Header{}, protocol.DesiredGet{Have: 1, Reason: "gap"})
	if got := e.waitMsg(protocol.ChanDesired, 1)[0].Body.(protocol.Desired).Version; got != 3 {
		t.Fatalf("snapshot version %d, want 3", got)
	}
	e.publish(protocol.ChanTelemetry, protocol.Header{}, protocol.Telemetry{UptimeSeconds: 5})
	f.waitUntil(t, "telemetry", func() bool { return f.telemetry[site] == 1 })
}

// fakeClock is an adjustable clock for the adapter's timestamps. Queued times are
// returned first, one per call.
type fakeClock struct {
	mu     sync.Mutex
	t      time.Time
	queued []time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queued) > 0 {
		t := c.queued[0]
		c.queued = c.queued[1:]
		return t
	}
	return c.t
}
func (c *fakeClock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func TestPresenceAndOutage(t *testing.T) {
	tg := embedded(t)
	f := newMemFleet()
	site := uniqueSite("pres")
	t0 := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	clock := &fakeClock{t: t0}
	reg := prometheus.NewRegistry()
	startAdapter(t, tg, f, []string{site}, func(c *cloudmqtt.Config) { c.Now = clock.Now; c.Registry = reg })
	e := newEdge(t, tg, site)
	step := func(at time.Time, ch protocol.Channel, body protocol.Body, n int) {
		t.Helper()
		clock.Set(at)
		e.publish(ch, protocol.Header{}, body)
		if ch == protocol.ChanStatus {
			f.waitUntil(t, "status", func() bool { return len(f.statuses[site]) == n })
		} else {
			f.waitUntil(t, "telemetry", func() bool { return f.telemetry[site] == n })
		}
	}
	step(t0, protocol.ChanStatus, protocol.Status{Online: true, Software: "1.0"}, 1)
	if got := metricValue(t, reg, "larder_fleet_sites_online"); got != 1 {
		t.Errorf("sites online %v, want 1", got)
	}
	step(t0.Add(10*time.Second), protocol.ChanTelemetry, protocol.Telemetry{}, 1)
	// The Last Will arrives late (1.5 keep-alives after the edge vanished).
	step(t0.Add(60*time.Second), protocol.ChanStatus, protocol.Status{Online: false}, 2)
	step(t0.Add(310*time.Second), protocol.ChanStatus, protocol.Status{Online: true, Software: "1.0"}, 3)

	want := []cloudmqtt.StatusChange{
		{Online: true, At: t0, Software: "1.0"},
		{Online: false, At: t0.Add(60 * time.Second), LastSeen: t0.Add(10 * time.Second)},
		{Online: true, At: t0.Add(310 * time.Second), LastSeen: t0.Add(10 * time.Second), Outage: 300 * time.Second, Software: "1.0"},
	}
	f.mu.Lock()
	got := f.statuses[site]
	f.mu.Unlock()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("status changes (-want +got):\n%s", diff)
	}
}

// metricValue sums every series of the named metric.
func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	return sum
}

func openCmd(id string, expires time.Time) protocol.Command {
	return protocol.Command{ID: id, Kind: protocol.CmdOpen, Compartment: 2, Purpose: protocol.PurposeOps,
		Reason: "cleaning", ExpiresAt: expires, Actor: "op-1"}
}

func TestCommandJobs(t *testing.T) {
	tg := embedded(t)
	f := newMemFleet()
	site := uniqueSite("cmd")
	a := startAdapter(t, tg, f, []string{site}, func(c *cloudmqtt.Config) { c.CommandGrace = 50 * time.Millisecond })
	e := newEdge(t, tg, site)
	ctx := context.Background()

	// One the edge completes, one it never answers.
	start := time.Now()
	done := openCmd("cmd-done", start.Add(time.Second))
	lost := openCmd("cmd-lost", time.Now().Add(100*time.Millisecond))
	f.mu.Lock()
	f.pending = append(f.pending, cloudmqtt.PendingCommand{Site: site, Command: done}, cloudmqtt.PendingCommand{Site: site, Command: lost})
	f.mu.Unlock()
	for _, c := range []protocol.Command{done, lost} {
		if err := a.PublishCommand(ctx, site, c); err != nil {
			t.Fatal(err)
		}
	}
	// Both commands arrive; which first depends on the adapter's publishers, not on the test.
	got := e.waitMsg(protocol.ChanCommands, 2)
	ids := []string{got[0].Body.(protocol.Command).ID, got[1].Body.(protocol.Command).ID}
	if slices.Sort(ids); ids[0] != "cmd-done" || ids[1] != "cmd-lost" {
		t.Fatalf("edge got %+v", got)
	}
	for _, st := range []protocol.CommandState{protocol.StateQueued, protocol.StateInProgress, protocol.StateSucceeded} {
		e.publish(protocol.ChanCommandAck, protocol.Header{}, protocol.CommandAck{CommandID: "cmd-done", State: st})
	}
	f.waitUntil(t, "cmd-lost timed out", func() bool { return len(f.commands["cmd-lost"]) == 1 })
	f.waitUntil(t, "cmd-done succeeded", func() bool { return len(f.commands["cmd-done"]) == 3 })
	time.Sleep(time.Until(start.Add(1300 * time.Millisecond))) // past cmd-done's expiry + grace
	f.mu.Lock()
	defer f.mu.Unlock()
	// The finished job's timer was stopped: the cloud never even tried to time it out.
	if diff := cmp.Diff(f.commands["cmd-done"], f.calls["cmd-done"]); diff != "" {
		t.Fatalf("calls for cmd-done beyond its states (-states +calls):\n%s", diff)
	}
	if diff := cmp.Diff(map[string][]protocol.CommandState{
		"cmd-done": {protocol.StateQueued, protocol.StateInProgress, protocol.StateSucceeded},
		"cmd-lost": {protocol.StateTimedOut},
	}, f.commands); diff != "" {
		t.Fatalf("command states (-want +got):\n%s", diff)
	}
}

func TestPendingCommandsAtStartAndAfterBirth(t *testing.T) {
	tg := embedded(t)
	f := newMemFleet()
	site := uniqueSite("pend")
	expired := openCmd("cmd-expired", time.Now().Add(-time.Minute))
	live := openCmd("cmd-live", time.Now().Add(time.Hour))
	f.pending = []cloudmqtt.PendingCommand{{Site: site, Command: expired}, {Site: site, Command: live}}
	startAdapter(t, tg, f, []string{site}, func(c *cloudmqtt.Config) { c.CommandGrace = time.Millisecond })
	// A command whose expiry passed while the cloud was down times out at once.
	f.waitUntil(t, "cmd-expired timed out", func() bool { return len(f.commands["cmd-expired"]) == 1 })

	e := newEdge(t, tg, site)
	e.publish(protocol.ChanBirth, protocol.Header{}, birth(0))
	got := e.waitMsg(protocol.ChanCommands, 1)
	if id := got[0].Body.(protocol.Command).ID; id != "cmd-live" {
		t.Fatalf("republished %s, want cmd-live only", id)
	}
	e.waitMsg(protocol.ChanDesired, 1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.commands["cmd-live"]) != 0 {
		t.Fatalf("cmd-live states %v, want none", f.commands["cmd-live"])
	}
}

func TestInvalidPayloadsAreRejected(t *testing.T) {
	tg := embedded(t)
	f := newMemFleet()
	site := uniqueSite("bad")
	reg := prometheus.NewRegistry()
	startAdapter(t, tg, f, []string{site}, func(c *cloudmqtt.Config) { c.Registry = reg })
	e := newEdge(t, tg, site)
	for _, p := range []string{"", "{", `{"v":2}`, `{"v":1,"id":"x","ts":"2026-01-01T00:00:00Z","type":"birth","body":{}}`} {
		tok := e.c.Publish(protocol.Topic(site, protocol.ChanEvents), 1, false, p)
		tok.WaitTimeout(time.Second)
	}
	// An event without a sequence is unusable too.
	e.publish(protocol.ChanEvents, protocol.Header{}, protocol.Event{Kind: protocol.EventHelpRequested, Credential: protocol.CredNone})
	e.event(1) // and the adapter still works
	e.waitAck(1)
	if got := metricValue(t, reg, "larder_fleet_messages_rejected_total"); got != 5 {
		t.Fatalf("rejected %v, want 5", got)
	}
}

func TestPublishDesiredDelta(t *testing.T) {
	tg := embedded(t)
	f := newMemFleet()
	site := uniqueSite("delta")
	a := startAdapter(t, tg, f, []string{site})
	e := newEdge(t, tg, site)
	if err := a.PublishDesired(context.Background(), site, protocol.Desired{Version: 9, Cancel: []string{"o-1"}}); err != nil {
		t.Fatal(err)
	}
	m := e.waitMsg(protocol.ChanDesired, 1)[0]
	if d := m.Body.(protocol.Desired); d.Version != 9 || d.Full || m.Seq != 9 {
		t.Fatalf("got %+v seq %d", d, m.Seq)
	}
	if err := a.PublishDesired(context.Background(), "Bad Site", protocol.Desired{Version: 1}); err == nil {
		t.Fatal("invalid site accepted")
	}
	if err := a.PublishCommand(context.Background(), site, protocol.Command{ID: "x"}); err == nil {
		t.Fatal("invalid command accepted")
	}
}

// TestCentralOutage: when the cloud loses the broker, every online site's outage is
// measured from that moment once the cloud hears its retained status again.
func TestCentralOutage(t *testing.T) {
	tg := embedded(t)
	f := newMemFleet()
	site := uniqueSite("central")
	t0 := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	clock := &fakeClock{t: t0}
	reg := prometheus.NewRegistry()
	clientID := "larder-cloud-" + site
	startAdapter(t, tg, f, []string{site}, func(c *cloudmqtt.Config) { c.Now = clock.Now; c.Registry = reg; c.ClientID = clientID })
	e := newEdge(t, tg, site)
	e.publish(protocol.ChanStatus, protocol.Header{}, protocol.Status{Online: true})
	f.waitUntil(t, "online", func() bool { return len(f.statuses[site]) == 1 })

	// Another client takes the cloud's client id: the broker drops the cloud, which
	// notices at 100 s (the first clock reading after this) and, reconnecting at once,
	// hears the retained status again at 130 s.
	clock.mu.Lock()
	clock.queued = []time.Time{t0.Add(100 * time.Second)}
	clock.t = t0.Add(130 * time.Second)
	clock.mu.Unlock()
	intruder := paho.NewClient(paho.NewClientOptions().AddBroker(tg.url).SetClientID(clientID).
		SetUsername(tg.user).SetPassword(tg.pass).SetAutoReconnect(false))
	if tok := intruder.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	t.Cleanup(func() { intruder.Disconnect(0) })
	f.waitUntil(t, "retained status after reconnecting", func() bool { return len(f.statuses[site]) == 2 })
	f.mu.Lock()
	got := f.statuses[site][1]
	f.mu.Unlock()
	if !got.Online || got.Outage != 30*time.Second {
		t.Fatalf("after the central outage: %+v, want online with a 30 s outage", got)
	}
}

func TestDuplicateStatusIgnored(t *testing.T) {
	tg := embedded(t)
	f := newMemFleet()
	site := uniqueSite("dupst")
	startAdapter(t, tg, f, []string{site})
	e := newEdge(t, tg, site)
	h := protocol.Header{ID: "status-1"}
	e.publish(protocol.ChanStatus, h, protocol.Status{Online: true})
	e.publish(protocol.ChanStatus, h, protocol.Status{Online: true}) // redelivered
	e.publish(protocol.ChanStatus, protocol.Header{ID: "status-2"}, protocol.Status{Online: false})
	f.waitUntil(t, "two distinct statuses", func() bool { return len(f.statuses[site]) == 2 })
	e.event(1) // a marker: once acked, any third status would have been handled
	e.waitAck(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if got := len(f.statuses[site]); got != 2 {
		t.Fatalf("%d status changes, want 2", got)
	}
}

func TestStartFailsWithoutBroker(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	a, err := cloudmqtt.New(cloudmqtt.Config{Broker: "tcp://" + addr, Fleet: newMemFleet(), ConnectTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err == nil {
		t.Fatal("started without a broker")
	}
	a.Close() // idempotent after the failed Start
	if err := a.PublishDesired(context.Background(), "site-x", protocol.Desired{Version: 1}); !errors.Is(err, cloudmqtt.ErrClosed) {
		t.Fatalf("publish after close: %v", err)
	}
}

// TestMalformedEventRejected: an event that does not decode, between good ones, is
// rejected at its sequence: the domain gets a RejectedEvent in its place and applies
// the events after it, the ack goes past it and names it, and a resend of it (the edge
// missed that ack) is acknowledged with the same rejection, applied nowhere twice.
func TestMalformedEventRejected(t *testing.T) {
	tg := embedded(t)
	f := newMemFleet()
	site := uniqueSite("malformed")
	reg := prometheus.NewRegistry()
	startAdapter(t, tg, f, []string{site}, func(c *cloudmqtt.Config) { c.Registry = reg })
	e := newEdge(t, tg, site)
	// picked_up without its order: what a broken edge build might send.
	bad := `{"v":1,"id":"bad-2","seq":2,"ts":"2026-05-04T17:36:00Z","type":"event","body":{"kind":"picked_up","credential":"pickup_code"}}`
	e.event(1)
	if tok := e.c.Publish(protocol.Topic(site, protocol.ChanEvents), 1, false, bad); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	e.event(3)
	e.waitAck(3)
	want := protocol.Rejection{Seq: 2, Error: protocol.ErrInvalidEvent, Field: "body.order", Message: "required for picked_up"}
	e.mu.Lock()
	got := append([]protocol.Rejection(nil), e.rejected...)
	e.mu.Unlock()
	if len(got) == 0 || got[len(got)-1] != want {
		t.Fatalf("acks rejected %+v, want the last to be %+v", got, want)
	}
	if seqs := f.eventSeqs(site); !slices.Equal(seqs, []uint64{1, 2, 3}) {
		t.Fatalf("domain got %v, want 1, 2 (the rejection) and 3", seqs)
	}
	f.mu.Lock()
	if rj, ok := f.events[site][1].Body.(protocol.RejectedEvent); !ok || rj.Rejection != want {
		t.Errorf("domain got %+v at seq 2, want RejectedEvent %+v", f.events[site][1].Body, want)
	}
	f.mu.Unlock()

	// The edge missed the ack and resends: acknowledged again, naming it again.
	e.mu.Lock()
	e.rejected = nil
	e.mu.Unlock()
	if tok := e.c.Publish(protocol.Topic(site, protocol.ChanEvents), 1, false, bad); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	e.waitAck(3)
	e.mu.Lock()
	got = append([]protocol.Rejection(nil), e.rejected...)
	e.mu.Unlock()
	if !slices.Contains(got, want) {
		t.Fatalf("ack of the resend rejected %+v, want %+v", got, want)
	}
	if seqs := f.eventSeqs(site); !slices.Equal(seqs, []uint64{1, 2, 3}) {
		t.Fatalf("domain got %v after the resend, want 1, 2, 3", seqs)
	}
	if got := metricValue(t, reg, "larder_fleet_messages_rejected_total"); got != 2 {
		t.Errorf("larder_fleet_messages_rejected_total = %v, want 2 (the event and its resend)", got)
	}
}

// TestEnvelopeIDsAndSequences: a command's envelope id is its command id (the edge
// deduplicates on body.id, and a republished command is a redelivery of one message);
// commands and event acks are not sequenced (seq 0), desired state carries its version.
func TestEnvelopeIDsAndSequences(t *testing.T) {
	tg := embedded(t)
	f := newMemFleet()
	site := uniqueSite("ids")
	a := startAdapter(t, tg, f, []string{site})
	e := newEdge(t, tg, site)
	c := openCmd("cmd_0123456789abcdef01234567", time.Now().Add(time.Minute))
	if err := a.PublishCommand(context.Background(), site, c); err != nil {
		t.Fatal(err)
	}
	if err := a.PublishDesired(context.Background(), site, protocol.Desired{Version: 7}); err != nil {
		t.Fatal(err)
	}
	cmd := e.waitMsg(protocol.ChanCommands, 1)[0]
	if cmd.ID != c.ID || cmd.Seq != 0 {
		t.Errorf("command envelope id %q seq %d, want id %q (the command's) and seq 0", cmd.ID, cmd.Seq, c.ID)
	}
	if d := e.waitMsg(protocol.ChanDesired, 1)[0]; d.Seq != 7 {
		t.Errorf("desired v7 has envelope seq %d, want 7", d.Seq)
	}
	var raw []byte
	got := make(chan []byte, 10)
	tok := e.c.Subscribe(protocol.Topic(site, protocol.ChanEventAck), 1, func(_ paho.Client, m paho.Message) { got <- m.Payload() })
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	e.event(1)
	select {
	case raw = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("no event ack")
	}
	if m, err := protocol.Decode(raw); err != nil || m.Seq != 0 {
		t.Errorf("event ack envelope seq %d (%v), want 0", m.Seq, err)
	}
}

// TestEdge10Accepted: a 1.0 edge, byte for byte: its golden birth (no protocol field) is
// accepted and answered with a snapshot, and its desired_get on connect with another
// ([compat.edge-1.0]).
func TestEdge10Accepted(t *testing.T) {
	tg := embedded(t)
	f := newMemFleet()
	site := uniqueSite("v10")
	startAdapter(t, tg, f, []string{site})
	e := newEdge(t, tg, site)
	birth, err := os.ReadFile("../../protocol/testdata/birth-1.0.json")
	if err != nil {
		t.Fatal(err)
	}
	if tok := e.c.Publish(protocol.Topic(site, protocol.ChanBirth), 1, false, birth); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish birth: %v", tok.Error())
	}
	e.publish(protocol.ChanDesiredGet, protocol.Header{}, protocol.DesiredGet{Reason: "connect"})
	e.waitMsg(protocol.ChanDesired, 2)
	f.mu.Lock()
	births := f.births[site]
	f.mu.Unlock()
	if len(births) != 1 || births[0].Protocol != "" || births[0].Software != "larder-edge 1.0.0" {
		t.Fatalf("births %+v, want the 1.0 one", births)
	}
}

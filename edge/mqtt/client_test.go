package mqtt_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/larder-lockers/larder/edge/mqtt"
	"github.com/larder-lockers/larder/edge/mqtt/mqtttest"
	"github.com/larder-lockers/larder/protocol"
)

const wait = 10 * time.Second

func TestConnectBirthStatus(t *testing.T) {
	eachBroker(t, func(t *testing.T, b broker) {
		site := newSite(t, b.url)
		cloud := mqtttest.NewCloud(t, b.url, site)
		defer cloud.Close()
		store := mqtttest.NewStore()
		e := startEdge(t, testConfig(site, b.url), store)

		s := cloud.Wait(t, wait, "birth, status and telemetry", func(s mqtttest.Snapshot) bool {
			return len(s.Births) == 1 && s.Telemetry > 0 &&
				slices.ContainsFunc(s.Statuses, func(st protocol.Status) bool { return st.Online })
		})
		// The cloud answers the birth with a snapshot: asking as well would bring it twice.
		if len(s.Gets) != 0 {
			t.Errorf("desired gets on connect = %+v, want none", s.Gets)
		}
		if got := s.Births[0].Protocol; got != "" && got != protocol.Revision {
			t.Errorf("birth protocol = %q", got)
		}
		if s.Births[0].Software != "mqtttest" {
			t.Errorf("birth software = %q", s.Births[0].Software)
		}
		if st, ok := retainedStatus(t, b.url, site); !ok || !st.Online || st.Software != "test-1.0" {
			t.Errorf("retained status = %+v, %v; want online", st, ok)
		}
		if got := metric(t, e.reg, "larder_broker_connected"); got != 1 {
			t.Errorf("larder_broker_connected = %v, want 1", got)
		}

		e.stop() // clean shutdown: the edge says offline itself
		if st, ok := retainedStatus(t, b.url, site); !ok || st.Online {
			t.Errorf("retained status after shutdown = %+v, %v; want offline", st, ok)
		}
		if got := metric(t, e.reg, "larder_broker_connected"); got != 0 {
			t.Errorf("larder_broker_connected after shutdown = %v, want 0", got)
		}
	})
}

// TestLastWill cuts the edge's TCP connection without a DISCONNECT: the broker must
// publish the retained offline status, and the edge must come back with a new birth.
func TestLastWill(t *testing.T) {
	eachBroker(t, func(t *testing.T, b broker) {
		site := newSite(t, b.url)
		cloud := mqtttest.NewCloud(t, b.url, site)
		defer cloud.Close()
		proxy := mqtttest.NewProxy(t, b.addr)
		e := startEdge(t, testConfig(site, proxy.URL()), mqtttest.NewStore())
		cloud.Wait(t, wait, "first connect sequence", func(s mqtttest.Snapshot) bool { return len(s.Births) == 1 })

		proxy.Cut()
		s := cloud.Wait(t, wait, "last will", func(s mqtttest.Snapshot) bool {
			return len(s.Statuses) > 0 && !s.Statuses[len(s.Statuses)-1].Online
		})
		if got := s.Statuses[len(s.Statuses)-1].Software; got != "test-1.0" {
			t.Errorf("will software = %q", got)
		}
		if st, ok := retainedStatus(t, b.url, site); !ok || st.Online {
			t.Errorf("retained status after cut = %+v, %v; want offline", st, ok)
		}
		waitFor(t, wait, "gauge 0", func() bool { return metric(t, e.reg, "larder_broker_connected") == 0 })

		proxy.Resume(t)
		cloud.Wait(t, wait, "second birth and online status", func(s mqtttest.Snapshot) bool {
			return len(s.Births) == 2 && s.Statuses[len(s.Statuses)-1].Online
		})
		waitFor(t, wait, "gauge 1", func() bool { return metric(t, e.reg, "larder_broker_connected") == 1 })
	})
}

// TestOutboxDrainsAfterOutage starts the edge with the broker unreachable, queues events,
// then lets the link up: every event must reach the cloud once, in order.
func TestOutboxDrainsAfterOutage(t *testing.T) {
	eachBroker(t, func(t *testing.T, b broker) {
		site := newSite(t, b.url)
		proxy := mqtttest.NewProxy(t, b.addr)
		proxy.Cut() // the broker is unreachable from the start
		store := mqtttest.NewStore()
		e := startEdge(t, testConfig(site, proxy.URL()), store)
		for i := range 300 {
			store.Append(doorEvent(i))
		}
		time.Sleep(50 * time.Millisecond) // a few failed connection attempts
		if e.Connected() {
			t.Fatal("connected through a cut proxy")
		}
		if got := metric(t, e.reg, "larder_broker_connected"); got != 0 {
			t.Errorf("larder_broker_connected offline = %v, want 0", got)
		}
		if got := metric(t, e.reg, "larder_mqtt_connect_attempts_total"); got < 1 {
			t.Errorf("connect attempts = %v, want ≥ 1", got)
		}

		cloud := mqtttest.NewCloud(t, b.url, site)
		defer cloud.Close()
		proxy.Resume(t)
		for i := range 100 { // and more while draining: Notify must wake the drainer
			store.Append(doorEvent(i))
		}
		s := cloud.Wait(t, wait, "400 events", func(s mqtttest.Snapshot) bool { return len(s.Processed) == 400 })
		if diff := cmp.Diff(store.IDs(), processedIDs(s)); diff != "" {
			t.Errorf("processed ids differ from the outbox (-outbox +cloud):\n%s", diff)
		}
		for i, m := range s.Processed {
			if m.Seq != uint64(i+1) {
				t.Fatalf("event %d has seq %d", i, m.Seq)
			}
		}
		waitFor(t, wait, "outbox fully acked", func() bool { a, _ := store.Acked(); return a == 400 })
	})
}

// TestUnackedGaugeShowsBacklog: larder_mqtt_outbox_unacked is the outbox's backlog,
// connected or not: N events queued while the broker is unreachable read N (not the 0
// of "nothing on the wire"), still N once published but not acknowledged, and 0 once
// the cloud has acknowledged them.
func TestUnackedGaugeShowsBacklog(t *testing.T) {
	m := mqtttest.StartMochi(t)
	site := newSite(t, m.URL())
	proxy := mqtttest.NewProxy(t, m.Addr)
	proxy.Cut()
	store := mqtttest.NewStore()
	e := startEdge(t, testConfig(site, proxy.URL()), store)
	if got := metric(t, e.reg, "larder_mqtt_outbox_unacked"); got != 0 {
		t.Errorf("larder_mqtt_outbox_unacked with an empty outbox = %v, want 0", got)
	}
	const n = 25
	for i := range n {
		store.Append(doorEvent(i))
	}
	waitFor(t, wait, "a failed connection attempt", func() bool { return metric(t, e.reg, "larder_mqtt_connect_attempts_total") >= 1 })
	if e.Connected() {
		t.Fatal("connected through a cut proxy")
	}
	if got := metric(t, e.reg, "larder_mqtt_outbox_unacked"); got != n {
		t.Errorf("larder_mqtt_outbox_unacked offline with %d queued = %v, want %d", n, got, n)
	}

	cloud := mqtttest.NewCloud(t, m.URL(), site)
	defer cloud.Close()
	cloud.SetNoAck(true)
	proxy.Resume(t)
	cloud.Wait(t, wait, "every event, unacknowledged", func(s mqtttest.Snapshot) bool { return len(s.Processed) == n })
	if got := metric(t, e.reg, "larder_mqtt_outbox_unacked"); got != n {
		t.Errorf("larder_mqtt_outbox_unacked published, not acknowledged = %v, want %d", got, n)
	}
	cloud.SetNoAck(false)
	waitFor(t, wait, "gauge 0 after the acks", func() bool { return metric(t, e.reg, "larder_mqtt_outbox_unacked") == 0 })
	if a, _ := store.Acked(); a != n {
		t.Fatalf("acked %d, want %d", a, n)
	}
}

// TestBrokerRestartMidDrain restarts mochi (losing every session) while the outbox
// drains, and appends more while the broker is down.
func TestBrokerRestartMidDrain(t *testing.T) {
	m := mqtttest.StartMochi(t)
	site := newSite(t, m.URL())
	cloud := mqtttest.NewCloud(t, m.URL(), site)
	defer cloud.Close()
	store := mqtttest.NewStore()
	e := startEdge(t, testConfig(site, m.URL()), store)
	for i := range 3000 {
		store.Append(doorEvent(i))
	}
	cloud.Wait(t, wait, "drain under way", func(s mqtttest.Snapshot) bool { return len(s.Processed) >= 200 })
	m.Stop()
	if got := len(cloud.Seen().Processed); got >= 3000 {
		t.Fatalf("drain finished (%d events) before the broker stopped: not mid-drain", got)
	} else {
		t.Logf("broker stopped after %d of 3000 events", got)
	}
	for i := range 500 {
		store.Append(doorEvent(i))
	}
	time.Sleep(50 * time.Millisecond)
	m.Start(t)
	s := cloud.Wait(t, 30*time.Second, "3500 events", func(s mqtttest.Snapshot) bool { return len(s.Processed) == 3500 })
	if diff := cmp.Diff(store.IDs(), processedIDs(s)); diff != "" {
		t.Errorf("processed ids differ from the outbox (-outbox +cloud):\n%s", diff)
	}
	waitFor(t, wait, "outbox fully acked", func() bool { a, _ := store.Acked(); return a == 3500 })
	// (The birth after the restart may go out before the cloud has resubscribed, so it
	// is not checked here; TestLastWill checks a birth on every connect.)
	if got := metric(t, e.reg, "larder_mqtt_connect_attempts_total"); got < 2 {
		t.Errorf("connect attempts = %v, want a reconnection", got)
	}
}

// TestAckTimeoutResends: a cloud that stops acknowledging gets the unacknowledged
// events again, byte for byte, and the outbox advances only on EventAcks.
func TestAckTimeoutResends(t *testing.T) {
	m := mqtttest.StartMochi(t)
	site := newSite(t, m.URL())
	cloud := mqtttest.NewCloud(t, m.URL(), site)
	defer cloud.Close()
	cloud.SetNoAck(true)
	store := mqtttest.NewStore()
	cfg := testConfig(site, m.URL())
	cfg.OutboxWindow = 10
	e := startEdge(t, cfg, store)
	for i := range 25 {
		store.Append(doorEvent(i))
	}
	// Only the window goes out; then it is resent after AckTimeout.
	s := cloud.Wait(t, wait, "resends", func(s mqtttest.Snapshot) bool { return s.Duplicates >= 10 })
	if len(s.Processed) != 10 {
		t.Errorf("processed %d without acks, want the window of 10", len(s.Processed))
	}
	if a, _ := store.Acked(); a != 0 || store.AckCalls() != 0 {
		t.Errorf("outbox acked %d (%d calls) without any EventAck", a, store.AckCalls())
	}
	if got := metric(t, e.reg, "larder_mqtt_outbox_resent_total"); got < 1 {
		t.Errorf("resent total = %v", got)
	}
	cloud.SetNoAck(false)
	s = cloud.Wait(t, wait, "all 25", func(s mqtttest.Snapshot) bool { return len(s.Processed) == 25 })
	if diff := cmp.Diff(store.IDs(), processedIDs(s)); diff != "" {
		t.Errorf("(-outbox +cloud):\n%s", diff)
	}
}

func TestDesired(t *testing.T) {
	eachBroker(t, func(t *testing.T, b broker) {
		site := newSite(t, b.url)
		cloud := mqtttest.NewCloud(t, b.url, site)
		defer cloud.Close()
		store := mqtttest.NewStore()
		e := startEdge(t, testConfig(site, b.url), store)
		cloud.Wait(t, wait, "connect", func(s mqtttest.Snapshot) bool { return len(s.Births) == 1 })

		cloud.Publish(t, protocol.Header{}, protocol.Desired{Version: 1, Full: true})
		dup := protocol.Header{ID: protocol.NewID()}
		cloud.Publish(t, dup, protocol.Desired{Version: 2})
		cloud.Publish(t, dup, protocol.Desired{Version: 2})               // redelivery: same id
		cloud.Publish(t, protocol.Header{}, protocol.Desired{Version: 2}) // same version, other id
		// Swapped on the way: held until its predecessor comes, no snapshot request.
		cloud.Publish(t, protocol.Header{}, protocol.Desired{Version: 4})
		cloud.Publish(t, protocol.Header{}, protocol.Desired{Version: 3})
		waitFor(t, wait, "versions 1..4", func() bool { return len(store.Applied()) == 4 })
		if diff := cmp.Diff([]uint64{1, 2, 3, 4}, store.Applied()); diff != "" {
			t.Errorf("applied (-want +got):\n%s", diff)
		}
		waitFor(t, wait, "duplicates counted", func() bool {
			return metric(t, e.reg, "larder_mqtt_desired_total", "duplicate") == 2
		})

		// A real gap: version 5 never comes.
		cloud.Publish(t, protocol.Header{}, protocol.Desired{Version: 6})
		s := cloud.Wait(t, wait, "gap snapshot request", func(s mqtttest.Snapshot) bool { return len(s.Gets) == 1 })
		if got, want := s.Gets[0], (protocol.DesiredGet{Have: 4, Reason: "gap"}); got != want {
			t.Errorf("desired get = %+v, want %+v", got, want)
		}
		cloud.Publish(t, protocol.Header{}, protocol.Desired{Version: 6, Full: true})
		waitFor(t, wait, "snapshot 6", func() bool { return len(store.Applied()) == 5 })
		if v, _ := store.DesiredVersion(); v != 6 {
			t.Errorf("version = %d, want 6", v)
		}
		if got := len(cloud.Seen().Gets); got != 1 {
			t.Errorf("desired gets = %d, want 1 (the gap)", got)
		}
	})
}

// Applying desired state is reported at once in telemetry (its desired version), not
// at the next tick: the cloud tells a resident a reissued code only once the edge has it.
func TestTelemetryAfterDesired(t *testing.T) {
	eachBroker(t, func(t *testing.T, b broker) {
		site := newSite(t, b.url)
		cloud := mqtttest.NewCloud(t, b.url, site)
		defer cloud.Close()
		cfg := testConfig(site, b.url)
		cfg.TelemetryInterval = time.Hour
		startEdge(t, cfg, mqtttest.NewStore())
		cloud.Wait(t, wait, "connect", func(s mqtttest.Snapshot) bool { return len(s.Births) == 1 })
		if n := cloud.Seen().Telemetry; n != 0 {
			t.Fatalf("telemetry before any tick or desired state: %d", n)
		}
		cloud.Publish(t, protocol.Header{}, protocol.Desired{Version: 1, Full: true})
		cloud.Wait(t, wait, "telemetry after desired state applied", func(s mqtttest.Snapshot) bool { return s.Telemetry == 1 })
	})
}

func TestCommands(t *testing.T) {
	m := mqtttest.StartMochi(t)
	site := newSite(t, m.URL())
	cloud := mqtttest.NewCloud(t, m.URL(), site)
	defer cloud.Close()
	store := mqtttest.NewStore()
	startEdge(t, testConfig(site, m.URL()), store)
	cloud.Wait(t, wait, "connect", func(s mqtttest.Snapshot) bool { return len(s.Births) == 1 })

	open := protocol.Command{ID: "cmd-1", Kind: protocol.CmdOpen, Compartment: 1, Purpose: protocol.PurposeOps,
		Reason: "cleaning", ExpiresAt: time.Now().Add(time.Minute)}
	h := protocol.Header{ID: protocol.NewID()}
	cloud.Publish(t, h, open)
	cloud.Wait(t, wait, "succeeded", func(s mqtttest.Snapshot) bool {
		return slices.ContainsFunc(s.CmdAcks, func(a protocol.CommandAck) bool { return a.State == protocol.StateSucceeded })
	})
	cloud.Publish(t, h, open) // redelivered
	s := cloud.Wait(t, wait, "re-reported state", func(s mqtttest.Snapshot) bool { return len(s.CmdAcks) == 3 })
	var states []protocol.CommandState
	for _, a := range s.CmdAcks {
		if a.CommandID != "cmd-1" {
			t.Errorf("ack for %q", a.CommandID)
		}
		states = append(states, a.State)
	}
	if diff := cmp.Diff([]protocol.CommandState{protocol.StateQueued, protocol.StateSucceeded, protocol.StateSucceeded}, states); diff != "" {
		t.Errorf("ack states (-want +got):\n%s", diff)
	}
	if ids, calls := store.Commands(); len(ids) != 1 || calls != 2 {
		t.Errorf("commands carried out %v in %d calls, want one in 2", ids, calls)
	}

	cloud.Publish(t, protocol.Header{}, protocol.Command{ID: "cmd-2", Kind: protocol.CmdResync, ExpiresAt: time.Now().Add(time.Minute)})
	s = cloud.Wait(t, wait, "resync", func(s mqtttest.Snapshot) bool {
		return len(s.Births) == 2 && len(s.CmdAcks) == 4
	})
	if len(s.Gets) != 0 {
		t.Errorf("desired gets %+v: a resync is a birth, which the cloud answers with a snapshot", s.Gets)
	}
	if got := s.CmdAcks[3]; got.CommandID != "cmd-2" || got.State != protocol.StateSucceeded {
		t.Errorf("resync ack = %+v", got)
	}
	if ids, _ := store.Commands(); len(ids) != 1 {
		t.Errorf("resync reached the core: %v", ids)
	}
}

// TestMalformed: garbage on every inbound channel is counted and logged, and the edge
// carries on.
func TestMalformed(t *testing.T) {
	eachBroker(t, func(t *testing.T, b broker) {
		site := newSite(t, b.url)
		cloud := mqtttest.NewCloud(t, b.url, site)
		defer cloud.Close()
		store := mqtttest.NewStore()
		e := startEdge(t, testConfig(site, b.url), store)
		cloud.Wait(t, wait, "connect", func(s mqtttest.Snapshot) bool { return len(s.Births) == 1 })

		ack, _ := protocol.Encode(protocol.Header{}, protocol.EventAck{Seq: 1})
		cases := []struct {
			ch      protocol.Channel
			payload string
		}{
			{protocol.ChanDesired, "not json"},
			{protocol.ChanDesired, `{"v":1,"id":"x","ts":"2026-01-01T00:00:00Z","type":"desired","body":{"version":0}}`},
			{protocol.ChanCommands, `{"v":1,"id":"x","ts":"2026-01-01T00:00:00Z","type":"command","body":{"kind":"open"}}`},
			{protocol.ChanCommands, `{"v":2,"id":"x","ts":"2026-01-01T00:00:00Z","type":"command","body":{}}`},
			{protocol.ChanEventAck, string(ack[:len(ack)/2])},
			{protocol.ChanEventAck, strings.Replace(string(ack), `"event_ack"`, `"desired"`, 1)},
		}
		for _, c := range cases {
			cloud.PublishRaw(t, c.ch, []byte(c.payload))
		}
		want := map[string]float64{"desired": 2, "commands": 2, "events/ack": 2}
		waitFor(t, wait, "rejections counted", func() bool {
			for ch, n := range want {
				if metric(t, e.reg, "larder_mqtt_rejected_total", ch) != n {
					return false
				}
			}
			return true
		})
		// Still alive and well.
		cloud.Publish(t, protocol.Header{}, protocol.Desired{Version: 1, Full: true})
		store.Append(doorEvent(1))
		cloud.Wait(t, wait, "event", func(s mqtttest.Snapshot) bool { return len(s.Processed) == 1 })
		waitFor(t, wait, "desired", func() bool { return len(store.Applied()) == 1 })
		if !e.Connected() {
			t.Error("disconnected by garbage")
		}
	})
}

// TestAckBeyondHighWater: an EventAck for events the edge never wrote is rejected and
// counted, and does not move the outbox.
func TestAckBeyondHighWater(t *testing.T) {
	m := mqtttest.StartMochi(t)
	site := newSite(t, m.URL())
	cloud := mqtttest.NewCloud(t, m.URL(), site)
	defer cloud.Close()
	store := mqtttest.NewStore()
	e := startEdge(t, testConfig(site, m.URL()), store)
	cloud.Wait(t, wait, "connect", func(s mqtttest.Snapshot) bool { return len(s.Births) == 1 })
	cloud.Publish(t, protocol.Header{}, protocol.EventAck{Seq: 99})
	waitFor(t, wait, "rejection", func() bool { return metric(t, e.reg, "larder_mqtt_rejected_total", "events/ack") == 1 })
	if a, _ := store.Acked(); a != 0 {
		t.Errorf("acked = %d, want 0", a)
	}
	store.Append(doorEvent(1))
	cloud.Wait(t, wait, "event", func(s mqtttest.Snapshot) bool { return len(s.Processed) == 1 })
	waitFor(t, wait, "acked 1", func() bool { a, _ := store.Acked(); return a == 1 })
}

func TestNewRejectsBadInput(t *testing.T) {
	store := mqtttest.NewStore()
	cfg := testConfig("site-1", "tcp://127.0.0.1:1")
	if _, err := mqtt.New(cfg, mqtt.Ports{Outbox: store}, nil, nil); err == nil {
		t.Error("New accepted missing ports")
	}
	cfg.Site = "Bad/Site"
	if _, err := mqtt.New(cfg, store.Ports(), nil, nil); err == nil {
		t.Error("New accepted a bad site")
	}
}

// TestLinkCutMidDrain cuts the edge's link (no DISCONNECT) while the outbox drains and
// queues more events while it is down: nothing is lost, nothing processed twice.
func TestLinkCutMidDrain(t *testing.T) {
	eachBroker(t, func(t *testing.T, b broker) {
		site := newSite(t, b.url)
		cloud := mqtttest.NewCloud(t, b.url, site)
		defer cloud.Close()
		proxy := mqtttest.NewProxy(t, b.addr)
		store := mqtttest.NewStore()
		startEdge(t, testConfig(site, proxy.URL()), store)
		for i := range 3000 {
			store.Append(doorEvent(i))
		}
		cloud.Wait(t, wait, "drain under way", func(s mqtttest.Snapshot) bool { return len(s.Processed) >= 200 })
		proxy.Cut()
		if got := len(cloud.Seen().Processed); got >= 3000 {
			t.Fatalf("drain finished (%d events) before the cut", got)
		}
		for i := range 500 {
			store.Append(doorEvent(i))
		}
		time.Sleep(30 * time.Millisecond)
		proxy.Resume(t)
		s := cloud.Wait(t, 30*time.Second, "3500 events", func(s mqtttest.Snapshot) bool { return len(s.Processed) == 3500 })
		if diff := cmp.Diff(store.IDs(), processedIDs(s)); diff != "" {
			t.Errorf("processed ids differ from the outbox (-outbox +cloud):\n%s", diff)
		}
		waitFor(t, wait, "outbox fully acked", func() bool { a, _ := store.Acked(); return a == 3500 })
	})
}

// TestDesiredWhileOffline: desired state published while the edge is away waits in its
// persistent session at the broker and is applied on reconnect (it may arrive before
// SUBSCRIBE returns, through the default publish handler).
func TestDesiredWhileOffline(t *testing.T) {
	eachBroker(t, func(t *testing.T, b broker) {
		site := newSite(t, b.url)
		cloud := mqtttest.NewCloud(t, b.url, site)
		defer cloud.Close()
		proxy := mqtttest.NewProxy(t, b.addr)
		store := mqtttest.NewStore()
		e := startEdge(t, testConfig(site, proxy.URL()), store)
		cloud.Wait(t, wait, "connect", func(s mqtttest.Snapshot) bool { return len(s.Births) == 1 })
		proxy.Cut()
		cloud.Wait(t, wait, "last will", func(s mqtttest.Snapshot) bool {
			return !s.Statuses[len(s.Statuses)-1].Online
		})
		cloud.Publish(t, protocol.Header{}, protocol.Desired{Version: 1, Full: true})
		cloud.Publish(t, protocol.Header{}, protocol.Desired{Version: 2})
		if e.Connected() || len(store.Applied()) != 0 {
			t.Fatal("edge still connected through a cut proxy")
		}
		proxy.Resume(t)
		waitFor(t, wait, "queued desired applied", func() bool { return len(store.Applied()) == 2 })
		if diff := cmp.Diff([]uint64{1, 2}, store.Applied()); diff != "" {
			t.Errorf("applied (-want +got):\n%s", diff)
		}
	})
}

// TestCommandAckWhileOffline: a command that finishes while the link is down has its
// final ack published once the link is back.
func TestCommandAckWhileOffline(t *testing.T) {
	m := mqtttest.StartMochi(t)
	site := newSite(t, m.URL())
	cloud := mqtttest.NewCloud(t, m.URL(), site)
	defer cloud.Close()
	proxy := mqtttest.NewProxy(t, m.Addr)
	store := mqtttest.NewStore()
	release := make(chan struct{})
	store.OnCommand = func(cmd protocol.Command) protocol.CommandAck {
		<-release
		return protocol.CommandAck{CommandID: cmd.ID, State: protocol.StateFailed, Error: protocol.ErrJammed}
	}
	startEdge(t, testConfig(site, proxy.URL()), store)
	cloud.Wait(t, wait, "connect", func(s mqtttest.Snapshot) bool { return len(s.Births) == 1 })
	cloud.Publish(t, protocol.Header{}, protocol.Command{ID: "cmd-9", Kind: protocol.CmdOpen, Compartment: 3,
		Purpose: protocol.PurposeLoading, Order: "o-1", Generation: 4, ExpiresAt: time.Now().Add(time.Minute)})
	cloud.Wait(t, wait, "queued", func(s mqtttest.Snapshot) bool { return len(s.CmdAcks) == 1 })
	proxy.Cut()
	close(release)
	time.Sleep(50 * time.Millisecond)
	proxy.Resume(t)
	s := cloud.Wait(t, wait, "final ack", func(s mqtttest.Snapshot) bool { return len(s.CmdAcks) == 2 })
	if got, want := s.CmdAcks[1], (protocol.CommandAck{CommandID: "cmd-9", State: protocol.StateFailed, Error: protocol.ErrJammed}); got != want {
		t.Errorf("final ack = %+v, want %+v", got, want)
	}
}

// TestQueuedCommandAcksSentOnConnect: acks the core queued before the sync ever ran (an
// edge restarted offline) are published on connect, each command's in order, and leave
// the queue once the broker has taken them.
func TestQueuedCommandAcksSentOnConnect(t *testing.T) {
	m := mqtttest.StartMochi(t)
	site := newSite(t, m.URL())
	cloud := mqtttest.NewCloud(t, m.URL(), site)
	defer cloud.Close()
	store := mqtttest.NewStore()
	store.OnCommand = func(cmd protocol.Command) protocol.CommandAck {
		return protocol.CommandAck{CommandID: cmd.ID, State: protocol.StateFailed, Error: protocol.ErrJammed}
	}
	for _, id := range []string{"cmd-a", "cmd-b"} {
		store.HandleCommand(context.Background(), protocol.Message{Body: protocol.Command{ID: id, Kind: protocol.CmdOpen, Compartment: 1,
			Purpose: protocol.PurposeOps, Reason: "x", ExpiresAt: time.Now().Add(time.Minute)}})
	}
	waitFor(t, wait, "acks queued", func() bool { return store.QueuedCommandAcks() == 4 })
	e := startEdge(t, testConfig(site, m.URL()), store)
	s := cloud.Wait(t, wait, "queued acks", func(s mqtttest.Snapshot) bool { return len(s.CmdAcks) == 4 })
	waitFor(t, wait, "queue emptied", func() bool { return store.QueuedCommandAcks() == 0 })
	var got []string
	for _, a := range s.CmdAcks {
		got = append(got, a.CommandID+" "+string(a.State))
	}
	// Per command in order; the two commands' acks may interleave.
	for _, id := range []string{"cmd-a", "cmd-b"} {
		var states []string
		for _, g := range got {
			if strings.HasPrefix(g, id+" ") {
				states = append(states, strings.TrimPrefix(g, id+" "))
			}
		}
		if diff := cmp.Diff([]string{"QUEUED", "FAILED"}, states); diff != "" {
			t.Errorf("%s acks (-want +got):\n%s", id, diff)
		}
	}
	if n := metric(t, e.reg, "larder_mqtt_command_acks_published_total"); n != 4 {
		t.Errorf("larder_mqtt_command_acks_published_total = %v, want 4", n)
	}
}

// TestWebsocket runs the sync over MQTT-over-WebSocket (ws://), for sites whose
// firewalls only let web traffic out.
func TestWebsocket(t *testing.T) {
	url := mqtttest.StartMochiWebsocket(t)
	site := newSite(t, url)
	cloud := mqtttest.NewCloud(t, url, site)
	defer cloud.Close()
	store := mqtttest.NewStore()
	startEdge(t, testConfig(site, url), store)
	for i := range 50 {
		store.Append(doorEvent(i))
	}
	s := cloud.Wait(t, wait, "birth and events", func(s mqtttest.Snapshot) bool {
		return len(s.Births) == 1 && len(s.Processed) == 50
	})
	if diff := cmp.Diff(store.IDs(), processedIDs(s)); diff != "" {
		t.Errorf("(-outbox +cloud):\n%s", diff)
	}
}

// TestShutdownWhileConnecting: a broker that accepts TCP but never answers CONNECT must
// not hold up a shutdown for the connect timeout.
func TestShutdownWhileConnecting(t *testing.T) {
	cfg := testConfig("blackhole", mqtttest.Silent(t))
	cfg.ConnectTimeout = time.Minute
	e := startEdge(t, cfg, mqtttest.NewStore())
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	e.stop()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("shutdown took %v while connecting", d)
	}
}

// TestTLS runs the sync over ssl:// with the broker's certificate trusted through
// Config.TLS, and refuses a broker it does not trust.
func TestTLS(t *testing.T) {
	tlsURL, plainURL, roots := mqtttest.StartMochiTLS(t)
	site := newSite(t, plainURL)
	cloud := mqtttest.NewCloud(t, plainURL, site)
	defer cloud.Close()

	untrusted := testConfig(site, tlsURL)
	untrusted.TLS = &tls.Config{RootCAs: x509.NewCertPool(), MinVersion: tls.VersionTLS12}
	e := startEdge(t, untrusted, mqtttest.NewStore())
	waitFor(t, wait, "failed attempts", func() bool { return metric(t, e.reg, "larder_mqtt_connect_attempts_total") >= 2 })
	if e.Connected() {
		t.Fatal("connected to an untrusted broker")
	}
	e.stop()

	cfg := testConfig(site, tlsURL)
	cfg.TLS = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	store := mqtttest.NewStore()
	startEdge(t, cfg, store)
	store.Append(doorEvent(1))
	cloud.Wait(t, wait, "birth and event over TLS", func(s mqtttest.Snapshot) bool {
		return len(s.Births) == 1 && len(s.Processed) == 1
	})
}

// TestRejectedEventsSetAside: an EventAck naming rejected events has the outbox set
// them aside (not delete them with the rest), counts them on the alarm metric once, and
// ignores a rejection the cloud repeats for an event no longer pending.
func TestRejectedEventsSetAside(t *testing.T) {
	m := mqtttest.StartMochi(t)
	site := newSite(t, m.URL())
	cloud := mqtttest.NewCloud(t, m.URL(), site)
	defer cloud.Close()
	cloud.SetNoAck(true)
	store := mqtttest.NewStore()
	e := startEdge(t, testConfig(site, m.URL()), store)
	cloud.Wait(t, wait, "connect", func(s mqtttest.Snapshot) bool { return len(s.Births) == 1 })
	for i := range 3 {
		store.Append(doorEvent(i + 1))
	}
	cloud.Wait(t, wait, "three events", func(s mqtttest.Snapshot) bool { return len(s.Processed) == 3 })
	r := protocol.Rejection{Seq: 2, Error: protocol.ErrInvalidEvent, Field: "body.order", Message: "required for picked_up"}
	cloud.Publish(t, protocol.Header{}, protocol.EventAck{Seq: 3, Rejected: []protocol.Rejection{r}})
	waitFor(t, wait, "acked 3", func() bool { a, _ := store.Acked(); return a == 3 })
	if got := store.SetAside(); len(got) != 1 || got[0] != r {
		t.Fatalf("set aside %+v, want %+v", got, r)
	}
	if got := metric(t, e.reg, "larder_mqtt_events_rejected_total"); got != 1 {
		t.Fatalf("larder_mqtt_events_rejected_total = %v, want 1", got)
	}
	// The cloud repeats the rejection with its next ack: nothing more is set aside.
	store.Append(doorEvent(4))
	cloud.Wait(t, wait, "fourth event", func(s mqtttest.Snapshot) bool { return len(s.Processed) == 4 })
	cloud.Publish(t, protocol.Header{}, protocol.EventAck{Seq: 4, Rejected: []protocol.Rejection{r}})
	waitFor(t, wait, "acked 4", func() bool { a, _ := store.Acked(); return a == 4 })
	if got := store.SetAside(); len(got) != 1 {
		t.Fatalf("set aside %+v after the repeat, want the one", got)
	}
	if got := metric(t, e.reg, "larder_mqtt_events_rejected_total"); got != 1 {
		t.Fatalf("larder_mqtt_events_rejected_total = %v after the repeat, want 1", got)
	}
}

package mqtt_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/larder-lockers/larder/edge/mqtt"
	"github.com/larder-lockers/larder/edge/mqtt/mqtttest"
	"github.com/larder-lockers/larder/protocol"
)

// TestFullQueueHolds: commands beyond the worker's queue wait, in their handlers (and so
// with their PUBACKs), until the worker takes them; none is dropped. A lost connection
// releases the handlers still waiting, for the broker to deliver again.
func TestFullQueueHolds(t *testing.T) {
	const site, queue, sent = "hold-site", 2, 6
	cfg := mqtt.DefaultConfig()
	cfg.Site = site
	cfg.Broker = "tcp://127.0.0.1:1"
	cfg.InboundQueue = queue
	reg := prometheus.NewRegistry()
	c, err := mqtt.New(cfg, mqtttest.NewStore().Ports(), nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	command := func(i int) []byte {
		p, err := protocol.Encode(protocol.Header{Seq: uint64(i + 1)}, protocol.Command{ID: fmt.Sprintf("c%d", i),
			Kind: protocol.CmdOpen, Compartment: 1, Purpose: protocol.PurposeOps, Reason: "test",
			ExpiresAt: time.Now().Add(time.Hour).UTC()})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	topic := protocol.Topic(site, protocol.ChanCommands)

	lost := make(chan struct{})
	returned := make(chan int, sent)
	for i := range sent {
		go func() { c.Handle(topic, command(i), lost); returned <- i }()
	}
	// queue handlers return at once; the rest wait for the worker.
	for range queue {
		select {
		case <-returned:
		case <-time.After(5 * time.Second):
			t.Fatal("a handler with room in the queue did not return")
		}
	}
	select {
	case i := <-returned:
		t.Fatalf("handler %d returned with the queue full: its message would be acknowledged unqueued", i)
	case <-time.After(200 * time.Millisecond):
	}
	held := heldCount(t, reg)
	if held != sent-queue {
		t.Errorf("larder_mqtt_inbound_held_total{channel=commands} = %v, want %d", held, sent-queue)
	}

	// The worker takes them: every message arrives, each handler returns.
	got := map[string]bool{}
	for range sent {
		select {
		case m := <-c.Inbound():
			got[m.Body.(protocol.Command).ID] = true
		case <-time.After(5 * time.Second):
			t.Fatalf("got %d of %d commands", len(got), sent)
		}
	}
	for range sent - queue {
		select {
		case <-returned:
		case <-time.After(5 * time.Second):
			t.Fatal("a held handler did not return once its message was queued")
		}
	}
	if len(got) != sent {
		t.Errorf("got %d distinct commands, want %d", len(got), sent)
	}

	// Full again, then the connection is lost: the waiting handler gives up.
	for i := range queue + 1 {
		go func() { c.Handle(topic, command(sent+i), lost); returned <- i }()
	}
	for range queue {
		<-returned
	}
	close(lost)
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("a held handler still waits after its connection was lost")
	}
}

// heldCount reads larder_mqtt_inbound_held_total{channel="commands"} from reg.
func heldCount(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if mf.GetName() == "larder_mqtt_inbound_held_total" && l.GetName() == "channel" &&
					l.GetValue() == protocol.ChanCommands.String() {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatal("no larder_mqtt_inbound_held_total{channel=commands}")
	return 0
}

package edged_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/larder-lockers/larder/edge"
	"github.com/larder-lockers/larder/edge/edged"
	"github.com/larder-lockers/larder/edge/mqtt/mqtttest"
	sim "github.com/larder-lockers/larder/firmware-sim"
	"github.com/larder-lockers/larder/protocol"
)

// TestE2EDriverSessionSurvivesRestart: the daemon restarts in the middle of a driver's
// stop; the driver's kiosk token still opens the next door afterwards, and stops
// working when its session ends (here: with the credential, seconds after sign-in).
func TestE2EDriverSessionSurvivesRestart(t *testing.T) {
	r := newRig(t, mqtttest.StartMochi(t).URL(), nil)
	r.start()
	o := ord{id: "ord_e2e_stop", code: "31415926", factor: "2718", slots: []int{2, 3}}
	credEnds := time.Now().Add(15 * time.Second)
	r.ver++
	d := protocol.Desired{Version: r.ver, Full: true, Credentials: []protocol.LoadingCredential{{ID: "cred-1",
		Digest: protocol.CredentialDigest(key, "driver-token"), Driver: "drv-1", ExpiresAt: credEnds}}}
	res := protocol.Reservation{Order: o.id, CodeDigest: protocol.CodeDigest(key, o.code),
		SecondFactorDigest: protocol.SecondFactorDigest(key, o.id, o.factor), ExpiresAt: time.Now().Add(24 * time.Hour), Zone: protocol.ZoneChilled}
	for _, c := range o.slots {
		res.Slots = append(res.Slots, protocol.Slot{Compartment: c, Generation: 1, Size: protocol.SizeM})
	}
	d.Reservations = []protocol.Reservation{res}
	r.cloud.Publish(t, protocol.Header{}, d)
	r.waitDesired(r.ver)

	tok := r.login()
	r.load(tok, ord{id: o.id, slots: o.slots[:1]})
	r.cloud.Wait(t, 15*time.Second, "first door loaded", func(s mqtttest.Snapshot) bool { return count(s, protocol.EventLoaded, o.id) == 1 })

	r.shutdown()
	r.start()
	if time.Until(credEnds) < 2*time.Second {
		t.Fatal("the restart took too long to tell a live session from an ended one")
	}
	if st, body := r.call("GET", "/api/driver/manifest", "", tok); st != 200 {
		t.Fatalf("manifest after the restart: %d %v", st, body)
	}
	r.load(tok, ord{id: o.id, slots: o.slots[1:]})
	r.cloud.Wait(t, 15*time.Second, "both doors loaded", func(s mqtttest.Snapshot) bool { return count(s, protocol.EventLoaded, o.id) == 2 })

	time.Sleep(time.Until(credEnds) + 100*time.Millisecond)
	if st, body := r.call("GET", "/api/driver/manifest", "", tok); st != 401 || body["error"] != "bad_credential" {
		t.Fatalf("token after its session ended: %d %v", st, body)
	}
}

// TestE2ECommandAckSurvivesRestart: a remote open is carried out while the link to the
// broker is down, the daemon is stopped and started again, still offline; when the
// link returns the cloud hears the open's SUCCEEDED exactly once, the latch pulsed
// once, and a redelivery of the command is answered from the record without a pulse.
func TestE2ECommandAckSurvivesRestart(t *testing.T) {
	eachBroker(t, func(t *testing.T, broker string) {
		proxy := mqtttest.NewProxy(t, strings.TrimPrefix(broker, "tcp://"))
		r := newRig(t, broker, func(c *edged.Config) { c.Broker = proxy.URL() })
		r.start()

		// Commands run one at a time. An open of a jammed door holds the line for the
		// lock board's confirm time (2 s): long enough to cut the link before the open
		// of door 9, behind it, is carried out.
		if err := r.world.ApplyFault(sim.Fault{Kind: sim.FaultJammedLatch, Compartment: 10}); err != nil {
			t.Fatal(err)
		}
		id := protocol.NewID()
		jam := protocol.Command{ID: "cmd-jam-" + id, Kind: protocol.CmdOpen, Compartment: 10, Purpose: protocol.PurposeOps,
			Reason: "inspection", ExpiresAt: time.Now().Add(2 * time.Minute), Actor: "ops-1"}
		open := protocol.Command{ID: "cmd-open-" + id, Kind: protocol.CmdOpen, Compartment: 9, Purpose: protocol.PurposeOps,
			Reason: "cleaning", ExpiresAt: time.Now().Add(2 * time.Minute), Actor: "ops-1"}
		r.cloud.Publish(t, protocol.Header{}, jam)
		r.cloud.Wait(t, 10*time.Second, "jammed open in progress", acked(jam.ID, protocol.StateInProgress))
		r.cloud.Publish(t, protocol.Header{}, open)
		r.cloud.Wait(t, 10*time.Second, "open queued", acked(open.ID, protocol.StateQueued))
		proxy.Cut()

		r.eventually("the open carried out offline", func() error {
			if st := r.commandState(open.ID); st != protocol.StateSucceeded {
				return fmt.Errorf("command %s", st)
			}
			return nil
		})
		if p := r.world.Snapshot().Compartments[8].Pulses; p != 1 {
			t.Fatalf("latch 9 pulsed %d times", p)
		}
		// The door as proof: the poller sees it open, and the edge records whose opening
		// it was, in the outbox, before it stops.
		r.eventually("door 9 seen open", func() error {
			es, err := r.m.Store().Pending(0, 1000)
			for _, e := range es {
				if m, err := protocol.Decode(e.Payload); err == nil && isOpsOpening(m, 9) {
					return nil
				}
			}
			return fmt.Errorf("no door_opened in the outbox (%v)", err)
		})
		if n := countAcks(r.cloud.Seen(), open.ID, protocol.StateSucceeded); n != 0 {
			t.Fatal("the cloud heard of the open through a cut link")
		}
		r.shutdown()

		r.startOffline()
		births := len(r.cloud.Seen().Births)
		proxy.Resume(t)
		r.waitBirth(births)
		r.cloud.Wait(t, 20*time.Second, "the open's SUCCEEDED", acked(open.ID, protocol.StateSucceeded))
		r.cloud.Wait(t, 10*time.Second, "the jammed open's FAILED", acked(jam.ID, protocol.StateFailed))
		r.eventually("no ack left waiting", func() error {
			if v := r.metric("larder_command_acks_pending"); v != "0" {
				return fmt.Errorf("larder_command_acks_pending %s", v)
			}
			return nil
		})
		s := r.cloud.Seen()
		if n := countAcks(s, open.ID, protocol.StateSucceeded); n != 1 {
			t.Fatalf("the cloud heard SUCCEEDED %d times", n)
		}
		r.cloud.Wait(t, 10*time.Second, "door 9 opened by ops", func(s mqtttest.Snapshot) bool {
			for _, m := range s.Processed {
				if isOpsOpening(m, 9) {
					return true
				}
			}
			return false
		})

		// The cloud asks again after the restart: the same answer, and no second pulse.
		r.cloud.Publish(t, protocol.Header{}, open)
		r.cloud.Wait(t, 10*time.Second, "re-ack", func(s mqtttest.Snapshot) bool {
			return countAcks(s, open.ID, protocol.StateSucceeded) == 2
		})
		time.Sleep(300 * time.Millisecond)
		if p := r.world.Snapshot().Compartments[8].Pulses; p != 1 {
			t.Fatalf("latch 9 pulsed %d times after the redelivery", p)
		}
	})
}

func isOpsOpening(m protocol.Message, c int) bool {
	e, ok := m.Body.(protocol.Event)
	return ok && e.Kind == protocol.EventDoorOpened && e.Compartment == c && e.Credential == protocol.CredOpsRemote
}

func acked(cmd string, state protocol.CommandState) func(mqtttest.Snapshot) bool {
	return func(s mqtttest.Snapshot) bool { return countAcks(s, cmd, state) > 0 }
}

func countAcks(s mqtttest.Snapshot, cmd string, state protocol.CommandState) int {
	n := 0
	for _, a := range s.CmdAcks {
		if a.CommandID == cmd && a.State == state {
			n++
		}
	}
	return n
}

func (r *rig) commandState(id string) protocol.CommandState {
	r.t.Helper()
	var rec edge.CommandRecord
	if err := r.m.Store().View(func(tx edge.Tx) error {
		var err error
		rec, _, err = tx.Command(id)
		return err
	}); err != nil {
		r.t.Fatal(err)
	}
	return rec.State
}

// startOffline is start without waiting for the broker: the link is down.
func (r *rig) startOffline() {
	r.t.Helper()
	m, err := edged.NewMain(r.cfg, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := m.Open(context.Background()); err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.m, r.kiosk, r.stop, r.done = m, m.KioskURL(), cancel, make(chan struct{})
	go func() { defer close(r.done); m.Run(ctx) }()
	r.t.Cleanup(r.shutdown)
}

// metric is the value of an unlabelled metric on the daemon's /metrics ("" if absent).
func (r *rig) metric(name string) string {
	r.t.Helper()
	resp, err := http.Get(r.m.MetricsURL() + "/metrics")
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	for _, line := range bytes.Split(raw, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte(name+" ")); ok {
			return string(v)
		}
	}
	return ""
}

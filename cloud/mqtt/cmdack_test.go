package mqtt_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	cloudmqtt "github.com/larder-lockers/larder/cloud/mqtt"
	"github.com/larder-lockers/larder/protocol"
)

// TestCommandAckSharesTheRoundsCommit: a command ack does not wait for the commit of
// its site's staged events; it is recorded while they commit. The worker is held in a
// first commit while the edge sends an event and a command's final ack; the next
// round must record the ack during its event commit, not after it.
func TestCommandAckSharesTheRoundsCommit(t *testing.T) {
	tg := embedded(t)
	f := newMemFleet()
	entered, release := make(chan struct{}), make(chan struct{})
	var commits atomic.Int32
	var during atomic.Bool
	f.enter = func() {
		switch commits.Add(1) {
		case 1:
			close(entered)
			<-release
		case 2:
			for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(time.Millisecond) {
				f.mu.Lock()
				n := len(f.calls["cmd-1"])
				f.mu.Unlock()
				if n > 0 {
					during.Store(true)
					return
				}
			}
		}
	}
	site := uniqueSite("ackround")
	startAdapter(t, tg, f, []string{site}, func(c *cloudmqtt.Config) { c.Workers = 1 })
	e := newEdge(t, tg, site)
	e.event(1)
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the worker never committed the first event")
	}
	e.event(2)
	e.publish(protocol.ChanCommandAck, protocol.Header{}, protocol.CommandAck{CommandID: "cmd-1", State: protocol.StateSucceeded})
	time.Sleep(200 * time.Millisecond) // both queued behind the held commit
	close(release)
	e.waitAck(2)
	f.waitUntil(t, "cmd-1 recorded", func() bool { return len(f.commands["cmd-1"]) == 1 })
	if !during.Load() {
		t.Fatal("the command ack was recorded only after its site's events committed")
	}
	if got := fmt.Sprint(f.eventSeqs(site)); got != "[1 2]" {
		t.Fatalf("events %s, want [1 2]", got)
	}
}

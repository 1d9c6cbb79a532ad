package mqtt_test

import (
	"context"
	"sync"
	"testing"

	"github.com/larder-lockers/larder/edge/mqtt"
	"github.com/larder-lockers/larder/edge/mqtt/mqtttest"
	"github.com/larder-lockers/larder/protocol"
)

// linkLog is a Link that counts the calls and, like the core, writes an event to the
// outbox on every LinkUp.
type linkLog struct {
	store *mqtttest.Store

	mu         sync.Mutex
	ups, downs int
}

func (l *linkLog) LinkUp(context.Context) error {
	l.mu.Lock()
	l.ups++
	l.mu.Unlock()
	l.store.Append(protocol.Event{Kind: protocol.EventOutage, Credential: protocol.CredNone, Seconds: 90})
	return nil
}

func (l *linkLog) LinkDown(context.Context) error {
	l.mu.Lock()
	l.downs++
	l.mu.Unlock()
	return nil
}

func (l *linkLog) counts() (ups, downs int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ups, l.downs
}

// TestLinkUpAndDown: the core hears the link come and go as the broker stops and starts
// again and as the sync shuts down, and an event it writes on LinkUp reaches the cloud
// on that connection. (Only the first connection's event is awaited: how soon the fake
// cloud's own paho client is back after the broker's restart is not under test.)
func TestLinkUpAndDown(t *testing.T) {
	m := mqtttest.StartMochi(t)
	site := newSite(t, m.URL())
	cloud := mqtttest.NewCloud(t, m.URL(), site)
	defer cloud.Close()
	store := mqtttest.NewStore()
	link := &linkLog{store: store}
	ports := store.Ports()
	ports.Link = link
	c, err := mqtt.New(testConfig(site, m.URL()), ports, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	store.Notify = c.Notify
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() { cancel(); <-done }()

	outages := func(s mqtttest.Snapshot) int {
		n := 0
		for _, m := range s.Processed {
			if m.Body.(protocol.Event).Kind == protocol.EventOutage {
				n++
			}
		}
		return n
	}
	cloud.Wait(t, wait, "the first LinkUp's event", func(s mqtttest.Snapshot) bool { return outages(s) == 1 })
	if ups, downs := link.counts(); ups != 1 || downs != 0 {
		t.Fatalf("connected: %d LinkUp, %d LinkDown; want 1, 0", ups, downs)
	}
	m.Stop()
	waitFor(t, wait, "LinkDown", func() bool { _, downs := link.counts(); return downs == 1 })
	m.Start(t)
	waitFor(t, wait, "the second LinkUp", func() bool { ups, _ := link.counts(); return ups == 2 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	done <- nil
	if ups, downs := link.counts(); ups != 2 || downs != 2 {
		t.Errorf("after a restart of the broker and a shutdown: %d LinkUp, %d LinkDown; want 2, 2", ups, downs)
	}
}

package mqtttest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/larder-lockers/larder/protocol"
)

// Cloud plays the cloud's side of protocol v1 for one site: it processes events strictly
// in sequence (an event ahead of the next expected one is ignored, as a cloud that
// acknowledges cumulatively must), deduplicates by message id, acknowledges
// cumulatively (coalescing acks while it is busy), and records births, status, desired
// requests, command acks and telemetry. It publishes desired state and commands.
type Cloud struct {
	site string
	cli  paho.Client

	// NoAck, when set, stops acknowledging events (a cloud that is down or slow).
	mu        sync.Mutex
	noAck     bool
	next      uint64
	ids       map[string]bool
	processed []protocol.Message
	dups      int
	ahead     int
	births    []protocol.Birth
	statuses  []protocol.Status
	gets      []protocol.DesiredGet
	cmdAcks   []protocol.CommandAck
	telemetry int
	rejected  int

	ackSig chan struct{}
	done   chan struct{}
	wg     sync.WaitGroup
}

// NewCloud connects a cloud for site to broker (a paho URL) and waits until it is
// subscribed. It reconnects and resubscribes by itself; Close it when done.
func NewCloud(tb testing.TB, broker, site string) *Cloud {
	tb.Helper()
	c := &Cloud{site: site, next: 1, ids: map[string]bool{}, ackSig: make(chan struct{}, 1), done: make(chan struct{})}
	subscribed := make(chan struct{}, 1)
	opts := paho.NewClientOptions().
		AddBroker(broker).
		SetClientID("larder-cloud-test-" + site).
		SetCleanSession(true).
		// In-order handling matters here (events are processed strictly in sequence),
		// and the handler never blocks: it takes a mutex and signals a goroutine.
		SetOrderMatters(true).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(20 * time.Millisecond).
		SetMaxReconnectInterval(50 * time.Millisecond).
		SetKeepAlive(5 * time.Second).
		SetOnConnectHandler(func(cl paho.Client) {
			filters := map[string]byte{}
			for _, ch := range protocol.Channels() {
				if ch.FromEdge() {
					filters[protocol.Topic(site, ch)] = 1
				}
			}
			// Subscribe from a goroutine: OnConnect must not wait on paho.
			go func() {
				if cl.SubscribeMultiple(filters, c.route).WaitTimeout(5 * time.Second) {
					select {
					case subscribed <- struct{}{}:
					default:
					}
				}
			}()
		})
	c.cli = paho.NewClient(opts)
	c.cli.Connect()
	select {
	case <-subscribed:
	case <-time.After(10 * time.Second):
		tb.Fatalf("mqtttest: cloud for %s did not subscribe to %s", site, broker)
	}
	c.wg.Add(1)
	go c.acker()
	return c
}

// Close disconnects the cloud.
func (c *Cloud) Close() {
	select {
	case <-c.done:
		return
	default:
	}
	close(c.done)
	c.wg.Wait()
	c.cli.Disconnect(100)
}

// SetNoAck turns event acknowledgement off (true) or back on.
func (c *Cloud) SetNoAck(v bool) {
	c.mu.Lock()
	c.noAck = v
	c.mu.Unlock()
	signal(c.ackSig)
}

func (c *Cloud) route(_ paho.Client, msg paho.Message) {
	_, ch, err := protocol.ParseTopic(msg.Topic())
	if err != nil {
		return
	}
	if len(msg.Payload()) == 0 {
		return // a cleared retained message
	}
	m, err := protocol.DecodeOn(ch, msg.Payload())
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.rejected++
		return
	}
	switch b := m.Body.(type) {
	case protocol.Event:
		switch {
		case c.ids[m.ID]:
			c.dups++
		case m.Seq == c.next:
			c.ids[m.ID] = true
			c.processed = append(c.processed, m)
			c.next++
		case m.Seq < c.next:
			c.dups++ // same seq, other id: cannot happen with a correct edge
		default:
			c.ahead++
		}
		signal(c.ackSig)
	case protocol.Birth:
		c.births = append(c.births, b)
	case protocol.Status:
		c.statuses = append(c.statuses, b)
	case protocol.DesiredGet:
		c.gets = append(c.gets, b)
	case protocol.CommandAck:
		c.cmdAcks = append(c.cmdAcks, b)
	case protocol.Telemetry:
		c.telemetry++
	}
}

// acker publishes the cumulative EventAck whenever events were processed; acks that
// pile up while a publish is in flight coalesce into one.
func (c *Cloud) acker() {
	defer c.wg.Done()
	for {
		select {
		case <-c.done:
			return
		case <-c.ackSig:
		}
		c.mu.Lock()
		seq, off := c.next-1, c.noAck
		c.mu.Unlock()
		if seq == 0 || off {
			continue
		}
		payload, err := protocol.Encode(protocol.Header{}, protocol.EventAck{Seq: seq})
		if err != nil {
			panic(err)
		}
		c.cli.Publish(protocol.Topic(c.site, protocol.ChanEventAck), 1, false, payload).WaitTimeout(5 * time.Second)
	}
}

// Publish sends a body on the channel that carries it, with the given header.
func (c *Cloud) Publish(tb testing.TB, h protocol.Header, body protocol.Body) {
	tb.Helper()
	payload, err := protocol.Encode(h, body)
	if err != nil {
		tb.Fatalf("mqtttest: encode: %v", err)
	}
	c.PublishRaw(tb, channelOf(body.MessageType()), payload)
}

// PublishRaw sends payload as is on channel ch of the cloud's site.
func (c *Cloud) PublishRaw(tb testing.TB, ch protocol.Channel, payload []byte) {
	tb.Helper()
	tok := c.cli.Publish(protocol.Topic(c.site, ch), ch.QoS(), false, payload)
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		tb.Fatalf("mqtttest: publish on %s: %v", ch, tok.Error())
	}
}

func channelOf(t protocol.Type) protocol.Channel {
	for _, ch := range protocol.Channels() {
		if ch.Type() == t {
			return ch
		}
	}
	panic(fmt.Sprintf("mqtttest: no channel carries %q", t))
}

// Snapshot is what the cloud has seen so far.
type Snapshot struct {
	Processed  []protocol.Message // events processed, in sequence order
	Duplicates int                // events received again after processing
	Ahead      int                // events received ahead of the next expected sequence
	Births     []protocol.Birth
	Statuses   []protocol.Status
	Gets       []protocol.DesiredGet
	CmdAcks    []protocol.CommandAck
	Telemetry  int
	Rejected   int
}

// Seen returns a copy of what the cloud has seen.
func (c *Cloud) Seen() Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Snapshot{
		Processed:  append([]protocol.Message(nil), c.processed...),
		Duplicates: c.dups,
		Ahead:      c.ahead,
		Births:     append([]protocol.Birth(nil), c.births...),
		Statuses:   append([]protocol.Status(nil), c.statuses...),
		Gets:       append([]protocol.DesiredGet(nil), c.gets...),
		CmdAcks:    append([]protocol.CommandAck(nil), c.cmdAcks...),
		Telemetry:  c.telemetry,
		Rejected:   c.rejected,
	}
}

// Wait polls until cond holds for what the cloud has seen, or fails tb after timeout.
func (c *Cloud) Wait(tb testing.TB, timeout time.Duration, what string, cond func(Snapshot) bool) Snapshot {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s := c.Seen()
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			tb.Fatalf("mqtttest: cloud of %s: timed out after %v waiting for %s (processed %d, dups %d, ahead %d, births %d, gets %d, acks %d)",
				c.site, timeout, what, len(s.Processed), s.Duplicates, s.Ahead, len(s.Births), len(s.Gets), len(s.CmdAcks))
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

package conform

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/larder-lockers/larder/protocol"
)

// received is one message the kit received from the implementation under test, as it
// arrived: raw bytes kept, decoded when it decodes.
type received struct {
	Topic    string
	Channel  protocol.Channel
	Raw      []byte
	Retained bool
	QoS      byte
	At       time.Time
	// Msg is the decoded envelope; Err why it did not decode (protocol.DecodeOn).
	Msg protocol.Message
	Err error
}

// mailbox records every message of one site, in arrival order, and lets checks wait for
// one. It is written by the MQTT client's callback, which must not block: add only
// appends under the lock and wakes the waiters.
type mailbox struct {
	site string

	mu   sync.Mutex
	msgs []received    // guarded by mu
	wake chan struct{} // guarded by mu: closed and replaced at every add
}

func newMailbox(site string) *mailbox { return &mailbox{site: site, wake: make(chan struct{})} }

// add records a message received on topic; one on another site's topic or no channel
// of the protocol is not the kit's business (it subscribes only to its site).
func (b *mailbox) add(topic string, payload []byte, retained bool, qos byte) {
	r := received{Topic: topic, Raw: append([]byte(nil), payload...), Retained: retained, QoS: qos, At: time.Now()}
	site, ch, err := protocol.ParseTopic(topic)
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil || site != b.site {
		return
	}
	r.Channel = ch
	if len(payload) > 0 { // an empty retained message clears a topic; it is not a message
		r.Msg, r.Err = protocol.DecodeOn(ch, payload)
	} else {
		r.Err = fmt.Errorf("empty payload")
	}
	b.msgs = append(b.msgs, r)
	close(b.wake)
	b.wake = make(chan struct{})
}

// all returns a copy of everything received so far.
func (b *mailbox) all() []received {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]received(nil), b.msgs...)
}

// len is how many messages have arrived: a mark to look for messages after it.
func (b *mailbox) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.msgs)
}

// wait returns the messages from mark on once found reports true for them, or an error
// naming what after timeout (or when ctx ends).
func (b *mailbox) wait(ctx context.Context, timeout time.Duration, mark int, what string, found func([]received) bool) ([]received, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		b.mu.Lock()
		msgs := append([]received(nil), b.msgs[min(mark, len(b.msgs)):]...)
		wake := b.wake
		b.mu.Unlock()
		if found(msgs) {
			return msgs, nil
		}
		select {
		case <-wake:
		case <-deadline.C:
			return msgs, fmt.Errorf("no %s within %v", what, timeout)
		case <-ctx.Done():
			return msgs, fmt.Errorf("no %s: %w", what, ctx.Err())
		}
	}
}

// first returns the first message of msgs on ch that decoded and satisfies ok.
func first(msgs []received, ch protocol.Channel, ok func(received) bool) (received, bool) {
	for _, m := range msgs {
		if m.Channel == ch && m.Err == nil && (ok == nil || ok(m)) {
			return m, true
		}
	}
	return received{}, false
}

// on returns the messages of msgs on ch that decoded.
func on(msgs []received, ch protocol.Channel) []received {
	var out []received
	for _, m := range msgs {
		if m.Channel == ch && m.Err == nil {
			out = append(out, m)
		}
	}
	return out
}

// event returns the event body of a message on the events channel.
func event(m received) protocol.Event { e, _ := m.Msg.Body.(protocol.Event); return e }

// checkSeqs checks the envelope seq of msgs: events carry their outbox sequence (the
// decoder already requires one), desired its version, every other channel 0.
func checkSeqs(msgs []received) (string, error) {
	var f failures
	bad := map[protocol.Channel]bool{}
	for _, m := range msgs {
		if m.Err != nil || bad[m.Channel] {
			continue
		}
		switch d, ok := m.Msg.Body.(protocol.Desired); {
		case ok && m.Msg.Seq != d.Version:
			f.add("desired version %d sent with seq %d", d.Version, m.Msg.Seq)
			bad[m.Channel] = true
		case !m.Channel.Sequenced() && m.Msg.Seq != 0:
			f.add("%s sent with seq %d, want 0", m.Channel, m.Msg.Seq)
			bad[m.Channel] = true
		}
	}
	return "seq as the channels say", f.err()
}

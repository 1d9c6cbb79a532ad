package mqtt

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/larder-lockers/larder/protocol"
)

// drain publishes the outbox in order for one connection, at most OutboxWindow events
// beyond the cloud's last EventAck, and records the cloud's acknowledgements. It starts
// from the last acknowledged event, so everything unacknowledged is resent after every
// reconnect with the same bytes. A non-nil error means the link looks dead.
//
// Everything unacknowledged is also resent when acks stop advancing for AckTimeout, and
// at once on a non-advancing ack (protocol 1.1, [fastResend]).
func (c *Client) drain(ctx context.Context, cli paho.Client) error {
	ob := c.ports.Outbox
	topic := protocol.Topic(c.cfg.Site, protocol.ChanEvents)
	window := uint64(c.cfg.OutboxWindow)

	acked, err := ob.Acked()
	for err != nil {
		c.log.Error("mqtt: outbox acked from store", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(c.cfg.PollInterval):
		}
		acked, err = ob.Acked()
	}
	sent := acked // highest seq put on the wire in this connection
	progress := time.Now()
	var fast fastResend

	// The ticker is both the safety-net poll and the clock of the ack timeout.
	tick := min(c.cfg.PollInterval, c.cfg.AckTimeout/4)
	if tick <= 0 {
		tick = c.cfg.AckTimeout
	}
	t := time.NewTicker(tick)
	defer t.Stop()

	for {
		seq, rejected := c.takeAck()
		if seq != 0 && seq == acked && sent > acked && fast.allow(time.Now(), c.cfg.AckTimeout) {
			c.log.Info("mqtt: event ack did not advance, resending at once", "from", acked+1, "to", sent)
			c.m.resent.Inc()
			sent = acked
			progress = time.Now()
		}
		if seq > acked {
			rejected = slices.DeleteFunc(rejected, func(r protocol.Rejection) bool { return r.Seq <= acked || r.Seq > seq })
			if aside, err := ob.Ack(seq, rejected); err != nil {
				c.m.rejected.WithLabelValues(protocol.ChanEventAck.String()).Inc()
				lvl := slogLevelFor(err)
				c.log.Log(ctx, lvl, "mqtt: event ack not recorded", "seq", seq, "acked", acked, "err", err)
			} else {
				c.setAside(rejected, aside)
				acked = seq
				progress = time.Now()
				// The cloud may acknowledge what a previous connection sent.
				sent = max(sent, acked)
				if acked == sent {
					// Caught up: report the outbox's depth now, not at the next tick, so
					// the cloud's view of it does not keep a backlog that has drained.
					signal(c.telWake)
				}
			}
		}

		for sent-acked < window {
			batch, err := ob.Pending(sent, int(window-(sent-acked)))
			if err != nil {
				c.log.Error("mqtt: outbox pending from store", "after", sent, "err", err)
				break // retried on the next tick
			}
			if len(batch) == 0 {
				break
			}
			if sent == acked {
				progress = time.Now() // the ack clock starts with the first unacked event
			}
			for _, o := range batch {
				if o.Seq <= sent {
					c.log.Error("mqtt: outbox returned an event already sent", "after", sent, "got", o.Seq)
					continue // never go backwards: that would resend out of order
				}
				if o.Seq != sent+1 {
					// A broken invariant of the core's outbox; sending on is all we can
					// do, and the cloud will see the hole in the sequence too.
					c.log.Error("mqtt: outbox sequence hole", "want", sent+1, "got", o.Seq)
				}
				tok := cli.Publish(topic, protocol.ChanEvents.QoS(), false, o.Payload)
				// The PUBACK proves nothing (the EventAck does), so do not wait for it;
				// but a token that failed at once means the link is gone.
				select {
				case <-tok.Done():
					if err := tok.Error(); err != nil {
						return err
					}
				default:
				}
				sent = o.Seq
				c.m.published.Inc()
			}
		}

		select {
		case <-ctx.Done():
			return nil
		case <-c.ackSig:
		case <-c.wake:
		case <-t.C:
			if sent > acked && time.Since(progress) >= c.cfg.AckTimeout {
				c.log.Info("mqtt: no event ack, resending", "from", acked+1, "to", sent)
				c.m.resent.Inc()
				sent = acked
				progress = time.Now()
			}
		}
	}
}

// fastResend decides when a non-advancing EventAck makes the drainer resend at once
// (protocol 1.1, rule ack.resume in protocol/asyncapi.yaml). The cloud acknowledges only
// what it committed, so an ack equal to the last one while later events are on the wire
// means the cloud holds nothing past it: a replica that just took the site over after
// a failover (its predecessor's queue died with it), a gap it is waiting on, or a commit
// that failed. Resending then, instead of after AckTimeout, is what makes a takeover
// quick.
//
// The guard is one fast resend per AckTimeout/4 at most. The cloud re-acknowledges its
// high water for every batch with duplicates or gap events, and a resend makes
// duplicates (the copies still in flight meet the resent ones), so unguarded this could
// feed itself: with the guard those re-acks fall within the interval and are ignored.
// A fast resend that went nowhere (a non-advancing ack that came from the old owner, or
// reached the edge before the new owner had subscribed) is retried on the next
// non-advancing ack once the interval is over, so a takeover never waits for the whole
// AckTimeout. The price is bounded: against a cloud that keeps re-acknowledging without
// taking anything (a failing database) the edge resends its window at most four times
// per AckTimeout instead of once, while that cloud keeps answering.
type fastResend struct {
	last time.Time // when the last fast resend started
}

// allow reports whether a fast resend may start at now, and records it if so.
func (f *fastResend) allow(now time.Time, ackTimeout time.Duration) bool {
	if !f.last.IsZero() && now.Sub(f.last) < ackTimeout/4 {
		return false
	}
	f.last = now
	return true
}

// setAside reports the events the outbox set aside: an error line each, with the
// cloud's reason and the envelope as sent (events carry no secrets; cut at
// maxLoggedPayload), and the alarm metric. The store keeps the whole envelope.
func (c *Client) setAside(rejected []protocol.Rejection, aside []Outgoing) {
	c.m.eventsRejected.Add(float64(len(aside)))
	for _, o := range aside {
		i := slices.IndexFunc(rejected, func(r protocol.Rejection) bool { return r.Seq == o.Seq })
		if i < 0 {
			continue // cannot happen: the outbox sets aside only what it was given
		}
		r := rejected[i]
		c.log.Error("mqtt: the cloud rejected an event; kept aside, not resent", "seq", r.Seq, "error", string(r.Error),
			"field", r.Field, "reason", r.Message, "envelope", string(o.Payload[:min(len(o.Payload), maxLoggedPayload)]))
	}
}

// maxLoggedPayload bounds the envelope bytes a log line carries.
const maxLoggedPayload = 2048

// slogLevelFor logs an ack beyond the high water as a warning (the cloud's problem) and
// store failures as errors.
func slogLevelFor(err error) slog.Level {
	if errors.Is(err, ErrAckBeyondHighWater) {
		return slog.LevelWarn
	}
	return slog.LevelError
}

package mqtt

import (
	"context"
	"slices"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/larder-lockers/larder/protocol"
)

// maxHeld bounds the desired deltas held while waiting for a late predecessor.
const maxHeld = 64

// snapshotHoldoff keeps a burst of gapped deltas from sending a burst of snapshot
// requests; a full snapshot arriving ends it early.
const snapshotHoldoff = 5 * time.Second

// route returns the paho message handler of one connection (lost is closed when it
// drops). Each message runs it on a goroutine of its own (OrderMatters false), and paho
// sends the message's PUBACK when it returns.
func (c *Client) route(lost <-chan struct{}) paho.MessageHandler {
	return func(_ paho.Client, msg paho.Message) { c.handle(msg.Topic(), msg.Payload(), lost) }
}

// handle decodes a message and hands it over; it is route without paho, so it can be
// fuzzed. It waits only while the worker's queue is full (see hand).
func (c *Client) handle(topic string, payload []byte, lost <-chan struct{}) {
	site, ch, err := protocol.ParseTopic(topic)
	if err != nil || site != c.cfg.Site || ch.FromEdge() {
		c.log.Warn("mqtt: message on unexpected topic", "topic", topic)
		c.m.rejected.WithLabelValues("unknown").Inc()
		return
	}
	m, err := protocol.DecodeOn(ch, payload)
	if err != nil {
		c.log.Warn("mqtt: rejected payload", "channel", ch.String(), "bytes", len(payload), "err", err)
		c.m.rejected.WithLabelValues(ch.String()).Inc()
		return
	}
	switch ch {
	case protocol.ChanEventAck:
		c.noteAck(m.Body.(protocol.EventAck))
	case protocol.ChanDesired, protocol.ChanCommands:
		c.hand(m, ch, lost)
	}
}

// hand queues m for the worker. A full queue pushes back instead of dropping: the
// handler waits, and with it the message's PUBACK, so the broker's in-flight window for
// this edge throttles the cloud's deliveries until the worker catches up. The wait ends
// early only when the connection is lost (the broker delivers the unacknowledged message
// again on the next connection of the persistent session) or Run ends (the cloud sends
// unanswered commands again and a full snapshot after the next birth).
func (c *Client) hand(m protocol.Message, ch protocol.Channel, lost <-chan struct{}) {
	select {
	case c.inbound <- m:
		return
	default:
	}
	c.m.held.WithLabelValues(ch.String()).Inc()
	select {
	case c.inbound <- m:
	case <-lost:
	case <-c.stopped:
	}
}

// maxAckRejections bounds the rejections kept between two rounds of the drainer; the
// cloud repeats a rejection in later acks, so one beyond it is learnt again.
const maxAckRejections = 1024

// noteAck records an EventAck for the drainer. Acks are cumulative, so only the highest
// matters and arrival order does not; the rejections of every ack are kept, since each
// ack names only the latest ones.
func (c *Client) noteAck(a protocol.EventAck) {
	c.ackMu.Lock()
	if a.Seq > c.ackHigh {
		c.ackHigh = a.Seq
	}
	for _, r := range a.Rejected {
		if len(c.ackRejected) < maxAckRejections && !slices.ContainsFunc(c.ackRejected, func(h protocol.Rejection) bool { return h.Seq == r.Seq }) {
			c.ackRejected = append(c.ackRejected, r)
		}
	}
	c.ackMu.Unlock()
	signal(c.ackSig)
}

// takeAck returns and clears the highest EventAck seen since the last call (0: none)
// and the rejections named since.
func (c *Client) takeAck() (uint64, []protocol.Rejection) {
	c.ackMu.Lock()
	defer c.ackMu.Unlock()
	seq, rejected := c.ackHigh, c.ackRejected
	c.ackHigh, c.ackRejected = 0, nil
	return seq, rejected
}

// worker applies desired state and hands commands to the core, one message at a time,
// in arrival order. It lives as long as Run.
func (c *Client) worker(ctx context.Context) {
	w := desiredWorker{c: c}
	grace := time.NewTimer(time.Hour)
	grace.Stop()
	defer grace.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-c.inbound:
			switch body := m.Body.(type) {
			case protocol.Desired:
				hadHeld := len(w.held) > 0
				w.apply(ctx, m, body)
				if len(w.held) > 0 && !hadHeld {
					grace.Reset(c.cfg.GapGrace)
				} else if len(w.held) == 0 {
					grace.Stop()
				}
			case protocol.Command:
				c.command(ctx, m, body)
			}
		case <-grace.C:
			if len(w.held) > 0 {
				w.held = nil
				w.snapshot(ctx, "gap")
			}
		}
	}
}

// desiredWorker is the worker's desired-state bookkeeping; only the worker touches it.
type desiredWorker struct {
	c        *Client
	held     []protocol.Message // gapped deltas, waiting for their predecessors
	lastSnap time.Time          // when a snapshot was last requested
}

func (w *desiredWorker) apply(ctx context.Context, m protocol.Message, d protocol.Desired) {
	c := w.c
	out, err := c.ports.Desired.ApplyDesired(ctx, m)
	if err != nil {
		c.m.desired.WithLabelValues("error").Inc()
		c.log.Error("mqtt: apply desired", "version", d.Version, "err", err)
		w.snapshot(ctx, "error")
		return
	}
	c.m.desired.WithLabelValues(out.String()).Inc()
	switch out {
	case Applied:
		c.log.Info("mqtt: desired applied", "version", d.Version, "full", d.Full)
		if d.Full {
			w.lastSnap = time.Time{}
		}
		w.replay(ctx)
		signal(c.telWake)
	case Duplicate:
		c.log.Debug("mqtt: desired duplicate ignored", "version", d.Version, "id", m.ID)
	case Gap:
		c.log.Info("mqtt: desired gap", "version", d.Version)
		if c.cfg.GapGrace == 0 || len(w.held) >= maxHeld {
			w.held = nil
			w.snapshot(ctx, "gap")
			return
		}
		w.held = append(w.held, m)
	}
}

// replay retries held deltas, lowest version first, after something was applied.
func (w *desiredWorker) replay(ctx context.Context) {
	for progress := true; progress && len(w.held) > 0; {
		progress = false
		slices.SortFunc(w.held, func(a, b protocol.Message) int {
			va, vb := a.Body.(protocol.Desired).Version, b.Body.(protocol.Desired).Version
			switch {
			case va < vb:
				return -1
			case va > vb:
				return 1
			}
			return 0
		})
		keep := w.held[:0]
		for _, h := range w.held {
			out, err := w.c.ports.Desired.ApplyDesired(ctx, h)
			if err != nil || out == Gap {
				keep = append(keep, h)
				continue
			}
			w.c.m.desired.WithLabelValues(out.String()).Inc()
			progress = progress || out == Applied
		}
		w.held = keep
	}
}

// snapshot asks the cloud for a full desired snapshot, unless one was asked for
// recently and has not arrived yet. Offline it does nothing: every connect publishes a
// birth, which the cloud answers with a snapshot.
func (w *desiredWorker) snapshot(ctx context.Context, reason string) {
	if !w.lastSnap.IsZero() && time.Since(w.lastSnap) < snapshotHoldoff {
		return
	}
	cli := w.c.current()
	if cli == nil {
		return
	}
	if err := w.c.requestSnapshot(cli, reason); err != nil {
		w.c.log.Warn("mqtt: desired snapshot request", "err", err)
		return
	}
	w.lastSnap = time.Now()
}

// command hands a command to the core, except resync, which is this package's job.
// A resync is answered at once and not queued durably: offline it gets no answer,
// since the next connect is itself a resync and the cloud sends unanswered commands
// again after each birth.
func (c *Client) command(ctx context.Context, m protocol.Message, cmd protocol.Command) {
	if cmd.Kind != protocol.CmdResync {
		c.ports.Commands.HandleCommand(ctx, m)
		return
	}
	cli := c.current()
	if cli == nil {
		return
	}
	ack := protocol.CommandAck{CommandID: cmd.ID, State: protocol.StateSucceeded}
	if time.Now().After(cmd.ExpiresAt) {
		ack.State, ack.Error = protocol.StateRejected, protocol.ErrExpired
	} else if err := c.publishBirth(cli); err != nil {
		// A birth is the whole resync: the cloud answers it with a full snapshot.
		ack.State, ack.Error, ack.Message = protocol.StateFailed, protocol.ErrInternal, err.Error()
	}
	if err := c.pub(cli, ack); err != nil {
		c.log.Warn("mqtt: resync ack", "cmd_id", cmd.ID, "err", err)
	}
}

package mqtt

import (
	"context"
	"errors"

	"github.com/larder-lockers/larder/protocol"
)

// The interfaces below are what this package consumes from the edge core. The core
// implements them over its bbolt store; mqtttest has in-memory fakes with the same
// semantics. They are small on purpose: each is what one loop of the sync needs.

// Outgoing is one event of the outbox as it travels on the wire.
type Outgoing struct {
	// Seq is the outbox sequence (≥ 1). It equals the Seq of the envelope in Payload.
	Seq uint64
	// Payload is the encoded envelope exactly as the core stored it when the event was
	// written (protocol.Encode output, Header.Seq = Seq, Header.ID fixed). It is resent
	// byte for byte, so a redelivery carries the same message id and the cloud dedupes it.
	Payload []byte
}

// Outbox is the edge's durable, ordered queue of events for the cloud.
//
// Sequences are assigned by the core, start at 1 and have no holes. The sync reads
// pending events after the last sequence it has put on the wire and records the cloud's
// cumulative acknowledgements. The sync calls Outbox methods from one goroutine at a
// time, never from a paho callback. When the core commits a new event it calls
// [Client.Notify] so the drainer wakes without polling.
type Outbox interface {
	// Pending returns up to max events with Seq > after, in ascending order and
	// contiguous (after+1, after+2, …). It returns an empty slice, not an error, when
	// there is nothing after `after`. Acknowledged events may have been deleted, but
	// Pending is only ever called with after ≥ Acked().
	Pending(after uint64, max int) ([]Outgoing, error)
	// Ack durably records that the cloud has processed every event with Seq ≤ seq (the
	// cloud's EventAck is cumulative). It is idempotent: seq ≤ Acked() is a no-op that
	// returns nil. A seq beyond the last event ever written changes nothing and returns
	// an error wrapping [ErrAckBeyondHighWater]. The core may delete acknowledged events,
	// except the ones the cloud rejected: in the same transaction it keeps those it
	// still holds aside for inspection, and returns them (a rejection of an event no
	// longer held, which the cloud may repeat, is ignored). The sync calls Ack only with
	// the Seq and Rejected of a decoded protocol.EventAck, rejections filtered to
	// Acked() < r.Seq ≤ seq.
	Ack(seq uint64, rejected []protocol.Rejection) (setAside []Outgoing, err error)
	// Acked returns the highest acknowledged sequence (0 when none). The drainer starts
	// from it on start-up and after every reconnect: everything after it is resent.
	Acked() (uint64, error)
}

// ErrAckBeyondHighWater is what Outbox.Ack wraps when the cloud acknowledges a sequence
// the edge never wrote (a confused or malicious cloud, or an edge whose store was reset).
var ErrAckBeyondHighWater = errors.New("mqtt: ack beyond outbox high water")

// Outcome is what applying one desired-state message did.
type Outcome int

// Outcomes of [Desired.ApplyDesired].
const (
	// Applied: the message changed the edge's desired state; its version is now current.
	Applied Outcome = iota + 1
	// Duplicate: nothing changed because the edge already has it: the message id was
	// seen before, a delta's Version ≤ the current version, or a snapshot's Version ≤
	// the current version.
	Duplicate
	// Gap: a delta whose Version > current+1. Nothing was applied; the sync asks the
	// cloud for a full snapshot (after a short grace, in case the missing delta is only
	// late: paho may hand over two messages in swapped order).
	Gap
)

func (o Outcome) String() string {
	switch o {
	case Applied:
		return "applied"
	case Duplicate:
		return "duplicate"
	case Gap:
		return "gap"
	}
	return "unknown"
}

// Desired is the edge's versioned copy of the cloud's desired state (reservations and
// loading credentials), like a device shadow.
type Desired interface {
	// ApplyDesired applies one decoded message whose Body is a protocol.Desired, in one
	// store transaction that, when it applies, also records m.ID for deduplication (a
	// Gap records nothing: the same message may be offered again once its predecessor
	// has arrived):
	//   - a full snapshot with Version > current replaces everything → Applied;
	//   - a delta with Version == current+1 applies on top → Applied;
	//   - a seen id, or Version ≤ current → Duplicate (nothing changes);
	//   - a delta with Version > current+1 → Gap (nothing changes).
	// An error means the store failed; nothing was applied.
	ApplyDesired(ctx context.Context, m protocol.Message) (Outcome, error)
	// DesiredVersion is the version of the last applied desired state (0: none). It goes
	// into DesiredGet.Have.
	DesiredVersion() (uint64, error)
}

// Commands carries out the cloud's commands (jobs) and keeps the acks that report them.
type Commands interface {
	// HandleCommand takes one decoded message whose Body is a protocol.Command. It must
	// return promptly: record the command durably (QUEUED, deduplicated by Command.ID),
	// then do the work on the core's own goroutine. Every state change is queued as a
	// CommandAck in the core's store, in the transaction that records the state, and
	// the core then calls [Client.Notify]. A command id seen before is never carried out
	// again; its latest known state is queued again, so a cloud that missed an ack
	// learns it. A command past its ExpiresAt is REJECTED with protocol.ErrExpired.
	//
	// ctx ends when the sync's Run returns. Commands of kind protocol.CmdResync are
	// handled by this package (a new birth, which the cloud answers with a snapshot) and never
	// reach HandleCommand.
	HandleCommand(ctx context.Context, m protocol.Message)
	// PendingCommandAcks returns up to max queued acks, oldest first: those the broker
	// has not taken yet, whether they were made offline, before a restart, or just now.
	PendingCommandAcks(max int) ([]CommandAck, error)
	// CommandAckSent removes a queued ack once the broker has acknowledged its publish
	// (PUBACK). Idempotent. The core may also drop acks past an age of its choosing.
	CommandAckSent(key uint64) error
}

// CommandAck is one queued command ack as it travels on the wire.
type CommandAck struct {
	// Key identifies it in the queue, for CommandAckSent.
	Key uint64
	// Payload is the encoded envelope (protocol.Encode of a protocol.CommandAck) as the
	// core stored it; a resend carries the same bytes and message id.
	Payload []byte
}

// Reporter describes the edge for the cloud.
type Reporter interface {
	// Birth is published on every connect. Its DesiredVersion and OutboxHighWater let
	// the cloud reconcile after any outage.
	Birth() (protocol.Birth, error)
	// Telemetry is published every Config.TelemetryInterval while connected (QoS 0), and
	// at once after a desired message was applied (its DesiredVersion tells the cloud)
	// or the cloud acknowledged every event sent (its OutboxDepth).
	// It is also read whenever the metrics are gathered, connected or not: its
	// OutboxDepth is larder_mqtt_outbox_unacked. So it must be cheap and safe to call
	// from any goroutine.
	Telemetry() (protocol.Telemetry, error)
}

// Link hears the connection to the cloud come and go, so that the core knows how long
// the cloud has been out of reach (edge.Locker.LinkUp, LinkDown).
type Link interface {
	// LinkUp is called once a connection has completed its connect sequence (subscribed,
	// status, birth and snapshot request published), before the outbox drains on it: an
	// event LinkUp writes to the outbox goes out on this connection.
	LinkUp(ctx context.Context) error
	// LinkDown is called when that connection has ended: lost, dropped or shut down.
	LinkDown(ctx context.Context) error
}

// Ports bundles what the sync consumes. Outbox, Desired, Commands and Reporter are
// required; Link is optional (nil: nobody is told).
type Ports struct {
	Outbox   Outbox
	Desired  Desired
	Commands Commands
	Reporter Reporter
	Link     Link
}

func (p Ports) validate() error {
	switch {
	case p.Outbox == nil:
		return errors.New("mqtt: Ports.Outbox is nil")
	case p.Desired == nil:
		return errors.New("mqtt: Ports.Desired is nil")
	case p.Commands == nil:
		return errors.New("mqtt: Ports.Commands is nil")
	case p.Reporter == nil:
		return errors.New("mqtt: Ports.Reporter is nil")
	}
	return nil
}

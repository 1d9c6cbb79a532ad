// Package mqtt is the cloud's fleet adapter: it speaks protocol v1 with every edge over
// an MQTT broker (the embedded one of cloud/broker, or Mosquitto) using the paho client,
// and talks to the cloud's domain through the small interfaces in fleet.go.
//
// # Consuming
//
// The adapter subscribes (in paho's OnConnect, since subscriptions vanish with clean
// sessions on reconnect) to every site's status, birth, events, telemetry, command acks
// and desired requests. It is the only consumer of those messages: one cloud process
// applies a site's events. paho's callback only hands the raw message to one of
// [Config.Workers] workers chosen by a hash of the site, so a site's messages are
// handled in order while sites run in parallel, and the paho client is never blocked by
// domain work. Because the callback never blocks, paho calls it in arrival order on its
// router goroutine (OrderMatters true).
//
// # Flow control: nothing accepted is lost
//
// The callback must not block: paho's router goroutine also carries the PUBACKs and
// PINGRESPs the client waits for, so a blocked callback stalls the cloud's own acks and
// finally the connection. The flow control is the edges' instead: an edge puts at most
// its outbox window (1..1000 events) on the wire beyond the cloud's last
// [protocol.EventAck], and the cloud acknowledges an event only after its effect
// committed. So a site can have only a window of events queued at the cloud, and a
// cloud that is slow to commit simply holds the acks back: the edges wait.
//
// The worker queues are bounded all the same, per site ([Config.SiteQueue], twice the
// largest window) and per worker ([Config.QueueLen], a guard on memory). An edge that
// keeps its window never meets the per-site bound, since a worker takes its whole
// queue at once. An event beyond a bound is refused, not dropped: it is not accepted,
// not acknowledged, counted as larder_fleet_events_total{outcome="refused"}, and the
// edge, seeing no ack for it, sends it again. Every event the cloud accepts is applied.
// Messages other than events (status, birth, telemetry, command acks, desired
// requests) are few per site and always queued.
//
// # Events, shared commits and acknowledgement
//
// Events carry a per-site sequence. A worker stages each site's events in sequence order
// and hands all it has staged, of all its sites, to [Events.SiteEvents] in one call:
// one durable transaction for the lot (up to [Config.BatchMax] events), which the
// store's group commit also shares with the other workers' calls. Only after that call
// returns does the worker publish one cumulative [protocol.EventAck] per site, of the
// high water that committed. A message other than an event commits the staged events
// first, so a site's messages take effect in arrival order.
//
// A duplicate (sequence at or below what is committed or staged) is acknowledged again
// without touching the domain; an event after a gap is held (up to [Config.GapHold]
// past the high water, the largest window) until the gap fills, and the edge resends
// everything after the last ack anyway. Events the domain did not apply go back to the
// held ones: an event that decodes but whose effect failed for now is retried when the
// edge resends it, never rejected.
//
// # Rejected events
//
// An event that does not decode but names its sequence (v 1, a positive seq) would hold
// back every event of its site forever if it were simply refused: the edge resends it
// unchanged. So it is staged at its sequence as a [protocol.RejectedEvent]; the domain
// records the rejection (audit) and moves the high water past it, and the acks name it
// in [protocol.EventAck].Rejected — repeated in later acks while it is within the
// largest window of the high water, at most the site's last 16 — so that the edge sets
// it aside. Counted as larder_fleet_events_total{outcome="rejected"} (and
// larder_fleet_messages_rejected_total{channel="events"}, like every undecodable
// message) and warned about. An envelope with no readable sequence cannot be named: it
// is counted and dropped. A birth whose outbox high water is below the cloud's means the edge's
// outbox started over; the domain resets its high water (see [Births]).
//
// # Warnings
//
// Warnings that come once per message (refused or held events, undecodable messages,
// domain errors, acks not sent) are logged at most once per [Config.WarnEvery] per
// kind, with the count of the repeats: a fleet in trouble writes a few lines a minute.
//
// # Presence and outages
//
// Status messages (retained; the offline one is the edge's Last Will) update presence;
// a status delivered twice on one connection is dropped by message id. The adapter
// remembers when each site last sent anything and, on an offline→online change, reports
// the outage length so the domain can extend the pickup deadlines of orders waiting at
// that site. When the cloud itself loses the broker (a central outage), every online
// site's retained status replayed on reconnecting carries the outage measured from the
// moment the connection was lost.
//
// # Desired state and commands
//
// After a birth and on a DesiredGet the adapter publishes the domain's full desired
// snapshot; deltas are published by the domain through [Adapter.PublishDesired].
// Commands are jobs ([Adapter.PublishCommand]), sent with the command id as the envelope
// id and seq 0 (only events and desired state are sequenced): the edge's acks move them through
// QUEUED → IN_PROGRESS → final via [Commands.CommandProgress]; a command with no final
// ack by its expiry plus [Config.CommandGrace] is recorded TIMED_OUT by the adapter.
// Pending commands are reloaded at start and republished after a site's birth.
package mqtt

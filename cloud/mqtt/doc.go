// Package mqtt is the cloud's fleet adapter: it speaks protocol v1 with every edge over
// an MQTT broker (the embedded one of cloud/broker, or Mosquitto) using the paho client,
// and talks to the cloud's domain through the small interfaces in fleet.go.
//
// # Consuming
//
// The adapter subscribes (in paho's OnConnect, since subscriptions vanish with clean
// sessions on reconnect) to the status, birth, events, telemetry, command acks and
// desired requests of every site, or, with several replicas, of the sites its replica
// owns (see Replicas below). For each site it is the only consumer of those messages:
// the one process, or the replica that owns the site, applies its events; it never
// shares them with another (no MQTT shared subscriptions, which NATS's MQTT lacks and
// which would scatter one site's events over replicas). paho's callback only hands the raw message to one of
// [Config.Workers] workers chosen by a hash of the site, so a site's messages are
// handled in order while sites run in parallel, and the paho client is never blocked by
// domain work. Because the callback never blocks, paho calls it in arrival order on its
// router goroutine (OrderMatters true).
//
// # Flow control: the held ack, nothing delivered is lost
//
// The callback must not block: paho's router goroutine also carries the PUBACKs and
// PINGRESPs the client waits for, so a blocked callback stalls the cloud's own acks and
// finally the connection. The flow control is the edges' instead: an edge puts at most
// its outbox window (1..1000 events) on the wire beyond the cloud's last
// [protocol.EventAck], and the cloud acknowledges an event only after its effect
// committed. So a site can have only a window of events queued at the cloud, and a
// cloud that is slow to commit simply holds the acks back: the edges wait. The worker
// queues therefore have no bound of their own; what they hold is bounded by the sum of
// their sites' windows. A queue never turns a site's event away because of other
// sites: that would make a well-behaved edge resend, and a fleet draining at once would
// resend far more than it sent.
//
// The one bound is per site, for an edge that ignores its window ([Config.SiteQueue],
// twice the largest window: room for a whole window and one resend of it, since a
// worker takes its whole queue at once). An event beyond it is a protocol violation:
// it is dropped unacknowledged (the edge still holds it in its outbox and sends it
// again), counted as larder_fleet_events_total{outcome="refused"} and warned about once
// per [Config.WarnEvery]. Dropping rather than holding keeps the cloud's memory bounded
// whatever an edge sends, and only the offending site pays for it. Every event a queue
// accepts is applied. Messages other than events (status, birth, telemetry, command
// acks, desired requests) are few per site and always queued.
//
// paho reads each packet from the connection in three or more reads; for plain TCP
// brokers the adapter dials the connection itself, with a read buffer (see conn.go).
//
// # Events, shared commits and acknowledgement
//
// Events carry a per-site sequence. A worker stages each site's events in sequence order
// and hands all it has staged, of all its sites, to [Events.SiteEvents] in one call:
// one durable transaction for the lot (up to [Config.BatchMax] events), which the
// store's group commit also shares with the other workers' calls. Only after that call
// returns does the worker publish one cumulative [protocol.EventAck] per site, of the
// high water that committed. A message other than an event commits the staged events
// first when its own site has some, so a site's messages take effect in arrival order;
// other sites' events stay staged for the shared commit (after a restart, a burst of
// births would otherwise cost one commit per site). Command acks are the exception: a
// round's acks are recorded ([Commands.CommandProgress], each site's in arrival order,
// the sites side by side) while its events commit, all in the same shared commit, since
// a command's state depends on no event.
//
// A duplicate (sequence at or below what is committed or staged) is acknowledged again
// without touching the domain; an event after a gap is held (up to [Config.GapHold]
// past the high water, the largest window; one further ahead is beyond any window and
// refused like an event past SiteQueue) until the gap fills, and the edge resends
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
// Warnings that come once per message (events beyond a window, held events, undecodable messages,
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
// moment the connection was lost. What the edges published meanwhile went nowhere, since the
// adapter's session is clean: after subscribing again, each worker acknowledges once
// more the high water of every site it has heard from since the process started, and
// that ack, not advancing, makes a 1.1 edge resend at once (rule ack.resume) rather
// than after its ack timeout. (With an owner the same is done per owned site; see
// Replicas.) An edge the workers have not heard from, or whose site has no event
// committed yet (an ack names a sequence of at least 1), resends after its ack timeout.
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
//
// # Replicas: site ownership and fencing
//
// Several larder-cloud replicas may share one store and one broker. Each owns some of
// the sites through leases with fencing tokens (cloud/lease), which [Config.Owner]
// reports as they change; without an owner the adapter owns every site. The adapter
// subscribes only to the edge→cloud topics of the sites it owns (or, with
// [Config.SubscribeAll], to every site's, dropping the messages of the others), in batches of 100
// sites per SUBSCRIBE (thousands of sites per replica: 5,000 took 0.5–0.8 s on the
// embedded broker on two busy cores), and again after every reconnect. It subscribes
// without per-filter paho callbacks, whose route list would make that quadratic.
//
// On a gain it subscribes, then has the site's worker read the site's event high water
// afresh (another replica advanced it meanwhile) and acknowledge it at once, and again
// a second later, republish the site's pending commands and arm their timers, and send
// the edge a resync command, so that a birth that reached no replica (one published
// while the site had no owner: a new site, a takeover) is published again. The edge
// may have events on the wire that the previous owner never committed: they died with
// its queue. A protocol 1.1 edge resends everything past a non-advancing ack at once
// (rule ack.resume), so the first ack brings them back within a round trip when the
// edge saw its old owner's last ack; when it did not (the old owner died between
// committing and acknowledging), the first ack advances it and the repeat is the
// non-advancing one. A 1.0 edge resends after its ack timeout. After the replica itself
// reconnects, it acknowledges every owned site's high water again for the same reason:
// its clean session lost what the edges sent meanwhile. Two seconds later it sends each
// owned site's edge a resync, as after a gain: a birth the edge published meanwhile (on
// moving to another node of a broker cluster) reached no one, nor did the desired
// deltas and commands the replica failed to publish while away; the birth brings a full
// snapshot and the pending commands. A wildcard subscription ([Config.SubscribeAll])
// that the broker refuses in part is retried on the same connection until it is granted
// whole: nats-server refuses QoS 1 filters while JetStream elects the leaders of a dead
// node's streams.
//
// On a loss it unsubscribes and has the worker forget the site: staged and held events
// are dropped unacknowledged (the edge resends them to the new owner), the cached high
// water and presence go, and the site's command timers are disarmed. It sends no more
// acks for the site, not even of what it committed: a non-advancing ack from it could
// spend the edge's fast resend before the new owner has subscribed. A message of a
// site not owned (in flight during the change, or queued before it) is ignored, not
// acknowledged, and counted as larder_fleet_messages_unowned_total.
//
// Every call into the domain made for a site carries the fence of its lease
// ([cloud.WithFences]; a commit of several sites' runs carries all their fences), so a
// shared store refuses the writes of a replica that paused and lost the lease without
// noticing. An error wrapping [cloud.ErrFenced] means exactly that: the adapter treats
// the site as lost (as above), warns once per [Config.WarnEvery] and counts
// larder_fleet_leases_fenced_total. A shared commit refused for one site's fence fails
// for all its sites, so its runs are applied again one by one, each with its own fence,
// to keep the sites that did not move.
//
// Command timeouts are periodic work, done once across replicas by one rule: the owner
// of a site arms the timers of every pending command of the site, on a gain and on a
// reload of the pending commands every [Config.CommandGrace]/2; a replica that does not
// own a site never arms one (PublishCommand from a non-owner, e.g. a REST call on
// another replica, only publishes). A command whose edge never answers is therefore
// timed out by the owner within half a grace of when it would be due, exactly once:
// its TIMED_OUT carries the owner's fence, a former owner's is fenced, and the domain
// ignores any transition out of a final state.
//
// # Brokers
//
// [Config.Broker] may list the nodes of a broker cluster, comma-separated; paho tries
// them in order on the first connection and on every reconnect, and the subscriptions
// above are made again on whichever node it reached.
package mqtt

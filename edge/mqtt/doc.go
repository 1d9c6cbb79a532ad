// Package mqtt is the edge's link to the cloud over an MQTT broker, with
// github.com/eclipse/paho.mqtt.golang. It speaks protocol v1 and nothing else: every
// topic comes from protocol.Topic, every payload from protocol.Encode/DecodeOn.
//
// The edge core owns all state; this package moves it. It consumes four small
// interfaces (see ports.go): an [Outbox] of encoded events, the versioned [Desired]
// state, the [Commands] job runner with its queue of acks, and a [Reporter] for birth
// and telemetry; mqtttest has in-memory fakes of all four. An optional fifth, [Link],
// hears each connection come and go, so that the core knows how long the cloud was out
// of reach.
//
// # Connection
//
// The client id is larder-edge-{site} (stable and unique per edge) with CleanSession
// false, so the broker keeps the subscriptions and queues QoS 1 messages while the edge
// is away. The Last Will is a retained offline [protocol.Status]. On every connect, in
// this order: subscribe (desired, commands, events/ack of the own site), publish the
// retained online Status, publish a Birth, tell [Link] the link is up, then drain the
// outbox; when the connection ends, [Link] hears it is down. No DesiredGet: the cloud
// answers every birth with a full desired snapshot (asyncapi.yaml clause
// connect.snapshot), so asking too would bring the same snapshot twice. A clean
// shutdown publishes the retained offline Status itself (a DISCONNECT suppresses the
// Will). Broker may list several URLs (comma-separated), the nodes of a cluster: every
// attempt tries them in order and the log names the one connected. A SUBACK that refuses
// any filter drops the connection and retries, rather than running without acks or
// desired state.
//
// We subscribe on every connect, whatever the CONNACK's session-present flag says: a
// broker restarted without persistence (Mosquitto's default, mochi always) has lost the
// session. Messages the broker delivers from a persistent session before SUBSCRIBE
// returns go to a default publish handler that routes them like any other, so they are
// acknowledged and do not clog the in-flight window.
//
// # Reconnecting
//
// paho's AutoReconnect is off and this package runs its own loop: each attempt gets a
// fresh paho client (nothing stale in paho's store, which is not to be trusted with
// durability anyway: ours is the core's outbox), and attempt n waits a uniformly random
// delay in [0, min(BackoffMax, BackoffMin·2ⁿ)] ("full jitter"). paho's own retry
// (ConnectRetry, SetMaxReconnectInterval) doubles without jitter, so after a regional
// outage 100,000 edges would retry in lockstep and knock the broker over again at every
// doubling. With full jitter the very first retry is already spread over BackoffMin, and
// the edges the broker turns away spread over ever wider windows, so the offered load
// falls to what the broker can take. TestBackoffSpreadsFleet simulates 100,000 edges
// dropped at once by a broker that takes 5,000 connections a second: with the defaults
// (BackoffMin 5 s, BackoffMax 5 min) the whole fleet is back in about 2.5 minutes and
// the broker never sees more than about 28,000 attempts in a second; doubling in
// lockstep takes over an hour, with all 100,000 arriving in the same second again and
// again. BackoffMin 5 s means an edge alone waits 2.5 s on average after a blip, which
// an offline-first edge does not notice. The attempt counter resets only after a connection
// stayed up for a minute, so a broker that accepts and then drops clients does not get
// hammered either.
//
// # Outbox drain
//
// The drainer publishes events in outbox order at QoS 1, at most OutboxWindow beyond
// the cloud's last cumulative [protocol.EventAck]. A PUBACK only says the broker took the
// message, so it proves nothing: progress is driven only by EventAcks, and
// [Outbox.Ack] is called only with the Seq of a decoded EventAck. After every
// reconnect, and whenever acknowledgements stall for AckTimeout, the drainer resends
// everything after the last EventAck with the very same bytes; the cloud deduplicates by
// sequence. Nothing is ever skipped: a send window that cannot advance just waits.
//
// An EventAck may name events the cloud could not decode and rejected
// ([protocol.EventAck].Rejected): acknowledged all the same, so the stream goes on. The
// drainer hands those still pending to [Outbox.Ack] with the ack, which sets them aside
// for inspection instead of deleting them, logs each at error level and counts them in
// larder_mqtt_events_rejected_total. A rejection the cloud repeats for an event no longer
// pending is ignored.
//
// # Inbound messages
//
// paho runs with OrderMatters false, each message's handler on a goroutine of its own,
// and our handlers only decode and hand over: an EventAck updates an atomic high mark
// and wakes the drainer; desired and command messages go through a bounded queue to one
// worker goroutine. A full queue pushes back: the handler waits for room, and paho sends
// the message's PUBACK only when it returns, so the broker's in-flight window for the
// edge throttles the cloud (counted in larder_mqtt_inbound_held_total{channel}). paho's
// reader never waits, so acks, pings and the drainer's PUBACKs flow meanwhile.
// Malformed payloads are logged with the protocol.FieldError and counted in
// larder_mqtt_rejected_total{channel}.
//
// Desired messages are applied in arrival order on the worker. Duplicates are ignored
// (the core checks ids and versions in one transaction). A delta that arrives ahead of
// its predecessor is held for GapGrace: with OrderMatters false, paho runs each handler
// in its own goroutine, so two deltas published back to back can swap places on the way
// to our queue. If the gap is still there after the grace, the edge publishes
// DesiredGet{Have, Reason: "gap"} and drops what it held.
//
// The broker's queue for an offline persistent session is not proof of completeness
// (Mosquitto drops beyond max_queued_messages silently, a broker restart without
// persistence forgets the session, and deltas published before the session existed were
// never queued): the snapshot the cloud sends after every birth is what resynchronises
// the edge after a connect, and a resync command publishes a birth again.
//
// After applying a desired message the edge publishes its telemetry at once rather than
// at the next tick: its DesiredVersion tells the cloud the version is in force, and the
// cloud tells a resident a reissued pickup code only then. It does the same when the
// cloud has acknowledged every event sent, so the reported outbox depth does not keep a
// drained backlog until the next tick.
//
// # Offline
//
// Nothing in the core waits for the link. While disconnected, events keep going into
// the outbox (Notify just wakes a drainer that is not running), command acks keep going
// into the core's durable queue of acks, and telemetry is skipped.
//
// # Command acks
//
// The core queues every CommandAck durably, in the transaction that records the state
// it reports ([Commands]). While connected, this package publishes the queue in order
// at QoS 1 and removes each ack once the broker has acknowledged its publish (PUBACK):
// for an ack, unlike an event, the broker taking it is the end, since the protocol has
// no answer to an ack and the cloud takes late or repeated acks (a command's state only
// moves forward). An ack whose publish fails or times out stays queued for the next
// try (every second, and on every connect), so acks made offline, or before a restart,
// go out when the link returns; one may go out twice if the edge stops between the
// PUBACK and its removal. A resync command is this package's own and is answered at
// once, not queued: offline it is not answered, since the next connect resyncs anyway
// and the cloud sends unanswered commands again after each birth.
//
// # Metrics
//
// larder_broker_connected (gauge, 1 while connected), larder_mqtt_connect_attempts_total,
// larder_mqtt_rejected_total{channel}, larder_mqtt_inbound_held_total{channel},
// larder_mqtt_outbox_published_total, larder_mqtt_outbox_resent_total,
// larder_mqtt_desired_total{outcome}, larder_mqtt_command_acks_published_total,
// larder_mqtt_events_rejected_total (events the cloud rejected; any increase is an
// alarm), and
// larder_mqtt_outbox_unacked, the gauge of the backlog: the events in the core's outbox
// that the cloud has not acknowledged, taken from Reporter.Telemetry's OutboxDepth at
// every scrape, so it reads the same whether the broker is connected or not (offline
// is when it grows). It is not the count of events on the wire, which is 0 offline.
//
// # Caveats
//
//   - The drain's throughput is bounded by OutboxWindow / (the round trip edge → broker →
//     cloud → broker → edge), not by the broker's PUBACK: that is the price of never
//     overrunning the cloud. `go test -run '^$' -bench OutboxDrain ./edge/mqtt` prints
//     it next to raw paho publishing through the same broker.
//   - A PUBACK-bounded publisher (the raw baseline) can make Mosquitto drop messages
//     beyond max_queued_messages for a slow subscriber without any error; the drain
//     cannot lose events that way, because only the cloud's EventAck moves it.
//   - The sync does not expire its own persistent session; configure the broker to
//     (Mosquitto persistent_client_expiration) so decommissioned edges do not pile up.
package mqtt

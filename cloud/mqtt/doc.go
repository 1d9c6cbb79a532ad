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
// # Events and acknowledgement
//
// Events carry a per-site sequence. The adapter calls [Events.SiteEvent] in sequence
// order and then publishes a cumulative [protocol.EventAck] of the highest contiguous
// sequence. A duplicate (sequence at or below the high water) is acknowledged again
// without touching the domain; an event after a gap is held (bounded) until the gap
// fills, and the edge resends everything after the last ack anyway. A birth whose
// outbox high water is below the cloud's means the edge's outbox started over; the
// domain resets its high water (see [Births]).
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
// Commands are jobs ([Adapter.PublishCommand]): the edge's acks move them through
// QUEUED → IN_PROGRESS → final via [Commands.CommandProgress]; a command with no final
// ack by its expiry plus [Config.CommandGrace] is recorded TIMED_OUT by the adapter.
// Pending commands are reloaded at start and republished after a site's birth.
package mqtt

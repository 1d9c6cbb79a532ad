// Package broker runs the embedded MQTT broker (mochi-mqtt/server v2) that lets
// `larder-cloud --data DIR --http ADDR` work alone on one machine. Production points the
// cloud and the edges at an external broker (Mosquitto, or a cluster: NATS 2.9+ with MQTT,
// EMQX, VerneMQ) instead; this package then only generates their access rules
// (MosquittoACL, and the NATS cluster configuration of nats.go, kept in deploy/nats/).
//
// # Accounts and ACL
//
// Every edge logs in with its site id as username, a machine-generated password that
// [Credentials] checks against a stored [PasswordDigest], and the client id
// [EdgeClientID](site). A login with a site id as username and any other client id is
// refused with "identifier rejected" (CONNACK 2 on MQTT 3.1.1, reason 0x85 on MQTT 5)
// before its password is checked; every other refusal is "not authorized" (CONNACK 5,
// 0x86 on MQTT 5). An edge may publish only on its own site's edge→cloud channels
// ([MayPublish]), register a Last Will only there, and subscribe only to its own site's
// cloud→edge channels or its [protocol.SiteFilter] ([MaySubscribe]). A publish it may
// not make is acknowledged and dropped (MQTT 5: PUBACK "not authorized"), never
// delivered or retained, and the connection stays up: disconnecting (mochi's own
// answer) would have a persistent session resend the message on every reconnect. The cloud's service account may do everything,
// including shared subscriptions. Its username must not be a possible site id.
//
// # Flow control and sizing
//
// mochi acknowledges a PUBLISH and hands it to every subscriber without waiting for
// any: a QoS 1 message for a subscriber whose in-flight window ([Config].MaxInflight)
// or write queue ([Config].MaxWritesPending) is full is dropped. The cloud's one
// connection receives the whole fleet, so a burst of edges (a reconnect storm, outboxes
// draining after an outage) would lose events there. The broker therefore holds a
// publisher, before its PUBACK and its next packet, while a connected service-account
// subscriber has its window full: QoS 1 messages in flight plus QoS 0 messages queued,
// three quarters of the smaller of the two sizes (384 by default). The publisher's own
// window then throttles it, and larder_broker_publishes_held_total counts the holds. A
// hold lasts at most 5 s: a cloud that acknowledges nothing for that long is stuck, the
// message goes to the write queue, and what does not fit is dropped, counted in
// larder_broker_*_dropped_total and logged once a minute. Edge subscribers are not
// gated (the cloud's publishes must never wait for one slow edge); their traffic is
// bounded by the protocol (acks of their own outbox window, desired state, commands)
// far below the sizes. What the broker sends without a publisher to hold is not gated
// either: the retained messages a subscribing cloud receives at once (one a site on
// the status channel) are not held, and beyond the write queue they may be dropped
// (counted), so a cloud that reconnects to a running broker relies on births and the
// edges' resends more than on retained status.
//
// The defaults in [DefaultConfig] are deliberate: QoS at most 1, a session expiry so
// offline persistent sessions do not hold queued messages forever, and a write queue of
// 512 packets, which mochi allocates whole for every connection (8 bytes a packet). An
// idle edge connection costs about 20 KiB of goroutine stacks (two goroutines) and
// 15 KiB of heap (TestConnectionMemory). The broker keeps sessions and retained
// messages in memory only: after a restart, edges republish their retained status and
// birth on reconnect and the cloud resends desired state, so nothing of value lives
// only in the broker.
package broker

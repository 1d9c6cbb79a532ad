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
// # Sizing
//
// The defaults in [DefaultConfig] are deliberate (mochi drops, not queues, beyond them): bounded in-flight
// windows and per-client write queues, QoS at most 1, and a session expiry so offline
// persistent sessions do not hold queued messages forever. The broker keeps sessions
// and retained messages in memory only: after a restart, edges republish their retained
// status and birth on reconnect and the cloud resends desired state, so nothing of
// value lives only in the broker.
package broker

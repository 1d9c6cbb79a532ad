// Package protocol is Larder's wire contract between an edge (one locker bank) and the
// cloud, version 1. It is the single source of truth for every MQTT topic string and every
// message that crosses the link; nothing else in the repository formats a topic.
//
// # Topics
//
// Every topic lives under larder/v1/{site}/. Each [Channel] knows its direction, QoS and
// retain flag (see [Channel.QoS], [Channel.Retained], [Channel.FromEdge]); [Topic] builds a
// topic and [ParseTopic] takes one apart. [SiteFilter] is the filter an edge's credentials
// are confined to; [AllSites] is what the cloud subscribes to.
//
// # Envelope
//
// Every payload is a JSON [Envelope]: protocol version, a unique message id, a sequence
// number that is monotonic per sender and per channel, a timestamp, a type and a body.
// Receivers deduplicate by id (MQTT QoS 1 delivers duplicates) and detect gaps by sequence
// (a gap in the desired channel makes the edge ask for a full snapshot). Acknowledgement is
// application-level: the cloud acknowledges edge events by sequence ([EventAck], cumulative),
// and the edge answers commands with [CommandAck]s that echo the command id.
//
// # Secrets
//
// Pickup codes, second factors and driver credentials never cross the wire in clear: the
// cloud sends keyed digests ([CodeDigest], [SecondFactorDigest], [CredentialDigest]) made
// with the site's key, which both sides hold; the edge digests what a person types and
// compares in constant time. Events say which kind of credential acted ([CredentialKind]),
// never the secret.
//
// # Compatibility
//
// Decoding is strict about what it needs (a missing or invalid field is a [FieldError]
// naming the field) and ignores unknown fields, so that a v1 receiver accepts messages from
// a newer v1 sender. [ErrorCode]s and event kinds are append-only lists. Every golden
// example ever committed under testdata/ is decoded by the tests forever.
package protocol

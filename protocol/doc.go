// Package protocol is Larder's wire contract between an edge (one locker bank) and the
// cloud, version 1 (revision [Revision], 1.1). It is the single source of truth for every MQTT topic string and every
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
// Every payload is a JSON envelope: the major protocol version, a unique message id, a
// sequence, a timestamp, a type and a body. Only two channels are sequenced
// ([Channel.Sequenced]): events carry the edge's outbox sequence and desired state its
// version; every other channel carries seq 0. Receivers deduplicate (MQTT QoS 1 delivers
// duplicates): events by sequence, desired state by id and version, commands by
// [Command].ID, which the cloud also sends as the envelope id. A gap in the desired
// versions makes the edge ask for a full snapshot. Acknowledgement is application-level:
// the cloud acknowledges edge events by sequence ([EventAck], cumulative), naming the
// events it could not decode and rejected ([EventAck].Rejected, [RejectEvent]) so that
// one malformed event never holds back the ones after it; the edge answers commands
// with [CommandAck]s that echo the command id.
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
// a newer v1 sender. [ErrorCode]s and event kinds are append-only lists. A minor revision
// only adds; an edge announces its revision in [Birth].Protocol (absent: 1.0), and
// asyncapi.yaml says, clause by clause, what a 1.0 edge sees from a 1.1 cloud and the
// other way round. Every golden example under testdata/ is decoded by the tests forever.
package protocol

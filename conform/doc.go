// Package conform is Larder's conformance kit: it checks an implementation of the wire
// contract against the specification (protocol/asyncapi.yaml, docs/kiosk-api.md and the
// provisioning call of the cloud's OpenAPI document), clause by clause. cmd/larder-conform
// is a thin wrapper over [Exec]; docs/conformance.md tells a vendor how to run it and
// lists every clause.
//
// The kit is an independent implementation of the contract: it imports only protocol
// (message types, topics, digests) of this module, never edge or cloud, so that it tests
// Larder's edge and cloud rather than mirroring them (tools/importcheck.sh keeps it so).
//
// # Modes
//
// [RunEdge] plays the broker and the cloud toward an edge under test. The broker is an
// embedded mochi-mqtt server; the kit's cloud is mochi's inline client, subscribed to
// the site's edge→cloud channels before the listener accepts anyone, so nothing the edge
// publishes right after a (re)connect is missed, even after the kit restarts its
// broker. The kit acknowledges events cumulatively as a cloud does (holding the ack at a
// gap, naming undecodable events in rejected), answers births and desired_gets with a
// snapshot when the edge is behind, and drives people through the edge's kiosk API and
// larder-sim's control API, whose latch pulses and door states are the proof of what
// the edge really did.
//
// [RunCloud] plays an edge (with paho) and a platform and operator (the REST API)
// toward a cloud under test: it creates and provisions a site of its own, logs in with
// the provisioned credentials, and checks what the cloud publishes and what its API
// reports.
//
// # Clauses
//
// Each [Clause] has a stable id, the specification section it comes from, the text it
// checks and the clauses whose work it builds on (its Needs). A run checks them in a
// fixed order; each check waits at most the configured timeout. A clause whose need
// failed fails at once, naming it: the kit never passes what it did not see.
//
// # Caveats
//
// Edge mode needs an edge that drives larder-sim's lock boards and serves the kiosk API
// of docs/kiosk-api.md, with at least 6 compartments; it leaves them empty and shut.
// Cloud mode leaves its site in the cloud (there is no call to delete one). The kit
// holds every message it receives in memory for the length of a run.
package conform

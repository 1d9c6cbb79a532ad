// Package loadgen is larder-load: a fleet of simulated edges played against a real
// larder-cloud from outside, as a vendor's edges would, over MQTT (protocol v1, with
// paho) and the REST API (cloud/http/openapi.json). It imports neither cloud/ nor edge/.
//
// A run ([Run] with a [Config]) provisions Edges sites over REST with the admin key,
// creates a platform and an ops key, and connects one edge per site exactly as
// larder-edge does (edge.go: client id larder-edge-{site}, persistent session, retained
// status with an offline Last Will, birth with compartments, desired get, telemetry at
// larder-edge's default interval, an outbox window of 100 resent after 30 s without an
// ack, desired snapshots and deltas applied by version, command acks with the door as
// proof). Then it measures, each figure next to a baseline taken in the same run:
//
//   - ingest: IngestEdges edges publish IngestEvents door events at once through their
//     outbox windows, counted when the cloud has acknowledged them (durable effect and
//     ack); the baseline is raw QoS 1 pub→sub through the same broker with as many
//     publishers and messages (the cloud's service account, the only login that may read
//     what it publishes). A baseline that loses a message fails the run.
//   - orders: orders created over REST at Rate (code delivered by the platform, with an
//     idempotency key), each reserved on its edge (the reservation's code and second
//     factor digests checked with the site key), loaded and picked up by edge events;
//     latency of the create next to GET /healthz at the same concurrency.
//   - remote open: POST .../open as ops → command → the edge's acks → SUCCEEDED seen
//     over REST, next to the raw broker's pub→sub latency.
//   - memory: the cloud's resident set per connected edge (from /proc when the pid is
//     known, else process_resident_memory_bytes), next to the resident set before the
//     edges connected.
//
// Losses are checked at the end: every event acknowledged, every walked order
// picked_up over REST, no digest mismatch, every remote open SUCCEEDED; each failure
// is listed in [Summary.Failures], and the command exits 1.
//
// Every loop is bounded: in count (Edges, IngestEvents, MaxOrders) and in time
// (Duration, and Timeout on every single wait). Only loopback addresses are accepted
// unless AllowRemote is set. With CloudBin the run starts the real binary itself on
// free loopback ports with a temporary data directory (and, with Mosquitto, a private
// Mosquitto with the deploy/mosquitto settings), which `make test` (TestSmoke) and
// `make bench` use. docs/load.md explains the figures for operators.
//
// [RunHA] starts replicas over PostgreSQL itself (replicas.go); [Fleet] is the same edges
// and order walks against replicas and a broker the caller runs, behind the same
// round-robin balancer: the end-to-end test over a NATS cluster walks most of its
// 1,000 orders through one while it kills a replica and a broker node.
package loadgen

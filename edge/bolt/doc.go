// Package bolt is the edge's durable store on go.etcd.io/bbolt: compartments,
// reservations and their code-digest index, pickup/loading sessions, loading credentials,
// the ordered outbox of encoded events, the inbox of applied message ids, the applied
// desired-state version, command records, the keypad throttle and the append-only audit
// log of door openings. It implements edge.Store, and the outbox side the MQTT sync
// consumes (Pending, Ack, Acked).
//
// # Layout
//
// One bucket per noun; values are JSON (small, debuggable with bbolt's own tools);
// integer keys are big-endian so that bbolt's byte order is numeric order.
//
//	compartments  uint32 number → edge.Compartment
//	reservations  order id      → edge.Reservation (including its cold-chain record)
//	codes         code digest   → order id (only while the order's code is live)
//	used_codes    code digest   → order id of a finished order ("already picked up")
//	sessions      session id    → edge.Session
//	credentials   credential id → edge.Credential;  cred_digests: digest → id
//	outbox        uint64 seq    → encoded protocol envelope (Seq = key)
//	rejected_events uint64 seq  → RejectedEvent: an outbox event the cloud rejected, set
//	              aside by Ack with the cloud's reason (at most MaxRejected, oldest dropped)
//	inbox         message id    → uint64 expiry (unix ns)
//	commands      command id    → edge.CommandRecord
//	audit         uint64 seq    → edge.AuditEntry (never updated or deleted)
//	meta          desired_version, outbox_next, outbox_acked, throttle, zone:{zone}
//
// # Invariants
//
// Check verifies them; the tests run it after every test (see boltest.Open).
//
//  1. No compartment is held by two orders: each compartment appears in the slots of at
//     most one reservation that holds its compartments.
//  2. A compartment's state agrees with the reservations: it is reserved, loading, loaded
//     or opening exactly when a holding reservation has it in its slots and names it in
//     Compartment.Order; a loaded slot's compartment is loaded or opening.
//  3. Every code-index entry points at an existing reservation whose code is live
//     (reserved, loaded, picking) and whose CodeDigest is the key; every such
//     reservation has its entry (codes are single use: a picked-up order has none).
//     A used-code entry points at a picked-up or removed order with that digest.
//  4. The outbox holds exactly the sequences acked+1 … next-1, each an envelope whose
//     Seq is its key.
//  5. The audit log's keys run 1 … N without holes: entries are only appended.
//  6. Every session names a holding order and compartments of that order.
//  7. Every rejected event is acknowledged (its seq ≤ acked) and there are at most
//     MaxRejected.
//
// # Durability
//
// Every Update is one bbolt transaction, fsynced on commit (bbolt's default; NoSync is
// never set). A state change and the outbox event describing it are written in the same
// transaction, so a kill -9 keeps both or neither. The database is opened with a lock
// timeout (Options.Timeout, 1 s by default): bbolt's zero would wait forever for a stale
// process; we fail with ErrLocked instead.
//
// # Caveats
//
// bbolt files never shrink; acknowledged outbox entries are deleted by Ack, and expired
// inbox ids, old command records and old tombstones by Prune, but the space is only
// reused. Finished orders stay as tombstones (so a late desired state cannot revive a
// used code) until a full desired snapshot no longer names them or TombstoneRetention
// passes.
package bolt

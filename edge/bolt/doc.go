// Package bolt is the edge's durable store on go.etcd.io/bbolt: compartments,
// reservations and their code-digest index, pickup/loading sessions, loading credentials,
// drivers' kiosk sessions, the ordered outbox of encoded events, the inbox of applied
// message ids, the applied desired-state version, command records and the queue of their
// acks, the keypad throttle and the append-only audit log of door openings. It
// implements edge.Store, and the sides the MQTT sync consumes: the outbox (Pending, Ack,
// Acked) and the command-ack queue (PendingCommandAcks, CommandAckSent).
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
//	command_acks  uint64 key    → encoded command_ack envelope, until the broker takes it
//	driver_tokens token digest  → edge.DriverToken (a kiosk session; never the token)
//	audit         uint64 seq    → edge.AuditEntry (never updated or deleted)
//	meta          desired_version, outbox_next, outbox_acked, throttle, link, zone:{zone}
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
//  7. Every queued command ack decodes as a command_ack whose key is at most the queue's
//     sequence, and names a stored command record; the newest queued ack of a command
//     carries the record's state (a state and its ack are written together).
//  8. Every driver token is stored under its own digest, which has a digest's shape
//     (64 hex characters: a token is never stored as itself), names a driver and a
//     credential, and has an end; there are at most edge.MaxDriverTokens.
//  9. Every rejected event is acknowledged (its seq ≤ acked) and there are at most
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
// bbolt files never shrink; acknowledged outbox entries are deleted by Ack, command acks
// by CommandAckSent, and expired inbox ids, command acks older than CommandAckRetention,
// ended driver sessions, old command records (not while an ack of theirs is queued) and
// old tombstones by Prune, but the space is only reused. Finished orders stay as tombstones (so a late desired state cannot revive a
// used code) until a full desired snapshot no longer names them or TombstoneRetention
// passes.
package bolt

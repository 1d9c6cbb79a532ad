// Package pg is the cloud's PostgreSQL store, for fleets that run several larder-cloud
// replicas over one database: a [cloud.Store] and [cloud.Watcher] ([Open]), the
// schema's migrations, the operators' views and [Copy] from a bbolt store.
//
// # Tables
//
// The domain's records stay what they are under cloud/bolt: JSON values in named
// buckets. They live in one table, larder_kv(bucket, key, value bytea), primary key
// (bucket, key), with key COLLATE "C" so that SQL order is Go's byte order (Scan and
// Range return keys in that order). Keys must be valid UTF-8 without NUL (Put refuses
// others). larder_leases and larder_replicas (migration 0002) belong to cloud/lease;
// the views larder_orders, larder_sites, larder_audit and larder_commands (0004) decode
// the JSON for operators (docs/sql.md).
//
// # Migrations
//
// migrations/NNNN_name.sql are embedded and applied by Open in version order, each in
// its own transaction under a transaction-level advisory lock (replicas starting at once
// wait for each other), and recorded in larder_schema_migrations. A database with a
// migration this binary does not know is refused. Embedded SQL rather than a migration
// library: no extra dependency for some forty lines, and a key-value table barely
// changes; the views are the part that will.
//
// # Transactions
//
// Update runs fn in a REPEATABLE READ transaction (snapshot isolation), View in a
// REPEATABLE READ READ ONLY one. PostgreSQL refuses, at REPEATABLE READ, to let a
// transaction write or lock a row that another committed after its snapshot ("could not
// serialize access due to concurrent update", SQLSTATE 40001): the first writer wins.
// That is what keeps the domain right across replicas, because every decision it takes
// is bound to a record it also writes: a compartment is booked by writing its record and
// deleting its free-index key, a desired version by rewriting the site's record, an
// idempotency key, an external id or a live code by writing that key, an order's step by
// rewriting the order. Two transactions that decide on the same thing write the same row,
// and one of them runs again. SERIALIZABLE was measured and rejected: its predicate locks
// over the one key index of larder_kv conflict between unrelated sites (32 concurrent
// order threads over 25 sites: 890 retries and 26 of 320 orders given up after 10
// attempts, against about 100 retries and none given up at REPEATABLE READ;
// TestConcurrentOrdersManySites). A failure or deadlock (SQLSTATE 40001, 40P01) runs the
// whole fn again on a fresh transaction, up to Options.Attempts times with jittered
// exponential backoff (1 ms up to 100 ms), counted in Stats().Retries and
// larder_pg_retries_total; cloud.Store allows fn to run more than once. A new invariant
// of the domain that reads one key and writes another must keep this rule (write the key
// it decided on), or it can be broken by write skew.
//
// Round trips are the cost. A transaction reads each key from the server at most once
// (the snapshot does not move, so reads are cached, Scan's rows included); Put and Delete
// are buffered, seen by the transaction's own Get and Scan, and sent before COMMIT in one
// pgx.Batch of at most three statements (the fence check, an INSERT … ON CONFLICT over
// unnest arrays, a DELETE), in key order so that concurrent writers lock rows alike.
// Scan reads pages of 64 keys growing to 4096, so a scan that stops at its first key
// costs one small query. One order created through the Service (create, assign, code)
// took 9 round trips when last measured (TestOrderRoundTrips logs the count and fails
// above 30).
//
// A read that fails (the connection, a serialization failure) cannot be returned by Get:
// the transaction keeps the error, Get returns nil and later calls return it, and the
// transaction fails with it whatever fn returns (and is retried if it may be).
//
// # OnCommit
//
// Hooks run after COMMIT returned, on one goroutine, and Update returns after its
// hooks ran. Concurrent transactions commit in parallel, so the order is defined by a
// ticket each takes just before sending COMMIT: hooks of ticket n run after those of
// every earlier ticket have run or been dropped (a failed commit drops its hooks). A
// transaction that read or overwrote another's rows can send COMMIT only after the other
// committed, so dependent transactions of this process (two deltas of one site) run
// their hooks in commit order; independent ones in the order they sent COMMIT. Across
// replicas there is no order: each process orders its own commits.
//
// # Fencing
//
// When ctx carries fences (cloud.WithFences), Update's final batch starts with SELECT
// name, token FROM larder_leases WHERE name = ANY($1) ORDER BY name FOR SHARE and the transaction
// commits only if every fence's lease is there with its token; otherwise Update fails
// with an error wrapping cloud.ErrFenced (not retried). FOR SHARE makes a takeover, an
// UPDATE of the lease row, wait for this commit; a takeover that committed after the
// transaction's snapshot makes the check fail with a serialization failure, and the
// retry then sees the new token.
//
// # Watch
//
// Watch adds its buckets to larder_watched; statement triggers on larder_kv record every
// write to a watched bucket in larder_changes (migration 0006): the writing transaction's
// id (xid8), the bucket and the key, in the writing transaction, so a change commits with
// its data or not at all, and a replica that dies right after its commit has announced
// it. A table rather than trigger arguments, so that the watched set follows the code
// without a migration. Each Watch polls the feed every 50 ms on the store's pool for the
// rows of the transactions below the oldest one still running (pg_snapshot_xmin), read in
// the same statement: those transactions have all ended, so a row that commits later
// always lies above the watch's cursor. Two transactions that write one key commit in
// xid order (REPEATABLE READ fails the one that would overtake), so the watch reports
// each key's writes in commit order. A failed poll is retried from the cursor and loses
// nothing. A key over 1000 bytes (too long for an index entry) is recorded as "bucket/"
// with an empty key: anything in the bucket may have changed.
//
// The feed keeps a change 2 minutes: every watch deletes, every 10 s, the rows below the
// cursor it had 2 minutes before. A watch that could not poll for a minute may have lost
// changes; it skips to the present and calls fn with an empty key for each bucket. A
// write transaction left open holds the oldest running transaction back, and with it
// every watch of the cluster's databases, until it ends (idle_in_transaction_session_timeout
// bounds that); read-only transactions do not.
//
// It replaced a trigger calling pg_notify: NOTIFY takes a database-wide lock in the
// committing transaction and holds it until the commit record is flushed, so transactions
// writing watched buckets committed one at a time, each after the previous one's WAL
// flush (measured with 2 replicas creating orders: about 45% of the busy backends sampled
// in pg_stat_activity waited on it, wait_event object; none after).
//
// # Adapters in the same transaction
//
// The Tx a function gets has a Pgx() pgx.Tx method: an adapter with its own tables (the
// notify outbox) runs its SQL in the domain's transaction, so both commit or neither.
// Its statements run at once, while larder_kv writes wait in the buffer until COMMIT;
// the two touch different tables, so the order does not matter.
package pg

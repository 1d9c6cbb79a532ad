// Package bolt is the cloud's default [cloud.Store], on one bbolt file.
//
// # Group commit
//
// Every bbolt commit costs two fsyncs (about 3,500 single-write commits/s on the
// reference machine), which would cap the order rate. Updates therefore go through one
// committer goroutine that takes every Update waiting, runs them one after another in a
// single read-write transaction and commits once ([GroupCommit]). Groups form by
// themselves: whatever arrives during a commit's fsyncs makes the next group, so a lone
// writer still commits at once (no batching delay) and a crowd shares the fsyncs.
//
// A failing function must not sink the others. Most failures (invalid input, not
// found, a full site) happen before the function writes anything; such a function is
// simply left out of the commit. A function that fails after writing has dirtied the
// shared transaction: the committer rolls back and runs the rest of the group again
// without it (so functions may run more than once, as cloud.Store documents). An earlier
// version kept an undo log of every key written instead; it cost a lookup and a copy per
// write for a case that almost never happens, and the benchmark showed bbolt's DB.Batch
// ahead of it. bbolt's own DB.Batch ([BoltBatch]) is kept for comparison: it re-runs
// the whole batch on any failure and waits up to MaxBatchDelay (10 ms) to fill a batch,
// which adds latency at low load. `make bench` measures the modes side by side.
//
// OnCommit hooks run on the committer goroutine after the commit, in commit order, which
// gives the domain ordered desired-state versions for free.
//
// # Site clusters
//
// The domain's per-site buckets (compartments, the free index, live codes, a site's
// orders and live orders: keys "site/…") are not kept as bbolt buckets of their own but
// in one bucket, site_records, sorted by site and then by domain bucket (cluster.go).
// An order at a random site then writes the few pages of its own site's records instead
// of one random page in each of five buckets, and that cost does not grow with the
// orders the other sites store. Within a site, the index of all its orders comes
// before the small indexes an order also writes, so that a site's old orders fill pages
// that new orders do not write again. The domain sees the same buckets, keys and scan
// order as before; Open moves the records of a file written before clusters, or in an
// older layout of them, into the present one once.
//
// # Full pages for keys in time order
//
// bbolt splits a page into halves by default, which suits random keys; the buckets
// whose keys grow with time (orders by sortable id, a platform's orders, the audit log)
// are filled full instead (fill in bolt.go): appended keys otherwise left every page
// half empty, so each order wrote twice the pages of its record.
//
// # Adapters in the same transaction
//
// The cloud.Tx a function gets also has a Bolt() *bbolt.Tx method. cloud/notify's outbox
// asserts it to write a notification in the transaction of the change it reports
// (cloud.TxNotifier), so both commit together or not at all. Calling it marks the
// function as having written (see above).
//
// # Caveats
//
//   - Open always sets a file-lock Timeout (default 1 s): bbolt's zero waits forever on
//     a stuck process.
//   - The file never shrinks (bbolt); compact offline with `bbolt compact` if needed.
//   - On 32-bit ARM the memory map limits the file to about 1–2 GB.
//   - Functions must not keep slices from Get or Scan past their return.
package bolt

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
// A failing function must not sink the others: each function's writes are recorded in
// an undo log (the previous value of every key it touched) and rolled back if it returns
// an error or panics, so its group-mates still commit. This is why the default is not
// bbolt's own DB.Batch ([BoltBatch]), which re-runs the whole batch when one function
// fails, and waits up to MaxBatchDelay to fill a batch; with domain errors (a full site
// refused with 409) being common, re-running is wasted work. `make bench` measures the
// three modes side by side (BenchmarkCommitModes).
//
// OnCommit hooks run on the committer goroutine after the commit, in commit order, which
// gives the domain ordered desired-state versions for free.
//
// # Caveats
//
//   - Open always sets a file-lock Timeout (default 1 s): bbolt's zero waits forever on
//     a stuck process.
//   - The file never shrinks (bbolt); compact offline with `bbolt compact` if needed.
//   - On 32-bit ARM the memory map limits the file to about 1–2 GB.
//   - Functions must not keep slices from Get or Scan past their return.
package bolt

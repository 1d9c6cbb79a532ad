package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/larder-lockers/larder/cloud"
	bbolt "go.etcd.io/bbolt"
)

// CommitMode chooses how concurrent Updates become bbolt transactions.
type CommitMode int

const (
	// GroupCommit (the default) coalesces the Updates waiting while a commit is in flight
	// into one transaction: one pair of fsyncs for the whole group. Functions run one
	// after another against the shared transaction; one that fails before writing is
	// left out, one that fails after writing makes the group run again without it.
	GroupCommit CommitMode = iota
	// SingleCommit gives every Update its own transaction and fsyncs (the baseline).
	SingleCommit
	// BoltBatch uses bbolt's DB.Batch, which re-runs every function of a batch when one
	// of them fails and waits MaxBatchDelay to fill a batch. Kept for comparison in the
	// benchmark; OnCommit hooks are then run by each caller, not in commit order.
	BoltBatch
)

func (m CommitMode) String() string {
	switch m {
	case GroupCommit:
		return "group"
	case SingleCommit:
		return "single"
	case BoltBatch:
		return "bolt-batch"
	}
	return fmt.Sprintf("CommitMode(%d)", int(m))
}

// Options configure Open. The zero value is the production default.
type Options struct {
	// Timeout is how long Open waits for the file lock held by another process. Zero
	// means one second (never forever: bbolt's own zero waits forever on a stuck process).
	Timeout time.Duration
	// NoSync skips fsync: only for tests that do not measure durability.
	NoSync bool
	// Mode is the commit strategy; zero is GroupCommit.
	Mode CommitMode
	// MaxGroup caps how many Updates share one transaction; zero means 512.
	MaxGroup int
}

// ErrClosed is returned by Update and View after Close.
var ErrClosed = errors.New("bolt: store closed")

// DB is a cloud.Store on one bbolt file. Updates go through one committer goroutine
// (see CommitMode); Views run concurrently on their own read transactions.
type DB struct {
	db   *bbolt.DB
	mode CommitMode
	max  int

	// mu guards closed and makes Close wait for Updates that are sending on reqs.
	mu     sync.RWMutex
	closed bool
	reqs   chan *request
	done   chan struct{} // closed when the committer has exited

	stats Stats
}

// Stats count the committer's work, for metrics and the benchmark.
type Stats struct {
	Commits   atomic.Uint64 // transactions committed
	Updates   atomic.Uint64 // Update functions that committed
	Reruns    atomic.Uint64 // groups run again without a function that failed after writing
	RunNanos  atomic.Uint64 // time spent running functions
	SyncNanos atomic.Uint64 // time spent in Commit (writes and fsyncs)
}

// Stats returns the committer's counters.
func (d *DB) Stats() *Stats { return &d.stats }

type request struct {
	ctx   context.Context
	fn    func(cloud.Tx) error
	err   error
	hooks []func()
	reply chan struct{}
}

// Open opens (creating if needed) the bbolt file at path and its buckets, and starts the
// committer. Close releases both.
func Open(path string, opt Options) (*DB, error) {
	if opt.Timeout <= 0 {
		opt.Timeout = time.Second
	}
	if opt.MaxGroup <= 0 {
		opt.MaxGroup = 512
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	// NoFreelistSync: the freelist is rebuilt by scanning at open instead of being
	// written at every commit (etcd does the same): fewer bytes per commit, a slower
	// open of a large file.
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: opt.Timeout, NoSync: opt.NoSync,
		FreelistType: bbolt.FreelistMapType, NoFreelistSync: true})
	if err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, b := range cloud.Buckets() {
			if _, ok := clustered[b]; ok {
				continue // stored in clusterBucket (cluster.go)
			}
			if _, err := tx.CreateBucketIfNotExists([]byte(b)); err != nil {
				return err
			}
		}
		return migrateClusters(tx)
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("bolt: create buckets: %w", err)
	}
	d := &DB{db: db, mode: opt.Mode, max: opt.MaxGroup, reqs: make(chan *request, opt.MaxGroup), done: make(chan struct{})}
	if opt.Mode == SingleCommit {
		d.max = 1
	}
	go d.committer()
	return d, nil
}

// Bolt exposes the underlying database, for the benchmark's raw commit baseline and for
// backups (bbolt's Tx.WriteTo).
func (d *DB) Bolt() *bbolt.DB { return d.db }

// Close stops the committer after the Updates already queued and closes the file. It is
// idempotent.
func (d *DB) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	close(d.reqs)
	d.mu.Unlock()
	<-d.done
	return d.db.Close()
}

// Check runs bbolt's consistency check and returns the first problem found.
func (d *DB) Check() error {
	return d.db.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	})
}

// View runs fn in a read-only transaction.
func (d *DB) View(ctx context.Context, fn func(cloud.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.RLock()
	closed := d.closed
	d.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	return d.db.View(func(tx *bbolt.Tx) error { return runSafe(fn, &txn{tx: tx, ro: true}) })
}

// Update runs fn in a read-write transaction and returns once it has committed durably
// (or failed). Once fn has been queued, Update waits for its outcome even if ctx is
// cancelled, because fn may already have committed.
func (d *DB) Update(ctx context.Context, fn func(cloud.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d.mode == BoltBatch {
		return d.batchUpdate(fn)
	}
	r := &request{ctx: ctx, fn: fn, reply: make(chan struct{})}
	d.mu.RLock()
	if d.closed {
		d.mu.RUnlock()
		return ErrClosed
	}
	d.reqs <- r
	d.mu.RUnlock()
	<-r.reply
	return r.err
}

func (d *DB) batchUpdate(fn func(cloud.Tx) error) error {
	var hooks []func()
	err := d.db.Batch(func(tx *bbolt.Tx) error {
		t := &txn{tx: tx}
		if err := runSafe(fn, t); err != nil {
			return err
		}
		hooks = t.hooks // a re-run replaces, never accumulates
		return nil
	})
	if err == nil {
		for _, h := range hooks {
			h()
		}
	}
	return err
}

// committer is the single writer. It takes every request waiting (up to max), runs them
// one after another in one transaction and commits once; requests that arrive during the
// commit's fsyncs form the next group, so the group size adapts to the load.
func (d *DB) committer() {
	defer close(d.done)
	group := make([]*request, 0, d.max)
	for r := range d.reqs {
		group = append(group[:0], r)
	fill:
		for len(group) < d.max {
			select {
			case r, ok := <-d.reqs:
				if !ok {
					break fill
				}
				group = append(group, r)
			default:
				break fill
			}
		}
		d.commit(group)
	}
}

func (d *DB) commit(group []*request) {
	defer func() {
		for _, r := range group {
			close(r.reply)
		}
	}()
	live := make([]*request, 0, len(group))
	for _, r := range group {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			continue
		}
		live = append(live, r)
	}
	// Run the functions one after another in one transaction. A function that fails
	// before writing anything (the common case: validation, not found, a full site) is
	// simply left out. One that fails after writing has dirtied the shared transaction:
	// roll it back and run the others again without it (functions may run more than
	// once; see cloud.Store). Each round drops at least one function, so this ends.
	for len(live) > 0 {
		tx, err := d.db.Begin(true)
		if err != nil {
			for _, r := range live {
				r.err = fmt.Errorf("bolt: begin: %w", err)
			}
			return
		}
		runStart := time.Now()
		dirty := -1
		ok := live[:0:0]
		buckets := map[string]*bbolt.Bucket{}
		for i, r := range live {
			t := &txn{tx: tx, buckets: buckets}
			r.err = runSafe(r.fn, t)
			r.hooks = t.hooks
			if r.err == nil {
				ok = append(ok, r)
				continue
			}
			r.hooks = nil
			if t.wrote || t.panicked {
				dirty = i
				break
			}
		}
		if dirty >= 0 {
			tx.Rollback()
			d.stats.Reruns.Add(1)
			live = append(append(live[:0:0], ok...), live[dirty+1:]...)
			continue
		}
		if len(ok) == 0 {
			tx.Rollback()
			return
		}
		commitStart := time.Now()
		d.stats.RunNanos.Add(uint64(commitStart.Sub(runStart)))
		err = tx.Commit()
		d.stats.SyncNanos.Add(uint64(time.Since(commitStart)))
		if err != nil {
			for _, r := range ok {
				r.err = fmt.Errorf("bolt: commit: %w", err)
				r.hooks = nil
			}
			return
		}
		d.stats.Commits.Add(1)
		d.stats.Updates.Add(uint64(len(ok)))
		for _, r := range ok {
			for _, h := range r.hooks {
				h()
			}
		}
		return
	}
}

// runSafe turns a panic in fn into an error, so that one bad request cannot take the
// committer (and every other writer) down.
func runSafe(fn func(cloud.Tx) error, t *txn) (err error) {
	defer func() {
		if p := recover(); p != nil {
			t.panicked = true
			err = &cloud.Error{Code: cloud.EInternal, Message: "internal error", Err: fmt.Errorf("panic: %v\n%s", p, debug.Stack())}
		}
	}()
	return fn(t)
}

// txn adapts a bbolt transaction to cloud.Tx for one function.
type txn struct {
	tx *bbolt.Tx
	// buckets caches bucket handles for the transaction (shared by a group's functions).
	buckets  map[string]*bbolt.Bucket
	ro       bool
	wrote    bool // the function has written: its failure dirties the transaction
	panicked bool
	hooks    []func()
}

func (t *txn) bucket(name string) *bbolt.Bucket {
	if b := t.buckets[name]; b != nil {
		return b
	}
	b := t.tx.Bucket([]byte(name))
	if b == nil {
		panic("bolt: unknown bucket " + name) // every bucket is created by Open
	}
	if f, ok := fill[name]; ok && !t.ro {
		b.FillPercent = f
	}
	if t.buckets != nil {
		t.buckets[name] = b
	}
	return b
}

// fill is how full bbolt fills the pages it splits, for the buckets whose keys grow with
// time (sortable ids, timestamps): bbolt's default (half full) suits random inserts, but
// for keys that arrive in order it leaves every page behind half empty, so that each
// order wrote twice the pages of its record and the file grew twice as fast. Full pages
// are right for them: a key that arrives slightly out of order splits one page.
var fill = map[string]float64{
	"orders":    1,
	"by_plat":   1,
	"audit":     1,
	"idem_ends": 1,
}

// where is the physical bucket and key of key in bucket: the bucket itself, or the
// site cluster (cluster.go).
func (t *txn) where(bucket, key string) (*bbolt.Bucket, []byte, error) {
	tag, ok := clustered[bucket]
	if !ok {
		return t.bucket(bucket), []byte(key), nil
	}
	k, ok := clusterKey(tag, key)
	if !ok {
		return nil, nil, fmt.Errorf("bolt: bucket %s: key %q does not start with a site", bucket, key)
	}
	return t.bucket(clusterBucket), k, nil
}

func (t *txn) Get(bucket, key string) []byte {
	b, k, err := t.where(bucket, key)
	if err != nil {
		return nil // no such key can have been written
	}
	return b.Get(k)
}

func (t *txn) Put(bucket, key string, value []byte) error {
	if t.ro {
		return cloud.ErrReadOnly
	}
	b, k, err := t.where(bucket, key)
	if err != nil {
		return err
	}
	t.wrote = true
	// bbolt keeps a reference to value until the commit: callers hand over fresh slices.
	return b.Put(k, value)
}

func (t *txn) Delete(bucket, key string) error {
	if t.ro {
		return cloud.ErrReadOnly
	}
	b, k, err := t.where(bucket, key)
	if err != nil {
		return nil // nothing to delete
	}
	t.wrote = true
	return b.Delete(k)
}

func (t *txn) Scan(bucket, prefix string, fn func(string, []byte) bool) error {
	p := []byte(prefix)
	return t.scan(bucket, p, func(k []byte) bool { return hasPrefix(k, p) }, fn)
}

func (t *txn) Range(bucket, from, to string, fn func(string, []byte) bool) error {
	end := []byte(to)
	return t.scan(bucket, []byte(from), func(k []byte) bool { return len(end) == 0 || bytes.Compare(k, end) < 0 }, fn)
}

// scan calls fn for each key from start on while in(key) holds.
func (t *txn) scan(bucket string, start []byte, in func([]byte) bool, fn func(string, []byte) bool) error {
	each := func(visit func(k, v []byte) bool) {
		if tag, ok := clustered[bucket]; ok {
			clusterScan(t.bucket(clusterBucket), tag, string(start), in, visit)
			return
		}
		c := t.bucket(bucket).Cursor()
		for k, v := c.Seek(start); k != nil && in(k); k, v = c.Next() {
			if !visit(k, v) {
				return
			}
		}
	}
	if t.ro {
		// No writes can happen: iterate in place.
		each(func(k, v []byte) bool { return fn(string(k), v) })
		return nil
	}
	// Copy the range first, so fn may write to the bucket it scans (bbolt cursors are
	// invalidated by writes).
	type kv struct {
		k string
		v []byte
	}
	var all []kv
	each(func(k, v []byte) bool {
		all = append(all, kv{string(k), append([]byte(nil), v...)})
		return true
	})
	for _, e := range all {
		if !fn(e.k, e.v) {
			return nil
		}
	}
	return nil
}

func (t *txn) OnCommit(fn func()) { t.hooks = append(t.hooks, fn) }

// Bolt returns the bbolt transaction under t, for an adapter that keeps its own buckets
// in the same file and must write in the same transaction (cloud/notify's outbox: a
// notice commits with the change it reports). The caller may write through it, so the
// function counts as having written: its failure then rolls back the group's
// transaction and the others run again without it, as for any write. The transaction
// is valid only until the function returns.
func (t *txn) Bolt() *bbolt.Tx {
	if !t.ro {
		t.wrote = true
	}
	return t.tx
}

func hasPrefix(k, p []byte) bool {
	return len(k) >= len(p) && string(k[:len(p)]) == string(p)
}

var _ cloud.Store = (*DB)(nil)

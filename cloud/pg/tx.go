package pg

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/larder-lockers/larder/cloud"
)

// txn is one attempt of a transaction, as a cloud.Tx, on a connection of the pool.
// Reads go to the server once per key (cached for the transaction: its snapshot does not
// move), the first behind BEGIN (conn.go); writes are buffered and sent in one batch with
// COMMIT (commit); Get and Scan see the buffered writes.
type txn struct {
	ctx  context.Context
	conn *pgx.Conn
	ro   bool
	opts pgx.TxOptions
	tx   pgx.Tx // nil until the first statement begins the transaction
	// err is the first failure of a read: Get cannot return it, so it is kept, later
	// calls return it, and the transaction fails with it whatever fn returns.
	err    error
	cache  map[string]map[string][]byte // bucket → key → value read (nil: none)
	writes map[string]map[string]write  // bucket → key → the buffered write
	hooks  []func()
}

// write is a buffered Put (del false) or Delete.
type write struct {
	value []byte
	del   bool
}

func newTxn(ctx context.Context, conn *pgx.Conn, ro bool) *txn {
	t := &txn{ctx: ctx, conn: conn, ro: ro, opts: rwOptions, cache: map[string]map[string][]byte{}, writes: map[string]map[string]write{}}
	if ro {
		t.opts = roOptions
	}
	return t
}

// Pgx returns the PostgreSQL transaction under t, for an adapter that keeps its own
// tables and must write in the same transaction (the notify outbox). Its SQL runs at
// once; the Tx's own buffered writes to larder_kv reach the server only before COMMIT, so
// SQL through Pgx does not see them (adapters touch their own tables). Do not Commit or
// Rollback it: the store does. It is valid only until the function returns.
func (t *txn) Pgx() pgx.Tx {
	t.begin()
	return t.tx
}

func (t *txn) fail(op, bucket, key string, err error) {
	if t.err == nil {
		t.err = fmt.Errorf("pg: %s %s/%s: %w", op, bucket, key, err)
	}
}

func (t *txn) Get(bucket, key string) []byte {
	if w, ok := t.writes[bucket][key]; ok {
		if w.del {
			return nil
		}
		return w.value
	}
	if v, ok := t.cache[bucket][key]; ok {
		return v
	}
	if t.err != nil {
		return nil
	}
	var v []byte
	err := t.read("SELECT value FROM larder_kv WHERE bucket = $1 AND key = $2", []any{bucket, key},
		func(r pgx.Rows) error { return r.Scan(&v) })
	if err != nil {
		t.fail("get", bucket, key, err)
		return nil
	}
	t.remember(bucket, key, v)
	return v
}

func (t *txn) remember(bucket, key string, v []byte) {
	m := t.cache[bucket]
	if m == nil {
		m = map[string][]byte{}
		t.cache[bucket] = m
	}
	m[key] = v
}

func (t *txn) Put(bucket, key string, value []byte) error {
	return t.buffer(bucket, key, write{value: value})
}

func (t *txn) Delete(bucket, key string) error {
	return t.buffer(bucket, key, write{del: true})
}

func (t *txn) buffer(bucket, key string, w write) error {
	if t.ro {
		return cloud.ErrReadOnly
	}
	if t.err != nil {
		return t.err
	}
	if err := checkKey(key); err != nil {
		return fmt.Errorf("pg: %s/%q: %w", bucket, key, err)
	}
	if w.value == nil && !w.del {
		w.value = []byte{} // value is NOT NULL; an empty value is a value
	}
	m := t.writes[bucket]
	if m == nil {
		m = map[string]write{}
		t.writes[bucket] = m
	}
	m[key] = w
	return nil
}

// checkKey rejects what a PostgreSQL text column cannot hold.
func checkKey(key string) error {
	if !utf8.ValidString(key) {
		return errors.New("key is not valid UTF-8")
	}
	if strings.IndexByte(key, 0) >= 0 {
		return errors.New("key holds a NUL byte")
	}
	return nil
}

func (t *txn) Scan(bucket, prefix string, fn func(string, []byte) bool) error {
	return t.scan(bucket, prefix, prefixEnd(prefix), func(k string) bool { return strings.HasPrefix(k, prefix) }, fn)
}

func (t *txn) Range(bucket, from, to string, fn func(string, []byte) bool) error {
	return t.scan(bucket, from, to, func(k string) bool { return to == "" || k < to }, fn)
}

// prefixEnd is the least string above every string that starts with p, in byte order
// ("" when there is none). It increments the last rune that can be incremented, so that
// the bound is valid UTF-8 (a text parameter must be); UTF-8's byte order is code point
// order.
func prefixEnd(p string) string {
	for p != "" {
		r, n := utf8.DecodeLastRuneInString(p)
		p = p[:len(p)-n]
		switch {
		case r == utf8.MaxRune:
			continue
		case r == 0xD7FF:
			r = 0xE000 // skip the surrogates, which UTF-8 cannot encode
		default:
			r++
		}
		return p + string(r)
	}
	return ""
}

// Scan pages: a scan that stops early (the first free compartment, the newest audit
// entries) reads one small page; a long one reads growing pages.
const (
	firstPage = 64
	maxPage   = 4096
)

// scan calls fn for the keys k >= from (and < to unless to is "") for which in(k)
// holds, merging the stored rows (read page by page from the transaction's snapshot)
// with the buffered writes as they were when the scan started, so fn may write.
func (t *txn) scan(bucket, from, to string, in func(string) bool, fn func(string, []byte) bool) error {
	if t.err != nil {
		return t.err
	}
	type kv struct {
		k string
		v []byte
	}
	// The buffered writes of the range, in order: a snapshot, so fn's own writes do not
	// move the scan.
	var buffered []kv
	var deleted map[string]bool
	for k, w := range t.writes[bucket] {
		if k < from || !in(k) {
			continue
		}
		if w.del {
			if deleted == nil {
				deleted = map[string]bool{}
			}
			deleted[k] = true
			continue
		}
		buffered = append(buffered, kv{k, w.value})
	}
	slices.SortFunc(buffered, func(a, b kv) int { return strings.Compare(a.k, b.k) })

	var page []kv
	after, more, size := from, true, firstPage
	first := true
	next := func() error { // reads the next page of stored rows
		op := ">"
		if first {
			op, first = ">=", false
		}
		q := "SELECT key, value FROM larder_kv WHERE bucket = $1 AND key " + op + " $2"
		args := []any{bucket, after}
		if to != "" {
			q, args = q+" AND key < $3 ORDER BY key LIMIT $4", append(args, to, size)
		} else {
			q, args = q+" ORDER BY key LIMIT $3", append(args, size)
		}
		page = page[:0]
		n := 0
		err := t.read(q, args, func(r pgx.Rows) error {
			var k string
			var v []byte
			if err := r.Scan(&k, &v); err != nil {
				return err
			}
			n++
			if in(k) { // the prefix bound is exact; this guards against a collation surprise
				page = append(page, kv{k, v})
			}
			return nil
		})
		if err != nil {
			return err
		}
		more = n == size && len(page) == n
		if len(page) > 0 {
			after = page[len(page)-1].k
		}
		size = min(2*size, maxPage)
		return nil
	}
	if err := next(); err != nil {
		t.fail("scan", bucket, from, err)
		return t.err
	}
	i := 0
	for {
		if i == len(page) && more {
			if err := next(); err != nil {
				t.fail("scan", bucket, from, err)
				return t.err
			}
			i = 0
		}
		var e kv
		switch {
		case i < len(page) && (len(buffered) == 0 || page[i].k < buffered[0].k):
			e = page[i]
			i++
			t.remember(bucket, e.k, e.v)
			if deleted[e.k] {
				continue
			}
		case len(buffered) > 0:
			e = buffered[0]
			buffered = buffered[1:]
			if i < len(page) && page[i].k == e.k {
				t.remember(bucket, page[i].k, page[i].v)
				i++ // the buffered write replaces the stored value
			}
		default:
			return nil
		}
		if !fn(e.k, e.v) {
			return nil
		}
	}
}

func (t *txn) OnCommit(fn func()) { t.hooks = append(t.hooks, fn) }

// commit checks the fences, sends the buffered writes and commits, in one round trip,
// under ctx (which must not be cancelled once COMMIT may be sent). It takes the ticket of
// the transaction's OnCommit hooks from q just before it sends COMMIT, and returns it
// whatever the outcome; the caller reports it.
//
// The fence check (larder_fence, migration 0006) takes the lease rows FOR SHARE, so that
// a takeover (an UPDATE of the row) waits for this transaction to end, and raises
// SQLSTATE LF001 when a lease is gone or carries another token: the writes and COMMIT
// queued behind it are then skipped, and nothing commits. A transaction that read
// nothing has no snapshot yet; its batch begins it, and COMMIT follows in a round trip
// of its own, after its ticket: a ticket is taken once the snapshot is, so that a
// transaction that overwrote another's rows takes its ticket after the other's.
func (t *txn) commit(ctx context.Context, fences []cloud.Fence, q *sequencer) (uint64, error) {
	var b pgx.Batch
	var ops []string // what each queued statement does, for its error
	fresh := t.tx == nil
	if fresh {
		b.BeginTx(t.opts)
		ops = append(ops, "begin")
	}
	if len(fences) > 0 {
		names, tokens := make([]string, len(fences)), make([]int64, len(fences))
		for i, f := range fences {
			names[i], tokens[i] = f.Name, f.Token
		}
		b.Queue("SELECT larder_fence($1, $2)", names, tokens)
		ops = append(ops, "check fences")
	}
	// Rows in key order, so that concurrent transactions lock them in the same order.
	var pb, pk, db, dk []string
	var pv [][]byte
	for _, bucket := range sortedKeys(t.writes) {
		m := t.writes[bucket]
		for _, k := range sortedKeys(m) {
			if w := m[k]; w.del {
				db, dk = append(db, bucket), append(dk, k)
			} else {
				pb, pk, pv = append(pb, bucket), append(pk, k), append(pv, w.value)
			}
		}
	}
	if len(pk) > 0 {
		b.Queue(`INSERT INTO larder_kv (bucket, key, value) SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[])
			ON CONFLICT (bucket, key) DO UPDATE SET value = excluded.value`, pb, pk, pv)
		ops = append(ops, fmt.Sprintf("write %d keys", len(pk)))
	}
	if len(dk) > 0 {
		b.Queue(`DELETE FROM larder_kv WHERE (bucket, key) IN (SELECT * FROM unnest($1::text[], $2::text[]))`, db, dk)
		ops = append(ops, fmt.Sprintf("delete %d keys", len(dk)))
	}
	var ticket uint64
	if fresh && b.Len() == 1 {
		return q.take(), nil // nothing read, nothing written: nothing to begin or commit
	}
	if !fresh {
		ticket = q.take()
		b.Queue("COMMIT")
		ops = append(ops, "commit")
	}
	br := t.conn.SendBatch(ctx, &b)
	if fresh {
		t.tx = br.Tx()
	}
	err := execAll(br, ops)
	if fresh {
		ticket = q.take()
		if err == nil {
			if _, cerr := t.conn.Exec(ctx, "COMMIT"); cerr != nil {
				err = fmt.Errorf("pg: commit: %w", cerr)
			}
		}
	}
	return ticket, err
}

// execAll reads the results of the batch's statements, ops naming them, and closes it;
// the first failure is the error.
func execAll(br pgx.BatchResults, ops []string) error {
	for _, op := range ops {
		if _, err := br.Exec(); err != nil {
			br.Close()
			var pe *pgconn.PgError
			if errors.As(err, &pe) && pe.Code == fencedCode {
				return fmt.Errorf("pg: %s: %w", pe.Message, cloud.ErrFenced)
			}
			return fmt.Errorf("pg: %s: %w", op, err)
		}
	}
	if err := br.Close(); err != nil {
		return fmt.Errorf("pg: write: %w", err)
	}
	return nil
}

// fencedCode is the SQLSTATE larder_fence raises when a fence no longer holds.
const fencedCode = "LF001"

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

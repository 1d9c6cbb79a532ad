package pg

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/larder-lockers/larder/cloud"
)

// txn is one attempt of a transaction, as a cloud.Tx. Reads go to the server once per
// key (cached for the transaction: its snapshot does not move); writes are buffered and
// sent in one batch before COMMIT (flush); Get and Scan see the buffered writes.
type txn struct {
	ctx context.Context
	tx  pgx.Tx
	ro  bool
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

func newTxn(ctx context.Context, tx pgx.Tx, ro bool) *txn {
	return &txn{ctx: ctx, tx: tx, ro: ro, cache: map[string]map[string][]byte{}, writes: map[string]map[string]write{}}
}

// Pgx returns the PostgreSQL transaction under t, for an adapter that keeps its own
// tables and must write in the same transaction (the notify outbox). Its SQL runs at
// once; the Tx's own buffered writes to larder_kv reach the server only before COMMIT, so
// SQL through Pgx does not see them (adapters touch their own tables). Do not Commit or
// Rollback it: the store does. It is valid only until the function returns.
func (t *txn) Pgx() pgx.Tx { return t.tx }

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
	err := t.tx.QueryRow(t.ctx, "SELECT value FROM larder_kv WHERE bucket = $1 AND key = $2", bucket, key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		v, err = nil, nil
	}
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
		var rows pgx.Rows
		op := ">"
		if first {
			op, first = ">=", false
		}
		q := "SELECT key, value FROM larder_kv WHERE bucket = $1 AND key " + op + " $2"
		if to != "" {
			rows, _ = t.tx.Query(t.ctx, q+" AND key < $3 ORDER BY key LIMIT $4", bucket, after, to, size)
		} else {
			rows, _ = t.tx.Query(t.ctx, q+" ORDER BY key LIMIT $3", bucket, after, size)
		}
		page = page[:0]
		var k string
		var v []byte
		n := 0
		_, err := pgx.ForEachRow(rows, []any{&k, &v}, func() error {
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

// flush checks the fences and sends the buffered writes, in one round trip. The fence
// check takes the lease rows FOR SHARE, so that a takeover (an UPDATE of the row) waits
// for this transaction to end; a fence whose lease is gone or carries another token
// fails the transaction with cloud.ErrFenced before anything commits.
func (t *txn) flush(fences []cloud.Fence) error {
	var b pgx.Batch
	if len(fences) > 0 {
		names := make([]string, len(fences))
		for i, f := range fences {
			names[i] = f.Name
		}
		b.Queue("SELECT name, token FROM larder_leases WHERE name = ANY($1) ORDER BY name FOR SHARE", names)
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
	}
	if len(dk) > 0 {
		b.Queue(`DELETE FROM larder_kv WHERE (bucket, key) IN (SELECT * FROM unnest($1::text[], $2::text[]))`, db, dk)
	}
	if b.Len() == 0 {
		return nil
	}
	br := t.tx.SendBatch(t.ctx, &b)
	defer br.Close()
	if len(fences) > 0 {
		rows, _ := br.Query()
		held := map[string]int64{}
		var name string
		var token int64
		if _, err := pgx.ForEachRow(rows, []any{&name, &token}, func() error { held[name] = token; return nil }); err != nil {
			return fmt.Errorf("pg: check fences: %w", err)
		}
		for _, f := range fences {
			got, ok := held[f.Name]
			if !ok {
				return fmt.Errorf("pg: lease %s is gone (held with token %d): %w", f.Name, f.Token, cloud.ErrFenced)
			}
			if got != f.Token {
				return fmt.Errorf("pg: lease %s carries token %d, not %d: %w", f.Name, got, f.Token, cloud.ErrFenced)
			}
		}
	}
	if len(pk) > 0 {
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("pg: write %d keys: %w", len(pk), err)
		}
	}
	if len(dk) > 0 {
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("pg: delete %d keys: %w", len(dk), err)
		}
	}
	if err := br.Close(); err != nil {
		return fmt.Errorf("pg: write: %w", err)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

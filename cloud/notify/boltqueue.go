package notify

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/larder-lockers/larder/cloud"
)

// BoltQueue is the durable [Queue] over the cloud's bbolt file. It owns one top-level
// bucket (its name is given to [NewBoltQueue]) holding:
//
//	items  id → record (JSON, or AES-GCM sealed JSON when a key is set)
//	due    big-endian NextTry (unix ns) ‖ id → ∅   one entry per pending notification
//	dead   big-endian (MaxInt64 − Done) ‖ id → ∅   dead letters, newest first
//	meta   "stats" → JSON [Stats]                  kept in step with items
//
// Invariants (checked by [BoltQueue.Check]): every pending item has exactly one due
// entry at its NextTry and vice versa; every dead item exactly one dead entry; the
// stats equal the counts of items by state.
//
// Its own writes (a delivery's outcome, a requeue, a purge) go through the store's
// Update, cloud/bolt's group commit, and so share their commit and fsync with the
// domain's writes and with each other: a worker settling a round of deliveries at once
// used to commit (and fsync) once per delivery, holding bbolt's single writer against
// the domain's commits each time.
type BoltQueue struct {
	file   BoltFile
	db     *bbolt.DB
	bucket []byte
	seal   sealer // zero: records stored in clear
}

// BoltFile is the store whose bbolt file the queue shares: cloud/bolt's DB. Its Update
// gives transactions with Bolt() *bbolt.Tx.
type BoltFile interface {
	Bolt() *bbolt.DB
	Update(ctx context.Context, fn func(cloud.Tx) error) error
}

var (
	bItems = []byte("items")
	bDue   = []byte("due")
	bDead  = []byte("dead")
	bMeta  = []byte("meta")
	kStats = []byte("stats")
)

// NewBoltQueue uses bucket name in file, creating it if needed. key, when not nil, must
// be 32 bytes: records are then sealed with AES-256-GCM, because a pending "loaded"
// notification holds a pickup code and a phone number until it is delivered (the
// cloud otherwise keeps codes only as digests). The key comes from the cloud's
// configuration, not from the database.
func NewBoltQueue(file BoltFile, bucket string, key []byte) (*BoltQueue, error) {
	seal, err := newSealer(key)
	if err != nil {
		return nil, err
	}
	q := &BoltQueue{file: file, db: file.Bolt(), bucket: []byte(bucket), seal: seal}
	err = q.db.Update(func(tx *bbolt.Tx) error {
		root, err := tx.CreateBucketIfNotExists(q.bucket)
		if err != nil {
			return err
		}
		for _, name := range [][]byte{bItems, bDue, bDead, bMeta} {
			if _, err := root.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("notify: create bucket %s: %w", bucket, err)
	}
	return q, nil
}

type boltTx struct {
	q                      *BoltQueue
	items, due, dead, meta *bbolt.Bucket
}

func (q *BoltQueue) tx(tx *bbolt.Tx) (*boltTx, error) {
	root := tx.Bucket(q.bucket)
	if root == nil {
		return nil, fmt.Errorf("notify: bucket %s missing", q.bucket)
	}
	return &boltTx{q: q, items: root.Bucket(bItems), due: root.Bucket(bDue), dead: root.Bucket(bDead), meta: root.Bucket(bMeta)}, nil
}

func (q *BoltQueue) update(ctx context.Context, fn func(*boltTx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return q.file.Update(ctx, func(tx cloud.Tx) error {
		bt, ok := tx.(interface{ Bolt() *bbolt.Tx })
		if !ok {
			return fmt.Errorf("notify: the store's transactions are not bbolt's")
		}
		t, err := q.tx(bt.Bolt())
		if err != nil {
			return err
		}
		return fn(t)
	})
}

func (q *BoltQueue) view(ctx context.Context, fn func(*boltTx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return q.db.View(func(tx *bbolt.Tx) error {
		t, err := q.tx(tx)
		if err != nil {
			return err
		}
		return fn(t)
	})
}

func timeKey(t time.Time, id string) []byte {
	k := make([]byte, 8, 8+len(id))
	binary.BigEndian.PutUint64(k, uint64(max(t.UnixNano(), 0)))
	return append(k, id...)
}

func deadKey(done time.Time, id string) []byte {
	k := make([]byte, 8, 8+len(id))
	binary.BigEndian.PutUint64(k, uint64(math.MaxInt64-max(done.UnixNano(), 0)))
	return append(k, id...)
}

func (t *boltTx) get(id string) (*Notification, error) {
	v := t.items.Get([]byte(id))
	if v == nil {
		return nil, nil
	}
	v, err := t.q.seal.open(v, id)
	if err != nil {
		return nil, fmt.Errorf("notify: record %s: %w", id, err)
	}
	var n Notification
	if err := json.Unmarshal(v, &n); err != nil {
		return nil, fmt.Errorf("notify: record %s: %w", id, err)
	}
	return &n, nil
}

func (t *boltTx) put(n *Notification) error {
	v, err := json.Marshal(n)
	if err != nil {
		return err
	}
	return t.items.Put([]byte(n.ID), t.q.seal.seal(v, n.ID))
}

func (t *boltTx) stats() (Stats, error) {
	var s Stats
	if v := t.meta.Get(kStats); v != nil {
		if err := json.Unmarshal(v, &s); err != nil {
			return s, fmt.Errorf("notify: stats: %w", err)
		}
	}
	return s, nil
}

func (t *boltTx) count(from, to State) error {
	s, err := t.stats()
	if err != nil {
		return err
	}
	if from != "" {
		s.add(from, -1)
	}
	s.add(to, 1)
	v, _ := json.Marshal(s)
	return t.meta.Put(kStats, v)
}

// index removes n's index entry for its current state (before a change) or adds it
// (after one).
func (t *boltTx) index(n *Notification, add bool) error {
	var b *bbolt.Bucket
	var k []byte
	switch n.State {
	case StatePending:
		b, k = t.due, timeKey(n.NextTry, n.ID)
	case StateDead:
		b, k = t.dead, deadKey(n.Done, n.ID)
	default:
		return nil
	}
	if add {
		return b.Put(k, nil)
	}
	return b.Delete(k)
}

// Enqueue implements [Outbox].
func (q *BoltQueue) Enqueue(ctx context.Context, n Notification) (bool, error) {
	if err := n.validate(); err != nil {
		return false, err
	}
	added := false
	err := q.update(ctx, func(t *boltTx) error {
		var err error
		added, err = t.enqueue(n)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("notify: enqueue %s: %w", n.ID, err)
	}
	return added, nil
}

// EnqueueTx implements [TxOutbox]: [BoltQueue.EnqueueBolt] in the bbolt transaction of
// tx, a transaction of cloud/bolt (it has Bolt() *bbolt.Tx).
func (q *BoltQueue) EnqueueTx(tx cloud.Tx, n Notification) (bool, error) {
	bt, ok := tx.(interface{ Bolt() *bbolt.Tx })
	if !ok {
		return false, fmt.Errorf("notify: enqueue %s: the store's transactions are not bbolt's: the outbox cannot join them", n.ID)
	}
	return q.EnqueueBolt(bt.Bolt(), n)
}

// EnqueueBolt is Enqueue inside tx, a read-write transaction of the queue's own
// database that the caller commits, so that the notification becomes durable together
// with the caller's other writes, or not at all. It does not commit; an error leaves tx
// to be rolled back by the caller.
func (q *BoltQueue) EnqueueBolt(tx *bbolt.Tx, n Notification) (bool, error) {
	if err := n.validate(); err != nil {
		return false, err
	}
	if tx.DB() != q.db || !tx.Writable() {
		return false, fmt.Errorf("notify: enqueue %s: not a read-write transaction of the queue's database", n.ID)
	}
	t, err := q.tx(tx)
	if err != nil {
		return false, err
	}
	added, err := t.enqueue(n)
	if err != nil {
		return false, fmt.Errorf("notify: enqueue %s: %w", n.ID, err)
	}
	return added, nil
}

// enqueue adds n as pending unless its id exists (in any state).
func (t *boltTx) enqueue(n Notification) (bool, error) {
	if t.items.Get([]byte(n.ID)) != nil {
		return false, nil
	}
	n.prepare(time.Now())
	if err := t.put(&n); err != nil {
		return false, err
	}
	if err := t.index(&n, true); err != nil {
		return false, err
	}
	return true, t.count("", StatePending)
}

// Due implements [Deliveries].
func (q *BoltQueue) Due(ctx context.Context, now time.Time, limit int) ([]Notification, error) {
	var out []Notification
	end := uint64(max(now.UnixNano(), 0))
	err := q.view(ctx, func(t *boltTx) error {
		c := t.due.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if binary.BigEndian.Uint64(k[:8]) > end || limit > 0 && len(out) >= limit {
				break
			}
			n, err := t.get(string(k[8:]))
			if err != nil {
				return err
			}
			if n == nil {
				return fmt.Errorf("notify: due entry for missing item %q", k[8:])
			}
			out = append(out, *n)
		}
		return nil
	})
	return out, err
}

// Settle implements [Deliveries].
func (q *BoltQueue) Settle(ctx context.Context, id string, r Result) error {
	return q.update(ctx, func(t *boltTx) error {
		n, err := t.get(id)
		if err != nil || n == nil || n.State != StatePending {
			return err
		}
		if err := t.index(n, false); err != nil {
			return err
		}
		n.settle(r)
		if err := t.index(n, true); err != nil {
			return err
		}
		if err := t.put(n); err != nil {
			return err
		}
		if n.State != StatePending {
			return t.count(StatePending, n.State)
		}
		return nil
	})
}

// Stats implements [Backlog].
func (q *BoltQueue) Stats(ctx context.Context) (Stats, error) {
	var s Stats
	err := q.view(ctx, func(t *boltTx) error {
		var err error
		s, err = t.stats()
		return err
	})
	return s, err
}

// DeadLetters implements [Backlog].
func (q *BoltQueue) DeadLetters(ctx context.Context, limit int) ([]Notification, error) {
	var out []Notification
	err := q.view(ctx, func(t *boltTx) error {
		c := t.dead.Cursor()
		for k, _ := c.First(); k != nil && (limit <= 0 || len(out) < limit); k, _ = c.Next() {
			n, err := t.get(string(k[8:]))
			if err != nil {
				return err
			}
			if n != nil {
				n.Data = nil
				out = append(out, *n)
			}
		}
		return nil
	})
	return out, err
}

// Requeue implements [Backlog].
func (q *BoltQueue) Requeue(ctx context.Context, id string, now time.Time) error {
	return q.update(ctx, func(t *boltTx) error {
		n, err := t.get(id)
		if err != nil {
			return err
		}
		if n == nil || n.State != StateDead {
			return ErrNotFound
		}
		if err := t.index(n, false); err != nil {
			return err
		}
		n.requeue(now)
		if err := t.index(n, true); err != nil {
			return err
		}
		if err := t.put(n); err != nil {
			return err
		}
		return t.count(StateDead, StatePending)
	})
}

// Get returns notification id.
func (q *BoltQueue) Get(ctx context.Context, id string) (Notification, error) {
	var out Notification
	err := q.view(ctx, func(t *boltTx) error {
		n, err := t.get(id)
		if err != nil {
			return err
		}
		if n == nil {
			return ErrNotFound
		}
		out = *n
		return nil
	})
	return out, err
}

// Purge deletes delivered and cancelled notifications finished before the given time
// (retention; their idempotency keys go with them, so purge only well after the last
// time a caller could enqueue the same key, e.g. 30 days). It returns how many went.
func (q *BoltQueue) Purge(ctx context.Context, before time.Time) (int, error) {
	purged := 0
	err := q.update(ctx, func(t *boltTx) error {
		var ids [][]byte
		err := t.items.ForEach(func(k, _ []byte) error {
			n, err := t.get(string(k))
			if err != nil {
				return err
			}
			if (n.State == StateDelivered || n.State == StateCancelled) && n.Done.Before(before) {
				ids = append(ids, append([]byte(nil), k...))
				s, err := t.stats()
				if err != nil {
					return err
				}
				s.add(n.State, -1)
				v, _ := json.Marshal(s)
				return t.meta.Put(kStats, v)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range ids {
			if err := t.items.Delete(k); err != nil {
				return err
			}
		}
		purged = len(ids)
		return nil
	})
	return purged, err
}

// Check verifies the bucket's invariants (see [BoltQueue]); tests run it after every
// test.
func (q *BoltQueue) Check(ctx context.Context) error {
	return q.view(ctx, func(t *boltTx) error {
		var counted Stats
		dueWant, deadWant := map[string]bool{}, map[string]bool{}
		err := t.items.ForEach(func(k, _ []byte) error {
			n, err := t.get(string(k))
			if err != nil {
				return err
			}
			counted.add(n.State, 1)
			switch n.State {
			case StatePending:
				dueWant[string(timeKey(n.NextTry, n.ID))] = true
			case StateDead:
				deadWant[string(deadKey(n.Done, n.ID))] = true
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, idx := range []struct {
			name string
			b    *bbolt.Bucket
			want map[string]bool
		}{{"due", t.due, dueWant}, {"dead", t.dead, deadWant}} {
			n := 0
			err := idx.b.ForEach(func(k, _ []byte) error {
				n++
				if !idx.want[string(k)] {
					return fmt.Errorf("notify: check: stray %s entry for %q", idx.name, k[8:])
				}
				return nil
			})
			if err != nil {
				return err
			}
			if n != len(idx.want) {
				return fmt.Errorf("notify: check: %d %s entries, want %d", n, idx.name, len(idx.want))
			}
		}
		s, err := t.stats()
		if err != nil {
			return err
		}
		if s != counted {
			return fmt.Errorf("notify: check: stats %+v, items say %+v", s, counted)
		}
		return nil
	})
}

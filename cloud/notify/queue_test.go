package notify_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bbolt "go.etcd.io/bbolt"

	"github.com/larder-lockers/larder/cloud/bolt"
	"github.com/larder-lockers/larder/cloud/notify"
)

// testQueue is what every queue implementation offers the tests.
type testQueue interface {
	notify.Queue
	Get(ctx context.Context, id string) (notify.Notification, error)
}

type queueMaker struct {
	name string
	make func(t *testing.T) testQueue
}

func openBolt(t *testing.T) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "cloud.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func boltQueue(t *testing.T, db *bolt.DB, key []byte) *notify.BoltQueue {
	t.Helper()
	q, err := notify.NewBoltQueue(db, "notify", key)
	if err != nil {
		t.Fatal(err)
	}
	// The invariants must hold after every test.
	t.Cleanup(func() {
		if err := q.Check(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return q
}

var queues = []queueMaker{
	{"mem", func(*testing.T) testQueue { return &notify.MemQueue{} }},
	{"bolt", func(t *testing.T) testQueue { return boltQueue(t, openBolt(t), nil) }},
	{"bolt-sealed", func(t *testing.T) testQueue { return boltQueue(t, openBolt(t), bytes.Repeat([]byte{7}, 32)) }},
	{"pg", func(t *testing.T) testQueue { return pgQueue(t, pgPool(t, pgDB(t)), nil) }},
	{"pg-sealed", func(t *testing.T) testQueue { return pgQueue(t, pgPool(t, pgDB(t)), bytes.Repeat([]byte{7}, 32)) }},
}

var t0 = time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC)

func note(id string, due time.Time) notify.Notification {
	return notify.Notification{ID: id, Kind: notify.KindLoaded, Channel: notify.ChannelWebhook, Target: "plat",
		Order: "o-1", Data: []byte(`{"order":"o-1","code":"123456"}`), Created: t0, Due: due}
}

func ids(ns []notify.Notification) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.ID)
	}
	return out
}

func TestQueueLifecycle(t *testing.T) {
	ctx := context.Background()
	for _, qm := range queues {
		t.Run(qm.name, func(t *testing.T) {
			q := qm.make(t)
			for _, n := range []notify.Notification{note("c", t0.Add(2*time.Minute)), note("a", t0), note("b", t0.Add(time.Minute))} {
				if ok, err := q.Enqueue(ctx, n); !ok || err != nil {
					t.Fatalf("enqueue %s: %v %v", n.ID, ok, err)
				}
			}
			// Idempotent by id, whatever else differs.
			dup := note("a", t0.Add(time.Hour))
			dup.Kind = notify.KindExpired
			if ok, err := q.Enqueue(ctx, dup); ok || err != nil {
				t.Fatalf("duplicate enqueue: %v %v", ok, err)
			}
			if _, err := q.Enqueue(ctx, notify.Notification{ID: "x"}); err == nil {
				t.Fatal("invalid notification accepted")
			}

			due, _ := q.Due(ctx, t0.Add(time.Minute), 0)
			if got, want := ids(due), []string{"a", "b"}; !slices.Equal(got, want) {
				t.Fatalf("due %v, want %v", got, want)
			}
			if got, _ := q.Due(ctx, t0.Add(time.Hour), 2); !slices.Equal(ids(got), []string{"a", "b"}) {
				t.Fatalf("due with limit %v", ids(got))
			}
			if string(due[0].Data) != `{"order":"o-1","code":"123456"}` || due[0].Kind != notify.KindLoaded {
				t.Fatalf("due[0] = %+v", due[0])
			}

			// a: retry later, then delivered. b: dead. c: stays pending.
			must(t, q.Settle(ctx, "a", notify.Result{State: notify.StatePending, NextTry: t0.Add(10 * time.Minute), Error: "HTTP 500"}))
			if got, _ := q.Due(ctx, t0.Add(5*time.Minute), 0); !slices.Equal(ids(got), []string{"b", "c"}) {
				t.Fatalf("due after retry %v", ids(got))
			}
			a, _ := q.Get(ctx, "a")
			if a.Attempts != 1 || a.LastError != "HTTP 500" || !a.NextTry.Equal(t0.Add(10*time.Minute)) {
				t.Fatalf("a after retry %+v", a)
			}
			must(t, q.Settle(ctx, "a", notify.Result{State: notify.StateDelivered, At: t0.Add(11 * time.Minute)}))
			must(t, q.Settle(ctx, "b", notify.Result{State: notify.StateDead, At: t0.Add(12 * time.Minute), Error: "HTTP 410"}))
			// Settling a finished one changes nothing.
			must(t, q.Settle(ctx, "a", notify.Result{State: notify.StateDead, At: t0}))
			must(t, q.Settle(ctx, "nope", notify.Result{State: notify.StateDelivered}))

			a, _ = q.Get(ctx, "a")
			if a.State != notify.StateDelivered || a.Data != nil || a.Attempts != 2 {
				t.Fatalf("a delivered %+v (data must be dropped)", a)
			}
			st, _ := q.Stats(ctx)
			if want := (notify.Stats{Pending: 1, Delivered: 1, Dead: 1}); st != want {
				t.Fatalf("stats %+v, want %+v", st, want)
			}
			dead, _ := q.DeadLetters(ctx, 10)
			if len(dead) != 1 || dead[0].ID != "b" || dead[0].LastError != "HTTP 410" || dead[0].Data != nil {
				t.Fatalf("dead letters %+v", dead)
			}
			if err := q.Requeue(ctx, "a", t0); !errors.Is(err, notify.ErrNotFound) {
				t.Fatalf("requeue of a delivered one: %v", err)
			}
			must(t, q.Requeue(ctx, "b", t0.Add(time.Hour)))
			if got, _ := q.Due(ctx, t0.Add(time.Hour), 0); !slices.Equal(ids(got), []string{"c", "b"}) {
				t.Fatalf("due after requeue %v", ids(got))
			}
			b, _ := q.Get(ctx, "b")
			if b.Attempts != 0 || b.State != notify.StatePending {
				t.Fatalf("requeued %+v", b)
			}
			st, _ = q.Stats(ctx)
			if want := (notify.Stats{Pending: 2, Delivered: 1}); st != want {
				t.Fatalf("stats %+v, want %+v", st, want)
			}
		})
	}
}

func TestDeadLettersNewestFirst(t *testing.T) {
	ctx := context.Background()
	for _, qm := range queues {
		t.Run(qm.name, func(t *testing.T) {
			q := qm.make(t)
			for i, id := range []string{"x", "y", "z"} {
				q.Enqueue(ctx, note(id, t0))
				must(t, q.Settle(ctx, id, notify.Result{State: notify.StateDead, At: t0.Add(time.Duration(i) * time.Minute)}))
			}
			dead, _ := q.DeadLetters(ctx, 2)
			if got, want := ids(dead), []string{"z", "y"}; !slices.Equal(got, want) {
				t.Fatalf("dead letters %v, want %v", got, want)
			}
		})
	}
}

func TestBoltQueueSurvivesReopenAndSeals(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "cloud.db")
	key := bytes.Repeat([]byte{9}, 32)
	db, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	q, _ := notify.NewBoltQueue(db, "notify", key)
	q.Enqueue(ctx, note("a", t0))
	db.Close()

	raw, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	raw.Bolt().View(func(tx *bbolt.Tx) error {
		v := tx.Bucket([]byte("notify")).Bucket([]byte("items")).Get([]byte("a"))
		if v == nil || bytes.Contains(v, []byte("123456")) {
			t.Errorf("record stored in clear or missing: %q", v)
		}
		return nil
	})
	q2 := boltQueue(t, raw, key)
	due, err := q2.Due(ctx, t0, 0)
	if err != nil || len(due) != 1 || !bytes.Contains(due[0].Data, []byte("123456")) {
		t.Fatalf("after reopen: %v %+v", err, due)
	}
	wrong, _ := notify.NewBoltQueue(raw, "notify", bytes.Repeat([]byte{1}, 32))
	if _, err := wrong.Due(ctx, t0, 0); err == nil {
		t.Fatal("wrong key opened a sealed record")
	}
}

// TestQueuePurge runs over the durable queues (MemQueue keeps nothing for long).
func TestQueuePurge(t *testing.T) {
	ctx := context.Background()
	for _, qm := range queues {
		if qm.name == "mem" {
			continue
		}
		t.Run(qm.name, func(t *testing.T) {
			q := qm.make(t).(interface {
				testQueue
				Purge(ctx context.Context, before time.Time) (int, error)
			})
			q.Enqueue(ctx, note("old", t0))
			q.Enqueue(ctx, note("new", t0))
			q.Enqueue(ctx, note("pending", t0))
			q.Enqueue(ctx, note("dead", t0))
			must(t, q.Settle(ctx, "old", notify.Result{State: notify.StateDelivered, At: t0}))
			must(t, q.Settle(ctx, "new", notify.Result{State: notify.StateDelivered, At: t0.Add(48 * time.Hour)}))
			must(t, q.Settle(ctx, "dead", notify.Result{State: notify.StateDead, At: t0}))
			n, err := q.Purge(ctx, t0.Add(time.Hour))
			if err != nil || n != 1 {
				t.Fatalf("purged %d, %v; want 1", n, err)
			}
			if _, err := q.Get(ctx, "old"); !errors.Is(err, notify.ErrNotFound) {
				t.Fatalf("old still there: %v", err)
			}
			st, _ := q.Stats(ctx)
			if want := (notify.Stats{Pending: 1, Delivered: 1, Dead: 1}); st != want {
				t.Fatalf("stats %+v, want %+v", st, want)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// barrierSender accepts every send once n of them are in flight at once.
type barrierSender struct {
	n    int
	mu   sync.Mutex
	in   int
	open chan struct{}
}

func (b *barrierSender) Send(ctx context.Context, _ notify.Notification) error {
	b.mu.Lock()
	if b.in++; b.in == b.n {
		close(b.open)
	}
	b.mu.Unlock()
	select {
	case <-b.open:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestBoltQueueSettlesShareCommits: a round's outcomes are written through the store's
// group commit (cloud/bolt), not one bbolt transaction each: 32 deliveries finishing at
// once settle in far fewer commits (and fsyncs) than 32, and every one is recorded.
func TestBoltQueueSettlesShareCommits(t *testing.T) {
	ctx := context.Background()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "cloud.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	q := boltQueue(t, db, nil)
	const n = 32
	for i := range n {
		if _, err := q.Enqueue(ctx, note(fmt.Sprintf("n%02d", i), t0)); err != nil {
			t.Fatal(err)
		}
	}
	w, err := notify.NewWorker(notify.WorkerConfig{Queue: q, Batch: n, Parallel: n, SendTimeout: 10 * time.Second,
		Senders:  map[notify.Channel]notify.Sender{notify.ChannelWebhook: &barrierSender{n: n, open: make(chan struct{})}},
		Registry: prometheus.NewRegistry(), Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	commits, updates := db.Stats().Commits.Load(), db.Stats().Updates.Load()
	if took, err := w.Round(ctx); err != nil || took != n {
		t.Fatalf("round: %d, %v", took, err)
	}
	c, u := db.Stats().Commits.Load()-commits, db.Stats().Updates.Load()-updates
	if u != n || c > n/2 {
		t.Errorf("%d settles in %d store updates and %d commits; want %d updates in at most %d commits", n, u, c, n, n/2)
	}
	if s, err := q.Stats(ctx); err != nil || s.Delivered != n {
		t.Errorf("stats %+v, %v; want %d delivered", s, err, n)
	}
}

package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/larder-lockers/larder/cloud/notify"
	"github.com/larder-lockers/larder/cloud/pg"
	"github.com/larder-lockers/larder/internal/pgtest"
)

// pgDB returns the URL of a fresh database with the outbox's table. The migration
// runner is cloud/pg's; these tests apply the outbox's migration themselves.
func pgDB(t testing.TB) string {
	t.Helper()
	url := pgtest.DB(t)
	sql, err := os.ReadFile("../pg/migrations/0003_notify.sql")
	if err != nil {
		t.Fatal(err)
	}
	pool := pgPool(t, url)
	if _, err := pool.Exec(context.Background(), string(sql)); err != nil {
		t.Fatalf("apply 0003_notify.sql: %v", err)
	}
	return url
}

func pgPool(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pg.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func pgQueue(t testing.TB, pool *pgxpool.Pool, key []byte) *notify.PGQueue {
	t.Helper()
	q, err := notify.NewPGQueue(pool, key)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// tally is a platform's webhook endpoint on loopback that counts deliveries by
// Idempotency-Key and by the CloudEvent source (which names the worker that sent it).
type tally struct {
	t        *testing.T
	mu       sync.Mutex
	byKey    map[string]int
	bySource map[string]int
	total    int
}

func newTally(t *testing.T) (*tally, string) {
	c := &tally{t: t, byKey: map[string]int{}, bySource: map[string]int{}}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return c, srv.URL
}

func (c *tally) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	if err := notify.Verify(secret, req.Header.Get(notify.SignatureHeader), body, time.Now(), 0); err != nil {
		c.t.Errorf("tally: %v", err)
	}
	var ev notify.CloudEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		c.t.Errorf("tally: %v", err)
	}
	key := req.Header.Get(notify.IdempotencyHeader)
	if key != ev.ID {
		c.t.Errorf("tally: Idempotency-Key %q for CloudEvent %q", key, ev.ID)
	}
	c.mu.Lock()
	c.byKey[key]++
	c.bySource[ev.Source]++
	c.total++
	c.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (c *tally) count() int { c.mu.Lock(); defer c.mu.Unlock(); return c.total }

// duplicates lists the keys delivered more than once.
func (c *tally) duplicates() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for k, n := range c.byKey {
		if n > 1 {
			out = append(out, fmt.Sprintf("%s ×%d", k, n))
		}
	}
	slices.Sort(out)
	return out
}

// pgWorker is a worker over q whose webhooks name source.
func pgWorker(t *testing.T, q notify.Deliveries, url, source string, opts ...func(*notify.WorkerConfig)) *notify.Worker {
	t.Helper()
	cfg := notify.WorkerConfig{Queue: q, Poll: 20 * time.Millisecond, Batch: 16, Parallel: 4,
		Senders: map[notify.Channel]notify.Sender{notify.ChannelWebhook: &notify.Webhook{Source: source,
			Endpoints: notify.StaticEndpoints{"plat": {URL: url, Secret: secret}}}}}
	for _, o := range opts {
		o(&cfg)
	}
	w, err := notify.NewWorker(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// enqueueMany enqueues n webhook notices "<prefix>-%04d/webhook", due now, in one
// transaction.
func enqueueMany(t *testing.T, pool *pgxpool.Pool, q *notify.PGQueue, prefix string, n int) {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	must(t, err)
	defer tx.Rollback(ctx)
	for i := range n {
		id := fmt.Sprintf("%s-%04d/webhook", prefix, i)
		if ok, err := q.EnqueuePgx(ctx, tx, notify.Notification{ID: id, Kind: notify.KindCreated, Channel: notify.ChannelWebhook,
			Target: "plat", Order: fmt.Sprintf("ord_%04d", i), Site: "s-1", Data: []byte(`{"order":"x"}`)}); !ok || err != nil {
			t.Fatalf("enqueue %s: %v %v", id, ok, err)
		}
	}
	must(t, tx.Commit(ctx))
}

// waitFor polls cond every 10 ms until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPGTwoWorkersDeliverOnce: two replicas' workers, each on its own PGQueue and pool
// over one database, share 1,000 notices: each is delivered exactly once, and both
// workers deliver some.
func TestPGTwoWorkersDeliverOnce(t *testing.T) {
	const n = 1000
	url := pgDB(t)
	recv, hook := newTally(t)
	qa, qb := pgQueue(t, pgPool(t, url), nil), pgQueue(t, pgPool(t, url), nil)
	qa.Claimer, qb.Claimer = "replica-a", "replica-b"
	pool := pgPool(t, url)
	enqueueMany(t, pool, qa, "two", n)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, w := range []*notify.Worker{pgWorker(t, qa, hook, "urn:a"), pgWorker(t, qb, hook, "urn:b")} {
		wg.Add(1)
		go func() { defer wg.Done(); w.Run(ctx) }()
	}
	waitFor(t, 60*time.Second, "1,000 notices delivered", func() bool {
		p, _, err := qa.Outstanding(context.Background())
		return err == nil && p == 0 && recv.count() >= n
	})
	cancel()
	wg.Wait() // a worker's round ends with its sends: nothing arrives after this

	if d := recv.duplicates(); len(d) > 0 {
		t.Fatalf("%d delivered more than once: %v", len(d), d[:min(len(d), 10)])
	}
	if len(recv.byKey) != n {
		t.Fatalf("%d distinct notices delivered, want %d", len(recv.byKey), n)
	}
	if recv.bySource["urn:a"] == 0 || recv.bySource["urn:b"] == 0 {
		t.Fatalf("one worker did everything: %v", recv.bySource)
	}
	st, err := qb.Stats(context.Background())
	must(t, err)
	if st != (notify.Stats{Delivered: n}) {
		t.Fatalf("stats %+v", st)
	}
	t.Logf("deliveries by worker: %v", recv.bySource)
}

// TestPGDeadClaimerTakenOver: a claimer that stops without settling (killed right after
// its Due) holds its notices only until the claim expires; then another replica's
// worker delivers each once.
func TestPGDeadClaimerTakenOver(t *testing.T) {
	const n = 50
	url := pgDB(t)
	recv, hook := newTally(t)
	dead, live := pgQueue(t, pgPool(t, url), nil), pgQueue(t, pgPool(t, url), nil)
	dead.ClaimTTL = time.Second
	enqueueMany(t, pgPool(t, url), dead, "dead", n)
	ctx := context.Background()
	claimed, err := dead.Due(ctx, time.Now(), 0)
	must(t, err)
	if len(claimed) != n {
		t.Fatalf("dead claimer claimed %d, want %d", len(claimed), n)
	}
	// Within the claim, the live replica finds nothing to do.
	w := pgWorker(t, live, hook, "urn:live")
	start := time.Now()
	if got, err := w.Round(ctx); got != 0 || err != nil {
		t.Fatalf("round within the claim took %d (%v)", got, err)
	}
	waitFor(t, 10*time.Second, "the dead claimer's notices delivered", func() bool {
		_, err := w.Round(ctx)
		must(t, err)
		return recv.count() >= n
	})
	if took := time.Since(start); took < time.Second-100*time.Millisecond {
		t.Fatalf("taken over after %s, before the claim (1 s) expired", took)
	}
	if d := recv.duplicates(); len(d) > 0 || len(recv.byKey) != n {
		t.Fatalf("%d delivered, duplicates %v", len(recv.byKey), d)
	}
	// The dead claimer comes back and settles what it held: its claims are stale, the
	// live worker's outcome stands.
	for _, c := range claimed {
		must(t, dead.Settle(ctx, c.ID, notify.Result{State: notify.StateDead, At: time.Now(), Error: "late", Claim: c.Claim}))
	}
	if st, _ := live.Stats(ctx); st != (notify.Stats{Delivered: n}) {
		t.Fatalf("after the stale settles: %+v", st)
	}
}

// TestPGStaleSettleIgnored: a settle under a claim that has since expired and been
// claimed again does not overwrite the newer claimer's outcome, even before that one
// settled; a settle under the current claim (or, from ops tools, none) does.
func TestPGStaleSettleIgnored(t *testing.T) {
	url := pgDB(t)
	a, b := pgQueue(t, pgPool(t, url), nil), pgQueue(t, pgPool(t, url), nil)
	a.ClaimTTL = 200 * time.Millisecond
	ctx := context.Background()
	if _, err := a.Enqueue(ctx, note("x", t0)); err != nil {
		t.Fatal(err)
	}
	got, err := a.Due(ctx, t0, 0)
	must(t, err)
	if len(got) != 1 || got[0].Claim == 0 {
		t.Fatalf("a claimed %+v", got)
	}
	old := got[0].Claim
	if other, _ := b.Due(ctx, t0, 0); len(other) != 0 {
		t.Fatalf("b claimed %v while a's claim held", ids(other))
	}
	var newer []notify.Notification
	waitFor(t, 10*time.Second, "b claims after a's claim expired", func() bool {
		newer, err = b.Due(ctx, t0, 0)
		must(t, err)
		return len(newer) == 1
	})
	if newer[0].Claim == old {
		t.Fatalf("b's claim %d equals a's", newer[0].Claim)
	}
	// a, late: "delivered" under its lost claim. Ignored: b is still at it.
	must(t, a.Settle(ctx, "x", notify.Result{State: notify.StateDelivered, At: t0, Claim: old}))
	if n, _ := b.Get(ctx, "x"); n.State != notify.StatePending || n.Attempts != 0 || n.Claim != newer[0].Claim {
		t.Fatalf("a's stale settle changed %+v", n)
	}
	// b settles a retry under its claim; a's second stale settle changes nothing either.
	must(t, b.Settle(ctx, "x", notify.Result{State: notify.StatePending, NextTry: t0.Add(time.Minute), Error: "HTTP 503", Claim: newer[0].Claim}))
	must(t, a.Settle(ctx, "x", notify.Result{State: notify.StateDead, At: t0, Claim: old}))
	n, _ := b.Get(ctx, "x")
	if n.State != notify.StatePending || n.Attempts != 1 || n.LastError != "HTTP 503" || !n.NextTry.Equal(t0.Add(time.Minute)) {
		t.Fatalf("after b's retry: %+v", n)
	}
	// The retry released the claim: a, whose clock says it is due, may take it.
	if again, _ := a.Due(ctx, t0.Add(time.Minute), 0); len(again) != 1 {
		t.Fatalf("retry not claimable by another replica: %v", ids(again))
	}
	if err := a.Settle(ctx, "x", notify.Result{State: "sent"}); err == nil {
		t.Fatal("settle with an unknown state accepted")
	}
}

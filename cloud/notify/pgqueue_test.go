package notify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/larder-lockers/larder/cloud"
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
	start := time.Now()
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
	t.Logf("%d notices delivered in %s; by worker: %v", n, time.Since(start).Round(time.Millisecond), recv.bySource)
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

// TestPGQueueSeals: the operator's columns are readable SQL; the target and data are
// not in clear, and another key cannot open them.
func TestPGQueueSeals(t *testing.T) {
	ctx := context.Background()
	pool := pgPool(t, pgDB(t))
	q := pgQueue(t, pool, bytes.Repeat([]byte{9}, 32))
	n := note("evt_1/sms", t0)
	n.Channel, n.Target, n.Site = notify.ChannelSMS, "+8613800001234", "s-1"
	if _, err := q.Enqueue(ctx, n); err != nil {
		t.Fatal(err)
	}
	var kind, order, site, state string
	var attempts int
	var nextTry time.Time
	var target, body []byte
	err := pool.QueryRow(ctx, `SELECT kind, order_id, site, state, attempts, next_try, target, body
		FROM larder_notices WHERE id = 'evt_1/sms'`).Scan(&kind, &order, &site, &state, &attempts, &nextTry, &target, &body)
	must(t, err)
	if kind != "loaded" || order != "o-1" || site != "s-1" || state != "pending" || attempts != 0 || !nextTry.Equal(t0) {
		t.Fatalf("operator columns: %s %s %s %s %d %v", kind, order, site, state, attempts, nextTry)
	}
	if bytes.Contains(target, []byte("13800001234")) || bytes.Contains(body, []byte("123456")) || len(body) == 0 {
		t.Fatalf("stored in clear: target %q body %q", target, body)
	}
	got, err := q.Get(ctx, "evt_1/sms")
	if err != nil || got.Target != n.Target || string(got.Data) != string(n.Data) {
		t.Fatalf("unsealed %+v, %v", got, err)
	}
	if _, err := pgQueue(t, pool, bytes.Repeat([]byte{1}, 32)).Get(ctx, "evt_1/sms"); err == nil {
		t.Fatal("wrong key opened a sealed record")
	}
	// Delivered: the data (and the code in it) is gone from the row.
	must(t, q.Settle(ctx, "evt_1/sms", notify.Result{State: notify.StateDelivered, At: t0}))
	var delivered *time.Time
	must(t, pool.QueryRow(ctx, `SELECT body, delivered_at FROM larder_notices WHERE id = 'evt_1/sms'`).Scan(&body, &delivered))
	if body != nil || delivered == nil || !delivered.Equal(t0) {
		t.Fatalf("after delivery: body %q, delivered_at %v", body, delivered)
	}
	if _, err := notify.NewPGQueue(pool, []byte("short")); err == nil {
		t.Fatal("a short key accepted")
	}
	if _, err := notify.NewPGQueue(pgPool(t, pgtest.DB(t)), nil); err == nil {
		t.Fatal("a database without the table accepted")
	}
}

// pgStoreTx is a cloud.Tx of the PostgreSQL store as far as the outbox sees it: the
// pgx transaction behind it, and OnCommit.
type pgStoreTx struct {
	plainTx
	tx       pgx.Tx
	onCommit []func()
}

func (s *pgStoreTx) Pgx() pgx.Tx        { return s.tx }
func (s *pgStoreTx) OnCommit(fn func()) { s.onCommit = append(s.onCommit, fn) }

// domainTx is the domain's wrapper of the store's transaction.
type domainTx struct{ cloud.Tx }

func (d domainTx) Unwrap() cloud.Tx { return d.Tx }

// TestPGNotifyTxCommitsWithTheChange: the Notifier writes notices in the store's pgx
// transaction (through the domain's wrapper): they commit with the change, vanish with
// a rollback, and a transaction of another kind or database cannot host them.
func TestPGNotifyTxCommitsWithTheChange(t *testing.T) {
	ctx := context.Background()
	url := pgDB(t)
	pool := pgPool(t, url)
	q := pgQueue(t, pool, crashKey)
	_, err := pool.Exec(ctx, `CREATE TABLE changes (id text PRIMARY KEY)`)
	must(t, err)
	wakes := 0
	nt := &notify.Notifier{Outbox: q, Wake: func() { wakes++ }}
	const n = 40
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable})
			if err != nil {
				t.Error(err)
				return
			}
			defer tx.Rollback(ctx)
			if _, err := tx.Exec(ctx, `INSERT INTO changes VALUES ($1)`, fmt.Sprintf("ord_%03d", i)); err != nil {
				t.Error(err)
				return
			}
			st := &pgStoreTx{tx: tx}
			note := cloud.Notification{Type: cloud.NoteCreated, ID: fmt.Sprintf("evt_%03d", i), Time: t0,
				Site: "s-1", Order: fmt.Sprintf("ord_%03d", i), Platform: "plat"}
			if err := nt.NotifyTx(domainTx{st}, note); err != nil {
				t.Error(err)
				return
			}
			if i%2 == 1 {
				return // the change fails after its notice: rolled back
			}
			if err := tx.Commit(ctx); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			for _, fn := range st.onCommit {
				fn()
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if wakes != n/2 {
		t.Errorf("%d wakes, want one per committed transaction (%d)", wakes, n/2)
	}
	for i := range n {
		_, err := q.Get(ctx, fmt.Sprintf("evt_%03d/webhook", i))
		if (err == nil) != (i%2 == 0) {
			t.Errorf("notice %d: %v (the change committed: %t)", i, err, i%2 == 0)
		}
	}
	var orphans int
	must(t, pool.QueryRow(ctx, `SELECT count(*) FROM larder_notices n WHERE NOT EXISTS
		(SELECT 1 FROM changes c WHERE c.id = n.order_id)`).Scan(&orphans))
	if orphans != 0 {
		t.Errorf("%d notices without their change", orphans)
	}

	note := cloud.Notification{Type: cloud.NoteCreated, ID: "evt_x", Site: "s-1", Order: "ord_x", Platform: "plat"}
	if err := nt.NotifyTx(plainTx{}, note); err == nil {
		t.Error("NotifyTx over a transaction that is not PostgreSQL's succeeded")
	}
	other, err := pgPool(t, pgDB(t)).Begin(ctx)
	must(t, err)
	defer other.Rollback(ctx)
	if err := nt.NotifyTx(&pgStoreTx{tx: other}, note); err == nil {
		t.Error("NotifyTx in another database's transaction succeeded")
	}
}

// TestWorkerSendsOnlyWithinItsClaim: a round whose sends outlast the queue's claim
// starts no send that its claim could not cover; what it left is delivered by the next
// round, once. A claim shorter than a send is refused.
func TestWorkerSendsOnlyWithinItsClaim(t *testing.T) {
	ctx := context.Background()
	url := pgDB(t)
	pool := pgPool(t, url)
	q := pgQueue(t, pool, nil)
	q.ClaimTTL = 1500 * time.Millisecond
	if _, err := notify.NewWorker(notify.WorkerConfig{Queue: q, SendTimeout: 2 * time.Second}); err == nil {
		t.Fatal("a claim shorter than a send accepted")
	}
	enqueueMany(t, pool, q, "slow", 3)
	s := &slowSender{delay: 700 * time.Millisecond, sent: map[string]int{}}
	w, err := notify.NewWorker(notify.WorkerConfig{Queue: q, Batch: 3, Parallel: 1, SendTimeout: time.Second,
		Senders: map[notify.Channel]notify.Sender{notify.ChannelWebhook: s}})
	must(t, err)
	// The first send starts with 1.5 s of claim left; the second would start with 0.8 s,
	// less than a send may take.
	if got, err := w.Round(ctx); got != 3 || err != nil {
		t.Fatalf("round took %d, %v", got, err)
	}
	if st, _ := q.Stats(ctx); st != (notify.Stats{Pending: 2, Delivered: 1}) {
		t.Fatalf("after the first round %+v (sent %v)", st, s.sent)
	}
	for range 2 {
		w.Round(ctx)
	}
	if st, _ := q.Stats(ctx); st != (notify.Stats{Delivered: 3}) {
		t.Fatalf("after three rounds %+v", st)
	}
	for id, k := range s.sent {
		if k != 1 {
			t.Errorf("%s sent %d times", id, k)
		}
	}
}

// slowSender accepts every notification after delay.
type slowSender struct {
	delay time.Duration
	mu    sync.Mutex
	sent  map[string]int
}

func (s *slowSender) Send(ctx context.Context, n notify.Notification) error {
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return ctx.Err()
	}
	s.mu.Lock()
	s.sent[n.ID]++
	s.mu.Unlock()
	return nil
}

// TestCopyToPG: a bbolt outbox with every kind of content (pending with data, a retry
// with attempts and a later next try, delivered, dead, cancelled) moves into an empty
// PostgreSQL outbox under another key, item for item, and the copy is verified; a
// second copy into the now non-empty outbox is refused and changes nothing.
func TestCopyToPG(t *testing.T) {
	ctx := context.Background()
	from := boltQueue(t, openBolt(t), bytes.Repeat([]byte{3}, 32))
	sms := note("p-sms", t0.Add(time.Minute))
	sms.Channel, sms.Target, sms.Lang = notify.ChannelSMS, "+8613800001234", "zh"
	for _, n := range []notify.Notification{note("p-new", t0), sms, note("p-retry", t0), note("done", t0),
		note("dead-1", t0), note("dead-2", t0), note("none", t0)} {
		if _, err := from.Enqueue(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	for id, r := range map[string]notify.Result{
		"p-retry": {State: notify.StatePending, NextTry: t0.Add(time.Hour), Error: "HTTP 503"},
		"done":    {State: notify.StateDelivered, At: t0.Add(time.Second)},
		"dead-1":  {State: notify.StateDead, At: t0.Add(2 * time.Second), Error: "HTTP 410"},
		"dead-2":  {State: notify.StateDead, At: t0.Add(3 * time.Second), Error: "HTTP 404"},
		"none":    {State: notify.StateCancelled, At: t0.Add(4 * time.Second), Error: "no endpoint"},
	} {
		must(t, from.Settle(ctx, id, r))
	}
	must(t, from.Settle(ctx, "p-retry", notify.Result{State: notify.StatePending, NextTry: t0.Add(2 * time.Hour), Error: "HTTP 502"}))

	pool := pgPool(t, pgDB(t))
	to := pgQueue(t, pool, bytes.Repeat([]byte{4}, 32))
	got, err := notify.CopyToPG(ctx, from, to)
	must(t, err)
	want, _ := from.Stats(ctx)
	if got.Stats != want || want != (notify.Stats{Pending: 3, Delivered: 1, Dead: 2, Cancelled: 1}) || len(got.Digest) != 64 {
		t.Fatalf("copied %+v, bbolt has %+v", got, want)
	}
	for _, id := range []string{"p-new", "p-sms", "p-retry", "done", "dead-1", "dead-2", "none"} {
		a, err := from.Get(ctx, id)
		must(t, err)
		b, err := to.Get(ctx, id)
		must(t, err)
		b.Claim = 0
		for _, tm := range []*time.Time{&a.Created, &a.Due, &a.NextTry, &a.Done} {
			*tm = tm.Truncate(time.Microsecond) // PostgreSQL's precision
		}
		if diff := cmp.Diff(a, b, cmpopts.EquateApproxTime(0)); diff != "" {
			t.Errorf("%s differs (-bbolt +pg):\n%s", id, diff)
		}
	}
	// The copy works as an outbox: due in order, dead letters newest first.
	due, err := to.Due(ctx, t0.Add(3*time.Hour), 0)
	must(t, err)
	if got, want := ids(due), []string{"p-new", "p-sms", "p-retry"}; !slices.Equal(got, want) {
		t.Fatalf("due %v, want %v", got, want)
	}
	if dead, _ := to.DeadLetters(ctx, 0); !slices.Equal(ids(dead), []string{"dead-2", "dead-1"}) {
		t.Fatalf("dead letters %v", ids(dead))
	}

	if _, err := notify.CopyToPG(ctx, from, to); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("copy into a non-empty outbox: %v", err)
	}
	if st, _ := to.Stats(ctx); st != want {
		t.Fatalf("the refused copy changed the outbox: %+v", st)
	}
}

// The killed worker's process: LARDER_NOTIFY_PG_CHILD = "<database URL> <webhook URL>".
const pgChildEnv = "LARDER_NOTIFY_PG_CHILD"

// TestPGKilledWorkerTakenOver kills (SIGKILL) a process whose worker is delivering
// from the PostgreSQL outbox, then lets another replica's worker finish: every notice
// is delivered, and the only ones delivered twice are those the receiver accepted in
// the instant of the kill, before the killed worker recorded it (at most its Parallel
// sends in flight); they carry the same Idempotency-Key both times.
func TestPGKilledWorkerTakenOver(t *testing.T) {
	if env := os.Getenv(pgChildEnv); env != "" {
		url, hook, _ := strings.Cut(env, " ")
		pool := pgPool(t, url)
		q := pgQueue(t, pool, nil)
		q.ClaimTTL = 2 * time.Second
		w := pgWorker(t, q, hook, "urn:killed", func(c *notify.WorkerConfig) { c.SendTimeout = time.Second })
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // the parent never came to kill us
		defer cancel()
		w.Run(ctx)
		os.Exit(3)
	}
	if testing.Short() {
		t.Skip("starts and kills a child process")
	}
	const n, parallel = 400, 4
	url := pgDB(t)
	pool := pgPool(t, url)
	q := pgQueue(t, pool, nil)
	enqueueMany(t, pool, q, "kill", n)
	recv, hook := newTally(t)

	cmd := exec.Command(os.Args[0], "-test.run=^TestPGKilledWorkerTakenOver$", "-test.count=1")
	cmd.Env = append(os.Environ(), pgChildEnv+"="+url+" "+hook)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr // the child's test output, should it fail
	must(t, cmd.Start())
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	waitFor(t, 30*time.Second, "the child delivers 100", func() bool {
		select {
		case <-exited:
			t.Fatal("the child ended before it was killed")
		default:
		}
		return recv.count() >= 100
	})
	must(t, cmd.Process.Kill())
	<-exited
	atKill := recv.count()

	w := pgWorker(t, q, hook, "urn:survivor")
	ctx := context.Background()
	waitFor(t, 30*time.Second, "the survivor delivers the rest", func() bool {
		_, err := w.Round(ctx)
		must(t, err)
		p, _, err := q.Outstanding(ctx)
		return err == nil && p == 0
	})
	if len(recv.byKey) != n {
		t.Fatalf("%d of %d notices delivered", len(recv.byKey), n)
	}
	if d := recv.duplicates(); len(d) > parallel {
		t.Fatalf("%d delivered twice, more than the %d sends in flight at the kill: %v", len(d), parallel, d)
	}
	if st, _ := q.Stats(ctx); st != (notify.Stats{Delivered: n}) {
		t.Fatalf("stats %+v", st)
	}
	t.Logf("killed after %d deliveries; by worker %v; delivered twice: %v", atKill, recv.bySource, recv.duplicates())
}

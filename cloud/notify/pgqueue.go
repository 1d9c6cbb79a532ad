package notify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/larder-lockers/larder/cloud"
)

// PGQueue is the durable [Queue] in PostgreSQL, shared by every replica of the cloud:
// one row per notification in the table larder_notices (cloud/pg/migrations/
// 0003_notify.sql, which must have been applied), in columns an operator can query;
// the target (phone number or platform) and the data (which may hold a pickup code)
// are sealed with AES-256-GCM when the queue has a key.
//
// # Claims
//
// Due claims what it returns: it locks due rows with FOR UPDATE SKIP LOCKED, so that
// concurrent workers take different notifications without waiting for each other, and
// marks them claimed_by this queue's [PGQueue.Claimer] until claimed_until (now +
// [PGQueue.ClaimTTL] on the database's clock, one clock for every replica). Until then
// no other PGQueue's Due returns them; after it (the claimer died or hangs) any other
// may, and that is how a killed replica's deliveries are taken over. Each claim
// increments the row's claim number, handed out as [Notification.Claim]; a Settle
// whose [Result.Claim] is no longer the row's claim is ignored, so a claimer that lost
// its claim cannot overwrite the outcome of the worker that took over.
//
// Due also returns what this same queue claimed before and has not settled (a worker
// stopped mid-round, or one that skipped notifications its claim no longer covered):
// use one [Worker] per PGQueue, with a Claimer unique to it, e.g. the replica's id.
//
// Where "sent twice" cannot be avoided: a claimer that dies (or pauses longer than its
// claim) after the receiver accepted a delivery but before Settle committed leaves the
// notification pending; the next claimer sends it again (and so does a retry after a
// lost answer: the package doc's "Sent twice"). Every delivery therefore
// carries the notification id as its idempotency key (the CloudEvent id, and the
// Idempotency-Key header of webhooks and SMS) for receivers to deduplicate.
type PGQueue struct {
	pool *pgxpool.Pool
	seal sealer
	// Claimer is written to claimed_by: unique per PGQueue value. NewPGQueue sets it to
	// host/pid/random; set it (e.g. to the replica's id) before use, or leave it.
	Claimer string
	// ClaimTTL is how long a claim lasts (zero: 1 minute): how long a dead replica's
	// notifications wait before another replica takes them over. It must exceed the
	// worker's SendTimeout ([NewWorker] checks); a round that outlasts it starts no
	// further sends and leaves the rest to its next round ([Worker.Round]), so a
	// longer one only helps when the rounds are long (Batch/Parallel × the time a send
	// takes). Set before use.
	ClaimTTL time.Duration
}

// NewPGQueue uses the table larder_notices through pool. key, when not nil, must be 32
// bytes: targets and data are then sealed with AES-256-GCM (see [NewBoltQueue] for
// why); the key comes from the cloud's configuration, never from the database.
func NewPGQueue(pool *pgxpool.Pool, key []byte) (*PGQueue, error) {
	seal, err := newSealer(key)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var ok bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('larder_notices') IS NOT NULL`).Scan(&ok); err != nil {
		return nil, fmt.Errorf("notify: %w", err)
	}
	if !ok {
		return nil, errors.New("notify: table larder_notices missing: apply the migrations (cloud/pg/migrations)")
	}
	host, _ := os.Hostname()
	var b [4]byte
	rand.Read(b[:])
	return &PGQueue{pool: pool, seal: seal, Claimer: fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))}, nil
}

// claimDuration is what the [Worker] asks of a queue that claims.
func (q *PGQueue) claimDuration() time.Duration {
	if q.ClaimTTL > 0 {
		return q.ClaimTTL
	}
	return time.Minute
}

// Columns of larder_notices as [PGQueue.scan] reads them.
const pgCols = `id, kind, channel, order_id, site, state, attempts, next_try, created, due, done_at,
	last_error, lang, claim, target, body`

// pgInsert writes every column but the claim's (a new row is unclaimed).
const pgInsert = `INSERT INTO larder_notices (id, kind, channel, order_id, site, state, attempts, next_try,
	created, due, done_at, last_error, lang, target, body)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) ON CONFLICT (id) DO NOTHING`

// row is n as the columns of pgInsert, sealed.
func (q *PGQueue) row(n *Notification) []any {
	pending := n.State == StatePending
	var body []byte
	if pending && n.Data != nil {
		body = q.seal.seal(n.Data, "body/"+n.ID)
	}
	return []any{n.ID, string(n.Kind), string(n.Channel), n.Order, n.Site, string(n.State), n.Attempts,
		timeIf(n.NextTry, pending), n.Created, n.Due, timeIf(n.Done, !pending), n.LastError, n.Lang,
		q.seal.seal([]byte(n.Target), "target/"+n.ID), body}
}

func timeIf(t time.Time, ok bool) *time.Time {
	if !ok {
		return nil
	}
	return &t
}

func (q *PGQueue) scan(row pgx.Row) (Notification, error) {
	var n Notification
	var kind, channel, state string
	var nextTry, done *time.Time
	var target, body []byte
	err := row.Scan(&n.ID, &kind, &channel, &n.Order, &n.Site, &state, &n.Attempts, &nextTry, &n.Created, &n.Due,
		&done, &n.LastError, &n.Lang, &n.Claim, &target, &body)
	if err != nil {
		return n, err
	}
	n.Kind, n.Channel, n.State = Kind(kind), Channel(channel), State(state)
	if nextTry != nil {
		n.NextTry = *nextTry
	}
	if done != nil {
		n.Done = *done
	}
	t, err := q.seal.open(target, "target/"+n.ID)
	if err != nil {
		return n, fmt.Errorf("notify: record %s: target: %w", n.ID, err)
	}
	n.Target = string(t)
	if body != nil {
		d, err := q.seal.open(body, "body/"+n.ID)
		if err != nil {
			return n, fmt.Errorf("notify: record %s: data: %w", n.ID, err)
		}
		n.Data = json.RawMessage(d)
	}
	return n, nil
}

// execer is a pool or a transaction.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func (q *PGQueue) enqueue(ctx context.Context, db execer, n Notification) (bool, error) {
	if err := n.validate(); err != nil {
		return false, err
	}
	n.prepare(time.Now())
	tag, err := db.Exec(ctx, pgInsert, q.row(&n)...)
	if err != nil {
		return false, fmt.Errorf("notify: enqueue %s: %w", n.ID, err)
	}
	return tag.RowsAffected() == 1, nil
}

// Enqueue implements [Outbox].
func (q *PGQueue) Enqueue(ctx context.Context, n Notification) (bool, error) {
	return q.enqueue(ctx, q.pool, n)
}

// EnqueueTx implements [TxOutbox]: [PGQueue.EnqueuePgx] in the pgx transaction of tx,
// a transaction of cloud/pg (it has Pgx() pgx.Tx). cloud.Tx carries no context, so the
// insert runs under the transaction's own bounds (the connection, the server's
// statement timeout).
func (q *PGQueue) EnqueueTx(tx cloud.Tx, n Notification) (bool, error) {
	pt, ok := tx.(interface{ Pgx() pgx.Tx })
	if !ok {
		return false, fmt.Errorf("notify: enqueue %s: the store's transactions are not PostgreSQL's: the outbox cannot join them", n.ID)
	}
	return q.EnqueuePgx(context.Background(), pt.Pgx(), n)
}

// EnqueuePgx is Enqueue inside tx, a transaction on the queue's database that the
// caller commits, so that the notification becomes durable together with the caller's
// other writes, or not at all. It does not commit; an error leaves tx to be rolled back
// by the caller. Under SERIALIZABLE a concurrent enqueue of the same id may fail the
// transaction with a serialization error, which the caller retries as any other.
func (q *PGQueue) EnqueuePgx(ctx context.Context, tx pgx.Tx, n Notification) (bool, error) {
	mine, theirs := q.pool.Config().ConnConfig, tx.Conn().Config()
	if mine.Database != theirs.Database || mine.Host != theirs.Host || mine.Port != theirs.Port {
		return false, fmt.Errorf("notify: enqueue %s: a transaction on another database than the queue's", n.ID)
	}
	return q.enqueue(ctx, tx, n)
}

// Due implements [Deliveries]: it claims what it returns (see [PGQueue]).
func (q *PGQueue) Due(ctx context.Context, now time.Time, limit int) ([]Notification, error) {
	var lim *int
	if limit > 0 {
		lim = &limit
	}
	rows, err := q.pool.Query(ctx, `
		WITH c AS (
			SELECT id FROM larder_notices
			WHERE state = 'pending' AND next_try <= $1
			  AND (claimed_until IS NULL OR claimed_until < clock_timestamp() OR claimed_by = $3)
			ORDER BY next_try, id
			LIMIT $2
			FOR UPDATE SKIP LOCKED)
		UPDATE larder_notices n
		SET claimed_by = $3, claimed_until = clock_timestamp() + make_interval(secs => $4), claim = n.claim + 1
		FROM c WHERE n.id = c.id
		RETURNING n.id, n.kind, n.channel, n.order_id, n.site, n.state, n.attempts, n.next_try, n.created, n.due,
			n.done_at, n.last_error, n.lang, n.claim, n.target, n.body`,
		now, lim, q.Claimer, q.claimDuration().Seconds())
	if err != nil {
		return nil, fmt.Errorf("notify: due: %w", err)
	}
	out, err := q.collect(rows)
	if err != nil {
		return nil, fmt.Errorf("notify: due: %w", err)
	}
	// UPDATE … RETURNING has no order.
	sortDue(out)
	return out, nil
}

func (q *PGQueue) collect(rows pgx.Rows) ([]Notification, error) {
	defer rows.Close()
	var out []Notification
	for rows.Next() {
		n, err := q.scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// Settle implements [Deliveries]. It also ends the claim, so that a retry is taken by
// whichever replica's worker finds it due first.
func (q *PGQueue) Settle(ctx context.Context, id string, r Result) error {
	var nextTry, done *time.Time
	switch r.State {
	case StatePending:
		nextTry = &r.NextTry
	case StateDelivered, StateDead, StateCancelled:
		done = &r.At
	default:
		return fmt.Errorf("notify: settle %s: unknown state %q", id, r.State)
	}
	_, err := q.pool.Exec(ctx, `
		UPDATE larder_notices
		SET state = $2, attempts = attempts + 1, last_error = $3, next_try = $4, done_at = $5,
			body = CASE WHEN $2 = 'pending' THEN body END, claimed_by = NULL, claimed_until = NULL
		WHERE id = $1 AND state = 'pending' AND ($6::bigint = 0 OR claim = $6)`,
		id, string(r.State), r.Error, nextTry, done, r.Claim)
	if err != nil {
		return fmt.Errorf("notify: settle %s: %w", id, err)
	}
	return nil
}

// Stats implements [Backlog]. It counts the whole table (finished notifications stay
// until [PGQueue.Purge]): for ops pages, not for every worker round ([PGQueue.Outstanding]).
func (q *PGQueue) Stats(ctx context.Context) (Stats, error) {
	rows, err := q.pool.Query(ctx, `SELECT state, count(*) FROM larder_notices GROUP BY state`)
	if err != nil {
		return Stats{}, fmt.Errorf("notify: stats: %w", err)
	}
	defer rows.Close()
	var s Stats
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return Stats{}, fmt.Errorf("notify: stats: %w", err)
		}
		s.add(State(st), n)
	}
	return s, rows.Err()
}

// Outstanding counts the pending notifications and the dead letters, through their
// partial indexes: what the worker's gauges show, cheaply, after every round.
func (q *PGQueue) Outstanding(ctx context.Context) (pending, dead int, err error) {
	err = q.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM larder_notices WHERE state = 'pending'),
		(SELECT count(*) FROM larder_notices WHERE state = 'dead')`).Scan(&pending, &dead)
	if err != nil {
		return 0, 0, fmt.Errorf("notify: outstanding: %w", err)
	}
	return pending, dead, nil
}

// DeadLetters implements [Backlog].
func (q *PGQueue) DeadLetters(ctx context.Context, limit int) ([]Notification, error) {
	var lim *int
	if limit > 0 {
		lim = &limit
	}
	rows, err := q.pool.Query(ctx, `SELECT `+pgCols+` FROM larder_notices WHERE state = 'dead'
		ORDER BY done_at DESC, id LIMIT $1`, lim)
	if err != nil {
		return nil, fmt.Errorf("notify: dead letters: %w", err)
	}
	out, err := q.collect(rows)
	if err != nil {
		return nil, fmt.Errorf("notify: dead letters: %w", err)
	}
	return out, nil
}

// Requeue implements [Backlog].
func (q *PGQueue) Requeue(ctx context.Context, id string, now time.Time) error {
	tag, err := q.pool.Exec(ctx, `
		UPDATE larder_notices
		SET state = 'pending', attempts = 0, next_try = $2, done_at = NULL, claimed_by = NULL, claimed_until = NULL
		WHERE id = $1 AND state = 'dead'`, id, now)
	if err != nil {
		return fmt.Errorf("notify: requeue %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// Get returns notification id.
func (q *PGQueue) Get(ctx context.Context, id string) (Notification, error) {
	n, err := q.scan(q.pool.QueryRow(ctx, `SELECT `+pgCols+` FROM larder_notices WHERE id = $1`, id))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return Notification{}, ErrNotFound
	case err != nil:
		return Notification{}, fmt.Errorf("notify: get %s: %w", id, err)
	}
	return n, nil
}

// Purge deletes delivered and cancelled notifications finished before the given time,
// like [BoltQueue.Purge], in statements of at most 10,000 rows so that no transaction
// grows with the backlog. It returns how many went.
func (q *PGQueue) Purge(ctx context.Context, before time.Time) (int, error) {
	const batch = 10000
	purged := 0
	for {
		tag, err := q.pool.Exec(ctx, `DELETE FROM larder_notices WHERE id IN (
			SELECT id FROM larder_notices WHERE state IN ('delivered', 'cancelled') AND done_at < $1 LIMIT $2)`,
			before, batch)
		if err != nil {
			return purged, fmt.Errorf("notify: purge: %w", err)
		}
		purged += int(tag.RowsAffected())
		if tag.RowsAffected() < batch {
			return purged, nil
		}
	}
}

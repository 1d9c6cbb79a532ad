package pg

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The change feed (migrations/0006_changes.sql): a trigger records every write to a
// watched bucket in larder_changes with the writing transaction's id, in that
// transaction; watchers poll it.
const (
	// pollEvery is how often a watch reads the feed: the delay a watcher adds to a write
	// besides the transactions still running when it was committed.
	pollEvery = 50 * time.Millisecond
	// keepChanges is how long the feed keeps a change. A watch that could not read the
	// feed for half as long may have lost changes and says so with empty keys.
	keepChanges = 2 * time.Minute
)

// Watch registers buckets as watched (larder_watched, which larder_kv's triggers read)
// and polls the change feed every pollEvery. It calls fn for every write committed to one
// of buckets by any process (any transaction that had not ended when Watch began), in
// commit order per key, from one goroutine, until ctx ends or the store closes, and then
// returns nil; an error means it could not start. A key over 1000 bytes comes as an empty
// key. A failed read of the feed is retried (backing off up to 5 s) from where it stopped,
// so nothing is lost; only when the feed could not be read for keepChanges/2, and the
// changes it missed may have been deleted, does Watch call fn(bucket, "") for each of
// buckets.
func (s *Store) Watch(ctx context.Context, buckets []string, fn func(bucket, key string)) error {
	done, err := s.startWatch(ctx, buckets, fn)
	if err != nil {
		return err
	}
	<-done
	return nil
}

// startWatch is Watch returning once it follows the feed: done closes when it stops.
func (s *Store) startWatch(ctx context.Context, buckets []string, fn func(bucket, key string)) (<-chan struct{}, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.stopCtx, cancel)
	fail := func(err error) (<-chan struct{}, error) {
		stop()
		cancel()
		s.running.Done()
		return nil, fmt.Errorf("pg: watch: %w", err)
	}
	if _, err := s.pool.Exec(ctx, "INSERT INTO larder_watched (bucket) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING", buckets); err != nil {
		return fail(err)
	}
	f := &feed{pool: s.pool, buckets: buckets, keep: s.keep}
	// Transactions below the oldest running one have ended: what they wrote is in the
	// store for whoever reads it next. The feed starts after them.
	if err := s.pool.QueryRow(ctx, "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint").Scan(&f.cursor); err != nil {
		return fail(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer s.running.Done()
		defer stop()
		defer cancel()
		f.follow(ctx, fn)
	}()
	return done, nil
}

// feed is one watch's position in larder_changes.
type feed struct {
	pool    *pgxpool.Pool
	buckets []string
	keep    time.Duration // keepChanges, shorter in tests
	// cursor is the transaction id below which every change has been delivered.
	cursor int64
	// horizons are this watch's cursors of the last keepChanges, one per prune, oldest
	// first.
	horizons []horizon
}

type horizon struct {
	at     time.Time
	cursor int64
}

// follow polls the feed and hands its changes to fn until ctx ends.
func (f *feed) follow(ctx context.Context, fn func(bucket, key string)) {
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	read := time.Now() // when the feed was last read whole up to the cursor
	pruned := read
	backoff := 100 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		if now.Sub(read) >= f.keep/2 {
			// Changes after the cursor may be gone: start again from the present and
			// say that anything may have changed.
			if err := f.skip(ctx); err != nil {
				continue
			}
			for _, b := range f.buckets {
				fn(b, "")
			}
			read = now
			continue
		}
		// A poll that took long could read after the changes it is after were deleted:
		// bound it well below keep/2 (see prune).
		pctx, cancel := context.WithTimeout(ctx, f.keep/4)
		err := f.poll(pctx, fn)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			// The store's pool reconnects; the cursor stays, so nothing is lost.
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		read = now
		if now.Sub(pruned) >= f.keep/12 { // every 10 s by default
			f.prune(ctx, now)
			pruned = now
		}
	}
}

// poll delivers the changes of the transactions that ended since the last poll and
// moves the cursor past them. The oldest running transaction and the rows are read in
// one statement, hence one snapshot: every transaction below it has ended, so its rows
// are all there.
func (f *feed) poll(ctx context.Context, fn func(bucket, key string)) error {
	rows, err := f.pool.Query(ctx, `WITH h AS (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS x)
		SELECT h.x, c.bucket, c.key FROM h LEFT JOIN larder_changes c
		ON c.xid >= $1::bigint::text::xid8 AND c.xid < h.x::text::xid8 AND c.bucket = ANY($2)
		ORDER BY c.xid, c.bucket, c.key`, f.cursor, f.buckets)
	if err != nil {
		return err
	}
	var (
		next        int64
		bucket, key *string
		changes     [][2]string
	)
	if _, err := pgx.ForEachRow(rows, []any{&next, &bucket, &key}, func() error {
		if bucket != nil {
			changes = append(changes, [2]string{*bucket, *key})
		}
		return nil
	}); err != nil {
		return err
	}
	for _, c := range changes {
		fn(c[0], c[1])
	}
	f.cursor = max(f.cursor, next)
	return nil
}

// skip moves the cursor to the present without delivering what it passes.
func (f *feed) skip(ctx context.Context) error {
	rows, err := f.pool.Query(ctx, "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
	if err != nil {
		return err
	}
	x, err := pgx.CollectExactlyOneRow(rows, pgx.RowTo[int64])
	if err != nil {
		return err
	}
	f.cursor = max(f.cursor, x)
	f.horizons = nil
	return nil
}

// prune deletes the changes every watch has had keepChanges to read: those below the
// newest cursor this watch had keepChanges ago. A watch whose last poll began less than
// keepChanges/2 ago, and took at most keepChanges/4, has a cursor at least as new (the
// oldest running transaction only moves forward) and reads before they are deleted, so
// it loses nothing. Every watch prunes; a second delete of the same
// rows finds none.
func (f *feed) prune(ctx context.Context, now time.Time) {
	f.horizons = append(f.horizons, horizon{now, f.cursor})
	var below int64
	i := 0
	for i < len(f.horizons) && now.Sub(f.horizons[i].at) >= f.keep {
		below = f.horizons[i].cursor
		i++
	}
	if i == 0 {
		return
	}
	if _, err := f.pool.Exec(ctx, "DELETE FROM larder_changes WHERE xid < $1::bigint::text::xid8", below); err != nil {
		return // the next prune deletes them
	}
	f.horizons = f.horizons[i:]
}

package loadgen

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PGBaseline is the raw commit rate of the PostgreSQL the replicas share, for a
// transaction comparable to an order's: one row of an order's size inserted and
// committed, with synchronous_commit on (each commit waits for its WAL flush), by as
// many connections as the orders measurement has requests in flight.
type PGBaseline struct {
	Concurrency int      `json:"concurrency"`
	Commits     int      `json:"commits"`
	PerSecond   float64  `json:"per_second"`
	Latency     *Latency `json:"latency"`
	Error       string   `json:"error,omitempty"`
}

// pgBaselineRowBytes is about the size of an order's JSON record.
const pgBaselineRowBytes = 1200

// measurePG runs concurrency connections committing one-row transactions into a
// scratch table for d or n commits in all, whichever first, and drops the table.
func measurePG(ctx context.Context, url string, concurrency, n int, d time.Duration) (*PGBaseline, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("loadgen: store URL: %w", err)
	}
	cfg.MaxConns = int32(concurrency)
	cfg.MinConns = int32(concurrency)
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		_, err := c.Exec(ctx, "SET synchronous_commit TO on")
		return err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("loadgen: connect to the store: %w", err)
	}
	defer pool.Close()
	table := fmt.Sprintf("larder_load_baseline_%d", time.Now().UnixNano())
	if _, err := pool.Exec(ctx, "CREATE TABLE "+table+" (id bigserial PRIMARY KEY, site text NOT NULL, value bytea NOT NULL)"); err != nil {
		return nil, fmt.Errorf("loadgen: baseline table: %w", err)
	}
	defer pool.Exec(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS "+table)
	row := make([]byte, pgBaselineRowBytes)
	insert := "INSERT INTO " + table + " (site, value) VALUES ($1, $2)"
	dctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		next  atomic.Int64
		mu    sync.Mutex
		lats  []time.Duration
		first error
		wg    sync.WaitGroup
	)
	start := time.Now()
	for w := range concurrency {
		wg.Go(func() {
			var mine []time.Duration
			defer func() { mu.Lock(); lats = append(lats, mine...); mu.Unlock() }()
			for next.Add(1) <= int64(n) && dctx.Err() == nil {
				t := time.Now()
				err := pgx.BeginFunc(dctx, pool, func(tx pgx.Tx) error {
					_, err := tx.Exec(dctx, insert, fmt.Sprintf("site-%d", w), row)
					return err
				})
				if dctx.Err() != nil {
					return // the time is up: the last commit does not count
				}
				if err != nil {
					mu.Lock()
					first = err
					mu.Unlock()
					cancel()
					return
				}
				mine = append(mine, time.Since(t))
			}
		})
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	b := &PGBaseline{Concurrency: concurrency, Commits: len(lats), Latency: latencyOf(lats)}
	if el > 0 {
		b.PerSecond = float64(len(lats)) / el
	}
	if first != nil {
		b.Error = first.Error()
	}
	return b, nil
}

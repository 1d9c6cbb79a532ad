package pg_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/cloud/pg"
	"github.com/larder-lockers/larder/internal/pgtest"
)

// benchStoreVsRaw is the target: one-row Updates through the Store at least this share
// of raw pgx one-row transactions (BEGIN, INSERT, COMMIT) measured in the same run.
const benchStoreVsRaw = 0.5

// TestBenchStoreCommit (LARDER_BENCH=1, make bench): durable one-row transactions per
// second from concurrent workers, through the Store (REPEATABLE READ, buffered write, the
// OnCommit sequencer) and through raw pgx on a pool of the same size, in alternating
// rounds; each figure is the median of its rounds.
func TestBenchStoreCommit(t *testing.T) {
	if os.Getenv("LARDER_BENCH") == "" {
		t.Skip("set LARDER_BENCH=1 (make bench)")
	}
	const workers, rounds, perRound = 16, 3, 4000
	url := pgtest.DB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s, err := pg.Open(ctx, url, pg.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	raw, err := pgxpool.New(ctx, url) // the same default size as the store's pool
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(ctx, "CREATE TABLE bench_raw (k text COLLATE \"C\" PRIMARY KEY, v bytea NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	value := make([]byte, 128)
	var seq atomic.Int64
	run := func(one func(key string) error) float64 {
		var wg sync.WaitGroup
		var left atomic.Int64
		left.Store(perRound)
		start := time.Now()
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for left.Add(-1) >= 0 {
					if err := one(fmt.Sprintf("k%016x", uint64(seq.Add(1))*0x9e3779b97f4a7c15)); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		return perRound / time.Since(start).Seconds()
	}
	store := func(key string) error {
		return s.Update(ctx, func(tx cloud.Tx) error {
			tx.OnCommit(func() {})
			return tx.Put("meta", key, value)
		})
	}
	rawTx := func(key string) error {
		tx, err := raw.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, "INSERT INTO bench_raw (k, v) VALUES ($1, $2)", key, value); err != nil {
			return err
		}
		return tx.Commit(ctx)
	}
	var st, rw []float64
	for range rounds {
		rw = append(rw, run(rawTx))
		st = append(st, run(store))
	}
	if t.Failed() {
		t.FailNow()
	}
	slices.Sort(st)
	slices.Sort(rw)
	ratio := st[rounds/2] / rw[rounds/2]
	fmt.Printf("one-row transactions, %d workers, median of %d rounds of %d: store %.0f /s, raw pgx BEGIN+INSERT+COMMIT %.0f /s = %.2f × raw (target ≥ %.2f ×), %d retries\n",
		workers, rounds, perRound, st[rounds/2], rw[rounds/2], ratio, benchStoreVsRaw, s.Stats().Retries.Load())
	if ratio < benchStoreVsRaw {
		t.Errorf("store: %.2f × raw one-row commits; want ≥ %.2f ×", ratio, benchStoreVsRaw)
	}
}

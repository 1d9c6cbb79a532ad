package pg

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/larder-lockers/larder/cloud"
)

// Options configure Open. The zero value is the production default.
type Options struct {
	// Attempts bounds how often Update runs a transaction that fails with a
	// serialization failure or a deadlock (SQLSTATE 40001, 40P01); zero means 10.
	Attempts int
	// Registry, if set, receives the store's counters (larder_pg_*).
	Registry prometheus.Registerer
	// Tracer, if set, traces the pool's statements (pgx.QueryTracer; one that is also a
	// pgx.BatchTracer sees batches): for OpenTelemetry, or to count round trips.
	Tracer pgx.QueryTracer
}

// ErrClosed is returned by Update and View after Close.
var ErrClosed = errors.New("pg: store closed")

// Store is a cloud.Store and cloud.Watcher on one PostgreSQL database (see the package
// doc). It is safe for concurrent use.
type Store struct {
	pool     *pgxpool.Pool
	attempts int
	hooks    *sequencer
	stats    Stats
	keep     time.Duration // how long the change feed keeps a change (keepChanges)

	// mu guards closed; running counts the Updates, Views and watches under way, which
	// Close waits for.
	mu      sync.RWMutex
	closed  bool
	running sync.WaitGroup
	stop    context.CancelFunc // ends the watches
	stopCtx context.Context
}

// Stats count the store's transactions.
type Stats struct {
	Commits atomic.Uint64 // read-write transactions committed
	Retries atomic.Uint64 // attempts run again after a serialization failure or deadlock
	Fenced  atomic.Uint64 // Updates refused because a fence no longer held
}

// Stats returns the store's counters.
func (s *Store) Stats() *Stats { return &s.stats }

// DefaultMaxConns is the size of a replica's connection pool unless the URL sets
// pool_max_conns: enough transactions in flight for PostgreSQL's group commit, few
// enough that several replicas stay under its max_connections (100 by default).
const DefaultMaxConns = 16

// Open connects to the database at url (postgres://…), applies the migrations it lacks
// and returns the store. Close releases it.
func Open(ctx context.Context, url string, opt Options) (*Store, error) {
	if opt.Attempts <= 0 {
		opt.Attempts = 10
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("pg: %w", err)
	}
	cfg.ConnConfig.Tracer = opt.Tracer
	if !strings.Contains(url, "pool_max_conns") {
		// pgx's default is the number of CPUs (4 at least): on a small replica that caps
		// the transactions in flight, and so the commits PostgreSQL can share one WAL
		// flush between, far below what the server takes.
		cfg.MaxConns = DefaultMaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pg: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("pg: %w", err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	s := &Store{pool: pool, attempts: opt.Attempts, hooks: newSequencer(), keep: keepChanges}
	s.stopCtx, s.stop = context.WithCancel(context.Background())
	if opt.Registry != nil {
		if err := s.register(opt.Registry); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

func (s *Store) register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "larder_pg_commits_total",
			Help: "Read-write transactions committed by the PostgreSQL store."},
			func() float64 { return float64(s.stats.Commits.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "larder_pg_retries_total",
			Help: "Transactions run again after a serialization failure or deadlock (SQLSTATE 40001, 40P01)."},
			func() float64 { return float64(s.stats.Retries.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "larder_pg_fenced_total",
			Help: "Updates refused because a lease fence no longer held."},
			func() float64 { return float64(s.stats.Fenced.Load()) }),
	} {
		if err := r.Register(c); err != nil {
			return fmt.Errorf("pg: register metrics: %w", err)
		}
	}
	return nil
}

// Pool returns the store's connection pool, for adapters with their own tables (leases,
// the notify outbox) and for operators' checks.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close waits for the transactions under way, ends the watches and closes the pool. It
// is idempotent.
func (s *Store) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.mu.Unlock()
	s.stop()
	s.running.Wait()
	s.hooks.close()
	s.pool.Close()
}

// enter registers a transaction or a watch under way; it fails after Close.
func (s *Store) enter() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	s.running.Add(1)
	return nil
}

// View runs fn in a read-only transaction on one snapshot (REPEATABLE READ READ ONLY:
// it never fails with a serialization error and never blocks a writer).
func (s *Store) View(ctx context.Context, fn func(cloud.Tx) error) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.running.Done()
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("pg: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	t := newTxn(ctx, tx, true)
	err = runSafe(fn, t)
	if t.err != nil {
		return t.err // a read failed: fn's outcome rests on a nil that was not "none"
	}
	if err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("pg: commit: %w", err)
	}
	return nil
}

// Update runs fn in a REPEATABLE READ transaction (see the package doc) and returns once it has committed (or
// failed), after its OnCommit hooks have run. A serialization failure or deadlock runs
// fn again (up to Options.Attempts, with jittered backoff); a fence of ctx that no longer
// holds fails with an error wrapping cloud.ErrFenced.
func (s *Store) Update(ctx context.Context, fn func(cloud.Tx) error) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.running.Done()
	fences := cloud.FencesOf(ctx)
	backoff := time.Millisecond
	for attempt := 1; ; attempt++ {
		err := s.attempt(ctx, fences, fn)
		if !retryable(err) || attempt >= s.attempts {
			if retryable(err) {
				return fmt.Errorf("pg: gave up after %d attempts: %w", attempt, err)
			}
			return err
		}
		s.stats.Retries.Add(1)
		// Full jitter: contenders spread out instead of colliding again in step.
		select {
		case <-time.After(rand.N(backoff) + time.Microsecond):
		case <-ctx.Done():
			return ctx.Err()
		}
		backoff = min(2*backoff, 100*time.Millisecond)
	}
}

// attempt runs fn once in its own transaction.
func (s *Store) attempt(ctx context.Context, fences []cloud.Fence, fn func(cloud.Tx) error) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		return fmt.Errorf("pg: begin: %w", err)
	}
	// Once COMMIT is sent its outcome must not hang on ctx: a cancelled ctx would leave
	// us not knowing whether it committed.
	end := context.WithoutCancel(ctx)
	defer tx.Rollback(end)
	t := newTxn(ctx, tx, false)
	err = runSafe(fn, t)
	if t.err != nil {
		return t.err // a read failed: fn's outcome rests on a nil that was not "none"
	}
	if err != nil {
		return err
	}
	if err := t.flush(fences); err != nil {
		if errors.Is(err, cloud.ErrFenced) {
			s.stats.Fenced.Add(1)
		}
		return err
	}
	ticket := s.hooks.take()
	cctx, cancel := context.WithTimeout(end, 30*time.Second)
	err = tx.Commit(cctx)
	cancel()
	if err != nil {
		s.hooks.finish(ticket, nil)
		return fmt.Errorf("pg: commit: %w", err)
	}
	s.stats.Commits.Add(1)
	<-s.hooks.finish(ticket, t.hooks)
	return nil
}

// retryable reports a serialization failure or deadlock, after which the whole
// transaction may run again.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// runSafe turns a panic in fn into an error, as cloud/bolt does.
func runSafe(fn func(cloud.Tx) error, t *txn) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &cloud.Error{Code: cloud.EInternal, Message: "internal error", Err: fmt.Errorf("panic: %v\n%s", p, debug.Stack())}
		}
	}()
	return fn(t)
}

var (
	_ cloud.Store   = (*Store)(nil)
	_ cloud.Watcher = (*Store)(nil)
)

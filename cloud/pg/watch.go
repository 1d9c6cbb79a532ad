package pg

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// watchChannel is the NOTIFY channel of larder_kv's trigger (migrations/0001_kv.sql).
const watchChannel = "larder_kv"

// Watch registers buckets as watched (larder_watched, which larder_kv's trigger reads)
// and listens for the trigger's notifications on a connection of its own: LISTEN belongs
// to one session, so it cannot come from the pool. It returns once it listens (an error
// means it does not), then calls fn from one goroutine for every write committed to one
// of buckets by any process, in commit order, until ctx ends or the store closes. A key
// too long for NOTIFY's payload comes as an empty key. When the connection is lost Watch
// reconnects (backing off up to 5 s) and then calls fn(bucket, "") for each of buckets,
// since writes made meanwhile were not announced.
func (s *Store) Watch(ctx context.Context, buckets []string, fn func(bucket, key string)) error {
	if err := s.enter(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.stopCtx, cancel)
	if _, err := s.pool.Exec(ctx, "INSERT INTO larder_watched (bucket) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING", buckets); err != nil {
		stop()
		cancel()
		s.running.Done()
		return fmt.Errorf("pg: watch: %w", err)
	}
	conn, err := s.listen(ctx)
	if err != nil {
		stop()
		cancel()
		s.running.Done()
		return err
	}
	watched := map[string]bool{}
	for _, b := range buckets {
		watched[b] = true
	}
	go func() {
		defer s.running.Done()
		defer stop()
		defer cancel()
		backoff := 100 * time.Millisecond
		for {
			err := deliver(ctx, conn, watched, fn)
			conn.Close(context.Background())
			if ctx.Err() != nil {
				return
			}
			_ = err // a lost connection: reconnect below
			for {
				select {
				case <-ctx.Done():
					return
				case <-time.After(backoff):
				}
				if conn, err = s.listen(ctx); err == nil {
					break
				}
				backoff = min(2*backoff, 5*time.Second)
			}
			backoff = 100 * time.Millisecond
			for _, b := range buckets {
				fn(b, "")
			}
		}
	}()
	return nil
}

// listen opens a connection outside the pool and LISTENs on the watch channel.
func (s *Store) listen(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.Connect(ctx, s.url)
	if err != nil {
		return nil, fmt.Errorf("pg: watch: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+watchChannel); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("pg: watch: %w", err)
	}
	return conn, nil
}

// deliver hands notifications to fn until the connection fails or ctx ends.
func deliver(ctx context.Context, conn *pgx.Conn, watched map[string]bool, fn func(bucket, key string)) error {
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		bucket, key, ok := strings.Cut(n.Payload, "/")
		if !ok {
			return errors.New("pg: watch: payload without a bucket")
		}
		if watched[bucket] {
			fn(bucket, key)
		}
	}
}

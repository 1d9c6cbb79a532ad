package notify_test

import (
	"context"
	"os"
	"testing"

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

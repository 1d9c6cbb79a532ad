package loadgen

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/larder-lockers/larder/internal/pgtest"
)

// TestMeasurePG commits a bounded number of one-row transactions on a real PostgreSQL
// and leaves no table behind.
func TestMeasurePG(t *testing.T) {
	url := pgtest.DB(t)
	ctx := context.Background()
	b, err := measurePG(ctx, url, 4, 200, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if b.Error != "" || b.Commits != 200 || b.PerSecond <= 0 || b.Latency == nil || b.Latency.N != 200 {
		t.Fatalf("baseline %+v", b)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE tablename LIKE 'larder_load_baseline_%'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d baseline tables left (%v)", n, err)
	}
}

func TestMeasurePGBadURL(t *testing.T) {
	if _, err := measurePG(context.Background(), "postgres://postgres@127.0.0.1:1/none?connect_timeout=2", 2, 10, time.Second); err == nil {
		t.Fatal("a store that is not there measured")
	}
}

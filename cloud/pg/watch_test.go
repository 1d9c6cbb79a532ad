package pg_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/internal/pgtest"
)

type seen struct {
	bucket, key string
}

// TestWatchAcrossStores: two Store values on one database (two replicas); a write
// through one reaches the other's Watch, for watched buckets only, and a lost listening
// connection is followed by one empty key per bucket.
func TestWatchAcrossStores(t *testing.T) {
	url := pgtest.DB(t)
	a, b := openURL(t, url), openURL(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := make(chan seen, 100)
	if err := b.Watch(ctx, []string{"sites", "comps"}, func(bucket, key string) { got <- seen{bucket, key} }); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("k", 8000)
	err := a.Update(ctx, func(tx cloud.Tx) error {
		tx.Put("orders", "o1", []byte("{}")) // not watched
		tx.Put("sites", "s1", []byte("{}"))
		tx.Put("comps", "s1/00001", []byte("{}"))
		tx.Put("comps", long, []byte("{}"))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	a.Update(ctx, func(tx cloud.Tx) error { return tx.Delete("sites", "s1") })
	want := []seen{{"comps", ""}, {"comps", "s1/00001"}, {"sites", "s1"}, {"sites", "s1"}}
	for i, w := range want {
		select {
		case g := <-got:
			if g != w {
				t.Fatalf("notification %d: %v, want %v", i, g, w)
			}
		case <-ctx.Done():
			t.Fatalf("notification %d (%v) not seen", i, w)
		}
	}

	// Kill the listening connection; the watch reconnects and says every bucket may have
	// changed.
	if _, err := a.Pool().Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'"); err != nil {
		t.Fatal(err)
	}
	resumed := map[string]bool{}
	for len(resumed) < 2 {
		select {
		case g := <-got:
			if g.key != "" {
				t.Fatalf("after the reconnect: %v before the empty keys", g)
			}
			resumed[g.bucket] = true
		case <-ctx.Done():
			t.Fatalf("no empty keys after the reconnect: %v", resumed)
		}
	}
	a.Update(ctx, func(tx cloud.Tx) error { return tx.Put("sites", "s2", []byte("{}")) })
	select {
	case g := <-got:
		if g != (seen{"sites", "s2"}) {
			t.Fatalf("after the reconnect: %v", g)
		}
	case <-ctx.Done():
		t.Fatal("no notification after the reconnect")
	}
}

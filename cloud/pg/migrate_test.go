package pg_test

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/larder-lockers/larder/cloud/pg"
	"github.com/larder-lockers/larder/internal/pgtest"
)

// TestMigrationsConcurrentOpen: replicas starting at once apply each migration once.
func TestMigrationsConcurrentOpen(t *testing.T) {
	url := pgtest.DB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	stores := make([]*pg.Store, 4)
	errs := make([]error, 4)
	for i := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = pg.Open(ctx, url, pg.Options{})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	rows, err := stores[0].Pool().Query(ctx, "SELECT version, name FROM larder_schema_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var v int
		var name string
		rows.Scan(&v, &name)
		got = append(got, name)
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	files, err := os.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(files) || got[0] != "kv" || got[1] != "leases" {
		t.Fatalf("migrations recorded: %v, want one for each of %d files", got, len(files))
	}
}

// TestMigrationsRefuseNewerDatabase: a database migrated by a newer binary is refused.
func TestMigrationsRefuseNewerDatabase(t *testing.T) {
	url := pgtest.DB(t)
	s := openURL(t, url)
	ctx := context.Background()
	if _, err := s.Pool().Exec(ctx, "INSERT INTO larder_schema_migrations (version, name) VALUES (9999, 'future')"); err != nil {
		t.Fatal(err)
	}
	_, err := pg.Open(ctx, url, pg.Options{})
	if err == nil || !strings.Contains(err.Error(), "9999") {
		t.Fatalf("open of a newer database: %v", err)
	}
}

package pg_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/larder-lockers/larder/cloud"
)

func TestFences(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	if _, err := s.Pool().Exec(ctx, `INSERT INTO larder_leases (name, owner, token, expires_at) VALUES
		('site/a', 'r1', 3, now() + interval '15 seconds'), ('work', 'r1', 7, now() + interval '15 seconds')`); err != nil {
		t.Fatal(err)
	}
	put := func(ctx context.Context, key string) error {
		return s.Update(ctx, func(tx cloud.Tx) error { return tx.Put("meta", key, []byte("x")) })
	}
	for _, c := range []struct {
		key    string
		fences []cloud.Fence
		fenced bool
	}{
		{"held", []cloud.Fence{{Name: "site/a", Token: 3}}, false},
		{"both", []cloud.Fence{{Name: "site/a", Token: 3}, {Name: "work", Token: 7}}, false},
		{"stale", []cloud.Fence{{Name: "site/a", Token: 2}}, true},
		{"one-stale", []cloud.Fence{{Name: "site/a", Token: 3}, {Name: "work", Token: 6}}, true},
		{"gone", []cloud.Fence{{Name: "site/b", Token: 1}}, true},
	} {
		err := put(cloud.WithFences(ctx, c.fences...), c.key)
		if errors.Is(err, cloud.ErrFenced) != c.fenced {
			t.Errorf("%s: err %v, want fenced %v", c.key, err, c.fenced)
		}
	}
	s.View(ctx, func(tx cloud.Tx) error {
		for key, want := range map[string]bool{"held": true, "both": true, "stale": false, "one-stale": false, "gone": false} {
			if (tx.Get("meta", key) != nil) != want {
				t.Errorf("%s written: %v, want %v", key, !want, want)
			}
		}
		return nil
	})
	if n := s.Stats().Fenced.Load(); n != 3 {
		t.Errorf("fenced counter %d, want 3", n)
	}
}

// TestFenceTakeoverDuringTransaction: another replica takes the lease over while a
// fenced transaction runs (after its snapshot was taken); the transaction must not commit.
func TestFenceTakeoverDuringTransaction(t *testing.T) {
	s := open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := s.Pool().Exec(ctx, `INSERT INTO larder_leases (name, owner, token, expires_at) VALUES ('site/a', 'r1', 1, now())`); err != nil {
		t.Fatal(err)
	}
	runs := 0
	err := s.Update(cloud.WithFences(ctx, cloud.Fence{Name: "site/a", Token: 1}), func(tx cloud.Tx) error {
		runs++
		tx.Get("meta", "x") // takes the snapshot
		if runs == 1 {
			if _, err := s.Pool().Exec(ctx, `UPDATE larder_leases SET owner = 'r2', token = token + 1 WHERE name = 'site/a'`); err != nil {
				t.Error(err)
			}
		}
		return tx.Put("meta", "x", []byte("late"))
	})
	if !errors.Is(err, cloud.ErrFenced) {
		t.Fatalf("err %v, want ErrFenced", err)
	}
	s.View(ctx, func(tx cloud.Tx) error {
		if tx.Get("meta", "x") != nil {
			t.Error("a fenced write committed")
		}
		return nil
	})
}

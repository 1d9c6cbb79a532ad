package bolt_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/cloud/bolt"
)

func open(t *testing.T, mode bolt.CommitMode) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "t.db"), bolt.Options{NoSync: true, Mode: mode})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Check(); err != nil {
			t.Errorf("consistency: %v", err)
		}
		db.Close()
	})
	return db
}

// TestGroupCommitIsolatesFailures runs many concurrent updates, some failing after
// writing, and checks that exactly the successful ones are visible and that hooks ran in
// commit order for successful ones only.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	for _, mode := range []bolt.CommitMode{bolt.GroupCommit, bolt.SingleCommit, bolt.BoltBatch} {
		t.Run(mode.String(), func(t *testing.T) {
			db := open(t, mode)
			ctx := context.Background()
			var mu sync.Mutex
			var hooked []int
			var wg sync.WaitGroup
			boom := errors.New("boom")
			for i := range 200 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					err := db.Update(ctx, func(tx cloud.Tx) error {
						// A shared counter: read-modify-write must serialise.
						n := 0
						if v := tx.Get("meta", "counter"); v != nil {
							n, _ = strconv.Atoi(string(v))
						}
						if err := tx.Put("meta", "counter", []byte(fmt.Sprint(n+1))); err != nil {
							return err
						}
						if err := tx.Put("orders", fmt.Sprintf("%04d", i), []byte("x")); err != nil {
							return err
						}
						tx.OnCommit(func() { mu.Lock(); hooked = append(hooked, i); mu.Unlock() })
						if i%3 == 0 {
							return boom
						}
						return nil
					})
					if (i%3 == 0) != errors.Is(err, boom) {
						t.Errorf("update %d: err %v", i, err)
					}
				}()
			}
			wg.Wait()
			var keys int
			var counter string
			db.View(ctx, func(tx cloud.Tx) error {
				counter = string(tx.Get("meta", "counter"))
				return tx.Scan("orders", "", func(k string, _ []byte) bool {
					i, _ := strconv.Atoi(k)
					if i%3 == 0 {
						t.Errorf("failed update %d is visible", i)
					}
					keys++
					return true
				})
			})
			want := 200 - 67
			if keys != want || counter != fmt.Sprint(want) || len(hooked) != want {
				t.Fatalf("keys %d counter %s hooks %d, want %d", keys, counter, len(hooked), want)
			}
		})
	}
}

func TestPanicIsAnError(t *testing.T) {
	db := open(t, bolt.GroupCommit)
	err := db.Update(context.Background(), func(tx cloud.Tx) error {
		tx.Put("meta", "a", []byte("1"))
		panic("bug")
	})
	if cloud.ErrorCode(err) != cloud.EInternal {
		t.Fatalf("err = %v", err)
	}
	db.View(context.Background(), func(tx cloud.Tx) error {
		if tx.Get("meta", "a") != nil {
			t.Error("write of a panicking update survived")
		}
		if tx.Put("meta", "b", nil) == nil {
			t.Error("write in a View accepted")
		}
		return nil
	})
}

func TestScanMayWrite(t *testing.T) {
	db := open(t, bolt.GroupCommit)
	ctx := context.Background()
	db.Update(ctx, func(tx cloud.Tx) error {
		for i := range 10 {
			tx.Put("due", fmt.Sprintf("p/%d", i), []byte("v"))
		}
		tx.Put("due", "q/1", []byte("v"))
		return nil
	})
	err := db.Update(ctx, func(tx cloud.Tx) error {
		return tx.Scan("due", "p/", func(k string, _ []byte) bool {
			tx.Delete("due", k)
			return true
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	db.View(ctx, func(tx cloud.Tx) error {
		n := 0
		tx.Scan("due", "", func(string, []byte) bool { n++; return true })
		if n != 1 {
			t.Errorf("%d keys left, want 1", n)
		}
		return nil
	})
}

func TestCloseIsIdempotentAndTimeoutSet(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	db, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// A second open of a locked file gives up after the timeout instead of hanging.
	if _, err := bolt.Open(path, bolt.Options{Timeout: 50e6}); err == nil {
		t.Fatal("second open of a locked file succeeded")
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Update(context.Background(), func(cloud.Tx) error { return nil }); !errors.Is(err, bolt.ErrClosed) {
		t.Fatalf("update after close: %v", err)
	}
}

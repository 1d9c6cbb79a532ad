package pg_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/cloud/pg"
	"github.com/larder-lockers/larder/internal/pgtest"
)

// open returns a store on a fresh database.
func open(t *testing.T) *pg.Store {
	t.Helper()
	return openURL(t, pgtest.DB(t))
}

func openURL(t *testing.T, url string) *pg.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := pg.Open(ctx, url, pg.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// TestConcurrentUpdatesIsolateFailures runs many concurrent updates of one counter,
// some failing after writing, and checks that exactly the successful ones are visible,
// that serialization failures were retried, and that hooks ran for successful ones only,
// in commit order (the counter's values).
func TestConcurrentUpdatesIsolateFailures(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	var mu sync.Mutex
	var hooked []int
	var wg sync.WaitGroup
	boom := errors.New("boom")
	const n = 60
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.Update(ctx, func(tx cloud.Tx) error {
				c := 0
				if v := tx.Get("meta", "counter"); v != nil {
					c, _ = strconv.Atoi(string(v))
				}
				if i%3 == 0 {
					// Fails after writing: nothing of it may stay.
					tx.Put("orders", fmt.Sprintf("%04d", i), []byte("x"))
					return boom
				}
				if err := tx.Put("meta", "counter", []byte(strconv.Itoa(c+1))); err != nil {
					return err
				}
				if err := tx.Put("orders", fmt.Sprintf("%04d", i), []byte("x")); err != nil {
					return err
				}
				tx.OnCommit(func() { mu.Lock(); hooked = append(hooked, c+1); mu.Unlock() })
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
	err := s.View(ctx, func(tx cloud.Tx) error {
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
	if err != nil {
		t.Fatal(err)
	}
	want := n - (n+2)/3
	if keys != want || counter != strconv.Itoa(want) || len(hooked) != want {
		t.Fatalf("keys %d counter %s hooks %d, want %d", keys, counter, len(hooked), want)
	}
	for i, c := range hooked {
		if c != i+1 {
			t.Fatalf("hooks ran out of commit order: %v", hooked)
		}
	}
	if s.Stats().Retries.Load() == 0 {
		t.Error("no serialization failure was retried: the test did not contend")
	}
	t.Logf("%d commits, %d retries", s.Stats().Commits.Load(), s.Stats().Retries.Load())
}

func TestPanicIsAnError(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	err := s.Update(ctx, func(tx cloud.Tx) error {
		tx.Put("meta", "a", []byte("1"))
		panic("bug")
	})
	if cloud.ErrorCode(err) != cloud.EInternal {
		t.Fatalf("err = %v", err)
	}
	s.View(ctx, func(tx cloud.Tx) error {
		if tx.Get("meta", "a") != nil {
			t.Error("write of a panicking update survived")
		}
		if !errors.Is(tx.Put("meta", "b", nil), cloud.ErrReadOnly) {
			t.Error("write in a View accepted")
		}
		if !errors.Is(tx.Delete("meta", "b"), cloud.ErrReadOnly) {
			t.Error("delete in a View accepted")
		}
		return nil
	})
}

// TestScanSeesOwnWritesAndMayWrite: Scan merges the transaction's buffered writes with
// the stored rows, in key order, on a snapshot taken when it starts.
func TestScanSeesOwnWritesAndMayWrite(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	err := s.Update(ctx, func(tx cloud.Tx) error {
		for i := range 300 { // more than one page
			tx.Put("due", fmt.Sprintf("p/%03d", i), []byte("v"))
		}
		tx.Put("due", "q/1", []byte("v"))
		tx.Put("due", "o/1", []byte("v"))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	err = s.Update(ctx, func(tx cloud.Tx) error {
		got = got[:0]
		tx.Delete("due", "p/001")                // a stored key, deleted
		tx.Put("due", "p/002", []byte("new"))    // a stored key, replaced
		tx.Put("due", "p/150x", []byte("added")) // a new key between stored ones
		tx.Put("due", "p/", []byte("first"))     // the prefix itself
		return tx.Scan("due", "p/", func(k string, v []byte) bool {
			got = append(got, k+"="+string(v))
			tx.Delete("due", k)
			tx.Put("due", "p/zzz", []byte("later")) // written during the scan: not seen by it
			return true
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 301 || got[0] != "p/=first" || got[1] != "p/000=v" || got[2] != "p/002=new" || !strings.HasPrefix(got[151], "p/150x=added") {
		t.Fatalf("scan saw %d keys: %v…", len(got), got[:min(5, len(got))])
	}
	var left []string
	s.View(ctx, func(tx cloud.Tx) error {
		return tx.Scan("due", "", func(k string, _ []byte) bool { left = append(left, k); return true })
	})
	if strings.Join(left, ",") != "o/1,p/zzz,q/1" {
		t.Errorf("left %v, want o/1 p/zzz q/1", left)
	}
}

func TestRangeAndGet(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	keys := []string{"a", "b/1", "b/2", "b\u00e9", "b\U0010FFFF", "c", "ü"}
	err := s.Update(ctx, func(tx cloud.Tx) error {
		for _, k := range keys {
			if err := tx.Put("audit", k, []byte(k)); err != nil {
				return err
			}
		}
		if tx.Put("audit", "bad\x00", nil) == nil || tx.Put("audit", "bad\xff", nil) == nil {
			t.Error("a key PostgreSQL text cannot hold was accepted")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	collect := func(fn func(tx cloud.Tx, f func(string, []byte) bool) error) string {
		var out []string
		if err := s.View(ctx, func(tx cloud.Tx) error {
			return fn(tx, func(k string, v []byte) bool {
				if k != string(v) {
					t.Errorf("%s = %s", k, v)
				}
				out = append(out, k)
				return true
			})
		}); err != nil {
			t.Fatal(err)
		}
		return strings.Join(out, ",")
	}
	for _, c := range []struct {
		name string
		fn   func(tx cloud.Tx, f func(string, []byte) bool) error
		want string
	}{
		{"scan b", func(tx cloud.Tx, f func(string, []byte) bool) error { return tx.Scan("audit", "b", f) }, "b/1,b/2,b\u00e9,b\U0010FFFF"},
		{"scan b/", func(tx cloud.Tx, f func(string, []byte) bool) error { return tx.Scan("audit", "b/", f) }, "b/1,b/2"},
		{"range b/2..c", func(tx cloud.Tx, f func(string, []byte) bool) error { return tx.Range("audit", "b/2", "c", f) }, "b/2,b\u00e9,b\U0010FFFF"},
		{"range c..", func(tx cloud.Tx, f func(string, []byte) bool) error { return tx.Range("audit", "c", "", f) }, "c,ü"},
		{"other bucket", func(tx cloud.Tx, f func(string, []byte) bool) error { return tx.Scan("orders", "", f) }, ""},
	} {
		if got := collect(c.fn); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
	s.View(ctx, func(tx cloud.Tx) error {
		if string(tx.Get("audit", "c")) != "c" || tx.Get("audit", "d") != nil || tx.Get("orders", "c") != nil {
			t.Error("Get")
		}
		return nil
	})
}

func TestCloseIsIdempotent(t *testing.T) {
	s := openURL(t, pgtest.DB(t))
	s.Close()
	s.Close()
	if err := s.Update(context.Background(), func(cloud.Tx) error { return nil }); !errors.Is(err, pg.ErrClosed) {
		t.Fatalf("update after close: %v", err)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	ctx := context.Background()
	s, err := pg.Open(ctx, pgtest.DB(t), pg.Options{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Update(ctx, func(tx cloud.Tx) error { return tx.Put("meta", "k", []byte("v")) }); err != nil {
		t.Fatal(err)
	}
	got, err := testutil.GatherAndCount(reg, "larder_pg_commits_total", "larder_pg_retries_total", "larder_pg_fenced_total")
	if err != nil || got != 3 {
		t.Fatalf("%d metrics, %v", got, err)
	}
	want := "# HELP larder_pg_commits_total Read-write transactions committed by the PostgreSQL store.\n# TYPE larder_pg_commits_total counter\nlarder_pg_commits_total 1\n"
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "larder_pg_commits_total"); err != nil {
		t.Error(err)
	}
}

// TestEmptyValueIsPresent: the domain's index entries have empty values and are
// tested with Get != nil, as under bbolt.
func TestEmptyValueIsPresent(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	if err := s.Update(ctx, func(tx cloud.Tx) error {
		if err := tx.Put("live", "s/o1", nil); err != nil {
			return err
		}
		if tx.Get("live", "s/o1") == nil {
			t.Error("buffered empty value reads as absent")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	s.View(ctx, func(tx cloud.Tx) error {
		if v := tx.Get("live", "s/o1"); v == nil || len(v) != 0 {
			t.Errorf("stored empty value: %v", v)
		}
		tx.Scan("live", "s/", func(_ string, v []byte) bool {
			if v == nil {
				t.Error("scanned empty value is nil")
			}
			return true
		})
		return nil
	})
}

// TestFailedReadFailsTheTransaction: a Get whose connection died cannot return its
// error; the transaction must fail anyway, even when fn ignores the nil and succeeds.
func TestFailedReadFailsTheTransaction(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	err := s.Update(ctx, func(tx cloud.Tx) error {
		var pid int
		if err := tx.(interface{ Pgx() pgx.Tx }).Pgx().QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
			return err
		}
		if _, err := s.Pool().Exec(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
			return err
		}
		if tx.Get("meta", "x") != nil {
			t.Error("a failed Get returned a value")
		}
		if err := tx.Put("meta", "x", []byte("v")); err == nil {
			t.Error("Put after a failed read succeeded")
		}
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "get meta/x") {
		t.Fatalf("err %v, want the failed get", err)
	}
}

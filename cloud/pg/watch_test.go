package pg_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/cloud/pg"
	"github.com/larder-lockers/larder/internal/pgtest"
)

type seen struct {
	bucket, key string
}

// next returns the next change got reports, failing t when none comes before ctx ends.
func next(t *testing.T, ctx context.Context, got <-chan seen, what string) seen {
	t.Helper()
	select {
	case g := <-got:
		return g
	case <-ctx.Done():
		t.Fatalf("%s: not seen", what)
		return seen{}
	}
}

// TestWatchAcrossStores: two Store values on one database (two replicas); a write
// through one reaches the other's Watch, for watched buckets only, in commit order; the
// watch's connections killed, writes made meanwhile still arrive, without an empty key.
func TestWatchAcrossStores(t *testing.T) {
	url := pgtest.DB(t)
	a, b := openURL(t, url), openURL(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := make(chan seen, 100)
	if err := b.StartWatch(ctx, []string{"sites", "comps"}, func(bucket, key string) { got <- seen{bucket, key} }); err != nil {
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
	if err := a.Update(ctx, func(tx cloud.Tx) error { return tx.Delete("sites", "s1") }); err != nil {
		t.Fatal(err)
	}
	want := []seen{{"comps", ""}, {"comps", "s1/00001"}, {"sites", "s1"}, {"sites", "s1"}}
	for i, w := range want {
		if g := next(t, ctx, got, fmt.Sprintf("change %d (%v)", i, w)); g != w {
			t.Fatalf("change %d: %v, want %v", i, g, w)
		}
	}

	// Kill every other connection to the database, the watch's included, and write at
	// once: the change is in the feed, read when the watch's pool has reconnected.
	if _, err := a.Pool().Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"); err != nil {
		t.Fatal(err)
	}
	if err := a.Update(ctx, func(tx cloud.Tx) error { return tx.Put("sites", "s2", []byte("{}")) }); err != nil {
		t.Fatal(err)
	}
	if g := next(t, ctx, got, "the write after the connections were killed"); g != (seen{"sites", "s2"}) {
		t.Fatalf("after the connections were killed: %v, want sites/s2", g)
	}
}

// TestWatchConcurrentWriters: every committed write of many concurrent transactions is
// reported exactly once, a key written by all of them once per commit.
func TestWatchConcurrentWriters(t *testing.T) {
	url := pgtest.DB(t)
	a, b := openURL(t, url), openURL(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var mu sync.Mutex
	counts := map[seen]int{}
	if err := b.StartWatch(ctx, []string{"sites"}, func(bucket, key string) {
		mu.Lock()
		counts[seen{bucket, key}]++
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	// A hot key written by every transaction: some give up after their attempts
	// (serialization failures); what committed is what must be reported.
	const writers, each = 8, 20
	var (
		wg        sync.WaitGroup
		committed sync.Mutex
		want      = map[seen]int{}
	)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				k := seen{"sites", fmt.Sprintf("w%d-%d", w, i)}
				err := a.Update(ctx, func(tx cloud.Tx) error {
					n := len(tx.Get("sites", "hot"))
					tx.Put("sites", "hot", make([]byte, n+1))
					return tx.Put(k.bucket, k.key, []byte("{}"))
				})
				if err == nil {
					committed.Lock()
					want[k] = 1
					want[seen{"sites", "hot"}]++
					committed.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if hot := want[seen{"sites", "hot"}]; hot < writers*each/2 {
		t.Fatalf("only %d of %d transactions committed", hot, writers*each)
	}
	for {
		mu.Lock()
		n := counts[seen{"sites", "hot"}]
		done := len(counts) == len(want) && n == want[seen{"sites", "hot"}]
		mu.Unlock()
		if done {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("%d keys reported, want %d; hot %d times, want %d", len(counts), len(want), n, want[seen{"sites", "hot"}])
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // a duplicate would come within a few polls
	mu.Lock()
	defer mu.Unlock()
	for k, n := range counts {
		if n != want[k] {
			t.Errorf("%v reported %d times, want %d", k, n, want[k])
		}
	}
}

// TestWatchSeesWriterKilledAfterCommit: a replica SIGKILLed right after its commit
// returned. Its change commits with its data, so the watch of another replica reports it;
// nothing waited for the dead process to announce it.
func TestWatchSeesWriterKilledAfterCommit(t *testing.T) {
	if url := os.Getenv("LARDER_PG_KILLED_WRITER"); url != "" {
		// The child: commit, then die before anything else can run.
		s, err := pg.Open(context.Background(), url, pg.Options{})
		if err == nil {
			err = s.Update(context.Background(), func(tx cloud.Tx) error { return tx.Put("sites", "from-the-dead", []byte("{}")) })
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
	url := pgtest.DB(t)
	b := openURL(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := make(chan seen, 10)
	if err := b.StartWatch(ctx, []string{"sites"}, func(bucket, key string) { got <- seen{bucket, key} }); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestWatchSeesWriterKilledAfterCommit$")
	cmd.Env = append(os.Environ(), "LARDER_PG_KILLED_WRITER="+url)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the writer did not die of SIGKILL: %v\n%s", err, out)
	}
	if g := next(t, ctx, got, "the killed writer's change"); g != (seen{"sites", "from-the-dead"}) {
		t.Fatalf("got %v, want sites/from-the-dead", g)
	}
}

// TestWatchAfterLongGap: a watch that could not read the feed for half of what the feed
// keeps says that anything may have changed (an empty key per bucket), then goes on;
// the feed's old changes are deleted.
func TestWatchAfterLongGap(t *testing.T) {
	url := pgtest.DB(t)
	a, b := openURL(t, url), openURL(t, url)
	const keep = 2 * time.Second
	b.SetKeepChanges(keep)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := make(chan seen, 100)
	if err := b.StartWatch(ctx, []string{"sites", "comps"}, func(bucket, key string) { got <- seen{bucket, key} }); err != nil {
		t.Fatal(err)
	}
	if err := a.Update(ctx, func(tx cloud.Tx) error { return tx.Put("sites", "s1", []byte("{}")) }); err != nil {
		t.Fatal(err)
	}
	if g := next(t, ctx, got, "the first write"); g != (seen{"sites", "s1"}) {
		t.Fatalf("got %v, want sites/s1", g)
	}
	// Block the feed's readers (and writers) for longer than keep/2.
	lock, err := a.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Exec(ctx, "LOCK TABLE larder_changes IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(keep/2 + keep/4)
	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	resumed := map[string]bool{}
	for len(resumed) < 2 {
		g := next(t, ctx, got, "an empty key per bucket after the gap")
		if g.key != "" {
			t.Fatalf("after the gap: %v before the empty keys", g)
		}
		resumed[g.bucket] = true
	}
	if err := a.Update(ctx, func(tx cloud.Tx) error { return tx.Put("sites", "s2", []byte("{}")) }); err != nil {
		t.Fatal(err)
	}
	if g := next(t, ctx, got, "the write after the gap"); g != (seen{"sites", "s2"}) {
		t.Fatalf("after the gap: %v, want sites/s2", g)
	}
	// Older than keep: deleted by the watch's pruning.
	for {
		var n int
		if err := a.Pool().QueryRow(ctx, "SELECT count(*) FROM larder_changes").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("%d changes still in the feed", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

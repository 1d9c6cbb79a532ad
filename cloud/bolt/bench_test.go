package bolt_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/cloud/bolt"
	"github.com/larder-lockers/larder/cloud/notify"
	"github.com/larder-lockers/larder/protocol"
)

// benchDir is where benchmark databases live: a real disk (fsync must cost what it
// costs), LARDER_BENCH_DIR or the system temp dir.
func benchDir(tb testing.TB) string {
	base := os.Getenv("LARDER_BENCH_DIR")
	dir, err := os.MkdirTemp(base, "larder-bench-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// rawCommitRate measures bbolt's own single-write commit rate (two fsyncs each): the
// baseline every figure is compared with.
func rawCommitRate(tb testing.TB, n int) float64 {
	db, err := bbolt.Open(filepath.Join(benchDir(tb), "raw.db"), 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	start := time.Now()
	for i := range n {
		err := db.Update(func(tx *bbolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("b"))
			if err != nil {
				return err
			}
			return b.Put(fmt.Appendf(nil, "%08d", i), make([]byte, 512))
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	return float64(n) / time.Since(start).Seconds()
}

type benchEnv struct {
	svc   *cloud.Service
	db    *bolt.DB
	sites []string
	plat  cloud.Principal
	seq   atomic.Int64
	start time.Time
}

// newBenchEnv opens a durable store in mode and creates enough sites (200 compartments
// each) to hold capacity orders.
func newBenchEnv(tb testing.TB, mode bolt.CommitMode, capacity int) *benchEnv {
	return newBenchEnvOpts(tb, bolt.Options{Mode: mode}, capacity)
}

func newBenchEnvOpts(tb testing.TB, opt bolt.Options, capacity int) *benchEnv {
	db, err := bolt.Open(filepath.Join(benchDir(tb), "cloud.db"), opt)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	e := &benchEnv{db: db, svc: cloud.New(cloud.Options{Store: db}), plat: cloud.Principal{Role: cloud.RolePlatform, Subject: "bench"}, start: time.Now()}
	admin := cloud.Principal{Role: cloud.RoleAdmin, Subject: "bench"}
	var comps []protocol.Compartment
	for i := range 200 {
		comps = append(comps, protocol.Compartment{Number: i + 1, Size: []protocol.Size{protocol.SizeS, protocol.SizeM, protocol.SizeL}[i%3],
			Zone: []protocol.Zone{protocol.ZoneChilled, protocol.ZoneAmbient}[i%2], HeightCM: 30 + (i%6)*30, Lock: i % 16, Board: i / 16})
	}
	ctx := context.Background()
	for i := range capacity/180 + 1 {
		id := fmt.Sprintf("bench-%03d", i)
		if _, err := e.svc.CreateSite(ctx, admin, cloud.SiteInput{ID: id}); err != nil {
			tb.Fatal(err)
		}
		if _, err := e.svc.ApplyBirth(ctx, id, time.Now(), protocol.Birth{Software: "bench", Compartments: comps}); err != nil {
			tb.Fatal(err)
		}
		e.sites = append(e.sites, id)
	}
	return e
}

// withNotify wires cloud/notify's durable outbox (sealed, in the same bbolt file) as
// the service's Notifier and runs the service loop, as cloudd does: every order then
// also writes its "created" notice.
func (e *benchEnv) withNotify(tb testing.TB) *notify.BoltQueue {
	q, err := notify.NewBoltQueue(e.db.Bolt(), "notify", make([]byte, 32))
	if err != nil {
		tb.Fatal(err)
	}
	e.svc.SetPorts(nil, nil, &notify.Notifier{Outbox: q})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.svc.Run(ctx, time.Hour) }()
	tb.Cleanup(func() { cancel(); <-done })
	return q
}

// order creates, assigns and codes one order, durably.
func (e *benchEnv) order(ctx context.Context) error {
	n := e.seq.Add(1)
	now := time.Now()
	req := cloud.OrderRequest{ExternalID: fmt.Sprintf("ext-%d", n), Site: e.sites[int(n)%len(e.sites)],
		Recipient: cloud.Recipient{Phone: "+8613800138000"},
		Parcels:   []cloud.Parcel{{Size: protocol.SizeS, Zone: []protocol.Zone{protocol.ZoneChilled, protocol.ZoneAmbient}[(n/int64(len(e.sites)))%2]}},
		Window:    cloud.Window{Start: now.Add(time.Hour), End: now.Add(3 * time.Hour)}}
	_, err := e.svc.CreateOrder(ctx, e.plat, fmt.Sprintf("idem-%d", n), req)
	return err
}

// throughput runs total orders with clients concurrent callers and returns orders/s.
func (e *benchEnv) throughput(tb testing.TB, clients, total int) float64 {
	ctx := context.Background()
	var wg sync.WaitGroup
	var left atomic.Int64
	left.Store(int64(total))
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Add(-1) >= 0 {
				if err := e.order(ctx); err != nil {
					tb.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return float64(total) / time.Since(start).Seconds()
}

// paced issues orders at rate per second for d and returns the latency percentiles.
func (e *benchEnv) paced(tb testing.TB, rate int, d time.Duration) (p50, p99, max time.Duration) {
	ctx := context.Background()
	n := int(d.Seconds() * float64(rate))
	lat := make([]time.Duration, n)
	var wg sync.WaitGroup
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	for i := range n {
		// Open loop: each order starts at its scheduled time whatever the others do, so
		// slow commits show up as latency instead of a lower rate.
		time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.Now()
			if err := e.order(ctx); err != nil {
				tb.Error(err)
			}
			lat[i] = time.Since(t)
		}()
	}
	wg.Wait()
	slices.Sort(lat)
	return lat[n/2], lat[n*99/100], lat[n-1]
}

// TestBenchOrders is the figure `make bench` reports (LARDER_BENCH=1): orders created,
// assigned and given a code per second on a durable store, next to the raw bbolt
// single-commit rate measured in the same run, for each commit mode; and the latency at
// a paced 500 orders/s.
func TestBenchOrders(t *testing.T) {
	if os.Getenv("LARDER_BENCH") == "" {
		t.Skip("set LARDER_BENCH=1 (make bench)")
	}
	const clients, total = 128, 6000
	raw := rawCommitRate(t, 2000)
	fmt.Printf("raw bbolt single-write commits (baseline): %8.0f /s\n", raw)
	for _, mode := range []bolt.CommitMode{bolt.GroupCommit, bolt.BoltBatch, bolt.SingleCommit} {
		n := total
		if mode == bolt.SingleCommit {
			n = total / 3
		}
		e := newBenchEnv(t, mode, n)
		rate := e.throughput(t, clients, n)
		st := e.db.Stats()
		detail := ""
		if c := st.Commits.Load(); c > 0 {
			detail = fmt.Sprintf(" (%.1f orders/commit, run %v + commit %v per group)", float64(st.Updates.Load())/float64(c),
				time.Duration(st.RunNanos.Load()/c).Round(time.Microsecond), time.Duration(st.SyncNanos.Load()/c).Round(time.Microsecond))
		}
		fmt.Printf("orders created+assigned+coded, %-10s %d clients: %8.0f /s = %.2f × raw commits%s\n", mode.String()+",", clients, rate, rate/raw, detail)
	}
	e := newBenchEnv(t, bolt.GroupCommit, total)
	q := e.withNotify(t)
	start := time.Now()
	e.throughput(t, clients, total)
	waitNotices(t, q, total) // a rate counts only orders whose notice is durable too
	rate := float64(total) / time.Since(start).Seconds()
	fmt.Printf("orders created+assigned+coded, group + notify outbox, %d clients: %8.0f /s = %.2f × raw commits (until every notice is in the outbox)\n", clients, rate, rate/raw)
	for _, notes := range []bool{false, true} {
		e := newBenchEnv(t, bolt.GroupCommit, 2000)
		what := "group commit"
		if notes {
			e.withNotify(t)
			what = "group commit + notify outbox"
		}
		p50, p99, max := e.paced(t, 500, 4*time.Second)
		fmt.Printf("paced 500 orders/s for 4 s (%s): p50 %v, p99 %v, max %v (target p99 < 25ms; one raw commit = %v)\n", what,
			p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond), max.Round(10*time.Microsecond), (time.Duration(float64(time.Second) / raw)).Round(10*time.Microsecond))
	}
}

// waitNotices waits until the outbox holds want pending notices (the notices of every
// order made it to the durable queue).
func waitNotices(tb testing.TB, q *notify.BoltQueue, want int) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := q.Stats(context.Background())
		if err != nil {
			tb.Fatal(err)
		}
		if st.Pending >= want {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("outbox holds %d notices, want %d", st.Pending, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkCreateOrder is the same work under Go's benchmark harness (b.N orders from
// GOMAXPROCS×16 goroutines), reported as orders/s with the raw commit rate of the same
// run as a ratio.
func BenchmarkCreateOrder(b *testing.B) {
	raw := rawCommitRate(b, 500)
	for _, mode := range []bolt.CommitMode{bolt.GroupCommit, bolt.BoltBatch} {
		b.Run(mode.String(), func(b *testing.B) {
			e := newBenchEnv(b, mode, b.N+100)
			b.SetParallelism(16)
			ctx := context.Background()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := e.order(ctx); err != nil {
						b.Error(err)
						return
					}
				}
			})
			rate := float64(b.N) / b.Elapsed().Seconds()
			b.ReportMetric(rate, "orders/s")
			b.ReportMetric(rate/raw, "x_raw_commit")
		})
	}
}

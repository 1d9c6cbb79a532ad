package bolt_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/larder-lockers/larder/cloud/bolt"
	"github.com/larder-lockers/larder/cloud/bolt/benchfleet"
)

// The targets of the order figures, as ratios measured in the same run.

// viaDomain orders through the domain (cloud.Service.CreateOrder).
func viaDomain(_ testing.TB, e *benchfleet.Env) (benchfleet.Orderer, func()) {
	return func(ctx context.Context) error { _, err := e.Order(ctx); return err }, func() {}
}

// TestBenchOrders is the figure `make bench` reports (LARDER_BENCH=1): orders created,
// assigned and given a code per second through the domain and the durable store with the
// notify outbox, at 10,000 sites, on a fleet with 1,000 orders stored and one with
// 100,000 (LARDER_BENCH_STORED); next to raw batched bbolt commits of the same number of
// writes, the growth between the two, the commit modes, and the latency of a paced 500
// orders/s. It fails when a target is missed. The two fleets stay open for the whole run, as
// a cloud keeps its store, and are measured in alternating rounds; each figure is the
// median of its rounds (benchfleet.Rounds). cloud/http's TestBenchOrdersHTTP is the same through the
// API.
func TestBenchOrders(t *testing.T) {
	if os.Getenv("LARDER_BENCH") == "" {
		t.Skip("set LARDER_BENCH=1 (make bench)")
	}
	const sites, clients, rounds, perRound = 10_000, 128, 5, 2000
	seed := time.Now()
	small, large := benchfleet.New(t, 24), benchfleet.New(t, 24)
	small.Grow(t, sites, 1000)
	large.Grow(t, sites, benchfleet.LargeStored(t))
	fmt.Printf("fleets: %d sites of %d compartments, with %d and %d orders stored (%d live), seeded in %v (%.1f domain writes per order)\n",
		sites, len(large.Comps), small.Stored, large.Stored, large.Live, time.Since(seed).Round(time.Second), large.PerOrder)
	stored := [2]int{small.Stored, large.Stored}

	figs := benchfleet.Rounds(t, []*benchfleet.Fleet{small, large}, viaDomain, clients, rounds, perRound)
	lo, hi := figs[0], figs[1]
	perOrder := large.PerOrder + benchfleet.NotifyWrites
	raw := benchfleet.RawBatchedRate(t, rounds*perRound, perOrder, int(hi.Group+0.5), 128)
	for i, f := range []benchfleet.Figure{lo, hi} {
		fmt.Printf("orders created+assigned+coded (+notice), %d sites, %7d stored: %6.0f /s, %4.1f pages written per order (median of %d rounds of %d orders, %d clients)\n",
			sites, stored[i], f.Rate, f.Pages, rounds, perRound, clients)
	}
	fmt.Printf("  = %.2f × raw batched bbolt commits of the same writes (%.0f /s: %.0f writes per order, %.0f orders per commit; target ≥ %.2f ×)\n",
		hi.Rate/raw, raw, perOrder, hi.Group, benchfleet.VsRaw)
	growth := hi.Rate / lo.Rate
	fmt.Printf("growth from %d to %d stored orders: %.2f × the rate (target ≥ %.2f ×), %.2f × the pages written\n", stored[0], stored[1], growth, benchfleet.Growth, hi.Pages/lo.Pages)

	for _, mode := range []bolt.CommitMode{bolt.BoltBatch, bolt.SingleCommit} {
		e := large.OpenMode(t, false, mode)
		n := 1000
		if mode == bolt.SingleCommit {
			n = 300
		}
		order, _ := viaDomain(t, e)
		rate := benchfleet.Throughput(t, clients, n, order)
		large.Done(t, e)
		fmt.Printf("orders created+assigned+coded (+notice), %-10s %d clients: %6.0f /s = %.2f × group commit\n", mode.String()+",", clients, rate, rate/hi.Rate)
	}

	e := large.Open(t, false)
	order, _ := viaDomain(t, e)
	lat := benchfleet.Paced(t, benchfleet.Rate, benchfleet.PacedOrders, order)
	large.Done(t, e)
	p50, p99 := benchfleet.Percentile(lat, 50), benchfleet.Percentile(lat, 99)
	fmt.Printf("paced %d orders/s (%d orders, %d sites, %d stored, notify outbox): p50 %v, p99 %v, max %v (target p99 < %v)\n",
		benchfleet.Rate, benchfleet.PacedOrders, sites, stored[1], p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond), lat[len(lat)-1].Round(10*time.Microsecond), benchfleet.P99)

	if hi.Rate < benchfleet.VsRaw*raw {
		t.Errorf("orders: %.0f /s, %.2f × raw batched commits; want ≥ %.2f ×", hi.Rate, hi.Rate/raw, benchfleet.VsRaw)
	}
	if growth < benchfleet.Growth {
		t.Errorf("growth: %.2f × the rate from %d to %d stored orders; want ≥ %.2f ×", growth, stored[0], stored[1], benchfleet.Growth)
	}
	if p99 >= benchfleet.P99 {
		t.Errorf("paced %d/s: p99 %v; want < %v", benchfleet.Rate, p99, benchfleet.P99)
	}
}

// BenchmarkCreateOrder is the same work under Go's benchmark harness (b.N orders from
// GOMAXPROCS×16 goroutines, durable, with the notify outbox) on one fleet grown in place:
// 1k sites with 1k stored orders, 10k sites with 1k, 10k sites with 100k. Profile it
// (-cpuprofile, -blockprofile, -mutexprofile) to see what an order costs as the fleet
// grows.
func BenchmarkCreateOrder(b *testing.B) {
	f := benchfleet.New(b, 24)
	for _, size := range []struct{ sites, stored int }{{1000, 1000}, {10_000, 1000}, {10_000, 100_000}} {
		f.Grow(b, size.sites, size.stored)
		b.Run(fmt.Sprintf("sites=%d/stored=%d", len(f.Sites), f.Stored), func(b *testing.B) {
			e := f.Open(b, false)
			defer f.Done(b, e)
			b.SetParallelism(16)
			ctx := context.Background()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := e.Order(ctx); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
		})
	}
}

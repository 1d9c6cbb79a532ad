package cloud_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/cloud/bolt"
)

// TestBenchReports measures the reports' per-request scan at 100,000 stored orders (10
// sites, 2 platforms, 30 days), run by `make bench` (LARDER_BENCH=1):
//
//	LARDER_BENCH=1 go test -count=1 -run TestBenchReports -v ./cloud/
//
// It prints each report's time next to the floor measured in the same run: the bare
// walk of the same keys in one read transaction, decoding nothing. Targets: a site's
// month (10,000 orders) within 250 ms, the whole fleet's month (100,000) within 2.5 s.
func TestBenchReports(t *testing.T) {
	if os.Getenv("LARDER_BENCH") == "" {
		t.Skip("LARDER_BENCH=1 (make bench) runs the report benchmark")
	}
	db, err := bolt.Open(filepath.Join(t.TempDir(), "cloud.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	end := start.Add(30 * 24 * time.Hour)
	svc := cloud.New(cloud.Options{Store: db, Now: func() time.Time { return end }})
	var sites []string
	for i := range 10 {
		sites = append(sites, fmt.Sprintf("yard-%02d", i))
	}
	const n = 100000
	if err := svc.SeedOrders(t.Context(), n, sites, []string{"veggie", "fruity"}, start, end.Sub(start)); err != nil {
		t.Fatal(err)
	}
	ops := cloud.Principal{Role: cloud.RoleOps, Subject: "bench"}
	median := func(fn func()) time.Duration {
		var ds []time.Duration
		for range 5 {
			t0 := time.Now()
			fn()
			ds = append(ds, time.Since(t0))
		}
		slices.Sort(ds)
		return ds[2]
	}
	floor := func(bucket, from, to string) time.Duration {
		return median(func() {
			db.View(t.Context(), func(tx cloud.Tx) error {
				return tx.Range(bucket, from, to, func(string, []byte) bool { return true })
			})
		})
	}
	key := func(t time.Time) string { return fmt.Sprintf("ord_%012x", t.UnixMilli()) }
	day := start.Add(24 * time.Hour)
	for _, c := range []struct {
		what   string
		f      cloud.ReportFilter
		orders int
		floor  time.Duration
		target time.Duration
	}{
		{"fleet, 30 days", cloud.ReportFilter{From: start, To: end}, n, floor("orders", "ord_", "ord_~"), 2500 * time.Millisecond},
		{"one site, 30 days", cloud.ReportFilter{From: start, To: end, Site: "yard-03"}, n / 10, floor("by_site", "yard-03/", "yard-03/~"), 250 * time.Millisecond},
		{"one platform, 30 days", cloud.ReportFilter{From: start, To: end, Platform: "veggie"}, n / 2, floor("by_plat", "veggie/", "veggie/~"), 1500 * time.Millisecond},
		{"fleet, 1 day", cloud.ReportFilter{From: day, To: day.Add(24 * time.Hour)}, n / 30, floor("orders", key(day), key(day.Add(24*time.Hour))), 250 * time.Millisecond},
	} {
		var rows int
		got := median(func() {
			r, err := svc.Report(t.Context(), ops, cloud.ReportOrders, c.f)
			if err != nil {
				t.Fatal(err)
			}
			rows = 0
			for _, row := range r.Rows {
				rows += row[2].(int)
			}
		})
		if rows < c.orders*99/100 || rows > c.orders*101/100 {
			t.Fatalf("%s: the report counted %d orders, want about %d", c.what, rows, c.orders)
		}
		t.Logf("orders report, %-22s %6d orders: %8.1f ms (%.1f µs/order); key walk floor %6.1f ms",
			c.what, rows, ms(got), float64(got.Microseconds())/float64(rows), ms(c.floor))
		if got > c.target {
			t.Errorf("%s: %v, target %v", c.what, got, c.target)
		}
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

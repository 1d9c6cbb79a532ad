package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/cloud/bolt/benchfleet"
	lhttp "github.com/larder-lockers/larder/cloud/http"
)

// The targets of issue 10 for orders over HTTP, as same-run ratios where they can be.

// viaHTTP serves the API of e over loopback as cloudd does (its router, metrics
// registry and API-key authentication) and orders with POST /v1/orders as a platform,
// each order on a kept-alive connection of the client's pool.
func viaHTTP(tb testing.TB, e *benchfleet.Env) (benchfleet.Orderer, func()) {
	ctx := context.Background()
	_, key, err := e.Svc.CreateKey(ctx, cloud.Principal{Role: cloud.RoleAdmin, Subject: "bench"},
		cloud.KeyInput{Role: cloud.RolePlatform, Subject: e.Plat.Subject})
	if err != nil {
		tb.Fatal(err)
	}
	api := lhttp.New(lhttp.Options{Service: e.Svc, Registry: prometheus.NewRegistry()})
	srv := httptest.NewServer(api) // 127.0.0.1
	client := &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512, IdleConnTimeout: time.Minute}}
	order := func(ctx context.Context) error {
		idem, req := e.Request()
		body, err := json.Marshal(req)
		if err != nil {
			return err
		}
		r, err := http.NewRequestWithContext(ctx, "POST", srv.URL+"/v1/orders", bytes.NewReader(body))
		if err != nil {
			return err
		}
		r.Header.Set("Authorization", "Bearer "+key)
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Idempotency-Key", idem)
		resp, err := client.Do(r)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		got, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("POST /v1/orders: %s: %s", resp.Status, got)
		}
		return nil
	}
	return order, func() {
		client.CloseIdleConnections()
		srv.Close()
	}
}

// TestBenchOrdersHTTP is issue 10's order figure (LARDER_BENCH=1, make bench): orders
// over HTTP (authentication, idempotency, the notify outbox) through the real API and
// the durable bbolt store, at 10,000 sites, on a fleet with 1,000 orders stored and one
// with 100,000 (LARDER_BENCH_STORED, e.g. 1000000; beyond 100,000 live the rest are
// cancelled history), next to raw batched bbolt commits of the same writes in the same
// run, and the latency of 500 orders/s paced. Both fleets stay open for the whole run, as
// a cloud keeps its store, and are measured in alternating rounds; each figure is the
// median of its rounds (benchfleet.Rounds). It fails when a target is missed.
func TestBenchOrdersHTTP(t *testing.T) {
	if os.Getenv("LARDER_BENCH") == "" {
		t.Skip("set LARDER_BENCH=1 (make bench)")
	}
	const sites, clients, rounds, perRound = 10_000, 128, 5, 2000
	seed := time.Now()
	small, large := benchfleet.New(t, 24), benchfleet.New(t, 24)
	small.Grow(t, sites, 1000)
	large.Grow(t, sites, benchfleet.LargeStored(t))
	fmt.Printf("fleets: %d sites of %d compartments, with %d and %d orders stored (%d live), seeded in %v\n",
		sites, len(large.Comps), small.Stored, large.Stored, large.Live, time.Since(seed).Round(time.Second))
	stored := [2]int{small.Stored, large.Stored}

	figs := benchfleet.Rounds(t, []*benchfleet.Fleet{small, large}, viaHTTP, clients, rounds, perRound)
	lo, hi := figs[0], figs[1]
	perOrder := large.PerOrder + benchfleet.NotifyWrites
	raw := benchfleet.RawBatchedRate(t, rounds*perRound, perOrder, int(hi.Group+0.5), 128)
	for i, f := range []benchfleet.Figure{lo, hi} {
		fmt.Printf("orders over HTTP (auth, idempotency, notify outbox), %d sites, %7d stored: %6.0f /s, %4.1f pages written per order, %.0f orders per commit (median of %d rounds of %d, %d clients)\n",
			sites, stored[i], f.Rate, f.Pages, f.Group, rounds, perRound, clients)
	}
	fmt.Printf("  = %.2f × raw batched bbolt commits of the same writes (%.0f /s: %.0f writes per order, %.0f orders per commit; target ≥ %.2f ×, 2000 /s on the reference machine)\n",
		hi.Rate/raw, raw, perOrder, hi.Group, benchfleet.VsRaw)
	growth := hi.Rate / lo.Rate
	fmt.Printf("growth from %d to %d stored orders: %.2f × the rate (target ≥ %.2f ×), %.2f × the pages written\n",
		stored[0], stored[1], growth, benchfleet.Growth, hi.Pages/lo.Pages)

	e := large.Open(t, false)
	order, release := viaHTTP(t, e)
	lat := benchfleet.Paced(t, benchfleet.Rate, benchfleet.PacedOrders, order)
	release()
	large.Done(t, e)
	p50, p99 := benchfleet.Percentile(lat, 50), benchfleet.Percentile(lat, 99)
	fmt.Printf("orders over HTTP paced %d /s (%d orders, %d sites, %d stored): p50 %v, p99 %v, max %v (target p99 < %v)\n",
		benchfleet.Rate, benchfleet.PacedOrders, sites, stored[1], p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond), lat[len(lat)-1].Round(10*time.Microsecond), benchfleet.P99)

	if hi.Rate < benchfleet.VsRaw*raw {
		t.Errorf("orders over HTTP: %.0f /s, %.2f × raw batched commits; want ≥ %.2f ×", hi.Rate, hi.Rate/raw, benchfleet.VsRaw)
	}
	if growth < benchfleet.Growth {
		t.Errorf("growth: %.2f × the rate from %d to %d stored orders; want ≥ %.2f ×", growth, stored[0], stored[1], benchfleet.Growth)
	}
	if p99 >= benchfleet.P99 {
		t.Errorf("paced %d /s: p99 %v; want < %v", benchfleet.Rate, p99, benchfleet.P99)
	}
}

package lease_test

import (
	"os"
	"slices"
	"testing"
	"time"

	"github.com/larder-lockers/larder/cloud/lease"
)

// TestBenchTakeover10k measures the leases at fleet scale (make bench, LARDER_BENCH=1):
// three replicas share 10,000 sites, then one is killed. Figures: the time to spread from
// a cold start, and the takeover time after the kill, printed next to the floor a lease
// protocol cannot beat (one TTL: the dead replica's leases must expire first) and the
// bare UPDATE of as many lease rows as the survivors claim, measured on the same database
// in the same run. Target: takeover ≤ TTL + 2 × Renew + 0.5 s (the same overhead on the
// default 10 s TTL stays below issue 11's 15 s).
func TestBenchTakeover10k(t *testing.T) {
	if os.Getenv("LARDER_BENCH") == "" {
		t.Skip("LARDER_BENCH=1 (make bench) runs the 10,000-site lease benchmark")
	}
	const n = 10000
	e := newEnv(t, n)
	rs := []*replica{e.replica("a", e.url), e.replica("b", e.url), e.replica("c", e.url)}
	ms := []*lease.Manager{rs[0].m, rs[1].m, rs[2].m}
	for _, r := range rs {
		r.start()
	}
	spreadIn := waitFor(t, "10,000 sites spread over 3 replicas", 60*time.Second, func() (bool, string) { return spread(n, ms...) })

	dead := rs[0]
	share := len(lease.Snapshot(dead.m)[0])
	killed := time.Now()
	dead.kill(t)
	e.rec.killed(dead.name)
	bound := testTTL + 2*testRenew
	waitFor(t, "the survivors own every site", bound+5*time.Second, func() (bool, string) { return spread(n, ms[1:]...) })
	var last time.Time
	for _, ev := range e.rec.all() {
		if ev.owned && ev.replica != dead.name && ev.at.After(killed) {
			last = ev.at
		}
	}
	takeover := last.Sub(killed)

	e.rec.check(t)

	// The baseline: one bare UPDATE of as many lease rows in one statement, the median
	// of five, with the survivors stopped (their renewals lock the same rows).
	rs[1].kill(t)
	rs[2].kill(t)
	var bares []time.Duration
	for range 5 {
		t0 := time.Now()
		if _, err := e.db.Exec(ctx(t), `UPDATE larder_leases SET token = token
WHERE name IN (SELECT name FROM larder_leases WHERE name LIKE 'site/%' ORDER BY name LIMIT $1)`, share); err != nil {
			t.Fatal(err)
		}
		bares = append(bares, time.Since(t0))
	}
	slices.Sort(bares)
	bare := bares[2]

	overhead := takeover - testTTL
	t.Logf("10,000 sites over 3 replicas: spread from cold in %v", spreadIn.Round(time.Millisecond))
	t.Logf("takeover of %d sites after a kill: %v = TTL %v + %v (%.2f renew intervals); bound TTL + 2 × Renew = %v; bare UPDATE of %d rows: %v",
		share, takeover.Round(time.Millisecond), testTTL, overhead.Round(time.Millisecond),
		float64(overhead)/float64(testRenew), bound, share, bare.Round(time.Millisecond))
	// Scaled to the defaults (the overhead counted in renew intervals, database time
	// included, which over-states it).
	atDefaults := lease.DefaultTTL + time.Duration(float64(overhead)/float64(testRenew)*float64(lease.DefaultTTL/5))
	t.Logf("scaled to the default TTL %v: %v (target < 15s)", lease.DefaultTTL, atDefaults.Round(time.Millisecond))
	if takeover > bound+500*time.Millisecond {
		t.Errorf("takeover %v, want ≤ %v", takeover, bound+500*time.Millisecond)
	}
	if atDefaults >= 15*time.Second {
		t.Errorf("takeover scaled to the defaults %v, want < 15s", atDefaults)
	}
}

package edged_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/larder-lockers/larder/edge"
	"github.com/larder-lockers/larder/edge/bolt"
	"github.com/larder-lockers/larder/edge/kiosk"
	"github.com/larder-lockers/larder/protocol"
)

// Benchmarks run under `make bench` (LARDER_BENCH=1). Each measures its own loop and
// prints the figure next to a baseline from the same run; b.N is irrelevant (-benchtime 1x).

func benchGate(b *testing.B) {
	if os.Getenv("LARDER_BENCH") == "" {
		b.Skip("set LARDER_BENCH=1 (make bench)")
	}
}

func benchSpecs(n int) []edge.CompartmentSpec {
	specs := make([]edge.CompartmentSpec, n)
	for i := range specs {
		specs[i] = edge.CompartmentSpec{Number: i + 1, Size: protocol.SizeM, Zone: protocol.ZoneChilled, HeightCM: 50,
			Row: i%4 + 1, Column: i/4 + 1, Board: i / 16, Lock: i%16 + 1}
	}
	return specs
}

func benchCode(i int) string   { return fmt.Sprintf("%08d", 10000000+i) }
func benchOrder(i int) string  { return fmt.Sprintf("ord_%06d", i) }
func benchFactor(i int) string { return fmt.Sprintf("%04d", i%10000) }

// fillStore applies reservations for orders [from, to) (one compartment each) and marks
// them loaded, as a driver would have.
func fillStore(tb testing.TB, l *edge.Locker, s *bolt.Store, version uint64, from, to int) {
	tb.Helper()
	d := protocol.Desired{Version: version}
	exp := time.Now().Add(24 * time.Hour)
	for i := from; i < to; i++ {
		o := benchOrder(i)
		d.Reservations = append(d.Reservations, protocol.Reservation{Order: o, Slots: []protocol.Slot{{Compartment: i + 1, Generation: 1}},
			CodeDigest: protocol.CodeDigest(key, benchCode(i)), SecondFactorDigest: protocol.SecondFactorDigest(key, o, benchFactor(i)),
			ExpiresAt: exp, Zone: protocol.ZoneChilled})
	}
	if out, err := l.ApplyDesired(context.Background(), protocol.NewID(), d); err != nil || out != edge.DesiredApplied {
		tb.Fatalf("apply: %v %v", out, err)
	}
	err := s.Update(func(tx edge.Tx) error {
		for i := from; i < to; i++ {
			r, _, err := tx.Reservation(benchOrder(i))
			if err != nil {
				return err
			}
			r.Slots[0].Loaded, r.State, r.LoadedAt = true, edge.OrderLoaded, time.Now()
			c, _, _ := tx.Compartment(i + 1)
			c.State = edge.StateLoaded
			if err := tx.PutCompartment(c); err != nil {
				return err
			}
			if err := tx.PutReservation(r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
}

type pickupRig struct {
	l   *edge.Locker
	s   *bolt.Store
	h   http.Handler
	mu  sync.Mutex
	hit time.Time
}

func newPickupRig(tb testing.TB, compartments int, noSync bool) *pickupRig {
	tb.Helper()
	dir := tb.TempDir()
	s, err := bolt.Open(filepath.Join(dir, "edge.db"), bolt.Options{UnsafeNoSync: noSync})
	if err != nil {
		tb.Fatal(err)
	}
	r := &pickupRig{s: s}
	latch := &edge.FakeLatch{OnUnlock: func(int) {
		r.mu.Lock()
		if r.hit.IsZero() {
			r.hit = time.Now() // the instant the unlock frame would be written
		}
		r.mu.Unlock()
	}}
	r.l, err = edge.New(edge.Config{Site: "bench", SiteKey: key, Compartments: benchSpecs(compartments), Store: s, Latch: latch, StaggerGap: -1})
	if err != nil {
		tb.Fatal(err)
	}
	if err := r.l.Start(context.Background(), nil); err != nil {
		tb.Fatal(err)
	}
	r.h = kiosk.New(kiosk.Config{Resident: r.l, Driver: r.l})
	return r
}

// pickup posts one code to the kiosk handler and returns the time from the handler
// receiving the request to the first Unlock call.
func (r *pickupRig) pickup(tb testing.TB, i int) time.Duration {
	r.mu.Lock()
	r.hit = time.Time{}
	r.mu.Unlock()
	body := fmt.Sprintf(`{"code":%q,"factor":%q}`, benchCode(i), benchFactor(i))
	req := httptest.NewRequest("POST", "/api/pickup", strings.NewReader(body))
	rec := httptest.NewRecorder()
	start := time.Now()
	r.h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		tb.Fatalf("pickup %d: %d %s", i, rec.Code, rec.Body)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hit.Sub(start)
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// BenchmarkPickupToUnlock: code submitted → unlock frame written, with 10,000 live
// reservations, next to the same path with one live reservation.
func BenchmarkPickupToUnlock(b *testing.B) {
	benchGate(b)
	const live, n = 10000, 1000
	// Baseline: one live reservation at a time.
	base := newPickupRig(b, n, false)
	var baseD []time.Duration
	for i := range n {
		fillStore(b, base.l, base.s, uint64(i+1), i, i+1)
		baseD = append(baseD, base.pickup(b, i))
	}
	base.s.Close()
	// 10,000 live reservations; n of them are picked up.
	big := newPickupRig(b, live, false)
	fillStore(b, big.l, big.s, 1, 0, live)
	var bigD []time.Duration
	for i := range n {
		bigD = append(bigD, big.pickup(b, (i*7919)%live))
	}
	// The code's own cost: the same path on a store that skips fsync.
	cpu := newPickupRig(b, live, true)
	fillStore(b, cpu.l, cpu.s, 1, 0, live)
	var cpuD []time.Duration
	for i := range n {
		cpuD = append(cpuD, cpu.pickup(b, (i*7919)%live))
	}
	cpu.s.Close()
	// The floor: one durable bbolt commit of one small record on the same disk. A pickup
	// must commit (session, audit, reservation) before it may pulse a relay.
	var floorD []time.Duration
	for i := range n {
		start := time.Now()
		if err := big.s.Update(func(tx edge.Tx) error {
			return tx.PutCommand(edge.CommandRecord{ID: strconv.Itoa(i), State: protocol.StateSucceeded})
		}); err != nil {
			b.Fatal(err)
		}
		floorD = append(floorD, time.Since(start))
	}
	big.s.Close()
	p50b, p99b := percentile(baseD, .5), percentile(baseD, .99)
	p50, p99 := percentile(bigD, .5), percentile(bigD, .99)
	p50f, p99f := percentile(floorD, .5), percentile(floorD, .99)
	p50c, p99c := percentile(cpuD, .5), percentile(cpuD, .99)
	fmt.Printf("pickup→unlock with %d live reservations: p99 %v, p50 %v; baseline 1 live reservation: p99 %v, p50 %v (ratio p99 %.2f); "+
		"floor, one bare bbolt commit on this disk: p99 %v, p50 %v (ratio p99 %.2f); "+
		"same path without fsync (code only): p99 %v, p50 %v; target p99 ≤ 5ms\n",
		live, p99, p50, p99b, p50b, float64(p99)/float64(p99b), p99f, p50f, float64(p99)/float64(p99f), p99c, p50c)
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99_ms")
	b.ReportMetric(float64(p99b.Microseconds())/1000, "baseline_p99_ms")
	b.ReportMetric(float64(p99f.Microseconds())/1000, "commit_floor_p99_ms")
	b.ReportMetric(float64(p99c.Microseconds())/1000, "nosync_p99_ms")
}

// BenchmarkRSS measures a child process holding a store of 10,000 reservations (Locker
// started, kiosk handler built, a pickup served) next to the same child on an empty store.
func BenchmarkRSS(b *testing.B) {
	benchGate(b)
	const live = 10000
	dir := b.TempDir()
	empty := filepath.Join(dir, "empty.db")
	full := filepath.Join(dir, "full.db")
	for _, p := range []string{empty, full} {
		s, err := bolt.Open(p, bolt.Options{})
		if err != nil {
			b.Fatal(err)
		}
		l, _ := edge.New(edge.Config{Site: "bench", SiteKey: key, Compartments: benchSpecs(live), Store: s, Latch: &edge.FakeLatch{}})
		if err := l.Start(context.Background(), nil); err != nil {
			b.Fatal(err)
		}
		if p == full {
			fillStore(b, l, s, 1, 0, live)
		}
		s.Close()
	}
	rss := func(db string, orders int) [3]int {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "LARDER_BENCH_CHILD=rss", "LARDER_BENCH_DB="+db, "LARDER_BENCH_ORDERS="+strconv.Itoa(orders))
		out, err := cmd.Output()
		if err != nil {
			b.Fatalf("child: %v", err)
		}
		var kb [3]int
		if _, err := fmt.Sscan(string(out), &kb[0], &kb[1], &kb[2]); err != nil {
			b.Fatalf("child said %q", out)
		}
		return kb
	}
	ek, fk := rss(empty, 0), rss(full, live)
	e, f := ek[0], fk[0]
	fmt.Printf("resident set with %d reservations: %.1f MB (anon %.1f, file %.1f); baseline empty store: %.1f MB (anon %.1f, file %.1f); ratio %.2f; target ≤ 30 MB\n",
		live, float64(f)/1024, float64(fk[1])/1024, float64(fk[2])/1024, float64(e)/1024, float64(ek[1])/1024, float64(ek[2])/1024, float64(f)/float64(e))
	b.ReportMetric(float64(f)/1024, "rss_MB")
	b.ReportMetric(float64(e)/1024, "baseline_rss_MB")
}

// rssChild is the child of BenchmarkRSS: it prints its VmRSS in kB.
func rssChild() {
	s, err := bolt.Open(os.Getenv("LARDER_BENCH_DB"), bolt.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	l, err := edge.New(edge.Config{Site: "bench", SiteKey: key, Compartments: benchSpecs(10000), Store: s, Latch: &edge.FakeLatch{}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := l.Start(context.Background(), nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	h := kiosk.New(kiosk.Config{Resident: l, Driver: l})
	if n, _ := strconv.Atoi(os.Getenv("LARDER_BENCH_ORDERS")); n > 0 {
		req := httptest.NewRequest("POST", "/api/pickup", strings.NewReader(fmt.Sprintf(`{"code":%q,"factor":%q}`, benchCode(n/2), benchFactor(n/2))))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			fmt.Fprintln(os.Stderr, "pickup", rec.Code, rec.Body)
			os.Exit(1)
		}
		_, _ = l.Manifest()
	}
	// Steady state: what the daemon keeps, not the garbage of start-up.
	debug.FreeOSMemory()
	f, _ := os.Open("/proc/self/status")
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		for _, k := range []string{"VmRSS:", "RssAnon:", "RssFile:"} {
			if v, ok := strings.CutPrefix(sc.Text(), k); ok {
				fmt.Print(strings.TrimSuffix(strings.TrimSpace(v), " kB"), " ")
			}
		}
	}
	fmt.Println()
	os.Exit(0)
}

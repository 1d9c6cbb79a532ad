package pg_test

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/cloud/pg"
	"github.com/larder-lockers/larder/internal/pgtest"
	"github.com/larder-lockers/larder/protocol"
)

// roundTrips counts the statements and batches sent: each is one round trip.
type roundTrips struct{ n atomic.Int64 }

func (r *roundTrips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	r.n.Add(1)
	return ctx
}
func (r *roundTrips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (r *roundTrips) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	r.n.Add(1)
	return ctx
}
func (r *roundTrips) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (r *roundTrips) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

// clock is an injected clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// world is a Service over a PostgreSQL store.
type world struct {
	t     *testing.T
	ctx   context.Context
	store *pg.Store
	svc   *cloud.Service
	clock *clock
	trips *roundTrips
	seq   map[string]uint64
	admin cloud.Principal
	plat  cloud.Principal
}

func newWorld(t *testing.T, start time.Time) *world {
	trips := &roundTrips{}
	ctx := context.Background()
	s, err := pg.Open(ctx, pgtest.DB(t), pg.Options{Tracer: trips})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	c := &clock{t: start}
	return &world{t: t, ctx: ctx, store: s, svc: cloud.New(cloud.Options{Store: s, Now: c.Now}), clock: c, trips: trips,
		seq:   map[string]uint64{},
		admin: cloud.Principal{Role: cloud.RoleAdmin, Subject: "root"},
		plat:  cloud.Principal{Role: cloud.RolePlatform, Subject: "veggie"}}
}

func (w *world) site(id string, comps int) {
	w.t.Helper()
	name := "Courtyard " + id
	if _, err := w.svc.CreateSite(w.ctx, w.admin, cloud.SiteInput{ID: id, Name: &name}); err != nil {
		w.t.Fatal(err)
	}
	var cs []protocol.Compartment
	for i := range comps {
		cs = append(cs, protocol.Compartment{Number: i + 1, Size: protocol.SizeS, Zone: []protocol.Zone{protocol.ZoneChilled, protocol.ZoneAmbient}[i%2],
			HeightCM: 40, Lock: i + 1})
	}
	if _, err := w.svc.ApplyBirth(w.ctx, id, w.clock.Now(), protocol.Birth{Software: "test", Compartments: cs}); err != nil {
		w.t.Fatal(err)
	}
}

// order creates an order at site in zone and returns its id and compartment.
func (w *world) order(site, ext string, zone protocol.Zone) (string, int) {
	w.t.Helper()
	now := w.clock.Now()
	rc, err := w.svc.CreateOrder(w.ctx, w.plat, "idem-"+ext, cloud.OrderRequest{ExternalID: ext, Site: site,
		Recipient: cloud.Recipient{Phone: "+44 20 7946 0958", Name: "Ann"},
		Parcels:   []cloud.Parcel{{Size: protocol.SizeS, Zone: zone}},
		Window:    cloud.Window{Start: now.Add(time.Hour), End: now.Add(3 * time.Hour)}})
	if err != nil {
		w.t.Fatal(err)
	}
	return rc.Order.ID, rc.Order.Slots[0].Compartment
}

func (w *world) event(site string, ev protocol.Event) {
	w.t.Helper()
	w.seq[site]++
	_, err := w.svc.ApplyEdgeEvent(w.ctx, site, protocol.Message{Header: protocol.Header{ID: protocol.NewID(), Seq: w.seq[site], Time: w.clock.Now()},
		Type: protocol.TypeEvent, Body: ev})
	if err != nil {
		w.t.Fatal(err)
	}
}

// TestOrderRoundTrips measures the round trips of one order creation (create, assign,
// code) through the Service on the PostgreSQL store, after a first order has warmed the
// connections' statement caches.
func TestOrderRoundTrips(t *testing.T) {
	w := newWorld(t, time.Now())
	w.site("yard", 24)
	w.order("yard", "warm-1", protocol.ZoneChilled)
	w.order("yard", "warm-2", protocol.ZoneChilled)
	before, commits := w.trips.n.Load(), w.store.Stats().Commits.Load()
	w.order("yard", "measured", protocol.ZoneAmbient)
	trips, txs := w.trips.n.Load()-before, w.store.Stats().Commits.Load()-commits
	t.Logf("one order: %d round trips, %d committed transactions", trips, txs)
	// The figure is in the package doc; a change in the domain's reads moves it, and a
	// store that lost its caching or batching would blow past this bound.
	if trips > 30 {
		t.Errorf("one order took %d round trips; want ≤ 30", trips)
	}
}

// docQueries returns the SQL blocks of docs/sql.md, in order: the queries operators
// read are the queries this test runs.
func docQueries(t *testing.T) []string {
	b, err := os.ReadFile("../../docs/sql.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range regexp.MustCompile("(?s)```sql\n(.*?)```").FindAllStringSubmatch(string(b), -1) {
		out = append(out, m[1])
	}
	if len(out) != 3 {
		t.Fatalf("docs/sql.md has %d SQL blocks, want 3", len(out))
	}
	return out
}

// TestOperatorQueries builds real data through the Service (sites, orders loaded and
// picked up yesterday with and without a broken cold chain, one picked up earlier, a
// remote open) and runs the queries of docs/sql.md over the views.
func TestOperatorQueries(t *testing.T) {
	queries := docQueries(t)
	now := time.Now().UTC()
	yesterday := time.Date(now.Year(), now.Month(), now.Day()-1, 9, 0, 0, 0, time.UTC)
	w := newWorld(t, yesterday)
	w.site("yard-a", 8)
	w.site("yard-b", 8)

	deliver := func(site, ext string, zone protocol.Zone, above float64) string {
		id, comp := w.order(site, ext, zone)
		w.clock.Add(30 * time.Minute)
		w.event(site, protocol.Event{Kind: protocol.EventLoaded, Credential: protocol.CredDriver, Order: id, Compartment: comp})
		loaded := w.clock.Now()
		w.clock.Add(2 * time.Hour)
		w.event(site, protocol.Event{Kind: protocol.EventPickedUp, Credential: protocol.CredPickup, Order: id, Compartment: comp,
			ColdChain: &protocol.ColdChain{From: loaded, To: w.clock.Now(), LimitC: 8, AboveSeconds: above}})
		return id
	}
	deliver("yard-a", "a1", protocol.ZoneChilled, 0)
	broken := deliver("yard-a", "a2", protocol.ZoneChilled, 600)
	deliver("yard-b", "b1", protocol.ZoneChilled, 0)
	w.order("yard-b", "b2", protocol.ZoneAmbient) // created, never picked up
	if _, err := w.svc.OpenCompartment(w.ctx, cloud.Principal{Role: cloud.RoleOps, Subject: "olga"}, "yard-b", 3, "resident locked out"); err != nil {
		t.Fatal(err)
	}
	// Nine days earlier: picked up, but neither yesterday nor this week.
	w.clock.Add(-10 * 24 * time.Hour)
	deliver("yard-b", "old", protocol.ZoneChilled, 300)

	conn := w.store.Pool()
	run := func(q string) [][]any {
		c, err := conn.Acquire(w.ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Release()
		if _, err := c.Exec(w.ctx, "SET TIME ZONE 'UTC'"); err != nil { // "yesterday" as the test counts it
			t.Fatal(err)
		}
		rows, err := c.Query(w.ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		var out [][]any
		for rows.Next() {
			v, err := rows.Values()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, v)
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return out
	}

	perSite := run(queries[0])
	if len(perSite) != 2 || perSite[0][0] != "yard-a" || perSite[0][1] != int64(2) || perSite[1][0] != "yard-b" || perSite[1][1] != int64(1) {
		t.Errorf("picked up per site yesterday: %v, want yard-a 2, yard-b 1", perSite)
	}
	cold := run(queries[1])
	if len(cold) != 1 || cold[0][0] != broken || cold[0][8] != 10.0 || cold[0][9] != 8.0 || len(cold[0][3].([]any)) != 1 {
		t.Errorf("cold chain broken this week: %v, want %s with 10 minutes above 8 °C", cold, broken)
	}
	opens := run(queries[2])
	if len(opens) != 1 || opens[0][1] != "yard-b" || opens[0][2] != int32(3) || opens[0][3] != "olga" || opens[0][4] != "ops" ||
		opens[0][5] != "remote_open" || opens[0][6] != "resident locked out" {
		t.Errorf("remote opens: %v, want olga's at yard-b 3", opens)
	}
	cmds := run("SELECT site, kind, compartment, actor, purpose FROM larder_commands")
	if len(cmds) != 1 || cmds[0][0] != "yard-b" || cmds[0][1] != "open" || cmds[0][3] != "olga" {
		t.Errorf("larder_commands: %v", cmds)
	}
	sites := run("SELECT id, name, software FROM larder_sites ORDER BY id")
	if len(sites) != 2 || sites[0][1] != "Courtyard yard-a" || sites[0][2] != "test" {
		t.Errorf("larder_sites: %v", sites)
	}
}

// TestConcurrentOrdersTwoReplicas: two Services on two Stores over one database (two
// replicas) take orders for one site at once; serialization failures are retried and no
// compartment is ever booked twice.
func TestConcurrentOrdersTwoReplicas(t *testing.T) {
	w := newWorld(t, time.Now())
	w.site("yard", 16) // 8 chilled compartments
	other, err := pg.Open(w.ctx, w.store.Pool().Config().ConnString(), pg.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	replicas := []*cloud.Service{w.svc, cloud.New(cloud.Options{Store: other, Now: w.clock.Now})}
	var wg sync.WaitGroup
	var ok, full atomic.Int64
	booked := make(chan int, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			now := w.clock.Now()
			rc, err := replicas[i%2].CreateOrder(w.ctx, w.plat, fmt.Sprintf("idem-%d", i), cloud.OrderRequest{ExternalID: fmt.Sprintf("c%d", i), Site: "yard",
				Recipient: cloud.Recipient{Phone: "+44 20 7946 0958"}, Parcels: []cloud.Parcel{{Size: protocol.SizeS, Zone: protocol.ZoneChilled}},
				Window: cloud.Window{Start: now.Add(time.Hour), End: now.Add(3 * time.Hour)}})
			switch {
			case err == nil:
				ok.Add(1)
				booked <- rc.Order.Slots[0].Compartment
			case cloud.ErrorCode(err) == cloud.ENoCapacity:
				full.Add(1)
			default:
				t.Errorf("order %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	close(booked)
	seen := map[int]bool{}
	for c := range booked {
		if seen[c] {
			t.Errorf("compartment %d booked twice", c)
		}
		seen[c] = true
	}
	if ok.Load() != 8 || full.Load() != 12 {
		t.Errorf("%d orders taken, %d refused; want 8 and 12", ok.Load(), full.Load())
	}
	t.Logf("retries: %d + %d", w.store.Stats().Retries.Load(), other.Stats().Retries.Load())
}

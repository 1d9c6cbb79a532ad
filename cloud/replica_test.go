package cloud_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/cloud/bolt"
	"github.com/larder-lockers/larder/protocol"
)

// Several cloud replicas over one store. cloud/pg is the real shared store; these tests
// use sharedStore, a behavioural fake of what the domain relies on from it, so that they
// run anywhere and test the domain's side alone.

// sharedStore is a bbolt file shared by several Services in one process, behaving as a
// store several processes share: it implements cloud.Watcher (callbacks run on commit,
// in commit order, for writes by any Service), it refuses with cloud.ErrFenced an update
// whose context carries a fence that no longer holds, and its watch can be cut (writes
// go unreported) and resumed (an empty key for each watched bucket).
type sharedStore struct {
	db      *bolt.DB
	updates atomic.Int64

	mu      sync.Mutex
	watches map[int]watch    // guarded by mu
	next    int              // guarded by mu
	cut     bool             // guarded by mu
	tokens  map[string]int64 // each lease's token now; guarded by mu
	fenced  [][]cloud.Fence  // the fences of each update that committed; guarded by mu
	lost    chan struct{}    // closed when the running watches fail (loseWatch); guarded by mu
	// registered receives one value for each Watch that has started.
	registered chan struct{}
}

type watch struct {
	buckets []string
	fn      func(bucket, key string)
}

type write struct{ bucket, key string }

func (s *sharedStore) View(ctx context.Context, fn func(cloud.Tx) error) error {
	return s.db.View(ctx, fn)
}

func (s *sharedStore) Update(ctx context.Context, fn func(cloud.Tx) error) error {
	s.updates.Add(1)
	fs := cloud.FencesOf(ctx)
	return s.db.Update(ctx, func(tx cloud.Tx) error {
		s.mu.Lock()
		for _, f := range fs {
			if s.tokens[f.Name] != f.Token {
				s.mu.Unlock()
				return fmt.Errorf("shared store: lease %s token %d: %w", f.Name, f.Token, cloud.ErrFenced)
			}
		}
		s.mu.Unlock()
		w := &writesTx{Tx: tx}
		if err := fn(w); err != nil {
			return err
		}
		writes := w.writes
		tx.OnCommit(func() {
			s.mu.Lock()
			s.fenced = append(s.fenced, fs)
			s.mu.Unlock()
			s.report(writes)
		})
		return nil
	})
}

func (s *sharedStore) Watch(ctx context.Context, buckets []string, fn func(bucket, key string)) error {
	s.mu.Lock()
	id := s.next
	s.next++
	s.watches[id] = watch{buckets: slices.Clone(buckets), fn: fn}
	lost := s.lost
	s.mu.Unlock()
	s.registered <- struct{}{}
	var err error
	select {
	case <-ctx.Done():
		err = ctx.Err()
	case <-lost:
		err = errors.New("shared store: watch connection lost")
	}
	s.mu.Lock()
	delete(s.watches, id)
	s.mu.Unlock()
	return err
}

// loseWatch makes every running Watch fail, as a lost connection would: from now on
// until they are started again no write is reported.
func (s *sharedStore) loseWatch() {
	s.mu.Lock()
	clear(s.watches)
	close(s.lost)
	s.lost = make(chan struct{})
	s.mu.Unlock()
}

func (s *sharedStore) watchers() []watch {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []watch
	for _, w := range s.watches {
		out = append(out, w)
	}
	return out
}

func (s *sharedStore) report(writes []write) {
	s.mu.Lock()
	cut := s.cut
	s.mu.Unlock()
	if cut {
		return
	}
	ws := s.watchers()
	for _, wr := range writes {
		for _, w := range ws {
			if slices.Contains(w.buckets, wr.bucket) {
				w.fn(wr.bucket, wr.key)
			}
		}
	}
}

// cutWatch stops reporting writes, as a lost connection of the watch would.
func (s *sharedStore) cutWatch() {
	s.mu.Lock()
	s.cut = true
	s.mu.Unlock()
}

// resumeWatch reports writes again and tells every watch that anything in its buckets
// may have changed.
func (s *sharedStore) resumeWatch() {
	s.mu.Lock()
	s.cut = false
	s.mu.Unlock()
	for _, w := range s.watchers() {
		for _, b := range w.buckets {
			w.fn(b, "")
		}
	}
}

// writesTx notes the keys a transaction writes.
type writesTx struct {
	cloud.Tx
	writes []write
}

func (t *writesTx) Unwrap() cloud.Tx { return t.Tx }

func (t *writesTx) Put(bucket, key string, v []byte) error {
	t.writes = append(t.writes, write{bucket, key})
	return t.Tx.Put(bucket, key, v)
}

func (t *writesTx) Delete(bucket, key string) error {
	t.writes = append(t.writes, write{bucket, key})
	return t.Tx.Delete(bucket, key)
}

// cluster is n Services (replicas) over one sharedStore and one clock. Replica i holds
// the work lease when held[i]; fence[i] is the token it believes it holds the lease with.
type cluster struct {
	t     *testing.T
	ctx   context.Context
	db    *bolt.DB
	store *sharedStore
	clock *clock
	svcs  []*cloud.Service
	recs  []*recorder

	mu    sync.Mutex
	held  []bool        // guarded by mu
	fence []cloud.Fence // guarded by mu
	token int64         // guarded by mu
}

var (
	admin = cloud.Principal{Role: cloud.RoleAdmin, Subject: "root"}
	ops   = cloud.Principal{Role: cloud.RoleOps, Subject: "olga"}
	plat  = cloud.Principal{Role: cloud.RolePlatform, Subject: "veggie"}
)

func newCluster(t *testing.T, n int) *cluster {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "cloud.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Check(); err != nil {
			t.Errorf("bbolt consistency check: %v", err)
		}
		db.Close()
	})
	c := &cluster{t: t, ctx: context.Background(), db: db, clock: &clock{t: t0}, held: make([]bool, n), fence: make([]cloud.Fence, n),
		store: &sharedStore{db: db, watches: map[int]watch{}, tokens: map[string]int64{}, lost: make(chan struct{}),
			registered: make(chan struct{}, 16)}}
	for i := range n {
		rec := &recorder{}
		c.recs = append(c.recs, rec)
		c.svcs = append(c.svcs, cloud.New(cloud.Options{Store: c.store, Now: c.clock.Now, Desired: rec, Commands: rec, Notifier: rec,
			Work: func() (cloud.Fence, bool) {
				c.mu.Lock()
				defer c.mu.Unlock()
				return c.fence[i], c.held[i]
			}}))
	}
	return c
}

// grant moves the work lease to replica i with a new token. The others give it up,
// except paused: a replica that paused while holding it and still believes it does.
func (c *cluster) grant(i int, paused ...int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.token++
	c.store.mu.Lock()
	c.store.tokens["work"] = c.token
	c.store.mu.Unlock()
	for j := range c.held {
		if !slices.Contains(paused, j) {
			c.held[j] = false
		}
	}
	c.held[i], c.fence[i] = true, cloud.Fence{Name: "work", Token: c.token}
}

// run starts Run on every replica until the test ends, and waits until each watches
// the store.
func (c *cluster) run() {
	c.t.Helper()
	ctx, cancel := context.WithCancel(c.ctx)
	var wg sync.WaitGroup
	c.t.Cleanup(func() { cancel(); wg.Wait() })
	for _, s := range c.svcs {
		wg.Go(func() { s.Run(ctx, time.Hour) })
	}
	c.watching(len(c.svcs))
}

// watching waits until n more Watch calls have started (5 s at most).
func (c *cluster) watching(n int) {
	c.t.Helper()
	for range n {
		select {
		case <-c.store.registered:
		case <-time.After(5 * time.Second):
			c.t.Fatal("a replica does not watch the shared store within 5 s")
		}
	}
}

// site creates an online site of n ambient S compartments through replica 0.
func (c *cluster) site(id string, n int) {
	c.t.Helper()
	s := c.svcs[0]
	if _, err := s.CreateSite(c.ctx, admin, cloud.SiteInput{ID: id, Name: ptr("Courtyard " + id)}); err != nil {
		c.t.Fatal(err)
	}
	comps := bank(n, []protocol.Zone{protocol.ZoneAmbient}, []protocol.Size{protocol.SizeS})
	if _, err := s.ApplyBirth(c.ctx, id, c.clock.Now(), protocol.Birth{Software: "test", Compartments: comps}); err != nil {
		c.t.Fatal(err)
	}
	if err := s.ApplyStatus(c.ctx, id, c.clock.Now(), protocol.Status{Online: true}); err != nil {
		c.t.Fatal(err)
	}
}

func (c *cluster) order(svc *cloud.Service, site, ext string) cloud.Order {
	c.t.Helper()
	now := c.clock.Now()
	rc, err := svc.CreateOrder(c.ctx, plat, "idem-"+ext, cloud.OrderRequest{ExternalID: ext, Site: site,
		Recipient: cloud.Recipient{Phone: "+44 20 7946 0958", Name: "Ann", Flat: "3B"}, Parcels: []cloud.Parcel{ambientS},
		Window: cloud.Window{Start: now.Add(time.Hour), End: now.Add(3 * time.Hour)}})
	if err != nil {
		c.t.Fatal(err)
	}
	return rc.Order
}

// eventually waits up to 5 s for cond, checking every millisecond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not so after 5 s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// The sweep runs on the replica holding the work lease alone, under its fence; a
// replica that paused while holding the lease and wakes after it moved cannot commit a
// sweep.
func TestReplicasSweepOnce(t *testing.T) {
	c := newCluster(t, 2)
	c.site("yard-1", 4)
	a, b := c.svcs[0], c.svcs[1]
	c.grant(0)
	o1 := c.order(a, "yard-1", "e1")
	c.clock.Add(6 * time.Hour) // past the window and LoadGrace: o1 lapses

	state := func(id string) cloud.OrderState {
		o, err := a.GetOrder(c.ctx, plat, id)
		if err != nil {
			t.Fatal(err)
		}
		return o.State
	}
	if n, err := b.Sweep(c.ctx); err != nil || n != 0 || state(o1.ID) != cloud.StateAssigned {
		t.Fatalf("sweep on the replica without the lease: %d orders, %v, order %s; want 0, nil, assigned", n, err, state(o1.ID))
	}
	c.store.mu.Lock()
	c.store.fenced = nil
	c.store.mu.Unlock()
	if n, err := a.Sweep(c.ctx); err != nil || n != 1 {
		t.Fatalf("sweep on the lease holder: %d orders, %v; want 1, nil", n, err)
	}
	if st := state(o1.ID); st != cloud.StateCancelled {
		t.Errorf("after the holder's sweep the order is %s, want cancelled (lapsed)", st)
	}
	c.store.mu.Lock()
	for i, fs := range c.store.fenced {
		if !slices.Equal(fs, []cloud.Fence{{Name: "work", Token: 1}}) {
			t.Errorf("sweep transaction %d carried fences %v, want the work lease's", i, fs)
		}
	}
	if len(c.store.fenced) == 0 {
		t.Error("the sweep committed no transaction")
	}
	c.store.mu.Unlock()

	// The lease moves to b while a is paused: a still believes it holds it.
	o2 := c.order(b, "yard-1", "e2")
	c.clock.Add(6 * time.Hour)
	c.grant(1, 0)
	if _, err := a.Sweep(c.ctx); !errors.Is(err, cloud.ErrFenced) {
		t.Errorf("sweep of the paused ex-holder: %v, want ErrFenced", err)
	}
	if st := state(o2.ID); st != cloud.StateAssigned {
		t.Errorf("the paused ex-holder's sweep changed the order to %s", st)
	}
	if n, err := b.Sweep(c.ctx); err != nil || n != 1 || state(o2.ID) != cloud.StateCancelled {
		t.Errorf("sweep of the new holder: %d orders, %v, order %s; want 1, nil, cancelled", n, err, state(o2.ID))
	}
}

// aliveAt reads the heartbeat the replicas share.
func (c *cluster) aliveAt() time.Time {
	c.t.Helper()
	var at time.Time
	err := c.db.View(c.ctx, func(tx cloud.Tx) error {
		var rec struct {
			At time.Time `json:"at"`
		}
		if v := tx.Get("meta", "alive"); v != nil {
			if err := json.Unmarshal(v, &rec); err != nil {
				return err
			}
		}
		at = rec.At
		return nil
	})
	if err != nil {
		c.t.Fatal(err)
	}
	return at
}

// A replica starting while another is alive counts no outage: the holder of the work
// keeps the heartbeat fresh, the others do not write it. Replicas starting together
// after the whole cloud was down count the outage once.
func TestReplicasResume(t *testing.T) {
	c := newCluster(t, 3)
	a, b, late := c.svcs[0], c.svcs[1], c.svcs[2]
	c.grant(0)
	if gap, err := a.Resume(c.ctx); err != nil || gap != 0 {
		t.Fatalf("first start: %v, %v", gap, err)
	}
	if gap, err := b.Resume(c.ctx); err != nil || gap != 0 {
		t.Fatalf("second replica, started with the first: %v, %v", gap, err)
	}
	c.site("yard-1", 4)
	o := c.order(a, "yard-1", "e1")
	if _, err := a.ApplyEdgeEvent(c.ctx, "yard-1", protocol.Message{Header: protocol.Header{ID: protocol.NewID(), Seq: 1, Time: c.clock.Now()},
		Type: protocol.TypeEvent, Body: protocol.Event{Kind: protocol.EventLoaded, Order: o.ID, Compartment: o.Slots[0].Compartment}}); err != nil {
		t.Fatal(err)
	}
	if o, _ = a.GetOrder(c.ctx, plat, o.ID); o.State != cloud.StateLoaded {
		t.Fatalf("order %s after loading", o.State)
	}
	for range 4 { // two minutes of heartbeats, from the holder only
		c.clock.Add(30 * time.Second)
		if err := b.Heartbeat(c.ctx); err != nil {
			t.Fatal(err)
		}
		if got := c.aliveAt(); !got.Equal(c.clock.Now().Add(-30 * time.Second)) {
			t.Fatalf("heartbeat at %v after the non-holder's beat, want the holder's of 30 s before (%v)", got, c.clock.Now().Add(-30*time.Second))
		}
		if err := a.Heartbeat(c.ctx); err != nil {
			t.Fatal(err)
		}
	}
	c.clock.Add(20 * time.Second)
	if gap, err := late.Resume(c.ctx); err != nil || gap != 20*time.Second {
		t.Errorf("a replica starting while another is alive: gap %v, %v; want 20s", gap, err)
	}
	if d, err := a.GetSite(c.ctx, ops, "yard-1"); err != nil || !d.Online {
		t.Errorf("after a replica started the site reads online %v (%v), want online", d.Online, err)
	}

	// The whole cloud down for ten minutes; a and b start one after the other.
	c.clock.Add(10 * time.Minute)
	if gap, err := a.Resume(c.ctx); err != nil || gap != 10*time.Minute {
		t.Fatalf("first replica after the outage: gap %v, %v; want 10m", gap, err)
	}
	if err := a.ApplyStatus(c.ctx, "yard-1", c.clock.Now(), protocol.Status{Online: true}); err != nil {
		t.Fatal(err)
	}
	c.clock.Add(5 * time.Second)
	if gap, err := b.Resume(c.ctx); err != nil || gap != 5*time.Second {
		t.Errorf("second replica after the outage: gap %v, %v; want 5s", gap, err)
	}
	d, err := b.GetSite(c.ctx, ops, "yard-1")
	if err != nil || !d.Online {
		t.Errorf("the second start marked the site offline again: online %v, %v", d.Online, err)
	}
	got, err := b.GetOrder(c.ctx, plat, o.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ext := got.ExpiresAt.Sub(o.ExpiresAt); ext != 10*time.Minute {
		t.Errorf("deadline moved by %v, want the outage counted once (10m)", ext)
	}
}

// fleetNames is the fleet as replica svc's console lists it: site id → name.
func (c *cluster) fleetNames(svc *cloud.Service) map[string]string {
	c.t.Helper()
	m, err := svc.Fleet(c.ctx, ops, cloud.FleetFilter{Sort: "id"})
	if err != nil {
		c.t.Fatal(err)
	}
	out := map[string]string{}
	for _, s := range m.Sites {
		out[s.ID] = s.Name
	}
	return out
}

// A replica's fleet index follows the sites other replicas write, through the store's
// watch; after a gap in the watch it reads everything again.
func TestReplicasFleetIndexFollowsWrites(t *testing.T) {
	c := newCluster(t, 2)
	a, b := c.svcs[0], c.svcs[1]
	c.site("yard-1", 2)
	c.run()
	if got := c.fleetNames(b); len(got) != 1 {
		t.Fatalf("b's fleet %v, want yard-1", got)
	}
	c.site("yard-2", 2)
	if _, err := a.UpdateSite(c.ctx, admin, "yard-1", cloud.SiteInput{Name: ptr("Plum Court")}); err != nil {
		t.Fatal(err)
	}
	if got, want := c.fleetNames(b), map[string]string{"yard-1": "Plum Court", "yard-2": "Courtyard yard-2"}; !mapsEqual(got, want) {
		t.Errorf("b's fleet after a's writes: %v, want %v", got, want)
	}

	c.store.cutWatch()
	c.site("yard-3", 2)
	if _, err := a.UpdateSite(c.ctx, admin, "yard-2", cloud.SiteInput{Name: ptr("Quince Yard")}); err != nil {
		t.Fatal(err)
	}
	if got := c.fleetNames(b); len(got) != 2 || got["yard-2"] != "Courtyard yard-2" {
		t.Fatalf("b's fleet %v while its watch is cut: the writes should not show yet (what this test relies on)", got)
	}
	c.store.resumeWatch()
	if got, want := c.fleetNames(b), map[string]string{"yard-1": "Plum Court", "yard-2": "Quince Yard", "yard-3": "Courtyard yard-3"}; !mapsEqual(got, want) {
		t.Errorf("b's fleet after the watch resumed: %v, want %v", got, want)
	}
}

// A watch that fails is started again, and what was written while it was down shows.
func TestReplicasWatchRestarts(t *testing.T) {
	c := newCluster(t, 2)
	a, b := c.svcs[0], c.svcs[1]
	c.site("yard-1", 2)
	c.run()
	if got := c.fleetNames(b); len(got) != 1 {
		t.Fatalf("b's fleet %v, want yard-1", got)
	}
	c.store.loseWatch()
	c.site("yard-2", 2) // while no watch runs
	c.watching(2)       // both replicas watch again (after a pause of a second)
	if _, err := a.UpdateSite(c.ctx, admin, "yard-1", cloud.SiteInput{Name: ptr("Plum Court")}); err != nil {
		t.Fatal(err)
	}
	if got, want := c.fleetNames(b), map[string]string{"yard-1": "Plum Court", "yard-2": "Courtyard yard-2"}; !mapsEqual(got, want) {
		t.Errorf("b's fleet after its watch failed and restarted: %v, want %v", got, want)
	}
}

func mapsEqual[K, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// A replica shows the live state of a site that another replica hears: written to the
// store in one transaction for every site heard since the last write, not one per
// message, and read back through the watch.
func TestReplicasLiveState(t *testing.T) {
	c := newCluster(t, 2)
	a, b := c.svcs[0], c.svcs[1]
	sites := []string{"yard-1", "yard-2", "yard-3"}
	for _, id := range sites {
		c.site(id, 2)
	}
	c.run()
	// b heard yard-1 once, long ago (it owned it before a did).
	if err := b.ApplyTelemetry(c.ctx, "yard-1", c.clock.Now(), protocol.Telemetry{OutboxDepth: 9}); err != nil {
		t.Fatal(err)
	}
	if err := b.StoreLive(c.ctx); err != nil {
		t.Fatal(err)
	}
	c.clock.Add(10 * time.Minute)
	before := c.store.updates.Load()
	for i := range 5 {
		c.clock.Add(10 * time.Second)
		for _, id := range sites {
			tm := protocol.Telemetry{Zones: []protocol.ZoneReading{{Zone: protocol.ZoneAmbient, Celsius: ptr(18 + float64(i))}},
				Boards: []protocol.BoardHealth{{Address: 0, Online: true}}, OutboxDepth: i, UptimeSeconds: 100, DesiredVersion: 7}
			if err := a.ApplyTelemetry(c.ctx, id, c.clock.Now(), tm); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := a.StoreLive(c.ctx); err != nil {
		t.Fatal(err)
	}
	if n := c.store.updates.Load() - before; n != 1 {
		t.Errorf("15 telemetry messages of 3 sites and one write of live state cost %d updates, want 1", n)
	}
	want := a.Live("yard-1")
	if want.Outbox != 4 || len(want.Zones) != 1 || want.DesiredVersion != 7 {
		t.Fatalf("a's own live state of yard-1: %+v", want)
	}
	eventually(t, "b shows the live state a heard", func() bool {
		return b.Live("yard-1").LastSeen.Equal(want.LastSeen) && b.Live("yard-3").LastSeen.Equal(want.LastSeen)
	})
	d, err := b.GetSite(c.ctx, ops, "yard-1")
	if err != nil {
		t.Fatal(err)
	}
	if !d.LastSeen.Equal(want.LastSeen) || d.OutboxDepth != 4 || len(d.Boards) != 1 || len(d.Zones) != 1 || d.Zones[0].Celsius == nil || *d.Zones[0].Celsius != 22 ||
		d.EdgeDesiredVersion != 7 || d.State != cloud.SiteOnline {
		t.Errorf("b's detail of yard-1: last seen %v outbox %d boards %v zones %v applied %d state %s; want a's: %v 4, 1 board, 22 °C, 7, online",
			d.LastSeen, d.OutboxDepth, d.Boards, d.Zones, d.EdgeDesiredVersion, d.State, want.LastSeen)
	}
	m, err := b.Fleet(c.ctx, ops, cloud.FleetFilter{Sort: "id"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range m.Sites {
		if len(s.Zones) != 1 || !s.LastSeen.Equal(want.LastSeen) {
			t.Errorf("b's fleet: %s zones %v last seen %v, want a's", s.ID, s.Zones, s.LastSeen)
		}
	}

	// A stale write (b, paused, writes what it heard before a took over) keeps a's.
	if err := b.ApplyTelemetry(c.ctx, "yard-1", c.clock.Now().Add(-time.Hour), protocol.Telemetry{OutboxDepth: 9}); err != nil {
		t.Fatal(err)
	}
	if err := b.StoreLive(c.ctx); err != nil {
		t.Fatal(err)
	}
	var stored cloud.LiveSite
	err = c.db.View(c.ctx, func(tx cloud.Tx) error { return json.Unmarshal(tx.Get("live_sites", "yard-1"), &stored) })
	if err != nil || stored.Outbox != 4 || !stored.LastSeen.Equal(want.LastSeen) {
		t.Errorf("after b's stale write the store holds %+v (%v), want a's newer state", stored, err)
	}
	if got := b.Live("yard-1"); got.Outbox != 4 {
		t.Errorf("after its own stale write b shows outbox %d, want a's newer 4", got.Outbox)
	}
}

// Desired versions stay one sequence per site when two replicas change a site at once:
// each is read and bumped within the store's transaction.
func TestReplicasDesiredVersionMonotonic(t *testing.T) {
	c := newCluster(t, 2)
	c.site("yard-1", 40)
	const per = 15
	var wg sync.WaitGroup
	for r, svc := range c.svcs {
		wg.Go(func() {
			for i := range per {
				c.order(svc, "yard-1", fmt.Sprintf("r%d-%d", r, i))
			}
		})
	}
	wg.Wait()
	var all []uint64
	for r, svc := range c.svcs {
		svc.Flush(c.ctx)
		var vs []uint64
		for _, d := range c.recs[r].desired["yard-1"] {
			vs = append(vs, d.Version)
		}
		if !slices.IsSorted(vs) || len(vs) != per {
			t.Errorf("replica %d published versions %v, want %d increasing", r, vs, per)
		}
		all = append(all, vs...)
	}
	slices.Sort(all)
	d, err := c.svcs[0].GetSite(c.ctx, ops, "yard-1")
	if err != nil {
		t.Fatal(err)
	}
	first := all[0]
	for i, v := range all {
		if v != first+uint64(i) {
			t.Fatalf("versions of both replicas %v: want one gapless sequence, without repeats", all)
		}
	}
	if last := all[len(all)-1]; last != d.DesiredVersion {
		t.Errorf("last published version %d, site's %d", last, d.DesiredVersion)
	}
}

// Failure windows are shared through the store and dropped by the sweep once over: a
// flood of distinct keys leaves nothing behind.
func TestFailureWindows(t *testing.T) {
	c := newCluster(t, 2)
	a, b := c.svcs[0], c.svcs[1]
	for i := range 3 {
		if err := c.svcs[i%2].CountFailure(c.ctx, 15*time.Minute, "order/o1"); err != nil {
			t.Fatal(err)
		}
	}
	lim := cloud.FailureLimit{Key: "order/o1", Max: 3}
	if w, err := b.FailureWait(c.ctx, lim, cloud.FailureLimit{Key: "ip/10.0.0.1", Max: 1}); err != nil || w != 15*time.Minute {
		t.Errorf("after 3 failures on two replicas: wait %v, %v; want 15m", w, err)
	}
	if w, _ := a.FailureWait(c.ctx, cloud.FailureLimit{Key: "order/o1", Max: 4}); w != 0 {
		t.Errorf("3 failures of 4 allowed: wait %v, want 0", w)
	}
	for i := range 200 {
		if err := a.CountFailure(c.ctx, 15*time.Minute, fmt.Sprintf("ip/10.9.%d.%d", i/250, i%250), "order/"+string(make([]byte, 300))); err != nil {
			t.Fatal(err)
		}
	}
	rows := func() (n int) {
		c.db.View(c.ctx, func(tx cloud.Tx) error {
			for _, bk := range []string{"limits", "limit_ends"} {
				tx.Scan(bk, "", func(string, []byte) bool { n++; return true })
			}
			return nil
		})
		return n
	}
	if n := rows(); n != 2*(1+200+1) {
		t.Errorf("%d rows after failures of 202 keys, want 404", n)
	}
	c.clock.Add(10 * time.Minute)
	if err := a.CountFailure(c.ctx, 15*time.Minute, "order/o2"); err != nil {
		t.Fatal(err)
	}
	c.clock.Add(6 * time.Minute)
	c.grant(0)
	if _, err := a.Sweep(c.ctx); err != nil {
		t.Fatal(err)
	}
	if n := rows(); n != 2 {
		t.Errorf("%d rows after the windows ended and the sweep, want 2 (one window still open)", n)
	}
	if w, _ := b.FailureWait(c.ctx, lim); w != 0 {
		t.Errorf("a new window of one failure: wait %v, want 0", w)
	}
}

// A temperature alarm raised while another replica owned the site (or before a restart)
// is closed by the first telemetry with the zone back in range; a first telemetry with
// no alarm open writes nothing.
func TestReplicasCloseExcursionRaisedElsewhere(t *testing.T) {
	c := newCluster(t, 2)
	a, b := c.svcs[0], c.svcs[1]
	c.site("yard-1", 2)
	c.site("yard-2", 2)
	if _, err := b.ApplyEdgeEvent(c.ctx, "yard-1", protocol.Message{Header: protocol.Header{ID: protocol.NewID(), Seq: 1, Time: c.clock.Now()},
		Type: protocol.TypeEvent, Body: protocol.Event{Kind: protocol.EventTempExcursion, Zone: protocol.ZoneAmbient, Seconds: 600}}); err != nil {
		t.Fatal(err)
	}
	open := func() int {
		d, err := b.GetSite(c.ctx, ops, "yard-1")
		if err != nil {
			t.Fatal(err)
		}
		return len(d.Alarms)
	}
	if n := open(); n != 1 {
		t.Fatalf("%d alarms open after the excursion, want 1", n)
	}
	inRange := protocol.Telemetry{Zones: []protocol.ZoneReading{{Zone: protocol.ZoneAmbient, Celsius: ptr(20.0)}}}
	before := c.store.updates.Load()
	if err := a.ApplyTelemetry(c.ctx, "yard-2", c.clock.Now(), inRange); err != nil {
		t.Fatal(err)
	}
	if n := c.store.updates.Load() - before; n != 0 {
		t.Errorf("a first telemetry of a site without alarms cost %d updates, want 0", n)
	}
	if err := a.ApplyTelemetry(c.ctx, "yard-1", c.clock.Now(), inRange); err != nil {
		t.Fatal(err)
	}
	if n := open(); n != 0 {
		t.Errorf("%d alarms open after a heard the zone in range, want 0", n)
	}
}

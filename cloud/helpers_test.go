package cloud_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/cloud/bolt"
	"github.com/larder-lockers/larder/protocol"
)

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

// recorder is a behavioural fake of the three outbound ports.
type recorder struct {
	mu       sync.Mutex
	desired  map[string][]protocol.Desired
	commands []protocol.Command
	notes    []cloud.Notification
}

func (r *recorder) PublishDesired(_ context.Context, site string, d protocol.Desired) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.desired == nil {
		r.desired = map[string][]protocol.Desired{}
	}
	r.desired[site] = append(r.desired[site], d)
	return nil
}

func (r *recorder) PublishCommand(_ context.Context, _ string, c protocol.Command) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.commands = append(r.commands, c)
	return nil
}

func (r *recorder) Notify(_ context.Context, n cloud.Notification) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notes = append(r.notes, n)
	return nil
}

func (r *recorder) notesOf(typ string) []cloud.Notification {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []cloud.Notification
	for _, n := range r.notes {
		if n.Type == typ {
			out = append(out, n)
		}
	}
	return out
}

type env struct {
	t     *testing.T
	svc   *cloud.Service
	db    *bolt.DB
	clock *clock
	rec   *recorder
	admin cloud.Principal
	ops   cloud.Principal
	plat  cloud.Principal
	drv   cloud.Principal
	ctx   context.Context
	seq   map[string]uint64
}

var t0 = time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)

func newEnv(t *testing.T) *env {
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
	c := &clock{t: t0}
	rec := &recorder{}
	svc := cloud.New(cloud.Options{Store: db, Now: c.Now, Desired: rec, Commands: rec, Notifier: rec})
	return &env{t: t, svc: svc, db: db, clock: c, rec: rec, ctx: context.Background(), seq: map[string]uint64{},
		admin: cloud.Principal{Role: cloud.RoleAdmin, Subject: "root"},
		ops:   cloud.Principal{Role: cloud.RoleOps, Subject: "olga"},
		plat:  cloud.Principal{Role: cloud.RolePlatform, Subject: "veggie"},
		drv:   cloud.Principal{Role: cloud.RoleDriver, Subject: "dave"}}
}

func ptr[T any](v T) *T { return &v }

// site creates a provisioned site with compartments from a birth.
func (e *env) site(id string, loc *cloud.Location, comps []protocol.Compartment) {
	e.t.Helper()
	if _, err := e.svc.CreateSite(e.ctx, e.admin, cloud.SiteInput{ID: id, Name: ptr("Courtyard " + id), Location: loc}); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.svc.ApplyBirth(e.ctx, id, e.clock.Now(), protocol.Birth{Software: "test", Compartments: comps}); err != nil {
		e.t.Fatal(err)
	}
}

// bank builds n compartments per (zone, size), half of them low.
func bank(n int, zones []protocol.Zone, sizes []protocol.Size) []protocol.Compartment {
	var out []protocol.Compartment
	num := 1
	for _, z := range zones {
		for _, s := range sizes {
			for i := range n {
				h := 40
				if i%2 == 1 {
					h = 150
				}
				out = append(out, protocol.Compartment{Number: num, Size: s, Zone: z, HeightCM: h, Board: 0, Lock: num})
				num++
			}
		}
	}
	return out
}

func (e *env) orderReq(site, ext string, parcels ...cloud.Parcel) cloud.OrderRequest {
	now := e.clock.Now()
	return cloud.OrderRequest{ExternalID: ext, Site: site, Recipient: cloud.Recipient{Phone: "+44 20 7946 0958", Name: "Ann", Flat: "3B"},
		Parcels: parcels, Window: cloud.Window{Start: now.Add(time.Hour), End: now.Add(3 * time.Hour)}}
}

func (e *env) event(site string, ev protocol.Event) (uint64, error) {
	e.seq[site]++
	return e.svc.ApplyEdgeEvent(e.ctx, site, protocol.Message{Header: protocol.Header{ID: protocol.NewID(), Seq: e.seq[site], Time: e.clock.Now()},
		Type: protocol.TypeEvent, Body: ev})
}

func (e *env) mustEvent(site string, ev protocol.Event) {
	e.t.Helper()
	if _, err := e.event(site, ev); err != nil {
		e.t.Fatal(err)
	}
}

func wantCode(t *testing.T, err error, code cloud.Code) *cloud.Error {
	t.Helper()
	if got := cloud.ErrorCode(err); got != code {
		t.Fatalf("error code = %q (%v), want %q", got, err, code)
	}
	return cloud.AsError(err)
}

package web_test

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/cloud/bolt"
	"github.com/larder-lockers/larder/protocol"
)

// clock is an injected clock shared by the service and the pages.
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

// syncBuffer collects log output from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fixture is a real cloud.Service on a bbolt file with one online site ("court-1") of six
// compartments, API keys for each role, and orders placed through the service as a
// platform would.
type fixture struct {
	t     testing.TB
	ctx   context.Context
	svc   *cloud.Service
	clock *clock
	logs  *syncBuffer
	log   *slog.Logger
	seq   uint64

	opsKey, driverKey, platKey string
	admin, plat, ops           cloud.Principal
}

const site = "court-1"

var t0 = time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)

// bank: doors 1–2 chilled, 3–4 ambient, 5 frozen, 6 cool; odd doors low.
var bank = []protocol.Compartment{
	{Number: 1, Size: protocol.SizeM, Zone: protocol.ZoneChilled, HeightCM: 40, Board: 0, Lock: 1},
	{Number: 2, Size: protocol.SizeM, Zone: protocol.ZoneChilled, HeightCM: 150, Board: 0, Lock: 2},
	{Number: 3, Size: protocol.SizeL, Zone: protocol.ZoneAmbient, HeightCM: 40, Board: 0, Lock: 3},
	{Number: 4, Size: protocol.SizeL, Zone: protocol.ZoneAmbient, HeightCM: 100, Board: 0, Lock: 4},
	{Number: 5, Size: protocol.SizeS, Zone: protocol.ZoneFrozen, HeightCM: 40, Board: 0, Lock: 5},
	{Number: 6, Size: protocol.SizeS, Zone: protocol.ZoneCool, HeightCM: 150, Board: 0, Lock: 6},
}

func newFixture(t testing.TB) *fixture {
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
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f := &fixture{t: t, ctx: context.Background(), clock: c, logs: logs, log: log,
		svc:    cloud.New(cloud.Options{Store: db, Now: c.Now, Logger: log}),
		admin:  cloud.Principal{Role: cloud.RoleAdmin, Subject: "root"},
		plat:   cloud.Principal{Role: cloud.RolePlatform, Subject: "veggie"},
		ops:    cloud.Principal{Role: cloud.RoleOps, Subject: "olga"},
		opsKey: cloud.KeyPrefix + strings.Repeat("a1", 32), driverKey: cloud.KeyPrefix + strings.Repeat("d2", 32),
		platKey: cloud.KeyPrefix + strings.Repeat("f3", 32)}
	for _, k := range []struct {
		key  string
		role cloud.Role
		sub  string
	}{{f.opsKey, cloud.RoleOps, "olga"}, {f.driverKey, cloud.RoleDriver, "dave"}, {f.platKey, cloud.RolePlatform, "veggie"}} {
		if err := f.svc.EnsureKey(f.ctx, k.key, k.role, k.sub); err != nil {
			t.Fatal(err)
		}
	}
	name, addr := "Plum Court", "12 Plum Lane"
	if _, err := f.svc.CreateSite(f.ctx, f.admin, cloud.SiteInput{ID: site, Name: &name, Address: &addr}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Provision(f.ctx, f.admin, site); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.ApplyBirth(f.ctx, site, c.Now(), protocol.Birth{Software: "edge/test", Compartments: bank}); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.ApplyStatus(f.ctx, site, c.Now(), protocol.Status{Online: true, Software: "edge/test"}); err != nil {
		t.Fatal(err)
	}
	return f
}

// order creates an order of parcels whose code the platform delivers (so the test gets
// it) and returns the order and its code.
func (f *fixture) order(ext string, parcels ...cloud.Parcel) (cloud.Order, string) {
	f.t.Helper()
	now := f.clock.Now()
	rc, err := f.svc.CreateOrder(f.ctx, f.plat, "idem-"+ext, cloud.OrderRequest{ExternalID: ext, Site: site,
		Recipient: cloud.Recipient{Phone: "+86 138 0013 8000", Name: "Wang Fang", Flat: "3-502"},
		Parcels:   parcels, Window: cloud.Window{Start: now, End: now.Add(2 * time.Hour)}, CodeDelivery: cloud.DeliverByPlatform})
	if err != nil {
		f.t.Fatal(err)
	}
	return rc.Order, rc.Code
}

// load reports every compartment of o loaded, as the edge would.
func (f *fixture) load(o cloud.Order) cloud.Order {
	f.t.Helper()
	for _, sl := range o.Slots {
		f.seq++
		m := protocol.Message{Header: protocol.Header{ID: protocol.NewID(), Seq: f.seq, Time: f.clock.Now()},
			Type: protocol.TypeEvent, Body: protocol.Event{Kind: protocol.EventLoaded, Order: o.ID, Compartment: sl.Compartment}}
		if _, err := f.svc.ApplyEdgeEvent(f.ctx, site, m); err != nil {
			f.t.Fatal(err)
		}
	}
	got, err := f.svc.GetOrder(f.ctx, f.ops, o.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	if got.State != cloud.StateLoaded {
		f.t.Fatalf("order %s is %s after loading, want loaded", o.ID, got.State)
	}
	return got
}

// noSecretsLogged fails if any of secrets appears in the logs.
func (f *fixture) noSecretsLogged(secrets ...string) {
	f.t.Helper()
	logs := f.logs.String()
	for _, s := range secrets {
		if s != "" && strings.Contains(logs, s) {
			f.t.Errorf("a secret (%.6s…) appears in the logs", s)
		}
	}
}

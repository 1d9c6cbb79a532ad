package cloud_test

import (
	"testing"
	"time"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/protocol"
)

// restart replaces e.svc with a new Service over the same store and clock, as a new
// cloud process would be, and runs its Resume.
func (e *env) restart() time.Duration {
	e.t.Helper()
	e.svc = cloud.New(cloud.Options{Store: e.db, Now: e.clock.Now, Desired: e.rec, Commands: e.rec, Notifier: e.rec})
	gap, err := e.svc.Resume(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return gap
}

// loadedSite is a started cloud with an online site and a loaded ambient order (12 h
// hold, 48 h cap) and a loaded chilled one (24 h hold, at its 24 h cap already).
func loadedSite(t *testing.T) (e *env, ambient, chilled cloud.Order) {
	e = newEnv(t)
	if gap, err := e.svc.Resume(e.ctx); err != nil || gap != 0 {
		t.Fatalf("first start: gap %v, err %v; want 0, nil", gap, err)
	}
	e.site("yard-1", nil, bank(1, []protocol.Zone{protocol.ZoneAmbient, protocol.ZoneChilled}, []protocol.Size{protocol.SizeM}))
	if err := e.svc.ApplyStatus(e.ctx, "yard-1", e.clock.Now(), protocol.Status{Online: true}); err != nil {
		t.Fatal(err)
	}
	a, err := e.svc.CreateOrder(e.ctx, e.plat, "k1", e.orderReq("yard-1", "e1", ambientS))
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.svc.CreateOrder(e.ctx, e.plat, "k2", e.orderReq("yard-1", "e2", chilledS))
	if err != nil {
		t.Fatal(err)
	}
	e.mustEvent("yard-1", protocol.Event{Kind: protocol.EventLoaded, Credential: protocol.CredDriver, Order: a.Order.ID, Compartment: a.Order.Slots[0].Compartment})
	e.mustEvent("yard-1", protocol.Event{Kind: protocol.EventLoaded, Credential: protocol.CredDriver, Order: c.Order.ID, Compartment: c.Order.Slots[0].Compartment})
	ambient, _ = e.svc.GetOrder(e.ctx, e.plat, a.Order.ID)
	chilled, _ = e.svc.GetOrder(e.ctx, e.plat, c.Order.ID)
	return e, ambient, chilled
}

func (e *env) online(site string) bool {
	e.t.Helper()
	d, err := e.svc.GetSite(e.ctx, e.ops, site)
	if err != nil {
		e.t.Fatal(err)
	}
	return d.Online
}

func (e *env) expiry(id string) time.Time {
	e.t.Helper()
	o, err := e.svc.GetOrder(e.ctx, e.plat, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return o.ExpiresAt
}

func TestCloudDownExtendsDeadlines(t *testing.T) {
	for _, tc := range []struct {
		name  string
		clean bool // Stop before going away, else a crash
		down  time.Duration
		want  time.Duration // the ambient order's extension
	}{
		{"stopped 10 min", true, 10 * time.Minute, 10 * time.Minute},
		{"crashed 10 min", false, 10 * time.Minute, 10 * time.Minute},
		{"stopped 30 s", true, 30 * time.Second, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, a, c := loadedSite(t)
			if tc.clean {
				if err := e.svc.Stop(e.ctx); err != nil {
					t.Fatal(err)
				}
			}
			e.clock.Add(tc.down)
			if gap := e.restart(); gap != tc.down {
				t.Errorf("gap = %v, want %v", gap, tc.down)
			}
			// Until its edge is heard again, the site reads offline after a real outage.
			if got, want := e.online("yard-1"), tc.want == 0; got != want {
				t.Errorf("online after restart = %v, want %v", got, want)
			}
			if err := e.svc.ApplyStatus(e.ctx, "yard-1", e.clock.Now(), protocol.Status{Online: true}); err != nil {
				t.Fatal(err)
			}
			if got := e.expiry(a.ID).Sub(a.ExpiresAt); got != tc.want {
				t.Errorf("ambient extended by %v, want %v", got, tc.want)
			}
			if got := e.expiry(c.ID); !got.Equal(c.ExpiresAt) {
				t.Errorf("chilled moved past its cap by %v", got.Sub(c.ExpiresAt))
			}
			if !e.online("yard-1") {
				t.Error("site offline after its edge's status")
			}
			e.svc.Flush(e.ctx)
			if n := len(e.rec.notesOf(cloud.NoteExtended)); (n > 0) != (tc.want > 0) {
				t.Errorf("%d extension notices for an extension of %v", n, tc.want)
			}
		})
	}
}

// A site already offline when the cloud went down keeps its own, earlier start.
func TestCloudDownKeepsEarlierSiteOutage(t *testing.T) {
	e, a, _ := loadedSite(t)
	if err := e.svc.ApplyStatus(e.ctx, "yard-1", e.clock.Now(), protocol.Status{Online: false}); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(time.Hour)
	if err := e.svc.Stop(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(10 * time.Minute)
	e.restart()
	if err := e.svc.ApplyStatus(e.ctx, "yard-1", e.clock.Now(), protocol.Status{Online: true}); err != nil {
		t.Fatal(err)
	}
	if got := e.expiry(a.ID).Sub(a.ExpiresAt); got != 70*time.Minute {
		t.Errorf("extended by %v, want 1h10m", got)
	}
}

// A start that fails before Resume must not overwrite the heartbeat with its own: the
// outage before it would be lost.
func TestStopBeforeResumeKeepsHeartbeat(t *testing.T) {
	e, a, _ := loadedSite(t)
	e.clock.Add(10 * time.Minute)
	failed := cloud.New(cloud.Options{Store: e.db, Now: e.clock.Now})
	if err := failed.Stop(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(time.Minute)
	if gap := e.restart(); gap != 11*time.Minute {
		t.Errorf("gap = %v, want 11m", gap)
	}
	if err := e.svc.ApplyStatus(e.ctx, "yard-1", e.clock.Now(), protocol.Status{Online: true}); err != nil {
		t.Fatal(err)
	}
	if got := e.expiry(a.ID).Sub(a.ExpiresAt); got != 11*time.Minute {
		t.Errorf("extended by %v, want 11m", got)
	}
}

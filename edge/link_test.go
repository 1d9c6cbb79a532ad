package edge_test

import (
	"testing"
	"time"

	"github.com/larder-lockers/larder/edge"
	"github.com/larder-lockers/larder/edge/hw"
	"github.com/larder-lockers/larder/protocol"
)

// reserveCapped sends o with its food-safety cap (max_expires_at; zero: none, as from a
// 1.0 cloud) and has a driver load it.
func (h *harness) reserveCapped(o order, max time.Time) {
	h.t.Helper()
	v, _ := h.l.DesiredVersion()
	r := o.reservation()
	r.MaxExpiresAt = max
	d := protocol.Desired{Version: v + 1, Full: true, Reservations: []protocol.Reservation{r},
		Credentials: []protocol.LoadingCredential{{ID: "cred-1", Digest: protocol.CredentialDigest(siteKey, "driver-secret"),
			Driver: "drv-7", ExpiresAt: t0.Add(48 * time.Hour)}}}
	if got := h.desired(d); got != edge.DesiredApplied {
		h.t.Fatalf("desired outcome %v", got)
	}
	h.load(o)
}

func (h *harness) linkUp() {
	h.t.Helper()
	if err := h.l.LinkUp(h.ctx); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) linkDown() {
	h.t.Helper()
	if err := h.l.LinkDown(h.ctx); err != nil {
		h.t.Fatal(err)
	}
}

// manifestState is the order's state on the driver's manifest ("" when absent).
func (h *harness) manifestState(id string) string {
	h.t.Helper()
	m, err := h.l.Manifest()
	if err != nil {
		h.t.Fatal(err)
	}
	for _, mo := range m {
		if mo.Order == id {
			return mo.State
		}
	}
	return ""
}

// TestOfflineHonoursPastDeadline: while the edge cannot reach the cloud for more than a
// minute, the kiosk, the manifest and returns agree that an order is honoured past its
// deadline by the outage's length, never past its food-safety cap; a short outage, a
// linked edge and a reservation without a cap change nothing.
func TestOfflineHonoursPastDeadline(t *testing.T) {
	expires, cap := t0.Add(time.Hour), t0.Add(2*time.Hour)
	for _, tc := range []struct {
		name       string
		max        time.Time     // the reservation's cap (zero: none)
		down       time.Duration // when the link went down, after t0 (0: it stays up)
		at         time.Duration // when the resident comes, after t0
		compromise bool          // out of temperature past its budget first
		wantOpen   bool
	}{
		{"offline, past the deadline, within the cap", cap, 30 * time.Minute, 90 * time.Minute, false, true},
		{"offline, past the cap", cap, 30 * time.Minute, 2*time.Hour + time.Second, false, false},
		{"offline 50 s", cap, time.Hour - 30*time.Second, time.Hour + 20*time.Second, false, false},
		{"offline, reservation without a cap", time.Time{}, 30 * time.Minute, 90 * time.Minute, false, false},
		{"offline, a cap not after the deadline", expires.Add(-time.Minute), 30 * time.Minute, 90 * time.Minute, false, false},
		{"offline, compromised", cap, 30 * time.Minute, 90 * time.Minute, true, false},
		{"linked", cap, 0, time.Hour + time.Minute, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.linkUp()
			o := order{id: "ord-1", code: "48291573", factor: "4711", slots: []int{1}, expires: expires, budget: 60}
			h.reserveCapped(o, tc.max)
			if tc.compromise {
				for range 3 {
					h.l.Temperatures(h.ctx, []hw.Reading{{Zone: "chilled", Celsius: 9}})
					h.clock.Advance(time.Minute)
				}
				if !h.reservation(o.id).Compromised {
					t.Fatal("not compromised after 2 min above its limit")
				}
			}
			if tc.down > 0 {
				h.clock.Set(t0.Add(tc.down))
				h.linkDown()
			}
			h.clock.Set(t0.Add(tc.at))
			wantManifest := "expired"
			if tc.wantOpen {
				wantManifest = "loaded"
			}
			if got := h.manifestState(o.id); got != wantManifest {
				t.Errorf("manifest state %q, want %q", got, wantManifest)
			}
			if tc.wantOpen {
				if _, err := h.l.DriverReturn(h.ctx, "drv-7", o.id); code(err) != edge.CodeConflict {
					t.Errorf("driver return of an order still honoured: %v, want conflict", err)
				}
			}
			_, err := h.l.Pickup(h.ctx, o.code, o.factor, false)
			switch {
			case tc.wantOpen && err != nil:
				t.Errorf("pickup refused: %v", err)
			case !tc.wantOpen && code(err) != edge.CodeExpired:
				t.Errorf("pickup: %v, want expired", err)
			}
		})
	}
}

// TestLinkUpReportsOutage: the link's return reports an outage longer than a minute
// once, in the outbox, and the deadline is the cloud's again.
func TestLinkUpReportsOutage(t *testing.T) {
	h := newHarness(t)
	h.linkUp()
	o := order{id: "ord-1", code: "48291573", factor: "4711", slots: []int{1}, expires: t0.Add(time.Hour)}
	h.reserveCapped(o, t0.Add(24*time.Hour))
	before := h.count(protocol.EventOutage)
	if before != 0 {
		t.Fatalf("%d outage events before any outage", before)
	}
	// A blip.
	h.clock.Set(t0.Add(10 * time.Minute))
	h.linkDown()
	h.clock.Advance(30 * time.Second)
	h.linkUp()
	if n := h.count(protocol.EventOutage); n != 0 {
		t.Errorf("a 30 s outage reported %d times", n)
	}
	// A long one, across the deadline.
	h.clock.Set(t0.Add(50 * time.Minute))
	h.linkDown()
	h.clock.Advance(time.Minute) // a second LinkDown does not restart the outage
	h.linkDown()
	h.clock.Set(t0.Add(90 * time.Minute))
	if got := h.l.Outage(); got != 40*time.Minute {
		t.Errorf("outage %v, want 40m", got)
	}
	h.linkUp()
	h.linkUp()
	var got []float64
	for _, e := range h.events() {
		if e.Kind == protocol.EventOutage {
			got = append(got, e.Seconds)
		}
	}
	if len(got) != 1 || got[0] != (40*time.Minute).Seconds() {
		t.Errorf("outage events %v, want one of 2400 s", got)
	}
	if _, err := h.l.Pickup(h.ctx, o.code, o.factor, false); code(err) != edge.CodeExpired {
		t.Errorf("pickup after the link returned, before the cloud's new deadline: %v, want expired", err)
	}
}

// TestEdgeDowntimeIsOutage: the time the edge itself was not running counts: after a
// crash from its last sign of life (Tick, every AliveEvery while linked), after a
// clean stop from the stop, after a first start until the first connection.
func TestEdgeDowntimeIsOutage(t *testing.T) {
	h := newHarness(t)
	if got := h.l.Outage(); got != 0 {
		t.Fatalf("outage at the first start %v", got)
	}
	h.clock.Advance(2 * time.Minute)
	if got := h.l.Outage(); got != 2*time.Minute {
		t.Errorf("never connected since the first start: outage %v, want 2m", got)
	}
	h.linkUp()
	if n := h.count(protocol.EventOutage); n != 1 {
		t.Errorf("%d outage events for the first start, want 1", n)
	}
	h.l.Tick(h.ctx)
	h.clock.Advance(edge.AliveEvery)
	h.l.Tick(h.ctx)
	alive := h.clock.Now()
	h.clock.Advance(5 * time.Second)
	h.restart(nil) // a crash: no LinkDown
	h.clock.Advance(10 * time.Minute)
	if got, want := h.l.Outage(), h.clock.Now().Sub(alive); got != want {
		t.Errorf("after a crash: outage %v, want %v (since the last sign of life)", got, want)
	}
	h.linkUp()
	h.clock.Advance(time.Minute)
	h.linkDown() // a clean stop ends the link
	stopped := h.clock.Now()
	h.restart(nil)
	h.clock.Advance(time.Hour)
	if got, want := h.l.Outage(), h.clock.Now().Sub(stopped); got != want {
		t.Errorf("after a stop: outage %v, want %v", got, want)
	}
}

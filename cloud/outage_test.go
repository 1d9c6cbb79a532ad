package cloud_test

import (
	"testing"
	"time"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/protocol"
)

// outageEvent is the edge's report of an outage of d ending now.
func outageEvent(d time.Duration) protocol.Event {
	return protocol.Event{Kind: protocol.EventOutage, Credential: protocol.CredNone, Seconds: d.Seconds()}
}

// TestOutageEvidenceUnion: the cloud's own evidence of an outage (the edge's Last Will,
// then its status) and the edge's (its outage event) are merged: an outage both saw
// moves deadlines once, whichever side tells first, one seen by one side alone moves
// them too, and a part only one side saw is added.
func TestOutageEvidenceUnion(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(e *env)
		want time.Duration // the ambient order's extension
	}{
		{"edge alone", func(e *env) {
			e.clock.Add(10 * time.Minute)
			e.mustEvent("yard-1", outageEvent(10*time.Minute))
		}, 10 * time.Minute},
		{"edge alone, too short", func(e *env) {
			e.clock.Add(50 * time.Second)
			e.mustEvent("yard-1", outageEvent(50*time.Second))
		}, 0},
		{"cloud then edge, the same outage", func(e *env) {
			e.status(false)
			e.clock.Add(10 * time.Minute)
			e.status(true)
			// The edge noticed the loss 30 s late and reports a second after the status.
			e.clock.Add(time.Second)
			e.mustEvent("yard-1", outageEvent(10*time.Minute-29*time.Second))
		}, 10 * time.Minute},
		{"edge then cloud, the same outage", func(e *env) {
			e.clock.Add(10 * time.Minute)
			e.mustEvent("yard-1", outageEvent(10*time.Minute))
			if err := e.svc.ApplyPresence(e.ctx, "yard-1", cloud.Presence{Online: true, At: e.clock.Now(), Outage: 10 * time.Minute}); err != nil {
				e.t.Fatal(err)
			}
		}, 10 * time.Minute},
		{"the edge saw more", func(e *env) {
			// The edge was down 20 min, the broker's Will reached the cloud after 15.
			e.clock.Add(15 * time.Minute)
			e.status(false)
			e.clock.Add(5 * time.Minute)
			e.status(true)
			e.mustEvent("yard-1", outageEvent(20*time.Minute))
		}, 20 * time.Minute},
		{"an absurd report", func(e *env) {
			// A confused edge clock: the cap holds, and nothing overflows.
			e.mustEvent("yard-1", protocol.Event{Kind: protocol.EventOutage, Credential: protocol.CredNone, Seconds: 1e12})
		}, 36 * time.Hour},
		{"two outages", func(e *env) {
			e.status(false)
			e.clock.Add(10 * time.Minute)
			e.status(true)
			e.clock.Add(time.Hour)
			e.mustEvent("yard-1", outageEvent(5*time.Minute))
		}, 15 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, a, c := loadedSite(t)
			tc.run(e)
			if got := e.expiry(a.ID).Sub(a.ExpiresAt); got != tc.want {
				t.Errorf("ambient extended by %v, want %v", got, tc.want)
			}
			if got := e.expiry(c.ID); !got.Equal(c.ExpiresAt) {
				t.Errorf("chilled moved past its cap by %v", got.Sub(c.ExpiresAt))
			}
			// The last reservation the edge was sent is the cloud's deadline, with its cap.
			e.svc.Flush(e.ctx)
			r, ok := e.rec.lastReservation("yard-1", a.ID)
			if !ok {
				t.Fatal("no reservation of the ambient order sent")
			}
			if !r.ExpiresAt.Equal(e.expiry(a.ID)) {
				t.Errorf("edge told expires_at %v, cloud has %v", r.ExpiresAt, e.expiry(a.ID))
			}
			if want := a.LoadedAt.Add(48 * time.Hour); !r.MaxExpiresAt.Equal(want) {
				t.Errorf("max_expires_at = %v, want the 48 h cap %v", r.MaxExpiresAt, want)
			}
		})
	}
}

// TestOutageRevivesOrderExpiredMeanwhile: the cloud's sweep expires an order while its
// edge cannot be reached (the edge goes on honouring it); the edge's report of the
// outage brings it back to loaded with the extended deadline.
func TestOutageRevivesOrderExpiredMeanwhile(t *testing.T) {
	e, a, _ := loadedSite(t)
	e.clock.Add(a.ExpiresAt.Add(-time.Hour).Sub(e.clock.Now()))
	start := e.clock.Now()
	e.clock.Add(2 * time.Hour)
	if _, err := e.svc.Sweep(e.ctx); err != nil {
		t.Fatal(err)
	}
	if o, _ := e.svc.GetOrder(e.ctx, e.plat, a.ID); o.State != cloud.StateExpired {
		t.Fatalf("after the sweep: %s, want expired", o.State)
	}
	e.mustEvent("yard-1", outageEvent(e.clock.Now().Sub(start)))
	o, _ := e.svc.GetOrder(e.ctx, e.plat, a.ID)
	if o.State != cloud.StateLoaded || !o.ExpiresAt.Equal(a.ExpiresAt.Add(2*time.Hour)) {
		t.Errorf("after the edge's report: %s until %v, want loaded until %v", o.State, o.ExpiresAt, a.ExpiresAt.Add(2*time.Hour))
	}
}

func (e *env) status(online bool) {
	e.t.Helper()
	if err := e.svc.ApplyStatus(e.ctx, "yard-1", e.clock.Now(), protocol.Status{Online: online}); err != nil {
		e.t.Fatal(err)
	}
}

// lastReservation is the last reservation of order sent to site.
func (r *recorder) lastReservation(site, order string) (protocol.Reservation, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ds := r.desired[site]
	for i := len(ds) - 1; i >= 0; i-- {
		for _, res := range ds[i].Reservations {
			if res.Order == order {
				return res, true
			}
		}
	}
	return protocol.Reservation{}, false
}

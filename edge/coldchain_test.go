package edge_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/larder-lockers/larder/edge/hw"
	"github.com/larder-lockers/larder/protocol"
)

// thermometer is a simulated probe for one zone: each read advances the fake clock by
// the edge's temperature interval and hands the Locker one reading.
type thermometer struct {
	h    *harness
	zone string
}

const readEvery = 10 * time.Second

func (th thermometer) read(n int, celsius float64, err error) {
	for range n {
		th.h.clock.Advance(readEvery)
		th.h.l.Temperatures(th.h.ctx, []hw.Reading{{Zone: th.zone, Celsius: celsius, Err: err}})
	}
}

// coldChainOf is the cold-chain record of the one event of kind in the outbox.
func coldChainOf(t *testing.T, h *harness, kind protocol.EventKind) *protocol.ColdChain {
	t.Helper()
	var found []*protocol.ColdChain
	for _, e := range h.events() {
		if e.Kind == kind {
			found = append(found, e.ColdChain)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d %s events: %s", len(found), kind, h.kinds())
	}
	if found[0] == nil {
		t.Fatalf("%s carries no cold-chain record", kind)
	}
	if err := found[0].Check(); err != nil {
		t.Fatalf("%s carries an impossible record: %v", kind, err)
	}
	return found[0]
}

// The record the picked_up event carries: time above 8 °C, the peak, the time a failed
// probe left without readings, from loading to pickup, across a crash of the edge.
func TestColdChainRecordAtPickup(t *testing.T) {
	h := newHarness(t)
	th := thermometer{h, "chilled"}
	th.read(1, 4, nil)
	h.reserve(alice) // chilled doors 1 and 4
	h.clock.Advance(5 * time.Second)
	loadedAt := h.clock.Now()
	h.load(alice)
	th.read(30, 4.5, nil) // 5 minutes cold; the peak rises to 4.5
	th.read(6, 9.5, nil)  // a minute above 8 °C (six intervals ending in a warm reading)
	th.read(1, 3, nil)    // back to cold
	h.restart(nil)        // the edge crashes, and is down for a minute
	h.clock.Advance(time.Minute)
	h.l.Temperatures(h.ctx, []hw.Reading{{Zone: "chilled", Celsius: 3}})
	th.read(30, 0, hw.ErrProbe) // the probe fails for 5 minutes: 5 min 10 s without a reading
	th.read(3, 3.5, nil)
	if r := h.reservation(alice.id); r.Compromised {
		t.Fatalf("a minute above the limit compromised the order: %+v", r)
	}

	if _, err := h.l.Pickup(h.ctx, alice.code, alice.factor, false); err != nil {
		t.Fatal(err)
	}
	h.doorCycle(1, hw.Empty)
	h.doorCycle(4, hw.Empty)
	got := coldChainOf(t, h, protocol.EventPickedUp)
	peak := 9.5
	want := &protocol.ColdChain{From: loadedAt, To: h.clock.Now(), LimitC: 8, AboveSeconds: 60, PeakC: &peak, MissingSeconds: 310}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("cold chain (-want +got):\n%s", diff)
	}
}

// A crash loses at most checkpointEvery of readings: a quick restart leaves no gap, a
// long one counts as missing for as long as the edge was down (plus at most a minute).
func TestColdChainMissingAcrossCrash(t *testing.T) {
	h := newHarness(t)
	th := thermometer{h, "chilled"}
	h.reserve(alice)
	h.load(alice)
	th.read(60, 3, nil) // ten cold minutes
	h.restart(nil)
	th.read(1, 3, nil) // back 10 s later
	if r := h.reservation(alice.id); r.MissingSeconds != 0 {
		t.Fatalf("a 10 s restart counted %v s without readings", r.MissingSeconds)
	}
	th.read(60, 3, nil)
	h.restart(nil)
	h.clock.Advance(10 * time.Minute)
	th.read(1, 3, nil)
	if r := h.reservation(alice.id); r.MissingSeconds < 600 || r.MissingSeconds > 600+60+10 {
		t.Fatalf("ten minutes down counted %v s without readings", r.MissingSeconds)
	}
}

// The record of a returned order; a zone with no reading at all reports no peak and
// the whole time as missing, never "kept cold".
func TestColdChainRecordAtReturn(t *testing.T) {
	h := newHarness(t)
	o := order{id: "ord_frozen1", code: "55556666", factor: "1111", slots: []int{7}, zone: protocol.ZoneFrozen, expires: t0.Add(time.Hour)}
	h.reserve(o)
	h.load(o)
	h.clock.Advance(2 * time.Hour)
	drv, _ := h.l.Driver(h.driver())
	if _, err := h.l.DriverReturn(h.ctx, drv, o.id); err != nil {
		t.Fatal(err)
	}
	h.doorCycle(7, hw.Empty)
	got := coldChainOf(t, h, protocol.EventExpiredRemoved)
	want := &protocol.ColdChain{From: t0, To: h.clock.Now(), LimitC: -15, MissingSeconds: 7200}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("cold chain (-want +got):\n%s", diff)
	}
}

package edge_test

import (
	"slices"
	"testing"
	"time"

	"github.com/larder-lockers/larder/edge"
	"github.com/larder-lockers/larder/edge/hw"
	"github.com/larder-lockers/larder/protocol"
)

var alice = order{id: "ord_alice01", code: "12345678", factor: "4321", slots: []int{1, 4}}

func TestLoadThenPickup(t *testing.T) {
	h := newHarness(t)
	h.reserve(alice)
	if got := h.compartment(1).State; got != edge.StateReserved {
		t.Fatalf("compartment 1 is %s, want reserved", got)
	}
	// Before loading the code says "not ready".
	if _, err := h.l.Pickup(h.ctx, alice.code, alice.factor, false); code(err) != edge.CodeNotReady {
		t.Fatalf("pickup before loading: %v", err)
	}
	h.load(alice)
	if r := h.reservation(alice.id); r.State != edge.OrderLoaded || r.LoadedAt.IsZero() {
		t.Fatalf("after loading: %+v", r)
	}
	if n := h.count(protocol.EventLoaded); n != 2 {
		t.Fatalf("%d loaded events: %s", n, h.kinds())
	}

	res, err := h.l.Pickup(h.ctx, alice.code, alice.factor, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.latch.Calls(); !slices.Equal(got[len(got)-2:], []int{1, 4}) && !slices.Equal(got[len(got)-2:], []int{4, 1}) {
		t.Fatalf("unlocked %v", got)
	}
	if len(res.Doors) != 2 || res.Doors[0].WhereEN != "door 1, bottom row, left" || res.Doors[1].WhereEN != "door 4, bottom row, middle" {
		t.Fatalf("doors %+v", res.Doors)
	}
	if res.Doors[0].WhereZH != "1号门，最下排，左边" || res.OrderRef != "ce01" {
		t.Fatalf("result %+v", res)
	}
	// A second press while the doors are open shows the same session.
	again, err := h.l.Pickup(h.ctx, alice.code, alice.factor, false)
	if err != nil || again.Session != res.Session {
		t.Fatalf("second press: %v %v", again.Session, err)
	}
	h.doorCycle(1, hw.Empty)
	if h.count(protocol.EventPickedUp) != 0 {
		t.Fatal("picked up with one door still to close")
	}
	if _, done, _ := h.l.SessionStatus(res.Session); done {
		t.Fatal("session done early")
	}
	h.doorCycle(4, hw.Empty)
	if n := h.count(protocol.EventPickedUp); n != 1 {
		t.Fatalf("%d picked_up: %s", n, h.kinds())
	}
	if _, done, err := h.l.SessionStatus(res.Session); !done || err != nil {
		t.Fatalf("session not done: %v", err)
	}
	if c := h.compartment(1); c.State != edge.StateFree || c.Order != "" {
		t.Fatalf("compartment 1 after pickup: %+v", c)
	}
	// Single use: the code opens nothing again; its owner is told the order was picked
	// up, anybody else that the code is wrong.
	if _, err := h.l.Pickup(h.ctx, alice.code, alice.factor, false); code(err) != edge.CodeAlreadyPickedUp {
		t.Fatalf("code reused: %v", err)
	}
	if _, err := h.l.Pickup(h.ctx, alice.code, "0000", false); code(err) != edge.CodeWrongCode {
		t.Fatalf("code reused with a wrong factor: %v", err)
	}
	// A late snapshot naming the order again does not bring it back.
	h.reserve(alice)
	if r := h.reservation(alice.id); r.State != edge.OrderPickedUp {
		t.Fatalf("revived: %s", r.State)
	}
	audit, _ := h.store.AuditLog()
	var pickups int
	for _, a := range audit {
		if a.Reason == "pickup" && a.Credential == protocol.CredPickup {
			pickups++
		}
	}
	if pickups != 2 {
		t.Fatalf("audit has %d pickup openings, want 2: %+v", pickups, audit)
	}
}

func TestWrongFactorInvalidatesOrder(t *testing.T) {
	h := newHarness(t)
	alice := alice
	alice.expires = t0.Add(30 * 24 * time.Hour)
	h.reserve(alice)
	h.load(alice)
	for i := range 10 {
		h.clock.Advance(6 * time.Hour) // outlive the keypad's wait
		if _, err := h.l.Pickup(h.ctx, alice.code, "0000", false); code(err) != edge.CodeWrongCode && code(err) != edge.CodeLocked {
			t.Fatalf("attempt %d: %v", i, err)
		}
		h.clock.Advance(time.Hour)
	}
	if r := h.reservation(alice.id); r.State != edge.OrderInvalidated {
		t.Fatalf("order %s after 10 wrong factors", r.State)
	}
	var found bool
	for _, e := range h.events() {
		if e.Kind == protocol.EventCodeLockout && e.Order == alice.id && e.Reason == "order_invalidated" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no order_invalidated lockout: %s", h.kinds())
	}
	h.clock.Advance(time.Hour)
	if _, err := h.l.Pickup(h.ctx, alice.code, alice.factor, false); code(err) != edge.CodeWrongCode {
		t.Fatalf("invalidated code still works: %v", err)
	}
	// The cloud reissues a code: the order works again with the new one.
	re := alice
	re.code = "87654321"
	h.reserve(re)
	h.clock.Advance(time.Hour)
	if _, err := h.l.Pickup(h.ctx, re.code, re.factor, false); err != nil {
		t.Fatalf("reissued code: %v", err)
	}
}

func TestExpiredCode(t *testing.T) {
	h := newHarness(t)
	o := alice
	o.expires = t0.Add(time.Hour)
	h.reserve(o)
	h.load(o)
	h.clock.Advance(2 * time.Hour)
	_, err := h.l.Pickup(h.ctx, o.code, o.factor, false)
	if e, _ := err.(*edge.Error); e == nil || e.Code != edge.CodeExpired || e.Message == "" {
		t.Fatalf("expired: %v", err)
	}
	// The driver takes it back.
	tok := h.driver()
	drv, _ := h.l.Driver(tok)
	m, _ := h.l.Manifest()
	if len(m) != 1 || m[0].State != "expired" {
		t.Fatalf("manifest %+v", m)
	}
	if _, err := h.l.DriverReturn(h.ctx, drv, o.id); err != nil {
		t.Fatal(err)
	}
	h.doorCycle(1, hw.Empty)
	h.doorCycle(4, hw.Empty)
	if n := h.count(protocol.EventExpiredRemoved); n != 1 {
		t.Fatalf("%d expired_removed: %s", n, h.kinds())
	}
}

func TestBadInput(t *testing.T) {
	h := newHarness(t)
	for _, in := range [][2]string{{"", "1234"}, {"12a45678", "1234"}, {"12345678", "12345"}, {"123", "1234"}} {
		if _, err := h.l.Pickup(h.ctx, in[0], in[1], false); code(err) != edge.CodeBadRequest {
			t.Errorf("%q: %v", in, err)
		}
	}
	if _, secs := h.l.Info(); secs != 0 {
		t.Fatal("malformed input counted against the keypad")
	}
}

func TestJammedPickupDoor(t *testing.T) {
	h := newHarness(t)
	o := order{id: "ord_bob", code: "11112222", factor: "9999", slots: []int{2}}
	h.reserve(o)
	h.load(o)
	h.latch.Jam(2)
	if _, err := h.l.Pickup(h.ctx, o.code, o.factor, false); code(err) != edge.CodeHardware {
		t.Fatalf("jammed: %v", err)
	}
	if h.count(protocol.EventLockJammed) != 1 {
		t.Fatalf("events %s", h.kinds())
	}
	// The code keeps working once the latch is fixed.
	h.latch.jammed = nil
	if _, err := h.l.Pickup(h.ctx, o.code, o.factor, false); err != nil {
		t.Fatal(err)
	}
}

func TestKillDuringPickupResumes(t *testing.T) {
	h := newHarness(t)
	h.reserve(alice)
	h.load(alice)
	if _, err := h.l.Pickup(h.ctx, alice.code, alice.factor, false); err != nil {
		t.Fatal(err)
	}
	h.hw(hw.EventDoorOpened, 1, 0)
	// Crash. While the edge is down the resident empties both doors and closes them.
	snap := &hw.Snapshot{Compartments: map[int]hw.CompartmentState{}, Boards: map[int]hw.BoardState{0: {Online: true}}}
	for _, s := range specs() {
		snap.Compartments[s.Number] = hw.CompartmentState{Door: hw.DoorClosed, Occupancy: hw.Empty}
	}
	h.restart(snap)
	if n := h.count(protocol.EventPickedUp); n != 1 {
		t.Fatalf("%d picked_up after restart: %s", n, h.kinds())
	}
	h.restart(snap)
	h.l.Tick(h.ctx)
	if n := h.count(protocol.EventPickedUp); n != 1 {
		t.Fatalf("%d picked_up after second restart", n)
	}
}

func TestAbandonedPickupKeepsTheOrder(t *testing.T) {
	h := newHarness(t)
	h.reserve(alice)
	h.load(alice)
	if _, err := h.l.Pickup(h.ctx, alice.code, alice.factor, false); err != nil {
		t.Fatal(err)
	}
	// Restart with the doors closed and still full: nobody took anything.
	snap := &hw.Snapshot{Compartments: map[int]hw.CompartmentState{}, Boards: map[int]hw.BoardState{}}
	for _, s := range specs() {
		snap.Compartments[s.Number] = hw.CompartmentState{Door: hw.DoorClosed, Occupancy: hw.Occupied}
	}
	h.restart(snap)
	h.clock.Advance(6 * time.Minute)
	h.l.Tick(h.ctx)
	if r := h.reservation(alice.id); r.State != edge.OrderLoaded {
		t.Fatalf("order %s after an abandoned session", r.State)
	}
	if _, err := h.l.Pickup(h.ctx, alice.code, alice.factor, false); err != nil {
		t.Fatalf("code after abandoned session: %v", err)
	}
}

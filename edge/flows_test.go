package edge_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/larder-lockers/larder/edge"
	"github.com/larder-lockers/larder/edge/hw"
	"github.com/larder-lockers/larder/protocol"
)

func TestJammedAtLoadingReassigns(t *testing.T) {
	h := newHarness(t)
	// Compartment 2 (chilled, M, row 2) for an accessible order.
	o := order{id: "ord_carol", code: "55556666", factor: "1111", slots: []int{2}, accessible: true}
	// Compartment 1 (chilled L, bottom) is taken by another order.
	other := order{id: "ord_dave", code: "77778888", factor: "2222", slots: []int{1}}
	h.reserve(o, other)
	h.latch.Jam(2)
	tok := h.driver()
	drv, err := h.l.Driver(tok)
	if err != nil || drv != "drv-7" {
		t.Fatalf("driver %q %v", drv, err)
	}
	if _, err := h.l.DriverOpen(h.ctx, drv, o.id, 2); code(err) != edge.CodeHardware {
		t.Fatalf("open jammed: %v", err)
	}
	door, err := h.l.DriverProblem(h.ctx, drv, o.id, 2, "jammed")
	if err != nil {
		t.Fatal(err)
	}
	// Same zone (chilled: 1–6), M or larger, below 120 cm (rows 1–2), free: only 5.
	if door.Number != 5 {
		t.Fatalf("reassigned to %d, want 5", door.Number)
	}
	if c := h.compartment(2); c.State != edge.StateJammed {
		t.Fatalf("old compartment %s", c.State)
	}
	var re *protocol.Event
	for _, e := range h.events() {
		if e.Kind == protocol.EventReassigned {
			re = &e
		}
	}
	if re == nil || re.Compartment != 2 || re.To != 5 || re.Order != o.id || re.Generation == 0 {
		t.Fatalf("reassigned event %+v in %s", re, h.kinds())
	}
	h.doorCycle(5, hw.Occupied)
	if r := h.reservation(o.id); r.State != edge.OrderLoaded {
		t.Fatalf("order %s", r.State)
	}
	// A desired state still naming compartment 2 maps onto 5.
	h.reserve(o, other)
	if r := h.reservation(o.id); r.Slots[0].Compartment != 5 || r.State != edge.OrderLoaded {
		t.Fatalf("after stale desired: %+v", r)
	}
	// The code follows the order.
	res, err := h.l.Pickup(h.ctx, o.code, o.factor, false)
	if err != nil || res.Doors[0].Number != 5 {
		t.Fatalf("pickup %+v %v", res, err)
	}
	// No room left: the next problem is refused.
	if _, err := h.l.DriverProblem(h.ctx, drv, other.id, 1, "full"); err != nil {
		t.Fatalf("moving L order: %v", err)
	}
}

func TestNoCompartmentLeft(t *testing.T) {
	h := newHarness(t)
	o := order{id: "ord_frozen", code: "31313131", factor: "1212", slots: []int{7}, zone: protocol.ZoneFrozen}
	o2 := order{id: "ord_frozen2", code: "41414141", factor: "1212", slots: []int{8}, zone: protocol.ZoneFrozen}
	o3 := order{id: "ord_frozen3", code: "51515151", factor: "1212", slots: []int{9}, zone: protocol.ZoneFrozen}
	h.reserve(o, o2, o3)
	h.driver()
	if _, err := h.l.DriverProblem(h.ctx, "drv-7", o.id, 7, "faulty"); code(err) != edge.CodeNoCompartment {
		t.Fatalf("no room: %v", err)
	}
}

func TestColdChainCompromised(t *testing.T) {
	h := newHarness(t)
	o := alice
	o.budget = 30 * 60
	h.reserve(o)
	h.load(o)
	read := func(c float64) {
		h.l.Temperatures(h.ctx, []hw.Reading{{Zone: "chilled", Celsius: c}, {Zone: "frozen", Celsius: -20}})
	}
	read(4)
	for range 11 { // 10 min above 7 °C after the first 9 °C reading: the alarm
		h.clock.Advance(time.Minute)
		read(9)
	}
	if n := h.count(protocol.EventTempExcursion); n != 1 {
		t.Fatalf("%d excursions: %s", n, h.kinds())
	}
	if h.count(protocol.EventOrderCompromised) != 0 {
		t.Fatal("compromised too early")
	}
	for range 25 {
		h.clock.Advance(time.Minute)
		read(9)
	}
	if n := h.count(protocol.EventOrderCompromised); n != 1 {
		t.Fatalf("%d compromised: %s", n, h.kinds())
	}
	if h.count(protocol.EventTempExcursion) != 1 {
		t.Fatal("excursion reported twice")
	}
	_, err := h.l.Pickup(h.ctx, o.code, o.factor, false)
	e, _ := err.(*edge.Error)
	if e == nil || e.Code != edge.CodeCompromised || e.Extra["minutes_out"] != 36 {
		t.Fatalf("pickup of compromised order: %v %+v", err, e)
	}
	res, err := h.l.Pickup(h.ctx, o.code, o.factor, true)
	if err != nil || !res.Compromised {
		t.Fatalf("accepting a compromised order: %+v %v", res, err)
	}
}

func TestDoorLeftOpenOncePerOpening(t *testing.T) {
	h := newHarness(t)
	h.hw(hw.EventDoorOpened, 3, 0)
	h.hw(hw.EventUncommandedOpen, 3, 0)
	h.clock.Advance(59 * time.Second)
	h.l.Tick(h.ctx)
	if h.count(protocol.EventDoorLeftOpen) != 0 {
		t.Fatal("too early")
	}
	h.clock.Advance(2 * time.Second)
	h.l.Tick(h.ctx)
	h.clock.Advance(60 * time.Second)
	h.l.Tick(h.ctx)
	if n := h.count(protocol.EventDoorLeftOpen); n != 1 {
		t.Fatalf("%d door_left_open", n)
	}
	h.hw(hw.EventDoorClosed, 3, 0)
	h.hw(hw.EventDoorOpened, 3, 0)
	h.clock.Advance(61 * time.Second)
	h.l.Tick(h.ctx)
	if n := h.count(protocol.EventDoorLeftOpen); n != 2 {
		t.Fatalf("%d door_left_open after a second opening", n)
	}
	if h.count(protocol.EventUncommandedOpen) != 1 {
		t.Fatal("uncommanded open not reported")
	}
}

func TestDesiredVersions(t *testing.T) {
	h := newHarness(t)
	h.reserve(alice) // version 1
	bob := order{id: "ord_bob", code: "22223333", factor: "1234", slots: []int{2}}
	if got := h.desired(protocol.Desired{Version: 3, Reservations: []protocol.Reservation{bob.reservation()}}); got != edge.DesiredGap {
		t.Fatalf("gap: %v", got)
	}
	if got := h.desired(protocol.Desired{Version: 1, Reservations: []protocol.Reservation{bob.reservation()}}); got != edge.DesiredDuplicate {
		t.Fatalf("old: %v", got)
	}
	id := protocol.NewID()
	d := protocol.Desired{Version: 2, Reservations: []protocol.Reservation{bob.reservation()}}
	if out, _ := h.l.ApplyDesired(h.ctx, id, d); out != edge.DesiredApplied {
		t.Fatalf("delta: %v", out)
	}
	if out, _ := h.l.ApplyDesired(h.ctx, id, d); out != edge.DesiredDuplicate {
		t.Fatalf("redelivery: %v", out)
	}
	if h.compartment(2).Order != bob.id {
		t.Fatal("delta not applied")
	}
	// A stale generation for a compartment in use is refused; the rest applies.
	h.load(alice)
	eve := order{id: "ord_eve", code: "99990000", factor: "1234", slots: []int{1}}
	frank := order{id: "ord_frank", code: "12121212", factor: "1234", slots: []int{3}}
	h.desired(protocol.Desired{Version: 3, Reservations: []protocol.Reservation{eve.reservation(), frank.reservation()}})
	if r := h.reservation(eve.id); r.Order != "" {
		t.Fatalf("stale reservation applied: %+v", r)
	}
	if h.compartment(3).Order != frank.id {
		t.Fatal("the valid part of the delta was not applied")
	}
	// Cancel: an unloaded order frees its compartment; a loaded one awaits return.
	h.desired(protocol.Desired{Version: 4, Cancel: []string{bob.id, alice.id}})
	if c := h.compartment(2); c.State != edge.StateFree {
		t.Fatalf("cancelled unloaded: %s", c.State)
	}
	if r := h.reservation(alice.id); r.State != edge.OrderCancelled {
		t.Fatalf("cancelled loaded: %s", r.State)
	}
	if _, err := h.l.Pickup(h.ctx, alice.code, alice.factor, false); code(err) != edge.CodeWrongCode {
		t.Fatalf("cancelled code: %v", err)
	}
	if v, _ := h.l.DesiredVersion(); v != 4 {
		t.Fatalf("version %d", v)
	}
	if g := testutil.ToFloat64(h.m.DesiredVersion); g != 4 {
		t.Fatalf("larder_desired_version %v, want 4", g)
	}
}

func TestAccessibleOrderStaysLow(t *testing.T) {
	h := newHarness(t)
	o := order{id: "ord_high", code: "12341234", factor: "1234", slots: []int{3}, accessible: true} // row 3: 140 cm
	h.reserve(o)
	if r := h.reservation(o.id); r.Order != "" {
		t.Fatal("accessible order put in a high compartment")
	}
}

// acks are the states of the command acks queued for cmd, oldest first.
func (h *harness) acks(cmd string) []protocol.CommandAck {
	h.t.Helper()
	queued, err := h.store.PendingCommandAcks(1 << 20)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []protocol.CommandAck
	for _, q := range queued {
		m, err := protocol.Decode(q.Payload)
		if err != nil {
			h.t.Fatal(err)
		}
		if a := m.Body.(protocol.CommandAck); a.CommandID == cmd {
			out = append(out, a)
		}
	}
	return out
}

func (h *harness) ackStates(cmd string) []protocol.CommandState {
	var s []protocol.CommandState
	for _, a := range h.acks(cmd) {
		s = append(s, a.State)
	}
	return s
}

func (h *harness) lastAck(cmd string) protocol.CommandAck {
	h.t.Helper()
	as := h.acks(cmd)
	if len(as) == 0 {
		h.t.Fatalf("no ack queued for %s", cmd)
	}
	return as[len(as)-1]
}

func TestCommands(t *testing.T) {
	h := newHarness(t)
	open := protocol.Command{ID: "cmd-1", Kind: protocol.CmdOpen, Compartment: 6, Purpose: protocol.PurposeOps,
		Reason: "cleaning", ExpiresAt: t0.Add(time.Minute), Actor: "ops-1"}
	h.l.HandleCommand(h.ctx, open)
	h.l.WaitCommands()
	want := []protocol.CommandState{protocol.StateQueued, protocol.StateInProgress, protocol.StateSucceeded}
	if diff := cmp.Diff(want, h.ackStates("cmd-1")); diff != "" {
		t.Fatalf("acks (-want +got):\n%s", diff)
	}
	// Redelivery: reported again, never pulsed again.
	h.l.HandleCommand(h.ctx, open)
	h.l.WaitCommands()
	if n := len(h.latch.Calls()); n != 1 {
		t.Fatalf("%d pulses", n)
	}
	if diff := cmp.Diff(append(want, protocol.StateSucceeded), h.ackStates("cmd-1")); diff != "" {
		t.Fatalf("redelivery acks (-want +got):\n%s", diff)
	}
	// Expired.
	late := open
	late.ID, late.ExpiresAt = "cmd-2", t0.Add(-time.Second)
	h.l.HandleCommand(h.ctx, late)
	if got := h.acks("cmd-2"); len(got) != 1 || got[0].State != protocol.StateRejected || got[0].Error != protocol.ErrExpired {
		t.Fatalf("expired: %+v", got)
	}
	// Out of service and back, and a jammed open.
	h.l.HandleCommand(h.ctx, protocol.Command{ID: "cmd-3", Kind: protocol.CmdOutOfService, Compartment: 6, Reason: "broken shelf", ExpiresAt: t0.Add(time.Minute)})
	h.l.WaitCommands()
	if h.compartment(6).State != edge.StateOutOfService {
		t.Fatal("not out of service")
	}
	h.l.HandleCommand(h.ctx, protocol.Command{ID: "cmd-4", Kind: protocol.CmdInService, Compartment: 6, ExpiresAt: t0.Add(time.Minute)})
	h.l.WaitCommands()
	if h.compartment(6).State != edge.StateFree {
		t.Fatal("not back in service")
	}
	h.latch.Jam(5)
	h.l.HandleCommand(h.ctx, protocol.Command{ID: "cmd-5", Kind: protocol.CmdOpen, Compartment: 5, Purpose: protocol.PurposeOps, Reason: "x", ExpiresAt: t0.Add(time.Minute)})
	h.l.WaitCommands()
	if last := h.lastAck("cmd-5"); last.State != protocol.StateFailed || last.Error != protocol.ErrJammed {
		t.Fatalf("jammed open ack %+v", last)
	}
	// Loading open with a stale generation is rejected.
	h.reserve(alice)
	h.l.HandleCommand(h.ctx, protocol.Command{ID: "cmd-6", Kind: protocol.CmdOpen, Compartment: 1, Purpose: protocol.PurposeLoading,
		Order: alice.id, Generation: 9, ExpiresAt: t0.Add(time.Minute)})
	h.l.WaitCommands()
	if last := h.lastAck("cmd-6"); last.State != protocol.StateRejected || last.Error != protocol.ErrStaleGeneration {
		t.Fatalf("stale loading open %+v", last)
	}
}

// TestInterruptedCommandReportedAtStart: a command a crash left in progress is ended
// TIMED_OUT at the next start, and that ack is queued for the cloud at once, not only
// when the cloud asks again; asking again pulses nothing.
func TestInterruptedCommandReportedAtStart(t *testing.T) {
	h := newHarness(t)
	if err := h.store.Update(func(tx edge.Tx) error {
		return tx.PutCommand(edge.CommandRecord{ID: "cmd-crash", Kind: protocol.CmdOpen, State: protocol.StateInProgress, Received: t0})
	}); err != nil {
		t.Fatal(err)
	}
	h.restart(nil)
	if last := h.lastAck("cmd-crash"); last.State != protocol.StateTimedOut || last.Error != protocol.ErrInternal {
		t.Fatalf("ack after the restart %+v", last)
	}
	h.l.HandleCommand(h.ctx, protocol.Command{ID: "cmd-crash", Kind: protocol.CmdOpen, Compartment: 2, Purpose: protocol.PurposeOps,
		Reason: "x", ExpiresAt: t0.Add(time.Minute)})
	h.l.WaitCommands()
	if n := len(h.latch.Calls()); n != 0 || len(h.acks("cmd-crash")) != 2 {
		t.Fatalf("%d pulses, acks %v", n, h.ackStates("cmd-crash"))
	}
}

func TestDriverCredentials(t *testing.T) {
	h := newHarness(t)
	h.reserve(alice)
	if _, _, err := h.l.DriverLogin("nope"); code(err) != edge.CodeBadCredential {
		t.Fatalf("bad credential: %v", err)
	}
	tok := h.driver()
	if _, err := h.l.Driver(tok); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(16 * time.Minute)
	if _, err := h.l.Driver(tok); code(err) != edge.CodeBadCredential {
		t.Fatalf("token outlived its 15 minutes: %v", err)
	}
	h.clock.Advance(48 * time.Hour)
	if _, _, err := h.l.DriverLogin("driver-secret"); code(err) != edge.CodeExpired {
		t.Fatalf("expired credential: %v", err)
	}
}

// A quick driver opens, loads and closes between two polls: the poller sees only the
// infrared change. That is enough to record the item loaded.
func TestLoadSeenOnlyByInfrared(t *testing.T) {
	h := newHarness(t)
	h.reserve(alice)
	if _, err := h.l.DriverOpen(h.ctx, "drv-7", alice.id, 1); err != nil {
		t.Fatal(err)
	}
	// A stale "closed and empty" before anything happened ends nothing.
	h.l.Tick(h.ctx)
	if c := h.compartment(1); c.State != edge.StateLoading {
		t.Fatalf("compartment %s", c.State)
	}
	h.hw(hw.EventOccupancyChanged, 1, hw.Occupied)
	if c := h.compartment(1); c.State != edge.StateLoaded {
		t.Fatalf("compartment %s after the infrared saw the item", c.State)
	}
	// A driver who closes an empty door: back to reserved once the session times out.
	if _, err := h.l.DriverOpen(h.ctx, "drv-7", alice.id, 4); err != nil {
		t.Fatal(err)
	}
	h.hw(hw.EventDoorOpened, 4, 0)
	h.hw(hw.EventDoorClosed, 4, 0)
	h.clock.Advance(6 * time.Minute)
	h.l.Tick(h.ctx)
	if c := h.compartment(4); c.State != edge.StateReserved {
		t.Fatalf("empty close: compartment %s", c.State)
	}
}

func TestOpsOpenIsAttributed(t *testing.T) {
	h := newHarness(t)
	h.l.HandleCommand(h.ctx, protocol.Command{ID: "cmd-x", Kind: protocol.CmdOpen, Compartment: 2, Purpose: protocol.PurposeOps,
		Reason: "inspection", ExpiresAt: t0.Add(time.Minute), Actor: "ops-9"})
	h.l.WaitCommands()
	h.hw(hw.EventDoorOpened, 2, 0)
	var got protocol.CredentialKind
	for _, e := range h.events() {
		if e.Kind == protocol.EventDoorOpened {
			got = e.Credential
		}
	}
	if got != protocol.CredOpsRemote {
		t.Fatalf("door_opened credential %q", got)
	}
	audit, _ := h.store.AuditLog()
	if len(audit) != 1 || audit[0].Reason != "ops: inspection" || audit[0].Actor != "ops-9" || audit[0].Credential != protocol.CredOpsRemote {
		t.Fatalf("audit %+v", audit)
	}
}

func TestColdChainGapsAndProbeFailures(t *testing.T) {
	h := newHarness(t)
	o := alice // chilled, default budget 30 min
	amb := order{id: "ord_ambient", code: "66667777", factor: "1234", slots: []int{2}, zone: protocol.ZoneAmbient}
	h.reserve(o, amb)
	h.load(o)
	h.load(amb)
	read := func(zone string, c float64, err error) {
		h.l.Temperatures(h.ctx, []hw.Reading{{Zone: zone, Celsius: c, Err: err}})
	}
	// A gap after a reading within the limit is not credited: the air was cold.
	read("chilled", 4, nil)
	for range 40 {
		h.clock.Advance(time.Minute)
		read("chilled", 0, hw.ErrProbe)
	}
	read("chilled", 9, nil)
	if r := h.reservation(o.id); r.OutSeconds != 0 {
		t.Fatalf("credited a gap that began cold: %v s", r.OutSeconds)
	}
	// A gap (here: the edge was down) between two warm readings is: 40 minutes > 30.
	h.clock.Advance(40 * time.Minute)
	read("chilled", 9, nil)
	if r := h.reservation(o.id); r.OutSeconds != 2400 || !r.Compromised {
		t.Fatalf("warm gap: %+v", r)
	}
	// Ambient orders have no budget: hot hours compromise nothing.
	for range 120 {
		h.clock.Advance(time.Minute)
		read("ambient", 40, nil)
	}
	if r := h.reservation(amb.id); r.Compromised || r.OutSeconds == 0 {
		t.Fatalf("ambient order: %+v", r)
	}
	if h.count(protocol.EventOrderCompromised) != 1 {
		t.Fatalf("events %s", h.kinds())
	}
}

// The time the edge is down between two warm readings counts against the budget.
func TestColdChainAcrossRestart(t *testing.T) {
	h := newHarness(t)
	h.reserve(alice)
	h.load(alice)
	h.l.Temperatures(h.ctx, []hw.Reading{{Zone: "chilled", Celsius: 10}})
	h.restart(nil)
	h.clock.Advance(31 * time.Minute)
	h.l.Temperatures(h.ctx, []hw.Reading{{Zone: "chilled", Celsius: 10}})
	if r := h.reservation(alice.id); !r.Compromised || r.OutSeconds != 31*60 {
		t.Fatalf("after a warm restart gap: %+v", r)
	}
	// Back to cold, then a restart: nothing more is credited.
	h.l.Temperatures(h.ctx, []hw.Reading{{Zone: "chilled", Celsius: 3}})
	h.restart(nil)
	h.clock.Advance(time.Hour)
	h.l.Temperatures(h.ctx, []hw.Reading{{Zone: "chilled", Celsius: 10}})
	if r := h.reservation(alice.id); r.OutSeconds != 31*60 {
		t.Fatalf("credited a gap that began cold: %v", r.OutSeconds)
	}
}

package sim

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/larder-lockers/larder/protocol/board"
)

var t0 = time.Date(2026, 7, 1, 8, 0, 0, 0, time.UTC)

func newTestWorld(t *testing.T, p board.Profile, boards int, zones string) (*World, *FakeClock) {
	t.Helper()
	clk := NewFakeClock(t0)
	z, err := ParseZones(zones, boards*p.LocksPerBoard())
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWorld(WorldConfig{Profile: p, Boards: boards, Zones: z, Outside: 25}, clk)
	if err != nil {
		t.Fatal(err)
	}
	return w, clk
}

func comp(t *testing.T, w *World, n int) CompartmentState {
	t.Helper()
	return w.Snapshot().Compartments[n-1]
}

func unlock(t *testing.T, w *World, b, l int) board.Reply {
	t.Helper()
	r, _, ok := w.Execute(board.Command{Op: board.OpUnlock, Board: b, Lock: l})
	if !ok {
		t.Fatalf("board %d did not answer unlock", b)
	}
	return r
}

func TestUnlockSpringsDoorAjar(t *testing.T) {
	w, clk := newTestWorld(t, board.KerongCU16, 2, "")
	// Board 1 lock 3 is compartment 19.
	r := unlock(t, w, 1, 3)
	if r.Kind != board.ReplyUnlock || r.Lock != 3 {
		t.Fatalf("reply %+v", r)
	}
	c := comp(t, w, 19)
	if c.DoorOpen || c.Latched || c.HookClosed {
		t.Fatalf("right after unlock: %+v, want latch released, door still closed", c)
	}
	clk.Advance(29 * time.Millisecond)
	if comp(t, w, 19).DoorOpen {
		t.Fatal("door open before the spring delay")
	}
	clk.Advance(time.Millisecond)
	if c := comp(t, w, 19); !c.DoorOpen || c.HookClosed {
		t.Fatalf("after spring delay: %+v", c)
	}
	clk.Advance(300 * time.Millisecond)
	if c := comp(t, w, 19); !c.DoorOpen || !c.Latched {
		t.Fatalf("after pulse: %+v, want door open, latch engaged", c)
	}
	st, ok := w.BoardStatus(1)
	if !ok || st.Closed[2] || !st.Closed[3] {
		t.Fatalf("status %+v", st)
	}
	// Only a person closes it.
	clk.Advance(time.Hour)
	if !comp(t, w, 19).DoorOpen {
		t.Fatal("door closed by itself")
	}
	if err := w.Close(19); err != nil {
		t.Fatal(err)
	}
	if c := comp(t, w, 19); c.DoorOpen || !c.HookClosed {
		t.Fatalf("after close: %+v", c)
	}
	// Other compartments untouched.
	for _, c := range w.Snapshot().Compartments {
		if c.N != 19 && (!c.HookClosed || c.Pulses != 0) {
			t.Fatalf("compartment %d disturbed: %+v", c.N, c)
		}
	}
}

func TestCloseWhileReleasedSpringsAgain(t *testing.T) {
	w, clk := newTestWorld(t, board.KerongCU16, 1, "")
	unlock(t, w, 0, 1)
	clk.Advance(50 * time.Millisecond)
	if err := w.Close(1); err != nil {
		t.Fatal(err)
	}
	clk.Advance(29 * time.Millisecond)
	if comp(t, w, 1).DoorOpen {
		t.Fatal("reopened too early")
	}
	clk.Advance(time.Millisecond)
	if !comp(t, w, 1).DoorOpen {
		t.Fatal("door closed on a released latch did not spring ajar again")
	}
}

func TestShortPulseDoesNotOpen(t *testing.T) {
	clk := NewFakeClock(t0)
	w, err := NewWorld(WorldConfig{Profile: board.KerongCU16, Boards: 1, Pulse: 20 * time.Millisecond, Outside: 25}, clk)
	if err != nil {
		t.Fatal(err)
	}
	unlock(t, w, 0, 1)
	clk.Advance(time.Second)
	if c := comp(t, w, 1); c.DoorOpen || !c.HookClosed {
		t.Fatalf("20 ms pulse opened the door: %+v", c)
	}
}

func TestLatchFaults(t *testing.T) {
	w, clk := newTestWorld(t, board.KerongCU16, 1, "")
	b0 := 0
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// Jammed: the relay clicks (pulses counted), the door never opens.
	must(w.ApplyFault(Fault{Kind: FaultJammedLatch, Compartment: 2}))
	unlock(t, w, 0, 2)
	clk.Advance(2 * time.Second)
	if c := comp(t, w, 2); c.DoorOpen || !c.HookClosed || c.Pulses != 1 {
		t.Fatalf("jammed: %+v", c)
	}
	if err := w.Open(2, false); !errors.Is(err, ErrConflict) {
		t.Fatalf("pulling a jammed door: %v", err)
	}

	// Relay stuck: springs ajar, will not stay shut until cleared.
	must(w.ApplyFault(Fault{Kind: FaultRelayStuck, Compartment: 3}))
	clk.Advance(30 * time.Millisecond)
	if !comp(t, w, 3).DoorOpen {
		t.Fatal("relay stuck: door did not spring")
	}
	must(w.Close(3))
	clk.Advance(time.Second)
	if !comp(t, w, 3).DoorOpen {
		t.Fatal("relay stuck: door stayed shut")
	}
	must(w.ApplyFault(Fault{Kind: FaultRelayStuck, Compartment: 3, Off: true}))
	must(w.Close(3))
	clk.Advance(time.Second)
	if c := comp(t, w, 3); c.DoorOpen || !c.HookClosed {
		t.Fatalf("relay cleared: %+v", c)
	}

	// Door left open: opened and held.
	must(w.ApplyFault(Fault{Kind: FaultDoorLeftOpen, Compartment: 4}))
	if !comp(t, w, 4).DoorOpen {
		t.Fatal("door_left_open did not open the door")
	}
	if err := w.Close(4); !errors.Is(err, ErrConflict) {
		t.Fatalf("closing a held door: %v", err)
	}
	w.ClearFaults()
	if !comp(t, w, 4).DoorOpen {
		t.Fatal("clearing faults closed the door")
	}
	must(w.Close(4))

	// IR stuck.
	yes := true
	must(w.ApplyFault(Fault{Kind: FaultIRStuck, Compartment: 5, Value: &yes}))
	st, _ := w.BoardStatus(0)
	if !st.Occupied[4] || comp(t, w, 5).Items != 0 {
		t.Fatal("ir stuck true not reported")
	}
	if err := w.ApplyFault(Fault{Kind: FaultIRStuck, Compartment: 5}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("ir_stuck without value: %v", err)
	}

	// Unplugged board is silent; reset board is silent for the boot time
	// and cuts a pulse in progress.
	must(w.ApplyFault(Fault{Kind: FaultBoardUnplugged, Board: &b0}))
	if _, _, ok := w.Execute(board.Command{Op: board.OpStatus, Board: 0}); ok {
		t.Fatal("unplugged board answered")
	}
	must(w.ApplyFault(Fault{Kind: FaultBoardUnplugged, Board: &b0, Off: true}))
	unlock(t, w, 0, 6)
	clk.Advance(10 * time.Millisecond)
	must(w.ApplyFault(Fault{Kind: FaultBoardReset, Board: &b0}))
	if _, _, ok := w.Execute(board.Command{Op: board.OpStatus, Board: 0}); ok {
		t.Fatal("rebooting board answered")
	}
	clk.Advance(500 * time.Millisecond)
	if _, _, ok := w.Execute(board.Command{Op: board.OpStatus, Board: 0}); !ok {
		t.Fatal("board did not come back after boot")
	}
	if c := comp(t, w, 6); c.DoorOpen || !c.Latched {
		t.Fatalf("reset did not cut the pulse: %+v", c)
	}

	// Slow replies per board and for all.
	must(w.ApplyFault(Fault{Kind: FaultSlowReplies, MS: 250}))
	if _, slow, _ := w.Execute(board.Command{Op: board.OpStatus, Board: 0}); slow != 250*time.Millisecond {
		t.Fatalf("slow = %v", slow)
	}
	// An address with no board never answers.
	if _, _, ok := w.Execute(board.Command{Op: board.OpStatus, Board: 7}); ok {
		t.Fatal("absent board answered")
	}
}

func TestFaultErrors(t *testing.T) {
	w, _ := newTestWorld(t, board.BCC8A, 1, "")
	b9 := 9
	tests := []struct {
		f    Fault
		want error
	}{
		{Fault{Kind: "meteor"}, ErrInvalid},
		{Fault{Kind: FaultJammedLatch, Compartment: 25}, ErrNotFound},
		{Fault{Kind: FaultBoardUnplugged}, ErrInvalid},
		{Fault{Kind: FaultBoardUnplugged, Board: &b9}, ErrNotFound},
		{Fault{Kind: FaultGarble, Rate: 1.5}, ErrInvalid},
		{Fault{Kind: FaultDrop, Rate: -0.1}, ErrInvalid},
		{Fault{Kind: FaultSlowReplies}, ErrInvalid},
		{Fault{Kind: FaultProbeFailure, Zone: "frozen"}, ErrNotFound},
	}
	for _, tc := range tests {
		if err := w.ApplyFault(tc.f); !errors.Is(err, tc.want) {
			t.Errorf("%+v: err %v, want %v", tc.f, err, tc.want)
		}
	}
}

func TestPeopleAndContents(t *testing.T) {
	w, _ := newTestWorld(t, board.KerongCU16, 1, "")
	if err := w.Open(1, false); !errors.Is(err, ErrConflict) {
		t.Fatalf("pulling a locked door: %v", err)
	}
	if err := w.Put(1, 1); !errors.Is(err, ErrConflict) {
		t.Fatalf("put into closed: %v", err)
	}
	if err := w.Open(1, true); err != nil {
		t.Fatal(err)
	}
	if err := w.Put(1, 2); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(1); err != nil {
		t.Fatal(err)
	}
	st, _ := w.BoardStatus(0)
	if !st.Occupied[0] || !st.Closed[0] {
		t.Fatalf("status after forced open, put, close: %+v", st)
	}
	w.Open(1, true)
	if err := w.Take(1, 0); err != nil {
		t.Fatal(err)
	}
	if err := w.Take(1, 0); !errors.Is(err, ErrConflict) {
		t.Fatalf("take from empty: %v", err)
	}
	if err := w.Open(99, true); !errors.Is(err, ErrNotFound) {
		t.Fatalf("open 99: %v", err)
	}
	if st, _ := w.BoardStatus(0); st.Occupied[0] {
		t.Fatal("still occupied after take")
	}
}

func TestPowerCut(t *testing.T) {
	w, clk := newTestWorld(t, board.KerongCU16, 1, "")
	unlock(t, w, 0, 1)
	clk.Advance(10 * time.Millisecond)
	w.SetPower(false)
	if _, _, ok := w.Execute(board.Command{Op: board.OpStatus, Board: 0}); ok {
		t.Fatal("unpowered board answered")
	}
	clk.Advance(time.Second)
	if comp(t, w, 1).DoorOpen {
		t.Fatal("door opened although power was cut 10 ms into the pulse")
	}
	w.SetPower(true)
	if _, _, ok := w.Execute(board.Command{Op: board.OpStatus, Board: 0}); ok {
		t.Fatal("board answered while booting")
	}
	clk.Advance(500 * time.Millisecond)
	if _, _, ok := w.Execute(board.Command{Op: board.OpStatus, Board: 0}); !ok {
		t.Fatal("board silent after boot")
	}
}

func zoneTemp(t *testing.T, w *World, name string) ZoneState {
	t.Helper()
	for _, z := range w.Zones() {
		if z.Name == name {
			return z
		}
	}
	t.Fatalf("no zone %s", name)
	return ZoneState{}
}

func TestThermal(t *testing.T) {
	w, clk := newTestWorld(t, board.KerongCU16, 1, "chilled:1-8,frozen:9-12,ambient:13-16")
	// Two hours of steady state: chilled holds within hysteresis and the
	// compressor cycles.
	var lo, hi float64 = 100, -100
	for range 720 {
		clk.Advance(10 * time.Second)
		z := zoneTemp(t, w, ZoneChilled)
		lo, hi = math.Min(lo, z.TrueTempC), math.Max(hi, z.TrueTempC)
	}
	if lo < 2.5 || hi > 5.5 {
		t.Errorf("chilled ranged %.2f..%.2f, want within setpoint±1.5", lo, hi)
	}
	z := zoneTemp(t, w, ZoneChilled)
	if z.DutyCycle < 0.03 || z.DutyCycle > 0.5 {
		t.Errorf("duty cycle %.2f", z.DutyCycle)
	}
	if f := zoneTemp(t, w, ZoneFrozen); *f.TempC > -16 || *f.TempC < -20 {
		t.Errorf("frozen at %v", *f.TempC)
	}
	if a := zoneTemp(t, w, ZoneAmbient); math.Abs(*a.TempC-25) > 0.5 {
		t.Errorf("ambient at %v, want outside 25", *a.TempC)
	}

	// A door open for five minutes warms the chilled zone markedly, not the frozen one.
	before := zoneTemp(t, w, ZoneChilled).TrueTempC
	frozenBefore := zoneTemp(t, w, ZoneFrozen).TrueTempC
	w.Open(1, true)
	clk.Advance(5 * time.Minute)
	if got := zoneTemp(t, w, ZoneChilled).TrueTempC; got < before+3 {
		t.Errorf("door open 5 min: %.2f -> %.2f", before, got)
	}
	if got := zoneTemp(t, w, ZoneFrozen).TrueTempC; got > -18+1.2 {
		t.Errorf("frozen left its band while a chilled door was open: %.2f -> %.2f", frozenBefore, got)
	}
	w.Close(1)
	clk.Advance(time.Hour)

	// Power cut for 30 minutes warms it beyond 8 °C; restore brings it back.
	w.SetPower(false)
	clk.Advance(30 * time.Minute)
	if got := zoneTemp(t, w, ZoneChilled).TrueTempC; got < 8 {
		t.Errorf("after 30 min power cut chilled at %.2f, want > 8", got)
	}
	if zoneTemp(t, w, ZoneChilled).Compressor {
		t.Error("compressor runs without power")
	}
	w.SetPower(true)
	clk.Advance(time.Hour)
	if got := zoneTemp(t, w, ZoneChilled).TrueTempC; got > 5.5 {
		t.Errorf("an hour after restore chilled at %.2f", got)
	}

	// Hotter outside: the ambient zone follows.
	if err := w.SetOutside(35); err != nil {
		t.Fatal(err)
	}
	clk.Advance(3 * time.Hour)
	if a := zoneTemp(t, w, ZoneAmbient); *a.TempC < 34 {
		t.Errorf("ambient at %v after outside 35", *a.TempC)
	}
	if err := w.SetOutside(math.NaN()); !errors.Is(err, ErrInvalid) {
		t.Errorf("NaN outside: %v", err)
	}

	// Probe failure: no reading, an error, the truth still evolves.
	if err := w.ApplyFault(Fault{Kind: FaultProbeFailure, Zone: ZoneChilled}); err != nil {
		t.Fatal(err)
	}
	if z := zoneTemp(t, w, ZoneChilled); z.TempC != nil || z.Error == "" {
		t.Errorf("probe failure reads %+v", z)
	}
}

func TestParseZones(t *testing.T) {
	tests := []struct {
		spec    string
		n       int
		want    []string
		wantErr bool
	}{
		{"", 3, []string{"chilled", "chilled", "chilled"}, false},
		{"frozen:1,cool:3", 4, []string{"frozen", "ambient", "cool", "ambient"}, false},
		{"chilled:1-2+4", 4, []string{"chilled", "chilled", "ambient", "chilled"}, false},
		{"chilled:1-5", 4, nil, true},
		{"chilled:1-2,frozen:2", 4, nil, true},
		{"hot:1", 4, nil, true},
		{"chilled", 4, nil, true},
		{"chilled:a-b", 4, nil, true},
		{"chilled:3-1", 4, nil, true},
	}
	for _, tc := range tests {
		got, err := ParseZones(tc.spec, tc.n)
		if (err != nil) != tc.wantErr {
			t.Errorf("%q: err %v", tc.spec, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%q (-want +got):\n%s", tc.spec, diff)
		}
	}
}

func TestNumbering(t *testing.T) {
	w, _ := newTestWorld(t, board.BCC8A, 2, "")
	s := w.Snapshot()
	if len(s.Compartments) != 48 || s.Compartments[24].Board != 2 || s.Compartments[24].Lock != 1 {
		t.Fatalf("bcc8a compartment 25 = %+v", s.Compartments[24])
	}
	if got := s.Boards; len(got) != 2 || got[0].Address != 1 || got[1].Address != 2 {
		t.Fatalf("boards %+v", got)
	}
}

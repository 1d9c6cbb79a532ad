package serial_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/larder-lockers/larder/edge/hw"
	"github.com/larder-lockers/larder/edge/serial"
	sim "github.com/larder-lockers/larder/firmware-sim"
	"github.com/larder-lockers/larder/protocol/board"
)

// These tests run the bus against larder-sim, started in-process, over a
// real pseudo-terminal (opened with go.bug.st/serial like a USB adapter) and
// over TCP, at the profile's real baud rate (the sim paces its replies to
// the wire time). Timings are the package defaults unless a test says why.

type transport string

const (
	viaPTY transport = "pty"
	viaTCP transport = "tcp"
)

var transports = []transport{viaPTY, viaTCP}

// startSim starts larder-sim and returns it and the address to Open.
func startSim(t testing.TB, p board.Profile, boards int, via transport, tweak func(*sim.Config)) (*sim.Main, string) {
	t.Helper()
	cfg := sim.DefaultConfig()
	cfg.Profile, cfg.Boards, cfg.Control, cfg.Seed = p, boards, "127.0.0.1:0", 7
	cfg.PTY = via == viaPTY
	if via == viaTCP {
		cfg.Listen = "tcp://127.0.0.1:0"
	}
	if tweak != nil {
		tweak(&cfg)
	}
	m, err := sim.NewMain(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Open(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	// Run closes m when ctx ends; Close after it returns (Main.Close is not
	// safe to call concurrently with Run's own Close).
	t.Cleanup(func() { cancel(); <-done; m.Close() })
	if via == viaPTY {
		return m, m.SerialPath()
	}
	return m, "tcp://" + m.SerialAddr()
}

func simBus(t testing.TB, addr string, p board.Profile, boards int, tweak func(*serial.Config)) *serial.Bus {
	t.Helper()
	lo, _ := p.BoardRange()
	cfg := serial.Config{Profile: p}
	for i := range boards {
		cfg.Boards = append(cfg.Boards, lo+i)
	}
	if tweak != nil {
		tweak(&cfg)
	}
	b, err := serial.Open(addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// forEach runs f for every profile over every transport. Tests that mostly
// wait (for a jam or an offline board) run their cases in parallel.
func forEach(t *testing.T, f func(t *testing.T, p board.Profile, via transport)) {
	forEachP(t, false, f)
}

func forEachP(t *testing.T, parallel bool, f func(t *testing.T, p board.Profile, via transport)) {
	for _, p := range board.Profiles {
		for _, via := range transports {
			t.Run(fmt.Sprintf("%s/%s", p, via), func(t *testing.T) {
				if parallel {
					t.Parallel()
				}
				f(t, p, via)
			})
		}
	}
}

func truth(m *sim.Main, c int) sim.CompartmentState {
	return m.World().Snapshot().Compartments[c-1]
}

func TestSimUnlockAndSense(t *testing.T) {
	forEach(t, func(t *testing.T, p board.Profile, via transport) {
		m, addr := startSim(t, p, 2, via, nil)
		b := simBus(t, addr, p, 2, nil)
		ctx := context.Background()
		c := p.LocksPerBoard() + 3 // second board, lock 3
		if err := b.Unlock(ctx, c); err != nil {
			t.Fatalf("Unlock(%d) = %v", c, err)
		}
		if tr := truth(m, c); tr.Pulses != 1 || tr.HookClosed {
			t.Errorf("sim after unlock: %+v", tr)
		}
		snap, err := b.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := snap.Compartments[c].Door; got != hw.DoorOpen {
			t.Errorf("door = %v", got)
		}
		// Somebody loads it and closes it: the edge sees it occupied and closed.
		if err := m.World().Put(c, 2); err != nil {
			t.Fatal(err)
		}
		time.Sleep(350 * time.Millisecond) // the 300 ms pulse ends; the latch catches the door again
		if err := m.World().Close(c); err != nil {
			t.Fatal(err)
		}
		snap, _ = b.Snapshot(ctx)
		want := hw.CompartmentState{Board: snap.Compartments[c].Board, Door: hw.DoorClosed, Occupancy: hw.OccupancyUnknown}
		if p.HasOccupancy() {
			want.Occupancy = hw.Occupied
		}
		if got := snap.Compartments[c]; got != want {
			t.Errorf("after load: %+v, want %+v", got, want)
		}
	})
}

func TestSimJammedLatchReportedNeverOpened(t *testing.T) {
	forEachP(t, true, func(t *testing.T, p board.Profile, via transport) {
		m, addr := startSim(t, p, 1, via, nil)
		if err := m.World().ApplyFault(sim.Fault{Kind: sim.FaultJammedLatch, Compartment: 4}); err != nil {
			t.Fatal(err)
		}
		b := simBus(t, addr, p, 1, nil)
		var events []hw.Event
		l := &hw.Tracked{Latch: b, Map: b.Map(), Emit: func(e hw.Event) { events = append(events, e) }}
		err := l.Unlock(context.Background(), 4)
		if !errors.Is(err, hw.ErrJammed) {
			t.Fatalf("Unlock = %v, want ErrJammed", err)
		}
		if tr := truth(m, 4); tr.DoorOpen || !tr.HookClosed || tr.Pulses == 0 {
			t.Errorf("sim: %+v, want pulsed but shut", tr)
		}
		if len(events) != 1 || events[0].Kind != hw.EventLockJammed {
			t.Errorf("events = %+v", events)
		}
		if s := b.Stats(); s.Jammed != 1 || s.Unlocks != 0 {
			t.Errorf("stats = %+v", s)
		}
	})
}

func TestSimSilentBoardOfflineAndBack(t *testing.T) {
	forEachP(t, true, func(t *testing.T, p board.Profile, via transport) {
		m, addr := startSim(t, p, 2, via, nil)
		b := simBus(t, addr, p, 2, nil)
		lo, _ := p.BoardRange()
		dead := lo + 1
		evs := make(chan hw.Event, 16)
		poller := hw.NewPoller(hw.PollerConfig{Sensors: b, Emit: func(e hw.Event) { evs <- e }})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if _, err := poller.Step(ctx); err != nil { // baseline: both boards online
			t.Fatal(err)
		}
		go poller.Run(ctx)

		if err := m.World().ApplyFault(sim.Fault{Kind: sim.FaultBoardUnplugged, Board: &dead}); err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		e := waitEvent(t, evs, 6*time.Second)
		if e.Kind != hw.EventBoardOffline || e.Board != dead {
			t.Fatalf("event %+v, want board %d offline", e, dead)
		}
		if el := time.Since(t0); el < serial.DefaultOfflineAfter {
			t.Errorf("offline after %v, sooner than OfflineAfter", el)
		}
		// The other board is still served.
		if last := poller.Last(); !last.Boards[lo].Online || last.Compartments[1].Door != hw.DoorClosed {
			t.Errorf("board %d while %d is down: %+v", lo, dead, last.Boards[lo])
		}
		if err := m.World().ApplyFault(sim.Fault{Kind: sim.FaultBoardUnplugged, Board: &dead, Off: true}); err != nil {
			t.Fatal(err)
		}
		e = waitEvent(t, evs, 3*time.Second)
		if e.Kind != hw.EventBoardOnline || e.Board != dead {
			t.Fatalf("event %+v, want board %d online", e, dead)
		}
	})
}

func waitEvent(t *testing.T, evs <-chan hw.Event, d time.Duration) hw.Event {
	t.Helper()
	select {
	case e := <-evs:
		return e
	case <-time.After(d):
		t.Fatalf("no event within %v", d)
	}
	return hw.Event{}
}

// TestSimGarbageNeverAWrongState puts line noise on both directions
// (garbled and dropped bytes) and checks that every door the bus reports
// known matches the simulator's truth, that unlocks still succeed, and that
// the noise shows up as retries.
func TestSimGarbageNeverAWrongState(t *testing.T) {
	forEach(t, func(t *testing.T, p board.Profile, via transport) {
		m, addr := startSim(t, p, 1, via, func(c *sim.Config) { c.Pulse = 100 * time.Millisecond })
		b := simBus(t, addr, p, 1, nil)
		ctx := context.Background()
		w := m.World()
		if err := w.ApplyFault(sim.Fault{Kind: sim.FaultGarble, Rate: 0.01}); err != nil {
			t.Fatal(err)
		}
		if err := w.ApplyFault(sim.Fault{Kind: sim.FaultDrop, Rate: 0.005}); err != nil {
			t.Fatal(err)
		}
		for i := range 24 {
			c := i%4 + 1
			if i%3 == 0 {
				err := b.Unlock(ctx, c)
				if err != nil && !errors.Is(err, hw.ErrBoardOffline) {
					t.Fatalf("Unlock(%d) through noise = %v", c, err)
				}
				if err == nil && truth(m, c).HookClosed {
					t.Fatalf("Unlock(%d) confirmed but the sim's hook is closed", c)
				}
			}
			snap, err := b.Snapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			st := w.Snapshot()
			for n, cs := range snap.Compartments {
				if cs.Door == hw.DoorUnknown {
					continue
				}
				// Doors only move when the edge unlocks or the test closes
				// them, so the truth cannot have changed since the read.
				if open := !st.Compartments[n-1].HookClosed; open != (cs.Door == hw.DoorOpen) {
					t.Fatalf("compartment %d reads %v, sim hook_closed=%v", n, cs.Door, st.Compartments[n-1].HookClosed)
				}
			}
			if i%3 == 2 { // shut what was opened, once the pulse is over
				time.Sleep(120 * time.Millisecond)
				for c := 1; c <= 4; c++ {
					w.Close(c)
				}
			}
		}
		s := b.Stats()
		info := m.Bus().Info()
		t.Logf("bus stats %+v; sim garbled %d dropped %d bytes", s, info.GarbledBytes, info.DroppedBytes)
		if info.GarbledBytes+info.DroppedBytes > 0 && s.Retries == 0 {
			t.Errorf("noise on the line but no retries")
		}
	})
}

// TestSimUncommandedOpen: a door forced open without a command is an
// uncommanded_open; one opened through the tracked latch is not.
func TestSimUncommandedOpen(t *testing.T) {
	m, addr := startSim(t, board.KerongCU16, 1, viaTCP, nil)
	b := simBus(t, addr, board.KerongCU16, 1, nil)
	ctx := context.Background()
	exp := &hw.Expected{}
	var evs []hw.Event
	poller := hw.NewPoller(hw.PollerConfig{Sensors: b, Expected: exp, Emit: func(e hw.Event) { evs = append(evs, e) }})
	poller.Step(ctx)
	latch := &hw.Tracked{Latch: b, Expected: exp}
	if err := latch.Unlock(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if err := m.World().Open(7, true); err != nil {
		t.Fatal(err)
	}
	poller.Step(ctx)
	var got []string
	for _, e := range evs {
		got = append(got, fmt.Sprintf("%s %d", e.Kind, e.Compartment))
	}
	want := "[door_opened 2 door_opened 7 uncommanded_open 7]"
	if fmt.Sprint(got) != want {
		t.Errorf("events %v, want %s", got, want)
	}
}

// TestSimInvertedPolarity: bcc8a lock models whose feedback is shorted when
// unlocked need Polarity inverted on both sides; the bus then reads the
// same doors.
func TestSimInvertedPolarity(t *testing.T) {
	p := board.BCC8A
	m, addr := startSim(t, p, 1, viaTCP, func(c *sim.Config) { c.Polarity = board.PolarityInverted })
	b := simBus(t, addr, p, 1, func(c *serial.Config) { c.Polarity = board.PolarityInverted })
	ctx := context.Background()
	snap, err := b.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := snap.Compartments[1].Door; d != hw.DoorClosed {
		t.Fatalf("door 1 = %v, want closed", d)
	}
	if err := b.Unlock(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if tr := truth(m, 1); tr.HookClosed {
		t.Errorf("sim: %+v", tr)
	}
	// The same bus with the wrong polarity reads every door upside down:
	// the setting matters.
	wrong := simBus(t, addr, p, 1, nil)
	snap, _ = wrong.Snapshot(ctx)
	if d := snap.Compartments[2].Door; d != hw.DoorOpen {
		t.Errorf("wrong polarity reads closed door 2 as %v", d)
	}
}

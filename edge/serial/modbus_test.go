package serial_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/larder-lockers/larder/edge/hw"
	"github.com/larder-lockers/larder/edge/serial"
	sim "github.com/larder-lockers/larder/firmware-sim"
	"github.com/larder-lockers/larder/protocol/board"
)

// The modbus-rtu boards do not time their pulses: the bus writes the coil
// on, holds it for Config.Pulse and writes it off. These tests check that
// the relay always ends off, against larder-sim (pty and TCP) and against
// the responder for the faults the sim cannot aim at one frame.

// TestSimModbusRelayOffAfterUnlock: after a confirmed unlock the door is
// open and the relay is off again, on the simulator's own coil.
func TestSimModbusRelayOffAfterUnlock(t *testing.T) {
	for _, via := range transports {
		t.Run(string(via), func(t *testing.T) {
			m, addr := startSim(t, board.ModbusRTU, 2, via, nil)
			b := simBus(t, addr, board.ModbusRTU, 2, func(c *serial.Config) { c.Pulse = 150 * time.Millisecond })
			if err := b.Unlock(context.Background(), 17+4); err != nil { // board 2 lock 5
				t.Fatal(err)
			}
			tr := truth(m, 21)
			if !tr.DoorOpen || tr.Relay || tr.Pulses != 1 {
				t.Errorf("sim after unlock: %+v, want door open, relay off, one pulse", tr)
			}
			for n, c := range m.World().Snapshot().Compartments {
				if c.Relay {
					t.Errorf("relay of compartment %d left on", n+1)
				}
			}
		})
	}
}

// TestSimModbusHalt: a relay left on (by another master, a crashed edge) is
// switched off by Halt, through the real line.
func TestSimModbusHalt(t *testing.T) {
	m, addr := startSim(t, board.ModbusRTU, 2, viaPTY, nil)
	for _, req := range []board.ModbusFrame{
		{Slave: 1, Function: board.FuncWriteSingleCoil, Addr: 2, On: true},
		{Slave: 2, Function: board.FuncWriteSingleCoil, Addr: 15, On: true},
	} {
		if _, _, ok := m.World().ExecuteModbus(req); !ok {
			t.Fatal("sim board did not take the coil")
		}
	}
	if !truth(m, 3).Relay || !truth(m, 32).Relay {
		t.Fatal("relays not on before Halt")
	}
	b := simBus(t, addr, board.ModbusRTU, 2, nil)
	if err := b.Halt(); err != nil {
		t.Fatal(err)
	}
	if truth(m, 3).Relay || truth(m, 32).Relay {
		t.Errorf("relays still on after Halt: %+v %+v", truth(m, 3), truth(m, 32))
	}
	// A silent board: Halt says which board it could not reach.
	dead := 2
	if err := m.World().ApplyFault(sim.Fault{Kind: sim.FaultBoardUnplugged, Board: &dead}); err != nil {
		t.Fatal(err)
	}
	if err := b.Halt(); !errors.Is(err, hw.ErrBoardOffline) {
		t.Errorf("Halt with board 2 unplugged = %v, want ErrBoardOffline", err)
	}
}

// TestSimModbusMapMismatch: an edge whose map does not fit the board (the
// sim's boards have 16 coils and inputs from 0) gets exceptions: the board
// is online, its doors unknown, nothing is retried, no relay moves.
func TestSimModbusMapMismatch(t *testing.T) {
	m, addr := startSim(t, board.ModbusRTU, 1, viaTCP, nil)
	b := simBus(t, addr, board.ModbusRTU, 1, func(c *serial.Config) {
		c.Modbus = board.ModbusMap{Locks: 8, CoilBase: 16, InputBase: 12}
	})
	ctx := context.Background()
	snap, err := b.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !snap.Boards[1].Online || snap.Compartments[1].Door != hw.DoorUnknown {
		t.Errorf("board %+v, door 1 %v: want online, unknown", snap.Boards[1], snap.Compartments[1].Door)
	}
	err = b.Unlock(ctx, 1)
	var ex board.Exception
	if !errors.As(err, &ex) || ex != board.ExceptionIllegalAddress {
		t.Errorf("Unlock = %v, want illegal data address", err)
	}
	s := b.Stats()
	if s.Exceptions < 3 || s.Retries != 0 || s.Tries != s.Answered {
		t.Errorf("stats %+v: want every exception answered once, no retries", s)
	}
	if tr := truth(m, 1); tr.Pulses != 0 || tr.Relay {
		t.Errorf("sim: %+v", tr)
	}
}

// TestSimModbusInvertedInputs: door switches that open with the door need
// Polarity inverted on both sides.
func TestSimModbusInvertedInputs(t *testing.T) {
	m, addr := startSim(t, board.ModbusRTU, 1, viaTCP, func(c *sim.Config) { c.Polarity = board.PolarityInverted })
	b := simBus(t, addr, board.ModbusRTU, 1, func(c *serial.Config) { c.Polarity = board.PolarityInverted })
	ctx := context.Background()
	if err := b.Unlock(ctx, 2); err != nil {
		t.Fatal(err)
	}
	snap, _ := b.Snapshot(ctx)
	if snap.Compartments[1].Door != hw.DoorClosed || snap.Compartments[2].Door != hw.DoorOpen || !truth(m, 2).DoorOpen {
		t.Errorf("doors 1, 2 = %v, %v", snap.Compartments[1].Door, snap.Compartments[2].Door)
	}
}

func modbusConfig(boards ...int) serial.Config {
	cfg := fastConfig(board.ModbusRTU, boards...)
	cfg.Pulse = 60 * time.Millisecond
	return cfg
}

// TestBusModbusPulse: the coil is written on, held for Pulse, written off,
// and only then is the unlock confirmed.
func TestBusModbusPulse(t *testing.T) {
	r := newResponder(t, board.ModbusRTU, 1)
	b := openBus(t, r.addr(), modbusConfig(1))
	if err := b.Unlock(context.Background(), 3); err != nil {
		t.Fatal(err)
	}
	r.set(func(r *responder) {
		if len(r.unlockAt) != 1 || len(r.releaseAt) != 1 {
			t.Fatalf("%d on, %d off", len(r.unlockAt), len(r.releaseAt))
		}
		if held := r.releaseAt[0].Sub(r.unlockAt[0]); held < 60*time.Millisecond {
			t.Errorf("relay held %v, want at least the 60 ms pulse", held)
		}
		if r.relays[1][2] {
			t.Error("relay 3 left on")
		}
	})
}

// TestBusModbusLostRelease: a switch-off that never gets its
// acknowledgement is sent again before the board's next poll, until the
// board takes it.
func TestBusModbusLostRelease(t *testing.T) {
	r := newResponder(t, board.ModbusRTU, 1)
	b := openBus(t, r.addr(), modbusConfig(1))
	ctx := context.Background()
	r.set(func(r *responder) { r.dropReleases = 4 }) // every try of the first switch-off
	if err := b.Unlock(ctx, 5); err != nil {
		t.Fatalf("Unlock = %v (the door opened: the unlock itself succeeded)", err)
	}
	r.set(func(r *responder) {
		if !r.relays[1][4] {
			t.Fatal("the responder took a switch-off it should have lost")
		}
	})
	if s := b.Stats(); s.ReleaseFailed != 1 {
		t.Errorf("ReleaseFailed = %d, want 1", s.ReleaseFailed)
	}
	if _, err := b.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	r.set(func(r *responder) {
		if r.relays[1][4] || r.releases[[2]int{1, 5}] != 1 {
			t.Errorf("after a poll: relay on=%v, %d switch-offs taken", r.relays[1][4], r.releases[[2]int{1, 5}])
		}
	})
	// Taken once: later polls send no more switch-offs.
	b.Snapshot(ctx)
	r.set(func(r *responder) {
		if n := r.releases[[2]int{1, 5}]; n != 1 {
			t.Errorf("%d switch-offs after the pending one was taken", n)
		}
	})
}

// TestBusModbusCancelledUnlockReleases: an unlock abandoned during its
// pulse switches the relay off at once, not after the pulse.
func TestBusModbusCancelledUnlockReleases(t *testing.T) {
	r := newResponder(t, board.ModbusRTU, 1)
	cfg := modbusConfig(1)
	cfg.Pulse = serial.MaxPulse
	b := openBus(t, r.addr(), cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := b.Unlock(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Unlock = %v, want the deadline", err)
	}
	r.set(func(r *responder) {
		if r.relays[1][0] || len(r.releaseAt) != 1 {
			t.Fatalf("relay on=%v after a cancelled unlock", r.relays[1][0])
		}
		if held := r.releaseAt[0].Sub(r.unlockAt[0]); held >= serial.MaxPulse/2 {
			t.Errorf("relay held %v after the unlock was abandoned", held)
		}
	})
}

// TestBusModbusException: a refused status is an answer (board online,
// doors unknown, no retry); a refused unlock is an error naming the
// exception.
func TestBusModbusException(t *testing.T) {
	r := newResponder(t, board.ModbusRTU, 1)
	r.set(func(r *responder) { r.refuse[board.OpStatus] = board.ExceptionDeviceFailure })
	b := openBus(t, r.addr(), modbusConfig(1))
	ctx := context.Background()
	snap, err := b.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !snap.Boards[1].Online || snap.Compartments[1].Door != hw.DoorUnknown {
		t.Errorf("board %+v door %v", snap.Boards[1], snap.Compartments[1].Door)
	}
	if s := b.Stats(); s.Tries != 1 || s.Exceptions != 1 {
		t.Errorf("stats %+v, want one try, one exception", s)
	}
	r.set(func(r *responder) { r.refuse[board.OpStatus] = 0; r.refuse[board.OpUnlock] = board.ExceptionBusy })
	err = b.Unlock(ctx, 1)
	var ex board.Exception
	if !errors.As(err, &ex) || ex != board.ExceptionBusy {
		t.Errorf("Unlock = %v, want slave device busy", err)
	}
}

// TestBusModbusHalt: Halt writes every relay of every board off; other
// profiles' boards time their own pulses and Halt sends nothing.
func TestBusModbusHalt(t *testing.T) {
	r := newResponder(t, board.ModbusRTU, 1, 2)
	r.set(func(r *responder) { r.relays[2][7] = true })
	b := openBus(t, r.addr(), modbusConfig(1, 2))
	if err := b.Halt(); err != nil {
		t.Fatal(err)
	}
	r.set(func(r *responder) {
		if r.halts != 2 || r.relays[2][7] {
			t.Errorf("%d halts, relay 8 of board 2 on=%v", r.halts, r.relays[2][7])
		}
	})
	k := newResponder(t, board.KerongCU16, 0)
	kb := openBus(t, k.addr(), fastConfig(board.KerongCU16, 0))
	if err := kb.Halt(); err != nil || kb.Stats().Tries != 0 {
		t.Errorf("kerong Halt = %v after %d tries", err, kb.Stats().Tries)
	}
}

// TestBusModbusMap: an 8-lock map numbers 8 compartments per board and
// refuses a map entry past lock 8.
func TestBusModbusMap(t *testing.T) {
	r := newResponder(t, board.ModbusRTU, 1)
	cfg := modbusConfig(1)
	cfg.Modbus = board.ModbusMap{Locks: 8}
	b := openBus(t, r.addr(), cfg)
	if n := len(b.Map()); n != 8 {
		t.Errorf("map has %d compartments, want 8", n)
	}
	cfg.Map = hw.Map{1: {Board: 1, Lock: 9}}
	if _, err := serial.New(cfg); err == nil {
		t.Error("lock 9 of an 8-lock board accepted")
	}
	cfg.Map, cfg.Modbus = nil, board.ModbusMap{Locks: 17}
	if _, err := serial.New(cfg); err == nil {
		t.Error("17 locks accepted")
	}
}

// TestBusModbusPendingOnDeadBoard: switch-offs pending on a board that has
// gone silent cost one timeout per poll between them, not one each.
func TestBusModbusPendingOnDeadBoard(t *testing.T) {
	r := newResponder(t, board.ModbusRTU, 1)
	b := openBus(t, r.addr(), modbusConfig(1))
	ctx := context.Background()
	r.set(func(r *responder) { r.dropReleases = 8 }) // both unlocks' switch-offs, every try
	for _, c := range []int{1, 2} {
		if err := b.Unlock(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if s := b.Stats(); s.ReleaseFailed != 2 {
		t.Fatalf("ReleaseFailed = %d, want 2", s.ReleaseFailed)
	}
	r.set(func(r *responder) { r.silent[1] = true })
	deadline := time.Now().Add(3 * time.Second)
	for {
		snap, _ := b.Snapshot(ctx)
		if !snap.Boards[1].Online {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("board 1 never went offline")
		}
	}
	before := b.Stats().Timeouts
	b.Snapshot(ctx)
	if n := b.Stats().Timeouts - before; n != 2 {
		t.Errorf("a poll of a dead board with 2 pending switch-offs cost %d timeouts, want 2 (one switch-off, the status)", n)
	}
	r.set(func(r *responder) { r.silent[1] = false })
	b.Snapshot(ctx)
	r.set(func(r *responder) {
		if r.relays[1][0] || r.relays[1][1] {
			t.Errorf("relays still on once the board is back: %v", r.relays[1][:2])
		}
	})
}

package sim

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/larder-lockers/larder/protocol/board"
)

func coil(t *testing.T, w *World, slave int, addr uint16, on bool) board.ModbusFrame {
	t.Helper()
	r, _, ok := w.ExecuteModbus(board.ModbusFrame{Slave: slave, Function: board.FuncWriteSingleCoil, Addr: addr, On: on})
	if !ok {
		t.Fatalf("board %d did not answer a coil write", slave)
	}
	return r
}

func inputs(t *testing.T, w *World, slave int) []bool {
	t.Helper()
	r, _, ok := w.ExecuteModbus(board.ModbusFrame{Slave: slave, Function: board.FuncReadDiscreteInputs, Quantity: 16})
	if !ok || r.Exception != 0 {
		t.Fatalf("board %d inputs: %+v %v", slave, r, ok)
	}
	return r.Bits
}

// TestModbusRelayHoldsLatch: the latch is released exactly while the coil
// is on; the door springs ajar after SpringDelay and its input reads open.
func TestModbusRelayHoldsLatch(t *testing.T) {
	w, clk := newTestWorld(t, board.ModbusRTU, 2, "")
	// Board 2 coil 4 is lock 5, compartment 21.
	if r := coil(t, w, 2, 4, true); r.Addr != 4 || !r.On || r.Exception != 0 {
		t.Fatalf("echo %+v", r)
	}
	if c := comp(t, w, 21); !c.Relay || c.Latched || c.DoorOpen || c.Pulses != 1 {
		t.Fatalf("coil on: %+v", c)
	}
	clk.Advance(29 * time.Millisecond)
	if !inputs(t, w, 2)[4] {
		t.Fatal("door input open before the spring delay")
	}
	clk.Advance(time.Millisecond)
	if inputs(t, w, 2)[4] || !comp(t, w, 21).DoorOpen {
		t.Fatal("door did not spring ajar")
	}
	// Held on for a minute: still released (the board never times it out).
	clk.Advance(time.Minute)
	coil(t, w, 2, 4, true) // a repeated ON is no new pulse
	if c := comp(t, w, 21); c.Latched || c.Pulses != 1 {
		t.Fatalf("held on: %+v", c)
	}
	coil(t, w, 2, 4, false)
	if c := comp(t, w, 21); c.Relay || !c.Latched {
		t.Fatalf("coil off: %+v", c)
	}
	if err := w.Close(21); err != nil {
		t.Fatal(err)
	}
	if !inputs(t, w, 2)[4] {
		t.Fatal("closed door reads open")
	}
}

func TestModbusJammedAndStuck(t *testing.T) {
	w, clk := newTestWorld(t, board.ModbusRTU, 1, "")
	if err := w.ApplyFault(Fault{Kind: FaultJammedLatch, Compartment: 2}); err != nil {
		t.Fatal(err)
	}
	coil(t, w, 1, 1, true)
	clk.Advance(time.Second)
	if c := comp(t, w, 2); c.DoorOpen || !c.Relay || c.Pulses != 1 {
		t.Fatalf("jammed: %+v", c)
	}
	if err := w.ApplyFault(Fault{Kind: FaultRelayStuck, Compartment: 3}); err != nil {
		t.Fatal(err)
	}
	coil(t, w, 1, 2, false)
	clk.Advance(time.Second)
	if c := comp(t, w, 3); c.Latched || !c.DoorOpen {
		t.Fatalf("stuck relay written off: %+v", c)
	}
}

// TestModbusCoilsDropWithPower: a power cut or a board reset switches every
// coil off, as real boards boot.
func TestModbusCoilsDropWithPower(t *testing.T) {
	w, clk := newTestWorld(t, board.ModbusRTU, 1, "")
	coil(t, w, 1, 0, true)
	w.SetPower(false)
	w.SetPower(true)
	clk.Advance(time.Second)
	if c := comp(t, w, 1); c.Relay || !c.Latched {
		t.Fatalf("after a power cut: %+v", c)
	}
	coil(t, w, 1, 0, true)
	bd := 1
	if err := w.ApplyFault(Fault{Kind: FaultBoardReset, Board: &bd}); err != nil {
		t.Fatal(err)
	}
	if c := comp(t, w, 1); c.Relay || !c.Latched {
		t.Fatalf("after a reset: %+v", c)
	}
}

// TestModbusExceptions: what a real slave refuses.
func TestModbusExceptions(t *testing.T) {
	w, _ := newTestWorld(t, board.ModbusRTU, 1, "")
	for _, tc := range []struct {
		req  board.ModbusFrame
		want board.Exception
	}{
		{board.ModbusFrame{Function: board.FuncReadDiscreteInputs, Addr: 8, Quantity: 9}, board.ExceptionIllegalAddress},
		{board.ModbusFrame{Function: board.FuncReadCoils, Addr: 0, Quantity: 0}, board.ExceptionIllegalValue},
		{board.ModbusFrame{Function: board.FuncReadCoils, Addr: 0, Quantity: 2001}, board.ExceptionIllegalValue},
		{board.ModbusFrame{Function: board.FuncWriteSingleCoil, Addr: 16, On: true}, board.ExceptionIllegalAddress},
		{board.ModbusFrame{Function: board.FuncWriteMultipleCoils, Addr: 10, Quantity: 8, Bits: make([]bool, 8)}, board.ExceptionIllegalAddress},
		{board.ModbusFrame{Function: 0x03, Addr: 0, Quantity: 1}, board.ExceptionIllegalFunction},
		{board.ModbusFrame{Function: board.FuncReadCoils, Addr: 8, Quantity: 8}, 0},
	} {
		tc.req.Slave = 1
		r, _, ok := w.ExecuteModbus(tc.req)
		if !ok || r.Exception != tc.want || r.Function != tc.req.Function {
			t.Errorf("%+v: %+v %v, want exception %d", tc.req, r, ok, tc.want)
		}
	}
	if _, _, ok := w.ExecuteModbus(board.ModbusFrame{Slave: 2, Function: board.FuncReadCoils, Quantity: 1}); ok {
		t.Error("absent board 2 answered")
	}
	// Write multiple coils sets each coil of the span.
	bits := []bool{true, false, true}
	r, _, _ := w.ExecuteModbus(board.ModbusFrame{Slave: 1, Function: board.FuncWriteMultipleCoils, Addr: 13, Quantity: 3, Bits: bits})
	if diff := cmp.Diff(board.ModbusFrame{Slave: 1, Function: board.FuncWriteMultipleCoils, Addr: 13, Quantity: 3}, r); diff != "" {
		t.Errorf("echo (-want +got):\n%s", diff)
	}
	if !comp(t, w, 14).Relay || comp(t, w, 15).Relay || !comp(t, w, 16).Relay {
		t.Error("coils 13-15 not as written")
	}
}

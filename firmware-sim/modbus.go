package sim

import (
	"time"

	"github.com/larder-lockers/larder/protocol/board"
)

// A simulated modbus-rtu board is a generic Modbus RTU relay board with 16
// relays on coils 0–15 (lock n on coil n-1) and 16 door switches on
// discrete inputs 0–15. It answers like a Modbus slave, whatever the edge's
// map: Read Coils (0x01), Read Discrete Inputs (0x02), Write Single Coil
// (0x05) and Write Multiple Coils (0x0F); a request past its 16 coils or
// inputs gets exception 02 (illegal data address), a read of 0 or more than
// 2000 bits exception 03 (illegal data value); a Write Multiple Coils whose
// byte count does not match its quantity is malformed and not answered. A
// relay stays on
// until it is written off: the master times the pulse. An input is on while
// its door is closed (Polarity normal) or open (inverted).

// modbusSlave serves a modbus-rtu bus: requests are delimited by the
// silence before them and by their function's length.
type modbusSlave struct {
	b   *Bus
	dec *board.ModbusRequestDecoder
}

func (s *modbusSlave) feed(c byte, quiet bool) {
	if quiet {
		s.dec.Gap()
	}
	s.dec.Feed([]byte{c})
}

func (s *modbusSlave) discarded() uint64 { return s.dec.Discarded() }

func (s *modbusSlave) next() (func() ([]byte, time.Duration, bool), bool) {
	req, _, ok := s.dec.Next()
	if !ok {
		return nil, false
	}
	return func() ([]byte, time.Duration, bool) {
		resp, slow, ok := s.b.w.ExecuteModbus(req)
		if !ok {
			s.b.log.Debug("no board answers", "board", req.Slave, "function", req.Function)
			return nil, 0, false
		}
		if req.Function == board.FuncReadDiscreteInputs && s.b.cfg.Polarity == board.PolarityInverted {
			for i := range resp.Bits {
				resp.Bits[i] = !resp.Bits[i]
			}
		}
		frame, err := board.EncodeModbusResponse(resp)
		if err != nil {
			// ExecuteModbus built the response from the request: a broken invariant.
			panic("sim: encode modbus response: " + err.Error())
		}
		return frame, slow, true
	}, true
}

// Modbus limits of a request's quantity (Application Protocol 6.1, 6.2, 6.11).
const (
	maxModbusRead  = 2000
	maxModbusWrite = 0x7B0
)

// ExecuteModbus is a modbus-rtu board receiving req on the bus now. It
// returns the response (an exception response for a request the board
// cannot carry out), the extra delay of a slow-replies fault, and false
// when no board answers. Read Discrete Inputs reports door closed as on;
// the bus applies the installation's polarity.
func (w *World) ExecuteModbus(req board.ModbusFrame) (board.ModbusFrame, time.Duration, bool) {
	now := w.lockNow()
	defer w.mu.Unlock()
	b := w.board(req.Slave)
	if !w.responsive(b, now) {
		return board.ModbusFrame{}, 0, false
	}
	n := w.cfg.Profile.LocksPerBoard()
	first := (b.addr - w.boards[0].addr) * n
	comps := w.comps[first : first+n]
	resp := board.ModbusFrame{Slave: req.Slave, Function: req.Function}
	refuse := func(e board.Exception) (board.ModbusFrame, time.Duration, bool) {
		return board.ModbusFrame{Slave: req.Slave, Function: req.Function, Exception: e}, b.slow, true
	}
	span := func(limit int) (lo, hi int, ex board.Exception) {
		lo, q := int(req.Addr), int(req.Quantity)
		switch {
		case q < 1 || q > limit:
			return 0, 0, board.ExceptionIllegalValue
		case lo+q > n:
			return 0, 0, board.ExceptionIllegalAddress
		}
		return lo, lo + q, 0
	}
	switch req.Function {
	case board.FuncReadCoils, board.FuncReadDiscreteInputs:
		lo, hi, ex := span(maxModbusRead)
		if ex != 0 {
			return refuse(ex)
		}
		for _, c := range comps[lo:hi] {
			if req.Function == board.FuncReadCoils {
				resp.Bits = append(resp.Bits, c.relay)
			} else {
				resp.Bits = append(resp.Bits, !c.doorOpen) // the door switch
			}
		}
	case board.FuncWriteSingleCoil:
		if int(req.Addr) >= n {
			return refuse(board.ExceptionIllegalAddress)
		}
		w.setRelay(comps[req.Addr], req.On, now)
		resp.Addr, resp.On = req.Addr, req.On
	case board.FuncWriteMultipleCoils:
		lo, hi, ex := span(maxModbusWrite)
		if ex != 0 {
			return refuse(ex)
		}
		for i, c := range comps[lo:hi] {
			w.setRelay(c, req.Bits[i], now)
		}
		resp.Addr, resp.Quantity = req.Addr, req.Quantity
	default:
		return refuse(board.ExceptionIllegalFunction)
	}
	return resp, b.slow, true
}

// setRelay switches c's relay (modbus-rtu). While it is on the latch is
// released, unless jammed or unpowered; switching it on from off counts a
// pulse. A stuck relay keeps the latch released whatever is written.
func (w *World) setRelay(c *compartment, on bool, now time.Time) {
	if on && !c.relay {
		c.pulses++
	}
	c.relay = on
	switch {
	case on && !c.jammed && w.powered:
		if c.latched(now) {
			c.releasedFrom = now
		}
		c.releasedUntil = forever
	case !on && !c.relayStuck:
		c.releasedUntil = minTime(c.releasedUntil, now)
	}
}

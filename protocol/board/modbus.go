package board

import (
	"encoding/binary"
	"fmt"
	"time"
)

// This file is the modbus-rtu profile: generic Modbus RTU relay boards (coils
// drive the relays, discrete inputs read the door switches). It has two
// layers. ModbusFrame and its Encode/Decode functions are plain Modbus RTU
// frames (ADUs) of the four functions Larder uses, as in the specification
// ("MODBUS Application Protocol V1.1b3" and "MODBUS over Serial Line V1.02");
// the simulator's boards answer them like a real slave. Codec maps the
// profile's Commands and Replies onto those frames through a ModbusMap (which
// coil and which input belong to lock n).
//
// A small codec here, not a Modbus library: protocol stays standard library
// only, the simulator must speak the same bytes from the same code, and the
// edge's bus (one command in flight, flush, retries, resync, health) needs
// frames it can feed to its own decoder, not a client that owns the port.

// Modbus function codes used by the modbus-rtu profile.
const (
	FuncReadCoils          byte = 0x01
	FuncReadDiscreteInputs byte = 0x02
	FuncWriteSingleCoil    byte = 0x05
	FuncWriteMultipleCoils byte = 0x0F
)

// modbusException is set in the function byte of an exception response.
const modbusException = 0x80

// Modbus address and quantity limits of the specification.
const (
	ModbusMinSlave    = 1
	ModbusMaxSlave    = 247
	maxReadBits       = 2000  // 0x01, 0x02: 1–2000 coils or inputs
	maxWriteCoils     = 0x7B0 // 0x0F: 1–1968 coils
	coilOn, coilOff   = 0xFF00, 0x0000
	modbusShortFrame  = 8 // 0x01, 0x02, 0x05 requests; 0x05, 0x0F responses
	modbusExcFrameLen = 5
)

// Exception is a Modbus exception code: a board's refusal of a request,
// answered as function|0x80 followed by the code. It is an error.
type Exception byte

// Exception codes of the specification (section 7).
const (
	ExceptionIllegalFunction Exception = 0x01
	ExceptionIllegalAddress  Exception = 0x02
	ExceptionIllegalValue    Exception = 0x03
	ExceptionDeviceFailure   Exception = 0x04
	ExceptionAcknowledge     Exception = 0x05
	ExceptionBusy            Exception = 0x06
)

func (e Exception) Error() string {
	names := map[Exception]string{
		ExceptionIllegalFunction: "illegal function",
		ExceptionIllegalAddress:  "illegal data address",
		ExceptionIllegalValue:    "illegal data value",
		ExceptionDeviceFailure:   "slave device failure",
		ExceptionAcknowledge:     "acknowledge",
		ExceptionBusy:            "slave device busy",
	}
	if n, ok := names[e]; ok {
		return fmt.Sprintf("modbus exception %d (%s)", byte(e), n)
	}
	return fmt.Sprintf("modbus exception %d", byte(e))
}

// ModbusCRC is CRC-16/MODBUS of b: polynomial 0xA001 (0x8005 reflected),
// initial value 0xFFFF. It goes on the wire low byte first.
func ModbusCRC(b []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, c := range b {
		crc ^= uint16(c)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xA001
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}

// ModbusSilence is t3.5, the silence that delimits Modbus RTU frames: 3.5
// character times at baud (10 bits a character, 8N1), and a fixed 1.75 ms
// above 19200 baud as the specification prescribes. 3.65 ms at 9600 baud,
// 1.82 ms at 19200.
func ModbusSilence(baud int) time.Duration {
	if baud > 19200 || baud <= 0 {
		return 1750 * time.Microsecond
	}
	return time.Duration(35 * float64(time.Second) / float64(baud))
}

// ModbusFrame is one Modbus RTU frame of the functions above: a request from
// the master or a response from a slave. Which fields matter depends on the
// function and the direction:
//
//	request  0x01, 0x02   Addr, Quantity
//	request  0x05         Addr, On
//	request  0x0F         Addr, Quantity, Bits (Quantity coil values)
//	response 0x01, 0x02   Bits (every bit of the data bytes, 8 per byte, bit 0 first)
//	response 0x05         Addr, On (an echo of the request)
//	response 0x0F         Addr, Quantity
//	exception response    Exception (non-zero), Function without the 0x80 bit
type ModbusFrame struct {
	Slave     int
	Function  byte
	Exception Exception
	Addr      uint16
	Quantity  uint16
	On        bool
	Bits      []bool
}

func modbusErr(op string, err error, format string, args ...any) error {
	return fmt.Errorf("board: %s %s: "+format+": %w", append(append([]any{ModbusRTU, op}, args...), err)...)
}

func withCRC(f []byte) []byte {
	return binary.LittleEndian.AppendUint16(f, ModbusCRC(f))
}

func checkCRC(op string, f []byte) error {
	n := len(f) - 2
	if got, want := binary.LittleEndian.Uint16(f[n:]), ModbusCRC(f[:n]); got != want {
		return modbusErr(op, ErrChecksum, "crc %04X, want %04X", got, want)
	}
	return nil
}

func checkSlave(op string, s int) error {
	if s < ModbusMinSlave || s > ModbusMaxSlave {
		return modbusErr(op, ErrAddress, "slave %d not in %d–%d", s, ModbusMinSlave, ModbusMaxSlave)
	}
	return nil
}

func packBits(bits []bool) []byte {
	out := make([]byte, (len(bits)+7)/8)
	for i, b := range bits {
		if b {
			out[i/8] |= 1 << (i % 8)
		}
	}
	return out
}

func unpackBits(data []byte, n int) []bool {
	out := make([]bool, n)
	for i := range out {
		out[i] = data[i/8]&(1<<(i%8)) != 0
	}
	return out
}

// EncodeModbusRequest returns the wire frame of request f.
func EncodeModbusRequest(f ModbusFrame) ([]byte, error) {
	const op = "encode request"
	if err := checkSlave(op, f.Slave); err != nil {
		return nil, err
	}
	b := []byte{byte(f.Slave), f.Function}
	b = binary.BigEndian.AppendUint16(b, f.Addr)
	switch f.Function {
	case FuncReadCoils, FuncReadDiscreteInputs:
		b = binary.BigEndian.AppendUint16(b, f.Quantity)
	case FuncWriteSingleCoil:
		v := uint16(coilOff)
		if f.On {
			v = coilOn
		}
		b = binary.BigEndian.AppendUint16(b, v)
	case FuncWriteMultipleCoils:
		if len(f.Bits) != int(f.Quantity) || len(f.Bits) == 0 || len(f.Bits) > maxWriteCoils {
			return nil, modbusErr(op, ErrLength, "%d coil values for quantity %d", len(f.Bits), f.Quantity)
		}
		b = binary.BigEndian.AppendUint16(b, f.Quantity)
		data := packBits(f.Bits)
		b = append(append(b, byte(len(data))), data...)
	default:
		return nil, modbusErr(op, ErrUnsupported, "function %#02x", f.Function)
	}
	return withCRC(b), nil
}

// modbusRequestLen is the length of the request frame starting with prefix:
// 0 if more bytes are needed, -1 if no request of a known function starts so.
func modbusRequestLen(prefix []byte) int {
	if len(prefix) < 2 {
		if len(prefix) == 1 && (prefix[0] < ModbusMinSlave || prefix[0] > ModbusMaxSlave) {
			return -1
		}
		return 0
	}
	switch prefix[1] {
	case FuncReadCoils, FuncReadDiscreteInputs, FuncWriteSingleCoil:
		return modbusShortFrame
	case FuncWriteMultipleCoils:
		if len(prefix) < 7 {
			return 0
		}
		return 9 + int(prefix[6])
	}
	return -1
}

// DecodeModbusRequest parses exactly one request frame. It checks the
// structure (length, CRC, slave address, coil value, byte count); whether a
// board has the addresses asked for is the board's to answer (an exception).
func DecodeModbusRequest(b []byte) (ModbusFrame, error) {
	const op = "decode request"
	want := modbusRequestLen(b)
	if want < 0 {
		return ModbusFrame{}, modbusErr(op, ErrFrame, "unknown start % X", b[:min(len(b), 2)])
	}
	if want == 0 || len(b) != want {
		return ModbusFrame{}, modbusErr(op, ErrLength, "got %d bytes, want %d", len(b), want)
	}
	if err := checkCRC(op, b); err != nil {
		return ModbusFrame{}, err
	}
	f := ModbusFrame{Slave: int(b[0]), Function: b[1], Addr: binary.BigEndian.Uint16(b[2:])}
	if err := checkSlave(op, f.Slave); err != nil {
		return ModbusFrame{}, err
	}
	v := binary.BigEndian.Uint16(b[4:])
	switch f.Function {
	case FuncReadCoils, FuncReadDiscreteInputs:
		f.Quantity = v
	case FuncWriteSingleCoil:
		if v != coilOn && v != coilOff {
			return ModbusFrame{}, modbusErr(op, ErrFrame, "coil value %04X, want FF00 or 0000", v)
		}
		f.On = v == coilOn
	case FuncWriteMultipleCoils:
		f.Quantity = v
		n := int(b[6])
		if v == 0 || v > maxWriteCoils || n != (int(v)+7)/8 {
			return ModbusFrame{}, modbusErr(op, ErrLength, "byte count %d for %d coils", n, v)
		}
		data := b[7 : 7+n]
		f.Bits = unpackBits(data, int(v))
		if !equalBytes(packBits(f.Bits), data) {
			return ModbusFrame{}, modbusErr(op, ErrFrame, "padding bits set in % X", data)
		}
	}
	return f, nil
}

func equalBytes(a, b []byte) bool { return string(a) == string(b) }

// EncodeModbusResponse returns the wire frame of response f.
func EncodeModbusResponse(f ModbusFrame) ([]byte, error) {
	const op = "encode response"
	if err := checkSlave(op, f.Slave); err != nil {
		return nil, err
	}
	if f.Exception != 0 {
		if !knownFunction(f.Function) {
			return nil, modbusErr(op, ErrUnsupported, "function %#02x", f.Function)
		}
		return withCRC([]byte{byte(f.Slave), f.Function | modbusException, byte(f.Exception)}), nil
	}
	b := []byte{byte(f.Slave), f.Function}
	switch f.Function {
	case FuncReadCoils, FuncReadDiscreteInputs:
		data := packBits(f.Bits)
		if len(data) == 0 || len(data) > (maxReadBits+7)/8 {
			return nil, modbusErr(op, ErrLength, "%d bits", len(f.Bits))
		}
		b = append(append(b, byte(len(data))), data...)
	case FuncWriteSingleCoil:
		v := uint16(coilOff)
		if f.On {
			v = coilOn
		}
		b = binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(b, f.Addr), v)
	case FuncWriteMultipleCoils:
		b = binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(b, f.Addr), f.Quantity)
	default:
		return nil, modbusErr(op, ErrUnsupported, "function %#02x", f.Function)
	}
	return withCRC(b), nil
}

func knownFunction(fn byte) bool {
	switch fn {
	case FuncReadCoils, FuncReadDiscreteInputs, FuncWriteSingleCoil, FuncWriteMultipleCoils:
		return true
	}
	return false
}

// modbusResponseLen is the length of the response frame starting with
// prefix (0: need more, -1: none starts so). dataLen, when positive, is the
// only byte count a 0x01/0x02 response may have (the master knows what it
// asked for); 0 accepts any.
func modbusResponseLen(prefix []byte, dataLen int) int {
	if len(prefix) < 2 {
		if len(prefix) == 1 && (prefix[0] < ModbusMinSlave || prefix[0] > ModbusMaxSlave) {
			return -1
		}
		return 0
	}
	fn := prefix[1]
	if fn&modbusException != 0 {
		if !knownFunction(fn &^ modbusException) {
			return -1
		}
		return modbusExcFrameLen
	}
	switch fn {
	case FuncWriteSingleCoil, FuncWriteMultipleCoils:
		return modbusShortFrame
	case FuncReadCoils, FuncReadDiscreteInputs:
		if len(prefix) < 3 {
			return 0
		}
		n := int(prefix[2])
		if n == 0 || n > (maxReadBits+7)/8 || (dataLen > 0 && n != dataLen) {
			return -1
		}
		return 5 + n
	}
	return -1
}

// DecodeModbusResponse parses exactly one response frame.
func DecodeModbusResponse(b []byte) (ModbusFrame, error) {
	return decodeModbusResponse(b, 0)
}

func decodeModbusResponse(b []byte, dataLen int) (ModbusFrame, error) {
	const op = "decode response"
	want := modbusResponseLen(b, dataLen)
	if want < 0 {
		return ModbusFrame{}, modbusErr(op, ErrFrame, "unknown start % X", b[:min(len(b), 3)])
	}
	if want == 0 || len(b) != want {
		return ModbusFrame{}, modbusErr(op, ErrLength, "got %d bytes, want %d", len(b), want)
	}
	if err := checkCRC(op, b); err != nil {
		return ModbusFrame{}, err
	}
	f := ModbusFrame{Slave: int(b[0]), Function: b[1] &^ modbusException}
	if err := checkSlave(op, f.Slave); err != nil {
		return ModbusFrame{}, err
	}
	if b[1]&modbusException != 0 {
		f.Exception = Exception(b[2])
		if f.Exception == 0 {
			return ModbusFrame{}, modbusErr(op, ErrFrame, "exception code 0")
		}
		return f, nil
	}
	switch f.Function {
	case FuncReadCoils, FuncReadDiscreteInputs:
		f.Bits = unpackBits(b[3:3+int(b[2])], 8*int(b[2]))
	case FuncWriteSingleCoil:
		f.Addr = binary.BigEndian.Uint16(b[2:])
		switch v := binary.BigEndian.Uint16(b[4:]); v {
		case coilOn, coilOff:
			f.On = v == coilOn
		default:
			return ModbusFrame{}, modbusErr(op, ErrFrame, "coil value %04X, want FF00 or 0000", v)
		}
	case FuncWriteMultipleCoils:
		f.Addr, f.Quantity = binary.BigEndian.Uint16(b[2:]), binary.BigEndian.Uint16(b[4:])
	}
	return f, nil
}

// ModbusMap says which coil and which discrete input of a modbus-rtu board
// belong to each lock: lock n (1-based) is driven by coil CoilBase+n-1 and
// its door switch is input InputBase+n-1. Boards number both from 0 on the
// wire (the "coil 1" of many manuals is address 0). The zero value is a
// 16-relay board with both tables from address 0.
type ModbusMap struct {
	// Locks is the number of relays (and door inputs) per board that the edge
	// uses, 1–16; zero means 16. Status reads exactly this many inputs, so a
	// board with 8 inputs needs Locks 8 (reading past its last input is an
	// illegal-data-address exception).
	Locks     int
	CoilBase  uint16
	InputBase uint16
}

func (m ModbusMap) locks() int {
	if m.Locks == 0 {
		return ModbusRTU.LocksPerBoard()
	}
	return m.Locks
}

// Validate reports a map that does not fit a board's address space.
func (m ModbusMap) Validate() error {
	if m.Locks < 0 || m.Locks > ModbusRTU.LocksPerBoard() {
		return fmt.Errorf("board: %s: locks %d, want 1–%d", ModbusRTU, m.Locks, ModbusRTU.LocksPerBoard())
	}
	if int(m.CoilBase)+m.locks() > 1<<16 || int(m.InputBase)+m.locks() > 1<<16 {
		return fmt.Errorf("board: %s: %d locks from coil %d / input %d pass address 65535", ModbusRTU, m.locks(), m.CoilBase, m.InputBase)
	}
	return nil
}

// Locks is the number of locks per board that c addresses: the ModbusMap's
// for modbus-rtu, Profile.LocksPerBoard otherwise.
func (c Codec) Locks() int {
	if c.Profile == ModbusRTU {
		return c.Modbus.locks()
	}
	return c.Profile.LocksPerBoard()
}

// modbusRequest is the frame of cmd under c's map.
func (c Codec) modbusRequest(cmd Command) (ModbusFrame, error) {
	m := c.Modbus
	if err := m.Validate(); err != nil {
		return ModbusFrame{}, err
	}
	n := m.locks()
	if err := ModbusRTU.checkBoard(cmd.Board); err != nil {
		return ModbusFrame{}, err
	}
	f := ModbusFrame{Slave: cmd.Board}
	switch cmd.Op {
	case OpStatus, OpRelays, OpHalt:
		if cmd.Lock != 0 {
			return ModbusFrame{}, c.errf("encode", ErrAddress, "%s takes lock 0, got %d", cmd.Op, cmd.Lock)
		}
		f.Quantity = uint16(n)
		f.Function, f.Addr = FuncReadCoils, m.CoilBase
		switch cmd.Op {
		case OpStatus:
			f.Function, f.Addr = FuncReadDiscreteInputs, m.InputBase
		case OpHalt:
			f.Function, f.Bits = FuncWriteMultipleCoils, make([]bool, n)
		}
	case OpUnlock, OpRelease:
		if cmd.Lock < 1 || cmd.Lock > n {
			return ModbusFrame{}, c.errf("encode", ErrAddress, "lock %d not in 1–%d", cmd.Lock, n)
		}
		f.Function, f.Addr, f.On = FuncWriteSingleCoil, m.CoilBase+uint16(cmd.Lock-1), cmd.Op == OpUnlock
	default:
		return ModbusFrame{}, c.errf("encode", ErrUnsupported, "%s", cmd.Op)
	}
	return f, nil
}

// Function is the Modbus function code that carries op (modbus-rtu only;
// 0 for other profiles and ops).
func (c Codec) Function(op Op) byte {
	if c.Profile != ModbusRTU {
		return 0
	}
	switch op {
	case OpStatus:
		return FuncReadDiscreteInputs
	case OpRelays:
		return FuncReadCoils
	case OpUnlock, OpRelease:
		return FuncWriteSingleCoil
	case OpHalt:
		return FuncWriteMultipleCoils
	}
	return 0
}

func (c Codec) encodeModbusCommand(cmd Command) ([]byte, error) {
	f, err := c.modbusRequest(cmd)
	if err != nil {
		return nil, err
	}
	return EncodeModbusRequest(f)
}

func (c Codec) decodeModbusCommand(b []byte) (Command, error) {
	f, err := DecodeModbusRequest(b)
	if err != nil {
		return Command{}, err
	}
	m, n := c.Modbus, c.Modbus.locks()
	cmd := Command{Board: f.Slave}
	switch {
	case f.Function == FuncReadDiscreteInputs && f.Addr == m.InputBase && int(f.Quantity) == n:
		cmd.Op = OpStatus
	case f.Function == FuncReadCoils && f.Addr == m.CoilBase && int(f.Quantity) == n:
		cmd.Op = OpRelays
	case f.Function == FuncWriteMultipleCoils && f.Addr == m.CoilBase && int(f.Quantity) == n && !anyTrue(f.Bits):
		cmd.Op = OpHalt
	case f.Function == FuncWriteSingleCoil && f.Addr >= m.CoilBase && int(f.Addr-m.CoilBase) < n:
		cmd.Op, cmd.Lock = OpRelease, int(f.Addr-m.CoilBase)+1
		if f.On {
			cmd.Op = OpUnlock
		}
	default:
		return Command{}, c.errf("decode command", ErrUnsupported, "function %#02x at %d×%d outside the map", f.Function, f.Addr, f.Quantity)
	}
	return cmd, nil
}

func anyTrue(bits []bool) bool {
	for _, b := range bits {
		if b {
			return true
		}
	}
	return false
}

func (c Codec) encodeModbusReply(r Reply) ([]byte, error) {
	if err := c.Modbus.Validate(); err != nil {
		return nil, err
	}
	m, n := c.Modbus, c.Modbus.locks()
	f := ModbusFrame{Slave: r.Board}
	bits := func(src []bool, conv func(bool) bool) ([]bool, error) {
		if len(src) > n {
			return nil, c.errf("encode reply", ErrAddress, "more than %d locks", n)
		}
		out := make([]bool, n)
		for i := range out {
			// Locks beyond len(src) read open (and relays off), like an unwired input.
			out[i] = conv(i < len(src) && src[i])
		}
		return out, nil
	}
	var err error
	switch r.Kind {
	case ReplyStatus:
		f.Function = FuncReadDiscreteInputs
		f.Bits, err = bits(r.Status.Closed, c.feedback)
	case ReplyRelays:
		f.Function = FuncReadCoils
		f.Bits, err = bits(r.Relays, ident)
	case ReplyUnlock, ReplyRelease:
		if r.Lock < 1 || r.Lock > n {
			return nil, c.errf("encode reply", ErrAddress, "lock %d not in 1–%d", r.Lock, n)
		}
		f.Function, f.Addr, f.On = FuncWriteSingleCoil, m.CoilBase+uint16(r.Lock-1), r.Kind == ReplyUnlock
	case ReplyHalt:
		f.Function, f.Addr, f.Quantity = FuncWriteMultipleCoils, m.CoilBase, uint16(n)
	case ReplyException:
		f.Function, f.Exception = r.Function, r.Exception
		if f.Exception == 0 {
			return nil, c.errf("encode reply", ErrFrame, "exception code 0")
		}
	default:
		return nil, c.errf("encode reply", ErrUnsupported, "%s", r.Kind)
	}
	if err != nil {
		return nil, err
	}
	if err := ModbusRTU.checkBoard(r.Board); err != nil {
		return nil, err
	}
	return EncodeModbusResponse(f)
}

func (c Codec) modbusReplyLen(prefix []byte) int {
	return modbusResponseLen(prefix, (c.Modbus.locks()+7)/8)
}

func (c Codec) decodeModbusReply(b []byte) (Reply, error) {
	if err := c.Modbus.Validate(); err != nil {
		return Reply{}, err
	}
	m, n := c.Modbus, c.Modbus.locks()
	f, err := decodeModbusResponse(b, (n+7)/8)
	if err != nil {
		return Reply{}, err
	}
	r := Reply{Board: f.Slave}
	if f.Exception != 0 {
		r.Kind, r.Function, r.Exception = ReplyException, f.Function, f.Exception
		return r, nil
	}
	bits := func(conv func(bool) bool) ([]bool, error) {
		if anyTrue(f.Bits[n:]) {
			return nil, c.errf("decode reply", ErrFrame, "bits set past lock %d", n)
		}
		out := make([]bool, n)
		for i := range out {
			out[i] = conv(f.Bits[i])
		}
		return out, nil
	}
	switch f.Function {
	case FuncReadDiscreteInputs:
		r.Kind = ReplyStatus
		closed, err := bits(c.feedback)
		if err != nil {
			return Reply{}, err
		}
		r.Status = Status{Board: f.Slave, Closed: closed}
	case FuncReadCoils:
		r.Kind = ReplyRelays
		if r.Relays, err = bits(ident); err != nil {
			return Reply{}, err
		}
	case FuncWriteSingleCoil:
		if f.Addr < m.CoilBase || int(f.Addr-m.CoilBase) >= n {
			return Reply{}, c.errf("decode reply", ErrAddress, "coil %d outside the map", f.Addr)
		}
		r.Kind, r.Lock = ReplyRelease, int(f.Addr-m.CoilBase)+1
		if f.On {
			r.Kind = ReplyUnlock
		}
	case FuncWriteMultipleCoils:
		if f.Addr != m.CoilBase || int(f.Quantity) != n {
			return Reply{}, c.errf("decode reply", ErrFrame, "coils %d×%d, not the board's", f.Addr, f.Quantity)
		}
		r.Kind = ReplyHalt
	}
	return r, nil
}

// ModbusRequestDecoder finds Modbus RTU request frames in a byte stream (the
// slave side). A frame is never taken across a silence of t3.5: call Gap
// when the line has been quiet that long, and whatever part of a frame is
// buffered is discarded. Within a burst, frames are found by slave address,
// function, length and CRC, and on any failure the decoder drops one byte
// and resynchronises. Not safe for concurrent use.
type ModbusRequestDecoder struct{ s scanner }

// NewModbusRequestDecoder returns a decoder of requests of the functions
// Larder uses (0x01, 0x02, 0x05, 0x0F); other functions are discarded.
func NewModbusRequestDecoder() *ModbusRequestDecoder {
	return &ModbusRequestDecoder{s: scanner{
		isStart:  isModbusSlave,
		frameLen: modbusRequestLen,
		check:    func(f []byte) error { _, err := DecodeModbusRequest(f); return err },
	}}
}

func isModbusSlave(b byte) bool { return b >= ModbusMinSlave && b <= ModbusMaxSlave }

// Feed appends bytes received from the line.
func (d *ModbusRequestDecoder) Feed(p []byte) { d.s.feed(p) }

// Gap tells the decoder that the line has been silent for at least t3.5
// (ModbusSilence): the end of any frame. Bytes buffered then are discarded.
func (d *ModbusRequestDecoder) Gap() { d.s.reset() }

// Next returns the next whole valid request and its bytes, or false if more
// bytes are needed.
func (d *ModbusRequestDecoder) Next() (ModbusFrame, []byte, bool) {
	b, ok := d.s.next()
	if !ok {
		return ModbusFrame{}, nil, false
	}
	f, _ := DecodeModbusRequest(b) // checked by the scanner
	return f, b, true
}

// Discarded is the number of bytes skipped while resynchronising or at a gap.
func (d *ModbusRequestDecoder) Discarded() uint64 { return d.s.discarded }

// Buffered is the number of bytes fed but not yet consumed.
func (d *ModbusRequestDecoder) Buffered() int { return len(d.s.buf) }

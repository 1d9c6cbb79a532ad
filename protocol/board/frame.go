package board

import "fmt"

// Op is what a command asks a board to do.
type Op uint8

const (
	// OpStatus reads the state of every lock of a board (kerong 0x30,
	// bcc8a "query all"). Lock must be 0.
	OpStatus Op = iota + 1
	// OpQuery reads the state of one lock (bcc8a only).
	OpQuery
	// OpUnlock pulses one lock's latch.
	OpUnlock
	// OpUnlockAll pulses every latch of a board (kerong only). Lock must be 0.
	OpUnlockAll
	// OpRelease de-energises one lock's relay (modbus-rtu: the master times
	// the pulse, so every OpUnlock is followed by an OpRelease).
	OpRelease
	// OpRelays reads the state of every relay of a board (modbus-rtu). Lock
	// must be 0.
	OpRelays
	// OpHalt switches every relay of a board off (modbus-rtu). Lock must be 0.
	OpHalt
)

func (o Op) String() string {
	switch o {
	case OpStatus:
		return "status"
	case OpQuery:
		return "query"
	case OpUnlock:
		return "unlock"
	case OpUnlockAll:
		return "unlock_all"
	case OpRelease:
		return "release"
	case OpRelays:
		return "relays"
	case OpHalt:
		return "halt"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Command is a frame from the bus master to one board.
type Command struct {
	Op    Op
	Board int // wire address
	Lock  int // 1-based; 0 for whole-board ops
}

// ReplyKind tells what a reply frame carries.
type ReplyKind uint8

const (
	// ReplyStatus answers OpStatus: Status holds every lock of the board.
	ReplyStatus ReplyKind = iota + 1
	// ReplyLock answers OpQuery (bcc8a): Lock and Closed.
	ReplyLock
	// ReplyUnlock answers OpUnlock or OpUnlockAll. On kerong it is a bare
	// acknowledgement (Lock is 0 after unlock-all, Closed is meaningless);
	// on bcc8a it carries Lock and Closed; on modbus-rtu Lock (the echo of
	// the coil write).
	ReplyUnlock
	// ReplyEvent is an unsolicited bcc8a 0x82 frame: Lock and Closed.
	ReplyEvent
	// ReplyRelease answers OpRelease (modbus-rtu): Lock.
	ReplyRelease
	// ReplyRelays answers OpRelays (modbus-rtu): Relays.
	ReplyRelays
	// ReplyHalt answers OpHalt (modbus-rtu).
	ReplyHalt
	// ReplyException is a modbus-rtu board's refusal of a command: Function
	// (the command's, Codec.Function) and Exception.
	ReplyException
)

func (k ReplyKind) String() string {
	switch k {
	case ReplyStatus:
		return "status"
	case ReplyLock:
		return "lock"
	case ReplyUnlock:
		return "unlock"
	case ReplyEvent:
		return "event"
	case ReplyRelease:
		return "release"
	case ReplyRelays:
		return "relays"
	case ReplyHalt:
		return "halt"
	case ReplyException:
		return "exception"
	}
	return fmt.Sprintf("reply(%d)", uint8(k))
}

// Status is the state of every lock of one board.
type Status struct {
	Board int
	// Closed[i] reports lock i+1 closed and locked (hook switch or feedback,
	// after polarity; modbus-rtu: the door input). len(Closed) == Codec.Locks.
	Closed []bool
	// Occupied[i] reports an item inside compartment i+1 (infrared). nil
	// when the profile has no occupancy sensing.
	Occupied []bool
}

// Reply is a frame from a board to the bus master.
type Reply struct {
	Kind   ReplyKind
	Board  int
	Lock   int    // 1-based for single-lock kinds; 0 otherwise
	Closed bool   // single-lock kinds: the lock's state (after polarity)
	Status Status // ReplyStatus only
	// All marks a kerong acknowledgement of unlock-all (Lock is then 0).
	All bool
	// Relays[i] reports lock i+1's relay energised (ReplyRelays only).
	Relays []bool
	// Function and Exception: ReplyException only.
	Function  byte
	Exception Exception
}

// Codec encodes and decodes the frames of one profile. Polarity applies to
// bcc8a feedback and modbus-rtu door inputs and is ignored by kerong. The
// zero Polarity is normal. Modbus is the coil and input layout of modbus-rtu
// boards (ignored by the others); its zero value is 16 locks from address 0.
type Codec struct {
	Profile  Profile
	Polarity Polarity
	Modbus   ModbusMap
}

const (
	kSTX       = 0x02
	kETX       = 0x03
	kCmdStatus = 0x30
	kCmdUnlock = 0x31
	kCmdAll    = 0x33
	kRspStatus = 0x35

	bHeadOpen  = 0x8A
	bHeadQuery = 0x80
	bHeadEvent = 0x82
	bFuncOpen  = 0x11
	bFuncQuery = 0x33
	bActive    = 0x11
	bInactive  = 0x00
)

func sum(b []byte) byte {
	var s byte
	for _, c := range b {
		s += c
	}
	return s
}

func xor(b []byte) byte {
	var s byte
	for _, c := range b {
		s ^= c
	}
	return s
}

func (c Codec) errf(op string, err error, format string, args ...any) error {
	return fmt.Errorf("board: %s %s: "+format+": %w", append(append([]any{c.Profile, op}, args...), err)...)
}

// EncodeCommand returns the wire frame of cmd.
func (c Codec) EncodeCommand(cmd Command) ([]byte, error) {
	p := c.Profile
	if p == ModbusRTU {
		return c.encodeModbusCommand(cmd)
	}
	if err := p.checkBoard(cmd.Board); err != nil {
		return nil, err
	}
	switch cmd.Op {
	case OpStatus, OpUnlockAll:
		if cmd.Lock != 0 {
			return nil, c.errf("encode", ErrAddress, "%s takes lock 0, got %d", cmd.Op, cmd.Lock)
		}
	case OpQuery, OpUnlock:
		if err := p.checkLock(cmd.Board, cmd.Lock); err != nil {
			return nil, err
		}
	default:
		return nil, c.errf("encode", ErrUnsupported, "%s", cmd.Op)
	}
	switch p {
	case KerongCU16:
		var code byte
		switch cmd.Op {
		case OpStatus:
			code = kCmdStatus
		case OpUnlock:
			code = kCmdUnlock
		case OpUnlockAll:
			code = kCmdAll
		default:
			return nil, c.errf("encode", ErrUnsupported, "%s", cmd.Op)
		}
		return kerongFrame(kerongAddr(cmd.Board, cmd.Lock), code), nil
	default: // BCC8A; checkBoard rejected others
		switch cmd.Op {
		case OpStatus:
			return bccFrame(bHeadQuery, byte(cmd.Board), 0, bFuncQuery), nil
		case OpQuery:
			return bccFrame(bHeadQuery, byte(cmd.Board), byte(cmd.Lock), bFuncQuery), nil
		case OpUnlock:
			return bccFrame(bHeadOpen, byte(cmd.Board), byte(cmd.Lock), bFuncOpen), nil
		}
		return nil, c.errf("encode", ErrUnsupported, "%s", cmd.Op)
	}
}

func kerongAddr(board, lock int) byte {
	a := byte(board) << 4
	if lock > 0 {
		a |= byte(lock - 1)
	}
	return a
}

func kerongFrame(addr, code byte) []byte {
	f := []byte{kSTX, addr, code, kETX, 0}
	f[4] = sum(f[:4])
	return f
}

func bccFrame(b ...byte) []byte {
	f := append(b, 0)
	f[len(f)-1] = xor(f[:len(f)-1])
	return f
}

// DecodeCommand parses exactly one command frame.
func (c Codec) DecodeCommand(f []byte) (Command, error) {
	p := c.Profile
	if !p.Valid() {
		return Command{}, fmt.Errorf("board: profile %q: %w", p, ErrProfile)
	}
	if p == ModbusRTU {
		return c.decodeModbusCommand(f)
	}
	if len(f) != p.CommandLen() {
		return Command{}, c.errf("decode command", ErrLength, "got %d bytes, want %d", len(f), p.CommandLen())
	}
	switch p {
	case KerongCU16:
		if f[0] != kSTX || f[3] != kETX {
			return Command{}, c.errf("decode command", ErrFrame, "no STX/ETX")
		}
		if f[4] != sum(f[:4]) {
			return Command{}, c.errf("decode command", ErrChecksum, "sum %#02x, want %#02x", f[4], sum(f[:4]))
		}
		board, nib := int(f[1]>>4), int(f[1]&0x0f)
		switch f[2] {
		case kCmdStatus, kCmdAll:
			if nib != 0 {
				return Command{}, c.errf("decode command", ErrAddress, "lock nibble %d on a whole-board command", nib)
			}
			op := OpStatus
			if f[2] == kCmdAll {
				op = OpUnlockAll
			}
			return Command{Op: op, Board: board}, nil
		case kCmdUnlock:
			return Command{Op: OpUnlock, Board: board, Lock: nib + 1}, nil
		}
		return Command{}, c.errf("decode command", ErrFrame, "unknown command %#02x", f[2])
	default:
		if f[4] != xor(f[:4]) {
			return Command{}, c.errf("decode command", ErrChecksum, "bcc %#02x, want %#02x", f[4], xor(f[:4]))
		}
		var cmd Command
		switch {
		case f[0] == bHeadOpen && f[3] == bFuncOpen:
			cmd = Command{Op: OpUnlock, Board: int(f[1]), Lock: int(f[2])}
		case f[0] == bHeadQuery && f[3] == bFuncQuery && f[2] == 0:
			cmd = Command{Op: OpStatus, Board: int(f[1])}
		case f[0] == bHeadQuery && f[3] == bFuncQuery:
			cmd = Command{Op: OpQuery, Board: int(f[1]), Lock: int(f[2])}
		default:
			return Command{}, c.errf("decode command", ErrFrame, "unknown head/function %#02x/%#02x", f[0], f[3])
		}
		if cmd.Lock == 0 {
			return cmd, p.checkBoard(cmd.Board)
		}
		return cmd, p.checkLock(cmd.Board, cmd.Lock)
	}
}

// feedback maps a closed state to the wire's "feedback active" under c's
// polarity (and back: the mapping is its own inverse).
func (c Codec) feedback(closed bool) bool {
	if (c.Profile == BCC8A || c.Profile == ModbusRTU) && c.Polarity == PolarityInverted {
		return !closed
	}
	return closed
}

func bitmap(dst []byte, bits []bool, conv func(bool) bool) {
	for i, b := range bits {
		if conv(b) && i/8 < len(dst) {
			dst[i/8] |= 1 << (i % 8)
		}
	}
}

func unbitmap(src []byte, n int, conv func(bool) bool) []bool {
	out := make([]bool, n)
	for i := range out {
		out[i] = conv(src[i/8]&(1<<(i%8)) != 0)
	}
	return out
}

func ident(b bool) bool { return b }

// EncodeReply returns the wire frame of r. For ReplyStatus, Status.Closed
// and Status.Occupied may be shorter than LocksPerBoard (missing locks read
// open and empty) but not longer; Status.Board is ignored in favour of Board.
func (c Codec) EncodeReply(r Reply) ([]byte, error) {
	p := c.Profile
	if p == ModbusRTU {
		return c.encodeModbusReply(r)
	}
	if err := p.checkBoard(r.Board); err != nil {
		return nil, err
	}
	n := p.LocksPerBoard()
	switch p {
	case KerongCU16:
		switch r.Kind {
		case ReplyStatus:
			if len(r.Status.Closed) > n || len(r.Status.Occupied) > n {
				return nil, c.errf("encode reply", ErrAddress, "more than %d locks", n)
			}
			f := []byte{kSTX, kerongAddr(r.Board, 0), kRspStatus, 0, 0, 0, 0, kETX, 0}
			bitmap(f[3:5], r.Status.Closed, ident)
			bitmap(f[5:7], r.Status.Occupied, ident)
			f[8] = sum(f[:8])
			return f, nil
		case ReplyUnlock:
			if r.All {
				if r.Lock != 0 {
					return nil, c.errf("encode reply", ErrAddress, "unlock-all ack with lock %d", r.Lock)
				}
				return kerongFrame(kerongAddr(r.Board, 0), kCmdAll), nil
			}
			if err := p.checkLock(r.Board, r.Lock); err != nil {
				return nil, err
			}
			return kerongFrame(kerongAddr(r.Board, r.Lock), kCmdUnlock), nil
		}
	case BCC8A:
		state := func() byte {
			if c.feedback(r.Closed) {
				return bActive
			}
			return bInactive
		}
		switch r.Kind {
		case ReplyStatus:
			if len(r.Status.Closed) > n {
				return nil, c.errf("encode reply", ErrAddress, "more than %d locks", n)
			}
			f := []byte{bHeadQuery, byte(r.Board), 0, 0, 0, 0, bFuncQuery, 0}
			// Locks beyond len(Closed) are reported "open" under the
			// installation's polarity, like an unwired input.
			closed := make([]bool, n)
			copy(closed, r.Status.Closed)
			bitmap(f[3:6], closed, c.feedback)
			f[7] = xor(f[:7])
			return f, nil
		case ReplyLock, ReplyUnlock, ReplyEvent:
			if err := p.checkLock(r.Board, r.Lock); err != nil {
				return nil, err
			}
			head := map[ReplyKind]byte{ReplyLock: bHeadQuery, ReplyUnlock: bHeadOpen, ReplyEvent: bHeadEvent}[r.Kind]
			return bccFrame(head, byte(r.Board), byte(r.Lock), state()), nil
		}
	}
	return nil, c.errf("encode reply", ErrUnsupported, "%s", r.Kind)
}

// replyLen returns the length of the reply frame that starts with prefix, 0
// if more bytes are needed to tell, or -1 if no reply starts so.
func (c Codec) replyLen(prefix []byte) int {
	if len(prefix) == 0 {
		return 0
	}
	switch c.Profile {
	case KerongCU16:
		if prefix[0] != kSTX {
			return -1
		}
		if len(prefix) < 3 {
			return 0
		}
		switch prefix[2] {
		case kRspStatus:
			return 9
		case kCmdUnlock, kCmdAll:
			return 5
		}
	case ModbusRTU:
		return c.modbusReplyLen(prefix)
	case BCC8A:
		switch prefix[0] {
		case bHeadOpen, bHeadEvent:
			return 5
		case bHeadQuery:
			if len(prefix) < 3 {
				return 0
			}
			if prefix[2] == 0 {
				return 8
			}
			return 5
		}
	}
	return -1
}

// DecodeReply parses exactly one reply frame.
func (c Codec) DecodeReply(f []byte) (Reply, error) {
	p := c.Profile
	if !p.Valid() {
		return Reply{}, fmt.Errorf("board: profile %q: %w", p, ErrProfile)
	}
	if p == ModbusRTU {
		return c.decodeModbusReply(f)
	}
	want := c.replyLen(f)
	if want < 0 {
		return Reply{}, c.errf("decode reply", ErrFrame, "unknown start % x", f[:min(len(f), 3)])
	}
	if want == 0 || len(f) != want {
		return Reply{}, c.errf("decode reply", ErrLength, "got %d bytes, want %d", len(f), want)
	}
	n := p.LocksPerBoard()
	switch p {
	case KerongCU16:
		last := len(f) - 1
		if f[last-1] != kETX {
			return Reply{}, c.errf("decode reply", ErrFrame, "no ETX")
		}
		if f[last] != sum(f[:last]) {
			return Reply{}, c.errf("decode reply", ErrChecksum, "sum %#02x, want %#02x", f[last], sum(f[:last]))
		}
		board, nib := int(f[1]>>4), int(f[1]&0x0f)
		switch f[2] {
		case kRspStatus:
			if nib != 0 {
				return Reply{}, c.errf("decode reply", ErrAddress, "lock nibble %d in a status reply", nib)
			}
			return Reply{Kind: ReplyStatus, Board: board, Status: Status{
				Board:    board,
				Closed:   unbitmap(f[3:5], n, ident),
				Occupied: unbitmap(f[5:7], n, ident),
			}}, nil
		case kCmdAll:
			if nib != 0 {
				return Reply{}, c.errf("decode reply", ErrAddress, "lock nibble %d in an unlock-all ack", nib)
			}
			return Reply{Kind: ReplyUnlock, Board: board, All: true}, nil
		default: // kCmdUnlock
			return Reply{Kind: ReplyUnlock, Board: board, Lock: nib + 1}, nil
		}
	default:
		last := len(f) - 1
		if f[last] != xor(f[:last]) {
			return Reply{}, c.errf("decode reply", ErrChecksum, "bcc %#02x, want %#02x", f[last], xor(f[:last]))
		}
		board := int(f[1])
		if err := p.checkBoard(board); err != nil {
			return Reply{}, err
		}
		if len(f) == 8 {
			if f[6] != bFuncQuery {
				return Reply{}, c.errf("decode reply", ErrFrame, "function %#02x in a query-all reply", f[6])
			}
			return Reply{Kind: ReplyStatus, Board: board, Status: Status{
				Board:  board,
				Closed: unbitmap(f[3:6], n, c.feedback),
			}}, nil
		}
		lock := int(f[2])
		if err := p.checkLock(board, lock); err != nil {
			return Reply{}, err
		}
		var closed bool
		switch f[3] {
		case bActive:
			closed = c.feedback(true)
		case bInactive:
			closed = c.feedback(false)
		default:
			return Reply{}, c.errf("decode reply", ErrFrame, "state byte %#02x", f[3])
		}
		kind := map[byte]ReplyKind{bHeadQuery: ReplyLock, bHeadOpen: ReplyUnlock, bHeadEvent: ReplyEvent}[f[0]]
		return Reply{Kind: kind, Board: board, Lock: lock, Closed: closed}, nil
	}
}

package board

import (
	"errors"
	"fmt"
)

// Profile names one lock-board wire dialect.
type Profile string

const (
	// KerongCU16 is the Kerong CU16 dialect: 19200 baud 8N1 by default,
	// 16 locks per board, board addresses 0–15.
	//
	// Commands (5 bytes, `02 ADDR CMD 03 SUM`, SUM = sum of preceding bytes
	// & 0xFF, ADDR = board<<4 | lock-1):
	//   - 0x30 read status of the board (lock nibble 0): `02 00 30 03 35`
	//   - 0x31 unlock one lock: `02 00 31 03 36` unlocks lock #1 of board 0
	//   - 0x33 unlock all locks of the board (lock nibble 0)
	//
	// Replies:
	//   - status, 9 bytes: `02 ADDR 35 HOOK1-8 HOOK9-16 IR1-8 IR9-16 03 SUM`,
	//     ADDR = board<<4. Bit 0 of HOOK1-8 is lock #1, bit 7 lock #8; bit 0
	//     of HOOK9-16 is lock #9 (IR bytes alike). HOOK 1 = locked and
	//     closed (the lock's micro-switch); IR 1 = an item is inside.
	//   - unlock acknowledgement (choice made here; public drivers never read
	//     it): the board echoes the command frame, `02 ADDR 31 03 SUM` or
	//     `02 ADDR 33 03 SUM`, once it has started the pulse. It says nothing
	//     about the door: confirm an unlock by re-reading status.
	//
	// Polarity does not apply: HOOK bits always mean 1 = closed.
	KerongCU16 Profile = "kerong-cu16"

	// BCC8A is the generic "8A" board dialect: 9600 baud 8N1, board address
	// 1–32 (DIP switch), up to 24 locks per board, no occupancy sensing
	// (HasOccupancy is false; Status.Occupied is nil).
	//
	// Commands (5 bytes, `HEAD BOARD LOCK FUNC BCC`, BCC = XOR of preceding
	// bytes):
	//   - open one lock: `8A BOARD LOCK 11 BCC`, e.g. `8A 01 01 11 9B`
	//   - query one lock: `80 BOARD LOCK 33 BCC`, e.g. `80 01 01 33 B3`
	//   - query all locks: `80 BOARD 00 33 BCC`, e.g. `80 01 00 33 B2`
	//
	// Replies (the feedback byte 0x11 means "feedback active", 0x00
	// "inactive"; with PolarityNormal active means closed, the usual wiring,
	// and PolarityInverted swaps the two):
	//   - query one: `80 BOARD LOCK STATE BCC`, STATE 0x11 or 0x00.
	//   - open (choice made here): `8A BOARD LOCK STATE BCC`, sent after the
	//     board has driven the pulse, with the lock's feedback at that
	//     moment. A STATE that still reads closed is not proof of a jam:
	//     confirm by polling.
	//   - query all (choice made here): 8 bytes,
	//     `80 BOARD 00 S1-8 S9-16 S17-24 33 BCC`; bit 0 of S1-8 is lock #1.
	//     The 00 in the lock position tells it apart from a single-lock
	//     reply, whose lock is 1–24.
	//   - unsolicited (choice made here): `82 BOARD LOCK STATE BCC`, sent by
	//     the board when a lock's feedback changes.
	BCC8A Profile = "bcc8a"

	// ModbusRTU is a generic Modbus RTU relay board: 9600 baud 8N1 by
	// default, slave address 1–247, up to 16 locks per board (ModbusMap
	// sets how many, and from which coil and input), CRC-16/MODBUS, frames
	// delimited by a silence of 3.5 characters (ModbusSilence). No occupancy
	// sensing. See modbus.go for the frames; in short, with the zero
	// ModbusMap:
	//   - status: Read Discrete Inputs (0x02) of inputs 0–15, the door
	//     switches: `01 02 00 00 00 10 79 C6` for board 1. Input on means
	//     closed with PolarityNormal, open with PolarityInverted.
	//   - unlock: Write Single Coil (0x05) ON, `01 05 00 00 FF 00 8C 3A`
	//     energises lock 1's relay; the board echoes the request.
	//   - release (Larder's choice: the master times the pulse, no vendor
	//     "flash" register): Write Single Coil OFF, `01 05 00 00 00 00 CD CA`,
	//     sent by the edge after the pulse.
	//   - relays: Read Coils (0x01) of coils 0–15.
	//   - halt: Write Multiple Coils (0x0F), every coil of the map off.
	//   - a refused request is answered function|0x80 and an exception code
	//     (ReplyException; the code is an Exception, an error).
	ModbusRTU Profile = "modbus-rtu"
)

// Profiles lists every supported profile.
var Profiles = []Profile{KerongCU16, BCC8A, ModbusRTU}

// Sentinel errors; decoders and encoders wrap them with the profile and
// operation.
var (
	ErrProfile     = errors.New("unknown board profile")
	ErrUnsupported = errors.New("operation not supported by profile")
	ErrAddress     = errors.New("board or lock address out of range")
	ErrLength      = errors.New("wrong frame length")
	ErrFrame       = errors.New("malformed frame")
	ErrChecksum    = errors.New("bad checksum")
)

// ParseProfile returns the profile named s.
func ParseProfile(s string) (Profile, error) {
	p := Profile(s)
	if !p.Valid() {
		return "", fmt.Errorf("board: profile %q: %w", s, ErrProfile)
	}
	return p, nil
}

// Valid reports whether p is a supported profile.
func (p Profile) Valid() bool { return p == KerongCU16 || p == BCC8A || p == ModbusRTU }

func (p Profile) String() string { return string(p) }

// Baud is the profile's default line speed (8N1).
func (p Profile) Baud() int {
	switch p {
	case KerongCU16:
		return 19200
	case BCC8A, ModbusRTU:
		return 9600
	}
	return 0
}

// LocksPerBoard is the number of locks one board drives (modbus-rtu: at
// most; Codec.Locks is the number a ModbusMap uses). Compartments are
// numbered with it.
func (p Profile) LocksPerBoard() int {
	switch p {
	case KerongCU16, ModbusRTU:
		return 16
	case BCC8A:
		return 24
	}
	return 0
}

// BoardRange returns the lowest and highest valid board address.
func (p Profile) BoardRange() (lo, hi int) {
	switch p {
	case KerongCU16:
		return 0, 15
	case BCC8A:
		return 1, 32
	case ModbusRTU:
		return ModbusMinSlave, ModbusMaxSlave
	}
	return 0, -1
}

// MaxBoards is the number of boards one bus can address.
func (p Profile) MaxBoards() int { lo, hi := p.BoardRange(); return hi - lo + 1 }

// HasOccupancy reports whether the boards report per-compartment infrared
// occupancy (kerong yes, bcc8a no).
func (p Profile) HasOccupancy() bool { return p == KerongCU16 }

// CommandLen is the length of every command frame of the profile (of every
// one but halt for modbus-rtu, whose 0x0F frame is MaxFrameLen long at most).
func (p Profile) CommandLen() int {
	if p == ModbusRTU {
		return modbusShortFrame
	}
	return 5
}

// StatusReplyLen is the length of a whole-board status reply.
func (p Profile) StatusReplyLen() int {
	switch p {
	case KerongCU16:
		return 9
	case BCC8A:
		return 8
	case ModbusRTU:
		return 7 // 16 inputs
	}
	return 0
}

// MaxFrameLen is the longest frame of the profile in either direction
// (modbus-rtu: halt of 16 coils, 11 bytes).
func (p Profile) MaxFrameLen() int {
	if p == ModbusRTU {
		return 11
	}
	return max(p.CommandLen(), p.StatusReplyLen())
}

// Compartment returns the bus-wide compartment number (1-based) of lock (1-based)
// on board (wire address): boards in address order, LocksPerBoard numbers
// each. Kerong board 0 lock 1 is compartment 1, board 1 lock 1 is 17; bcc8a
// board 1 lock 1 is compartment 1, board 2 lock 1 is 25.
func (p Profile) Compartment(board, lock int) (int, error) {
	if err := p.checkLock(board, lock); err != nil {
		return 0, err
	}
	lo, _ := p.BoardRange()
	return (board-lo)*p.LocksPerBoard() + lock, nil
}

// Locate is the inverse of Compartment.
func (p Profile) Locate(compartment int) (board, lock int, err error) {
	n := p.LocksPerBoard()
	if !p.Valid() {
		return 0, 0, fmt.Errorf("board: profile %q: %w", p, ErrProfile)
	}
	if compartment < 1 || compartment > p.MaxBoards()*n {
		return 0, 0, fmt.Errorf("board: %s compartment %d: %w", p, compartment, ErrAddress)
	}
	lo, _ := p.BoardRange()
	return lo + (compartment-1)/n, (compartment-1)%n + 1, nil
}

func (p Profile) checkBoard(board int) error {
	if !p.Valid() {
		return fmt.Errorf("board: profile %q: %w", p, ErrProfile)
	}
	lo, hi := p.BoardRange()
	if board < lo || board > hi {
		return fmt.Errorf("board: %s board %d not in %d–%d: %w", p, board, lo, hi, ErrAddress)
	}
	return nil
}

func (p Profile) checkLock(board, lock int) error {
	if err := p.checkBoard(board); err != nil {
		return err
	}
	if lock < 1 || lock > p.LocksPerBoard() {
		return fmt.Errorf("board: %s lock %d not in 1–%d: %w", p, lock, p.LocksPerBoard(), ErrAddress)
	}
	return nil
}

// Polarity says what an active lock feedback means. It is a per-installation
// setting of bcc8a boards (the feedback contact is shorted when locked on some
// lock models, when unlocked on others) and of modbus-rtu door inputs (a
// switch that closes with the door, or one that opens); kerong ignores it.
type Polarity int

const (
	// PolarityNormal: active feedback (0x11, bit set) means closed. The zero value.
	PolarityNormal Polarity = iota
	// PolarityInverted: active feedback means open.
	PolarityInverted
)

// ParsePolarity accepts "normal" or "inverted".
func ParsePolarity(s string) (Polarity, error) {
	switch s {
	case "", "normal":
		return PolarityNormal, nil
	case "inverted":
		return PolarityInverted, nil
	}
	return 0, fmt.Errorf("board: polarity %q: want normal or inverted", s)
}

func (p Polarity) String() string {
	if p == PolarityInverted {
		return "inverted"
	}
	return "normal"
}

// Package board encodes and decodes the serial frames spoken by the RS-485
// lock control boards that Larder supports. It is shared by the edge's serial
// drivers (the bus master: encode commands, decode replies) and by the
// simulator in firmware-sim (the slave: decode commands, encode replies), so
// that both sides agree byte for byte. Standard library only.
//
// # Profiles
//
// A Profile names one wire dialect. Three are supported:
//
//   - kerong-cu16: `STX ADDR CMD ETX SUM`, 16 locks per board, infrared
//     occupancy per compartment. See KerongCU16.
//   - bcc8a: `HEAD BOARD LOCK FUNC BCC`, up to 24 locks per board, no
//     occupancy sensing, per-installation feedback polarity. See BCC8A.
//   - modbus-rtu: generic Modbus RTU relay boards, coils for the relays and
//     discrete inputs for the door switches, CRC-16/MODBUS, up to 16 locks
//     per board laid out by a ModbusMap. The board holds a relay on until
//     told otherwise, so the master times the pulse (OpUnlock, then
//     OpRelease) and OpHalt switches a board's relays off. ModbusFrame and
//     its functions are the plain Modbus frames underneath. See ModbusRTU
//     and modbus.go.
//
// The public drivers of these boards never read some replies (what a board
// answers to an unlock, the layout of a bcc8a "query all" reply, the
// unsolicited 0x82 frame). The choices made here are written down once, in
// the doc comment of the profile constants, and both the edge and the
// simulator follow them. docs/lock-boards.md describes every frame byte by
// byte for vendors; its examples are checked against this codec (doc_test.go).
//
// # Numbering
//
// Command.Lock and Reply.Lock are 1-based lock numbers on a board (lock #1 is
// 1 for both profiles, even though kerong puts 0 in the low nibble for it).
// Board is the wire address (kerong 0–15, bcc8a 1–32, modbus-rtu 1–247). Status.Closed[i] and
// Status.Occupied[i] describe lock i+1. Compartments are numbered 1..N across
// one bus: Profile.Compartment and Profile.Locate convert.
//
// # Streams
//
// Bytes on a serial line arrive in arbitrary chunks and may be garbled.
// CommandDecoder and ReplyDecoder buffer fed bytes, return whole frames that
// pass every check (start byte, length, ETX, checksum, addresses), and on any
// failure drop one byte and resynchronise at the next possible start byte,
// counting every discarded byte. Modbus RTU frames are delimited by a
// silence of 3.5 characters: the reader calls Gap after one, and a
// modbus-rtu decoder drops the partial frame it holds. They are not safe for
// concurrent use; one decoder belongs to one reader of one bus.
package board

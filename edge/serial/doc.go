// Package serial drives RS-485 lock boards (profiles kerong-cu16, bcc8a and
// modbus-rtu, frames from protocol/board) over a serial line (go.bug.st/serial) or a TCP
// stream ("tcp://host:port": an RS-485-to-Ethernet converter, or larder-sim).
// One Bus per line implements hw.Latch, hw.Sensors and hw.Halter.
//
// # Exchanges
//
// Every command is an exchange: take the bus mutex (one command in flight
// per bus: RS-485 is half duplex and boards share the pair), drop whatever
// input is waiting (ResetInputBuffer on a tty; a short drain on TCP), write
// the frame, read until a reply that matches the command's board and kind.
// A try ends without a reply after Config.CommandTimeout, or earlier when
// bytes arrived, the line then went quiet, and no valid frame was among
// them (garbage: the decoder resynchronised past it). Failed tries are
// retried up to Config.Retries times; garbage therefore costs a retry, never
// a wrong state, because a reply is only believed once its checksum,
// length, address and kind all check out. Stale and unsolicited frames
// (bcc8a 0x82) are skipped. An I/O error closes the transport; the next
// try reopens it.
//
// # Unlock
//
// Unlock waits its turn on the shared hw.Stagger (about 100 ms between
// latch pulses), sends the unlock command and then reads the board status
// at once and every Config.ConfirmInterval (200 ms) until the lock reads
// open: only then does it return nil. If the lock still reads closed after
// Config.ConfirmTimeout (2 s) it returns hw.ErrJammed. An unlock whose
// acknowledgement is lost is not blindly resent: the bus first reads the
// status, because the board may have pulsed the latch and only its answer
// been garbled, and a lock that reads open needs no second pulse.
//
// # Modbus RTU relay boards
//
// A modbus-rtu board holds a relay as long as its coil is on, so the bus
// times the pulse: it writes the coil on (Write Single Coil), waits
// Config.Pulse (300 ms; at once when the unlock's context ends), writes it
// off with every try, then confirms as above by reading the door inputs. A
// switch-off never acknowledged is kept pending and sent again before each
// poll of that board until the board takes it (Stats.ReleaseFailed counts
// them, and an error is logged); Halt writes every coil of every board off
// (Write Multiple Coils). A board that refuses a command answers a Modbus
// exception: the board is online, the command fails at once with an error
// wrapping the board.Exception (no retry: a refusal is an answer), and a
// change of a board's exception is logged once. Status reads exactly
// Config.Modbus.Locks inputs, so the map must fit the board.
//
// # Board health
//
// A board is online from its first valid reply. Every exchange that gets no
// reply counts a failure; a board that has not answered for
// Config.OfflineAfter (2.5 s, five idle polls) is reported offline, and one
// valid reply brings it back. An offline board gets a single try per command
// instead of 1+Retries, so that a dead board costs one timeout per poll and
// does not starve the boards that answer. Snapshot reports the health of
// each board alongside its doors; hw.Poller turns changes into
// board_offline/board_online events.
//
// # Caveats
//
// Halt is a no-op for kerong-cu16 and bcc8a: those boards time their own
// latch pulses, so the master never holds a relay on. Draining a TCP stream cannot catch bytes still in
// flight on the network; the reply checks make that harmless. Kerong hook
// bits (and bcc8a feedback, after polarity) are what Snapshot reports as
// doors: on these boards the lock's micro-switch is the door sensor; on
// modbus-rtu boards it is whatever switch is wired to the input.
package serial

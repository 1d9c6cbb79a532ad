// Package hw is the locker hardware as the edge daemon sees it: compartments
// numbered 1..N across the whole bank, the small role interfaces the rest of
// the edge asks for, the events that physical changes become, and the poller
// that turns successive sensor snapshots into those events.
//
// # Roles
//
// Drivers (edge/serial for RS-485 lock boards, edge/gpio for relays wired to a
// single-board computer, edge/probe for temperature probes) implement one or
// more of these interfaces; consumers ask for the narrowest one:
//
//   - Latch: release one compartment's latch. Unlock returns nil only once the
//     door is confirmed released (the lock's feedback switch shows it open),
//     ErrJammed when the pulse was sent but the feedback never showed open,
//     ErrBoardOffline when the board does not answer.
//   - Sensors: one Snapshot of doors, occupancy and board health.
//   - Thermometer: one Reading per temperature zone.
//   - Halter: all relays off. Daemons call it first on start-up and first on
//     shutdown, before anything else is closed.
//
// # Addressing
//
// A Map says which (board, lock) drives each compartment. Board is the wire
// address on its bus (kerong-cu16 0–15, bcc8a 1–32, modbus-rtu 1–247, 0 for GPIO); Lock is the
// 1-based lock number on that board. The configuration provides the Map; the
// rest of the edge only ever speaks compartment numbers.
//
// # Events
//
// The Poller compares snapshots and emits Events: door_opened, door_closed,
// occupancy_changed, uncommanded_open, board_offline, board_online. A door
// that opens always yields door_opened; when no commanded unlock explains it
// (see Expected) an uncommanded_open follows it. lock_jammed is emitted by the
// Tracked latch wrapper when an Unlock returns ErrJammed. Unknown states (a
// board that did not answer) never produce door or occupancy events: the
// poller keeps the last known state and compares against it when the board
// answers again, so a door opened while its board was offline is reported
// (as uncommanded, unless an unlock explains it) once the board is back.
//
// # Caveats
//
// The first snapshot is a baseline: it yields board_offline for boards that
// are already down but no door or occupancy events. Read Poller.Last to learn
// the initial state. Expected consumes one recorded unlock per opening, so a
// door that is opened, closed and opened again after one unlock is reported
// uncommanded the second time.
package hw

// Package sim (folder firmware-sim) simulates the hardware of a Larder
// locker bank faithfully enough that the edge cannot tell it from real
// boards: lock boards speaking the protocol/board dialects on an RS-485 bus
// served on a Linux pseudo-terminal or on TCP (like an RS-485-to-Ethernet
// converter), latches, spring-loaded doors, hook switches, infrared
// occupancy, refrigerated temperature zones and fault injection.
//
// # Pieces
//
//   - World: the physics, one state machine per board and compartment plus
//     the zones, with fault knobs (ApplyFault). Time is read from a Clock and
//     the physics is evaluated lazily up to Clock.Now on every call, so a
//     FakeClock (or a testing/synctest bubble) makes tests exact.
//   - Bus: serves one World on a byte stream. Bytes take 10 bits / baud each
//     (8N1), a board answers after the command's own wire time plus its
//     turnaround (default 5 ms) plus any slow-replies fault. One command is
//     handled at a time, as on a half-duplex bus.
//   - Control: the HTTP control API (loopback) acting as people and the
//     world; Scenario: timed actions of the same vocabulary.
//   - Main: wiring for cmd/larder-sim and for tests that start the whole
//     simulator in-process.
//
// # Physics
//
// An unlock pulses the latch for Pulse (default 300 ms). A released latch
// lets the spring push the door ajar after SpringDelay (30 ms); a shorter
// pulse does not open it. A door closes only when a person closes it; if the
// latch is still released then, the spring pushes it ajar again. The hook
// switch (what the board reports as closed) is door closed AND latch
// engaged. Infrared occupancy is items > 0 (kerong only reports it).
//
// Modbus-rtu boards (modbus.go) are generic Modbus RTU relay boards, 16
// relays on coils 0–15 and 16 door switches on discrete inputs 0–15: the
// latch stays released while the edge holds a relay's coil on (Pulse does
// not apply), the door springs ajar as above, and an input reads the door
// switch (door closed, not the hook). A request past the 16 coils or inputs
// is answered with exception 02. Requests are delimited by the silence of
// 3.5 characters before them, measured on the emulated wire. A power cut or
// a board reset switches every coil off.
// Power cut: boards silent, latches engaged, compressors off; on restore the
// boards boot for BootTime (500 ms) before answering.
//
// Zones (frozen −18 °C, chilled 4 °C, cool 12 °C, ambient) follow a first
// order model: leak toward the outside temperature, much faster per open
// door of the zone, and a compressor with ±1 °C hysteresis cooling toward an
// evaporator 20 °C below setpoint. See ThermalModel for the rates.
//
// # Numbering
//
// Compartments are numbered 1..N across the bus in board-address order,
// protocol/board's Profile.Compartment: kerong board b (0-based address)
// lock l (1-based) is b*16+l; bcc8a board b (1-based address) lock l is
// (b-1)*24+l; modbus-rtu board b (1-based slave address) lock l is
// (b-1)*16+l. Boards take the lowest addresses: kerong 0..N-1, bcc8a and
// modbus-rtu 1..N.
//
// # Control API
//
// JSON over HTTP, meant for loopback. Errors are {"error": "message"} with
// 400 for bad input, 404 for an unknown compartment/board/zone/route, 409
// when the world does not allow it (opening a locked door without force,
// putting into a closed compartment, closing a door held open).
//
//	GET    /v1/state                      State: boards, compartments, zones, power, line faults
//	GET    /v1/zones                      []ZoneState: temp_c (null + error on probe failure)
//	GET    /v1/zones/{name}               one ZoneState (frozen, chilled, cool, ambient)
//	GET    /v1/bus                        BusInfo: profile, baud, turnaround, counters
//	POST   /v1/compartments/{n}/open      {"force": bool}  a person pulls the door (force: a locked one)
//	POST   /v1/compartments/{n}/close     a person pushes the door shut
//	POST   /v1/compartments/{n}/put       {"items": k}     puts k items (default 1); door must be open
//	POST   /v1/compartments/{n}/take      {"items": k}     takes k items (default all); door must be open
//	POST   /v1/world                      {"outside_c": 31.5}
//	POST   /v1/power                      {"on": false}
//	POST   /v1/faults                     Fault, e.g. {"kind":"jammed_latch","compartment":3}
//	                                      or {"kind":"garble","rate":0.05}; "off": true clears one
//	DELETE /v1/faults                     clears every fault
//	POST   /v1/scenario                   Scenario JSON; runs in the background, 202
//
// Success answers 200 with the compartment's or the world's new state.
//
// # Scenarios
//
// A scenario is JSON: {"actions": [{"at": "1.5s", "do": "open",
// "compartment": 3, "force": true}, ...]}. "at" is an offset from the
// scenario's start; "do" is one of open, close, put, take, outside, power,
// fault, clear_faults with the same fields as the control API. Actions run
// in order at their offsets; a failing action is logged and the scenario
// goes on. The line fault RNG is seeded (Config.Seed), so a replay with the
// same commands from the edge garbles the same bytes.
//
// # Caveats
//
// A pty has no baud rate: the wire time is emulated by pacing writes, and
// the edge's own termios settings are accepted and ignored. Writes arriving
// while a reply is being sent are queued, not collided. Unsolicited bcc8a
// 0x82 frames are off by default (they would collide on a shared bus);
// enable with Config.Events.
package sim

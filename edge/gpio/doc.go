// Package gpio drives locker banks wired straight to a single-board
// computer through periph.io: one relay output per latch and, optionally, one
// door-switch input per compartment. Driver implements hw.Latch, hw.Sensors
// and hw.Halter.
//
// # Relays
//
// A relay is a periph gpio.PinOut, active-high or active-low per
// installation (Config.RelayActiveLow). A pulse lasts Config.Pulse, capped at
// MaxPulse, and always ends with the relay off: the off is a deferred, fresh
// Out call that runs whether the pulse ran to its end, the context was
// cancelled or switching on failed. A latch coil left energised overheats and
// a stuck relay keeps a door unlocked, so this is the one invariant the
// package exists to keep. Pulses of all compartments share one hw.Stagger so
// that simultaneous openings do not overload the 12 V supply.
//
// New switches every relay off before anything else (start-up), and Halt and
// Close do it again (shutdown).
//
// # Door switches
//
// A door switch is a gpio.PinIn set to In(PullUp, BothEdges). One goroutine
// per switch waits for edges; after an edge it keeps consuming edges until
// the line has been quiet for Config.Debounce, then reads the level once.
// When no edge arrives for a while it samples the level anyway, so an edge a
// driver dropped cannot leave the state wrong for long. The usual wiring is a
// switch to ground that closes with the door, so an open door reads High;
// set Config.DoorOpenLow for the opposite.
//
// # Unlock confirmation
//
// Unlock returns nil once the compartment's debounced door switch shows the
// door open (immediately if it already was), or hw.ErrJammed when it does not
// within Config.ConfirmTimeout. A compartment without a door switch cannot be
// confirmed: Unlock then returns nil after the pulse, and its doors are
// hw.DoorUnknown in snapshots.
//
// # Host initialisation
//
// This package never calls host.Init, so it builds and tests anywhere with
// periph's gpiotest fakes. Subpackage gpiohost initialises the host drivers
// and looks pins up by name; only the edge binary imports it.
package gpio

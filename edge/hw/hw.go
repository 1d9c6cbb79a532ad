package hw

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors returned (wrapped) by every driver. Test with errors.Is.
var (
	// ErrJammed: the unlock pulse was sent but the lock's feedback never
	// showed it open within the confirmation window. The door is to be
	// treated as still locked.
	ErrJammed = errors.New("hw: lock jammed")
	// ErrBoardOffline: the board did not answer (after retries), or is
	// currently considered down.
	ErrBoardOffline = errors.New("hw: board offline")
	// ErrUnknownCompartment: the compartment is not in the Map.
	ErrUnknownCompartment = errors.New("hw: unknown compartment")
	// ErrTimeout: a single exchange did not complete in time. Drivers retry
	// it; callers normally see ErrBoardOffline once retries are exhausted.
	ErrTimeout = errors.New("hw: timeout")
	// ErrBadReply: a reply arrived but failed checks (checksum, address,
	// length). Drivers retry it.
	ErrBadReply = errors.New("hw: bad reply")
	// ErrClosed: the driver was closed.
	ErrClosed = errors.New("hw: closed")
	// ErrProbe: a temperature probe gave no valid value (CRC error, power-on
	// value, no device).
	ErrProbe = errors.New("hw: probe failure")
)

// Latch releases compartment latches.
type Latch interface {
	// Unlock pulses the compartment's latch and returns nil only once the
	// door is confirmed released. It returns an error wrapping ErrJammed,
	// ErrBoardOffline, ErrUnknownCompartment or the context's error.
	Unlock(ctx context.Context, compartment int) error
}

// Sensors reads doors, occupancy and board health.
type Sensors interface {
	// Snapshot reads every board once. A board that does not answer does not
	// make Snapshot fail: its compartments are reported Unknown and its
	// BoardState says whether it is considered down yet. Snapshot returns an
	// error only when nothing could be read at all (closed driver, cancelled
	// context).
	Snapshot(ctx context.Context) (Snapshot, error)
}

// Thermometer reads zone temperatures.
type Thermometer interface {
	// Read returns one Reading per configured zone, in a stable order. A probe
	// that failed appears with Err set (wrapping ErrProbe) rather than being
	// left out; Read's own error is for failures of the whole read.
	Read(ctx context.Context) ([]Reading, error)
}

// Halter returns hardware to an inert state: every relay off. Safe to call
// at any time, repeatedly, concurrently with other methods.
type Halter interface {
	Halt() error
}

// Door is a door's state as its switch reports it.
type Door uint8

const (
	DoorUnknown Door = iota // no answer from the board, or no switch
	DoorClosed
	DoorOpen
)

func (d Door) String() string {
	switch d {
	case DoorClosed:
		return "closed"
	case DoorOpen:
		return "open"
	}
	return "unknown"
}

// Occupancy is what a compartment's infrared sensor reports.
type Occupancy uint8

const (
	OccupancyUnknown Occupancy = iota // no sensor, or no answer
	Empty
	Occupied
)

func (o Occupancy) String() string {
	switch o {
	case Empty:
		return "empty"
	case Occupied:
		return "occupied"
	}
	return "unknown"
}

// CompartmentState is one compartment in a Snapshot.
type CompartmentState struct {
	Board     int
	Door      Door
	Occupancy Occupancy
}

// BoardState is one board's health in a Snapshot.
type BoardState struct {
	// Online is false once the board has not answered for the driver's
	// offline threshold (about 2.5 s by default). A board that missed one
	// poll but answered recently is still Online, with Unknown compartments.
	Online bool
	// LastSeen is the last time a valid reply arrived (zero: never).
	LastSeen time.Time
	// Failures counts exchanges that failed since the last success.
	Failures int
}

// Snapshot is the state of the whole bank at one instant.
type Snapshot struct {
	At           time.Time
	Compartments map[int]CompartmentState // by compartment number
	Boards       map[int]BoardState       // by board address
}

// Reading is one zone's temperature.
type Reading struct {
	Zone    string
	Celsius float64
	At      time.Time
	// Err is non-nil (wrapping ErrProbe) when this zone's probe gave no valid
	// value; Celsius is then meaningless.
	Err error
}

// EventKind names an Event. The strings are stable: they are logged and
// may be forwarded as-is.
type EventKind string

const (
	EventDoorOpened       EventKind = "door_opened"
	EventDoorClosed       EventKind = "door_closed"
	EventOccupancyChanged EventKind = "occupancy_changed"
	EventUncommandedOpen  EventKind = "uncommanded_open"
	EventBoardOffline     EventKind = "board_offline"
	EventBoardOnline      EventKind = "board_online"
	EventLockJammed       EventKind = "lock_jammed"
)

// Event is a physical change the edge must act on or report.
type Event struct {
	Kind EventKind
	// Compartment is 0 for board events.
	Compartment int
	Board       int
	// Occupancy is the new value for OccupancyChanged, else Unknown.
	Occupancy Occupancy
	At        time.Time
}

package protocol

// EventKind names a fact the edge reports. The list is append-only.
type EventKind string

// Event kinds of protocol v1. The comment says which fields each one requires; fields in
// parentheses are carried when known but not required, so that a receiver never rejects
// (and an edge's outbox never stalls on) an event for lack of a detail.
const (
	EventDoorOpened       EventKind = "door_opened"           // compartment, credential
	EventDoorClosed       EventKind = "door_closed"           // compartment
	EventLoaded           EventKind = "loaded"                // order, compartment; the infrared saw the item
	EventPickedUp         EventKind = "picked_up"             // order; doors closed and infrared sees them empty
	EventReassigned       EventKind = "reassigned"            // order, compartment (required: the old one), to; the same code keeps working
	EventUncommandedOpen  EventKind = "uncommanded_open"      // compartment; a door opened with no command
	EventDoorLeftOpen     EventKind = "door_left_open"        // compartment, seconds
	EventLockJammed       EventKind = "lock_jammed"           // compartment
	EventBoardOffline     EventKind = "board_offline"         // board
	EventBoardOnline      EventKind = "board_online"          // board
	EventTempExcursion    EventKind = "temperature_excursion" // zone, celsius (seconds out of range)
	EventCodeLockout      EventKind = "code_lockout"          // nothing (seconds locked; order when its code was invalidated)
	EventOrderCompromised EventKind = "order_compromised"     // order (seconds out of temperature)
	EventExpiredRemoved   EventKind = "expired_removed"       // order
	EventHelpRequested    EventKind = "help_requested"        // a person pressed the kiosk's help button
	EventOutage           EventKind = "outage"                // seconds: the edge could not reach the cloud that long, until the envelope's ts
)

// EventKinds lists every event kind, oldest first.
func EventKinds() []EventKind {
	return []EventKind{EventDoorOpened, EventDoorClosed, EventLoaded, EventPickedUp, EventReassigned,
		EventUncommandedOpen, EventDoorLeftOpen, EventLockJammed, EventBoardOffline, EventBoardOnline,
		EventTempExcursion, EventCodeLockout, EventOrderCompromised, EventExpiredRemoved, EventHelpRequested,
		EventOutage}
}

// CredentialKind says what kind of credential made something happen, never the secret.
type CredentialKind string

// Credential kinds, part of the wire contract. ops_local is reserved for an operator's
// credential typed at the kiosk; the edge has no such login yet, so no edge sends it,
// and receivers accept it.
const (
	CredNone      CredentialKind = "none"        // nothing acted (sensors, timers)
	CredPickup    CredentialKind = "pickup_code" // a resident's code and second factor
	CredDriver    CredentialKind = "driver"      // a driver's loading credential at the kiosk
	CredOpsRemote CredentialKind = "ops_remote"  // an operator's command from the cloud
	CredOpsLocal  CredentialKind = "ops_local"   // an operator's credential at the kiosk
	CredSystem    CredentialKind = "system"      // the edge itself (e.g. expiry processing)
)

func (k CredentialKind) valid() bool {
	switch k {
	case CredNone, CredPickup, CredDriver, CredOpsRemote, CredOpsLocal, CredSystem:
		return true
	}
	return false
}

// Event is one fact from the edge's durable outbox, on [ChanEvents]. Its envelope's Seq is
// the outbox sequence: the cloud acknowledges with an [EventAck] and the edge resends
// everything after the acknowledged sequence, in order, with the same envelope.
type Event struct {
	Kind        EventKind      `json:"kind"`
	Credential  CredentialKind `json:"credential"`
	Compartment int            `json:"compartment,omitempty"`
	// Generation is the compartment's generation (fencing token) the event refers to.
	Generation uint64 `json:"generation,omitempty"`
	Order      string `json:"order,omitempty"`
	// To is the new compartment of a reassigned order.
	To int `json:"to,omitempty"`
	// Board is the board address of board_offline and board_online (0 is a valid address).
	Board *int `json:"board,omitempty"`
	Zone  Zone `json:"zone,omitempty"`
	// Celsius is the temperature of a temperature_excursion.
	Celsius *float64 `json:"celsius,omitempty"`
	// Seconds is a duration: how long a door has been open, a zone out of range, an order
	// out of temperature, or the keypad locked.
	Seconds float64 `json:"seconds,omitempty"`
	// Reason is a short human-readable explanation (e.g. "jammed", "zone faulty").
	Reason string `json:"reason,omitempty"`
}

func (Event) MessageType() Type { return TypeEvent }

func (e Event) Validate() error {
	if e.Kind == "" {
		return fieldErr("kind", "required")
	}
	if e.Credential == "" {
		return fieldErr("credential", "required")
	}
	if !e.Credential.valid() {
		return fieldErr("credential", "unknown credential kind %q", e.Credential)
	}
	need := func(ok bool, field string) error {
		if !ok {
			return fieldErr(field, "required for %s", e.Kind)
		}
		return nil
	}
	switch e.Kind {
	case EventDoorOpened, EventDoorClosed, EventUncommandedOpen, EventLockJammed:
		return need(e.Compartment > 0, "compartment")
	case EventDoorLeftOpen:
		if err := need(e.Compartment > 0, "compartment"); err != nil {
			return err
		}
		return need(e.Seconds > 0, "seconds")
	case EventLoaded:
		if err := need(e.Order != "", "order"); err != nil {
			return err
		}
		return need(e.Compartment > 0, "compartment")
	case EventReassigned:
		if err := need(e.Order != "", "order"); err != nil {
			return err
		}
		if err := need(e.Compartment > 0, "compartment"); err != nil {
			return err
		}
		return need(e.To > 0, "to")
	case EventPickedUp, EventExpiredRemoved, EventOrderCompromised:
		return need(e.Order != "", "order")
	case EventBoardOffline, EventBoardOnline:
		return need(e.Board != nil && *e.Board >= 0, "board")
	case EventTempExcursion:
		if err := need(e.Zone.Valid(), "zone"); err != nil {
			return err
		}
		return need(e.Celsius != nil, "celsius")
	case EventCodeLockout, EventHelpRequested:
		return nil
	case EventOutage:
		return need(e.Seconds > 0, "seconds")
	}
	// An unknown kind from a newer sender is accepted: the list is append-only and
	// receivers store what they do not understand.
	return nil
}

// EventAck is the cloud's cumulative acknowledgement on [ChanEventAck]: every event of
// the site up to and including Seq has been durably processed.
type EventAck struct {
	Seq uint64 `json:"seq"`
}

func (EventAck) MessageType() Type { return TypeEventAck }

func (a EventAck) Validate() error {
	if a.Seq == 0 {
		return fieldErr("seq", "required")
	}
	return nil
}

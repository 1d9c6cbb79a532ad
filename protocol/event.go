package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// EventKind names a fact the edge reports. The list is append-only.
type EventKind string

// Event kinds of protocol v1. The comment says which fields each one requires; fields in
// parentheses are carried when known but not required, so that a receiver never rejects
// (and an edge's outbox never stalls on) an event for lack of a detail.
const (
	EventDoorOpened       EventKind = "door_opened"           // compartment, credential
	EventDoorClosed       EventKind = "door_closed"           // compartment
	EventLoaded           EventKind = "loaded"                // order, compartment; the infrared saw the item
	EventPickedUp         EventKind = "picked_up"             // order (cold_chain); doors closed and infrared sees them empty
	EventReassigned       EventKind = "reassigned"            // order, compartment (required: the old one), to; the same code keeps working
	EventUncommandedOpen  EventKind = "uncommanded_open"      // compartment; a door opened with no command
	EventDoorLeftOpen     EventKind = "door_left_open"        // compartment, seconds
	EventLockJammed       EventKind = "lock_jammed"           // compartment
	EventBoardOffline     EventKind = "board_offline"         // board
	EventBoardOnline      EventKind = "board_online"          // board
	EventTempExcursion    EventKind = "temperature_excursion" // zone, celsius (seconds out of range)
	EventCodeLockout      EventKind = "code_lockout"          // nothing (seconds locked; order when its code was invalidated)
	EventOrderCompromised EventKind = "order_compromised"     // order (seconds out of temperature)
	EventExpiredRemoved   EventKind = "expired_removed"       // order (cold_chain); the order was returned
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
	// ColdChain is the order's cold-chain record, on picked_up and expired_removed.
	// Edges of protocol 1.0 do not send it: absent means unknown, never "kept cold".
	ColdChain *ColdChain `json:"cold_chain,omitempty"`
}

// ColdChain is what the edge measured of an order's zone while it held the order: from
// loading (the first item in) to the pickup or the return. Durations are in seconds,
// temperatures in degrees Celsius, like every other field of the protocol.
//
// A receiver checks it with [ColdChain.Check]; a malformed record is treated as unknown
// and the event it rides on still stands, so that an edge's outbox never stalls on it.
type ColdChain struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// LimitC is the zone's cold-chain limit the edge counted against (8 °C chilled,
	// −15 °C frozen by default).
	LimitC float64 `json:"limit_c"`
	// AboveSeconds is the time the zone's air was above LimitC.
	AboveSeconds float64 `json:"above_seconds"`
	// PeakC is the warmest valid reading; absent when there was none.
	PeakC *float64 `json:"peak_c,omitempty"`
	// MissingSeconds is the time without a valid reading: every stretch from From to To
	// longer than two minutes between two readings, or between From or To and the
	// nearest reading (a failed probe, the edge down, no probe at all), whole.
	MissingSeconds float64 `json:"missing_seconds"`
}

// Check reports the first field of c that cannot be true.
func (c ColdChain) Check() error {
	switch {
	case c.From.IsZero():
		return fieldErr("cold_chain.from", "required")
	case c.To.IsZero():
		return fieldErr("cold_chain.to", "required")
	case c.To.Before(c.From):
		return fieldErr("cold_chain.to", "before from")
	case !(c.AboveSeconds >= 0):
		return fieldErr("cold_chain.above_seconds", "negative")
	case !(c.MissingSeconds >= 0):
		return fieldErr("cold_chain.missing_seconds", "negative")
	}
	span := c.To.Sub(c.From).Seconds() + 1 // a second's slack for rounding
	switch {
	case c.AboveSeconds > span:
		return fieldErr("cold_chain.above_seconds", "longer than from..to")
	case c.MissingSeconds > span:
		return fieldErr("cold_chain.missing_seconds", "longer than from..to")
	}
	return nil
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
// the site up to and including Seq has been durably processed, or rejected.
type EventAck struct {
	Seq uint64 `json:"seq"`
	// Rejected lists events up to Seq that the cloud could not decode and will never
	// apply (added in 1.1). Each is acknowledged like any other: the stream goes on
	// after it. The edge keeps a rejected event aside for inspection instead of
	// dropping it. An event whose effect merely failed for now is never rejected: it is
	// left unacknowledged and applied when resent.
	Rejected []Rejection `json:"rejected,omitempty"`
}

func (EventAck) MessageType() Type { return TypeEventAck }

func (a EventAck) Validate() error {
	if a.Seq == 0 {
		return fieldErr("seq", "required")
	}
	for i, r := range a.Rejected {
		f := fmt.Sprintf("rejected[%d]", i)
		switch {
		case r.Seq == 0:
			return fieldErr(f+".seq", "required")
		case r.Seq > a.Seq:
			return fieldErr(f+".seq", "%d is beyond the acknowledged %d", r.Seq, a.Seq)
		case r.Error == "":
			return fieldErr(f+".error", "required")
		}
	}
	return nil
}

// Rejection says which event the cloud rejected and why.
type Rejection struct {
	// Seq is the rejected event's envelope sequence.
	Seq uint64 `json:"seq"`
	// Error is [ErrInvalidEvent] for an event that did not decode; receivers treat an
	// unknown code as that.
	Error ErrorCode `json:"error"`
	// Field is the JSON path of the offending field (e.g. "body.order"), when known.
	Field string `json:"field,omitempty"`
	// Message is the decoder's explanation, for people.
	Message string `json:"message,omitempty"`
}

// RejectEvent is the [Rejection] of payload, an event envelope received on [ChanEvents]
// that failed to decode with err. It reports false when the envelope does not name a
// sequence to reject: not a JSON object with a positive integer seq, or of another major
// version (not this protocol at all).
func RejectEvent(payload []byte, err error) (Rejection, bool) {
	// Raw first, then v and seq alone: a malformed body or timestamp must not hide the
	// sequence. Keys match as Decode matches them (encoding/json: case-insensitively).
	var raw struct{ V, Seq json.RawMessage }
	var v int
	var seq uint64
	if json.Unmarshal(payload, &raw) != nil ||
		json.Unmarshal(raw.V, &v) != nil || v != Version ||
		json.Unmarshal(raw.Seq, &seq) != nil || seq == 0 {
		return Rejection{}, false
	}
	r := Rejection{Seq: seq, Error: ErrInvalidEvent, Message: err.Error()}
	var fe *FieldError
	if errors.As(err, &fe) {
		r.Field, r.Message = fe.Field, fe.Reason
	}
	return r, true
}

// RejectedEvent takes the place of an undecodable event inside a receiver: the cloud
// applies it at its sequence (recording the rejection) so that the events after it
// go on. It never travels: [Encode] refuses it.
type RejectedEvent struct{ Rejection }

func (RejectedEvent) MessageType() Type { return TypeEvent }

func (RejectedEvent) Validate() error {
	return fieldErr("body", "a rejected event stands for one that did not decode; it is never sent")
}

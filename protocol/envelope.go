package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Version is the protocol version this package speaks, carried in every envelope.
const Version = 1

// Type names the body of an envelope. Each [Channel] carries exactly one type.
type Type string

// The message types of protocol v1.
const (
	TypeStatus     Type = "status"
	TypeBirth      Type = "birth"
	TypeEvent      Type = "event"
	TypeTelemetry  Type = "telemetry"
	TypeCommandAck Type = "command_ack"
	TypeDesiredGet Type = "desired_get"
	TypeDesired    Type = "desired"
	TypeCommand    Type = "command"
	TypeEventAck   Type = "event_ack"
)

// Body is the content of an envelope: one of [Status], [Birth], [Event], [Telemetry],
// [CommandAck], [DesiredGet], [Desired], [Command] or [EventAck].
type Body interface {
	// MessageType is the envelope type that carries this body.
	MessageType() Type
	// Validate reports the first missing or invalid field as a *[FieldError].
	Validate() error
}

// Header is the envelope minus its body: what a sender chooses per message.
type Header struct {
	// ID is unique per message; receivers deduplicate by it. Redeliveries of one message
	// keep its id (the edge's outbox stores encoded envelopes).
	ID string `json:"id"`
	// Seq is monotonic per sender and channel, starting at 1; receivers detect gaps by it.
	// Zero means the channel is not sequenced (status, telemetry).
	Seq uint64 `json:"seq"`
	// Time is when the sender created the message (for events: when it happened).
	Time time.Time `json:"ts"`
}

// Message is a decoded envelope.
type Message struct {
	Header
	Type Type
	Body Body
}

type wireEnvelope struct {
	V    int             `json:"v"`
	ID   string          `json:"id"`
	Seq  uint64          `json:"seq"`
	Time time.Time       `json:"ts"`
	Type Type            `json:"type"`
	Body json.RawMessage `json:"body"`
}

// Encode validates body and returns the JSON envelope carrying it. A zero h.ID gets a
// fresh [NewID]; a zero h.Time gets the current time.
func Encode(h Header, body Body) ([]byte, error) {
	if err := body.Validate(); err != nil {
		return nil, fmt.Errorf("protocol: encode %s: %w", body.MessageType(), err)
	}
	if h.ID == "" {
		h.ID = NewID()
	}
	if h.Time.IsZero() {
		h.Time = time.Now()
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("protocol: encode %s: %w", body.MessageType(), err)
	}
	return json.Marshal(wireEnvelope{V: Version, ID: h.ID, Seq: h.Seq, Time: h.Time.UTC(), Type: body.MessageType(), Body: raw})
}

// ErrVersion is returned for an envelope of another major protocol version.
var ErrVersion = errors.New("protocol: unsupported protocol version")

// Decode parses an envelope and its body. It fails with a *[FieldError] naming the field
// when something the receiver needs is missing or invalid, and with [ErrVersion] for
// another protocol version; unknown fields are ignored.
func Decode(data []byte) (Message, error) {
	var w wireEnvelope
	if err := json.Unmarshal(data, &w); err != nil {
		return Message{}, fmt.Errorf("protocol: decode: %w", jsonErr("", err))
	}
	switch {
	case w.V == 0:
		return Message{}, fieldErr("v", "required")
	case w.V != Version:
		return Message{}, fmt.Errorf("%w %d (want %d)", ErrVersion, w.V, Version)
	case w.ID == "":
		return Message{}, fieldErr("id", "required")
	case len(w.ID) > 64:
		return Message{}, fieldErr("id", "longer than 64 characters")
	case w.Time.IsZero():
		return Message{}, fieldErr("ts", "required")
	case w.Type == "":
		return Message{}, fieldErr("type", "required")
	case len(w.Body) == 0 || string(w.Body) == "null":
		return Message{}, fieldErr("body", "required")
	}
	newBody, ok := bodies[w.Type]
	if !ok {
		return Message{}, fieldErr("type", "unknown message type %q", w.Type)
	}
	body := newBody()
	if err := json.Unmarshal(w.Body, body); err != nil {
		return Message{}, fmt.Errorf("protocol: decode %s: %w", w.Type, jsonErr("body", err))
	}
	if err := body.Validate(); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			return Message{}, &FieldError{Field: "body." + fe.Field, Reason: fe.Reason}
		}
		return Message{}, err
	}
	return Message{Header: Header{ID: w.ID, Seq: w.Seq, Time: w.Time}, Type: w.Type, Body: deref(body)}, nil
}

// DecodeOn decodes a message received on channel c and checks that c carries its type.
func DecodeOn(c Channel, data []byte) (Message, error) {
	m, err := Decode(data)
	if err != nil {
		return Message{}, err
	}
	if want := c.Type(); m.Type != want {
		return Message{}, fieldErr("type", "%q on channel %s, which carries %q", m.Type, c, want)
	}
	return m, nil
}

// Type is the message type that channel c carries.
func (c Channel) Type() Type { return channelTypes[c] }

var channelTypes = map[Channel]Type{
	ChanStatus: TypeStatus, ChanBirth: TypeBirth, ChanEvents: TypeEvent, ChanTelemetry: TypeTelemetry,
	ChanCommandAck: TypeCommandAck, ChanDesiredGet: TypeDesiredGet, ChanDesired: TypeDesired,
	ChanCommands: TypeCommand, ChanEventAck: TypeEventAck,
}

var bodies = map[Type]func() Body{
	TypeStatus:     func() Body { return new(Status) },
	TypeBirth:      func() Body { return new(Birth) },
	TypeEvent:      func() Body { return new(Event) },
	TypeTelemetry:  func() Body { return new(Telemetry) },
	TypeCommandAck: func() Body { return new(CommandAck) },
	TypeDesiredGet: func() Body { return new(DesiredGet) },
	TypeDesired:    func() Body { return new(Desired) },
	TypeCommand:    func() Body { return new(Command) },
	TypeEventAck:   func() Body { return new(EventAck) },
}

// Types lists every message type.
func Types() []Type {
	var ts []Type
	for _, c := range Channels() {
		ts = append(ts, c.Type())
	}
	return ts
}

// deref turns the pointer used for decoding into the value type callers switch on.
func deref(b Body) Body {
	switch v := b.(type) {
	case *Status:
		return *v
	case *Birth:
		return *v
	case *Event:
		return *v
	case *Telemetry:
		return *v
	case *CommandAck:
		return *v
	case *DesiredGet:
		return *v
	case *Desired:
		return *v
	case *Command:
		return *v
	case *EventAck:
		return *v
	}
	panic(fmt.Sprintf("protocol: body type %T not registered", b))
}

// jsonErr turns encoding/json's type errors into a FieldError naming the field.
func jsonErr(prefix string, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		f := te.Field
		if prefix != "" {
			f = prefix + "." + f
		}
		return &FieldError{Field: f, Reason: fmt.Sprintf("want %s, got JSON %s", te.Type, te.Value)}
	}
	return err
}

package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"
)

// Version is the major protocol version this package speaks, carried in every envelope's
// v. A receiver refuses any other major version.
const Version = 1

// Revision is the protocol revision this package speaks, "major.minor". A minor revision
// only adds (fields, event kinds, error codes), so the envelope's v stays the major
// version; an edge announces its revision in its [Birth]. Revision 1.1 added
// [EventAck.Rejected], [Birth.Protocol] and [ErrInvalidEvent]; an edge whose birth has no
// protocol field speaks 1.0.
const Revision = "1.1"

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
	// Seq is the message's place in a sequenced channel: on events the edge's outbox
	// sequence (from 1, no holes), on desired the desired version. Every other channel is
	// not sequenced and carries 0 (see [Channel.Sequenced]).
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
	// The version is read on its own first: another major version may change the shape of
	// any other field, and its receiver must still learn ErrVersion rather than a field
	// error about a field it does not understand.
	var vOnly struct {
		V json.RawMessage `json:"v"`
	}
	if err := json.Unmarshal(data, &vOnly); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return Message{}, fmt.Errorf("protocol: decode: want a JSON object, got JSON %s", te.Value)
		}
		return Message{}, fmt.Errorf("protocol: decode: %w", err)
	}
	if len(vOnly.V) == 0 || string(vOnly.V) == "null" {
		return Message{}, fieldErr("v", "required")
	}
	var v int
	if err := json.Unmarshal(vOnly.V, &v); err != nil {
		return Message{}, fieldErr("v", "want an integer, got %s", vOnly.V)
	}
	if v != Version {
		return Message{}, fmt.Errorf("%w %d (want %d)", ErrVersion, v, Version)
	}
	var w wireEnvelope
	if err := json.Unmarshal(data, &w); err != nil {
		return Message{}, decodeErr("", locate(reflect.TypeFor[wireEnvelope](), data, "", err))
	}
	switch {
	case w.ID == "":
		return Message{}, fieldErr("id", "required")
	case len(w.ID) > 64:
		return Message{}, fieldErr("id", "longer than 64 characters")
	case w.Time.IsZero():
		return Message{}, fieldErr("ts", "required")
	case w.Time.UTC().Year() < 0 || w.Time.UTC().Year() > 9999:
		// Encode writes ts in UTC, where such a time has no RFC 3339 form.
		return Message{}, fieldErr("ts", "outside the years 0 to 9999 in UTC")
	case w.Type == "":
		return Message{}, fieldErr("type", "required")
	case len(w.Body) == 0 || string(w.Body) == "null":
		return Message{}, fieldErr("body", "required")
	case w.Seq == 0 && w.Type == TypeEvent:
		// Events are acknowledged by sequence: one without a sequence could never be.
		return Message{}, fieldErr("seq", "required for events")
	}
	newBody, ok := bodies[w.Type]
	if !ok {
		return Message{}, fieldErr("type", "unknown message type %q", w.Type)
	}
	body := newBody()
	if err := json.Unmarshal(w.Body, body); err != nil {
		return Message{}, decodeErr(w.Type, locate(reflect.TypeOf(body).Elem(), w.Body, "body", err))
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

// decodeErr returns a *FieldError as it is (it says "protocol:" and the field) and wraps
// anything else with the operation.
func decodeErr(typ Type, err error) error {
	var fe *FieldError
	if errors.As(err, &fe) {
		return err
	}
	if typ == "" {
		return fmt.Errorf("protocol: decode: %w", err)
	}
	return fmt.Errorf("protocol: decode %s: %w", typ, err)
}

// locate turns err, the failure of decoding raw (at path) into a t, into a *FieldError
// naming the offending field. encoding/json names the field of a type mismatch but not of
// a failing UnmarshalJSON (a malformed timestamp), so locate decodes raw again field by
// field until it finds the culprit. It returns err unchanged when no field is to blame
// (a syntax error in the whole message).
func locate(t reflect.Type, raw []byte, path string, err error) error {
	field, cause := findBad(t, raw, path)
	if cause == nil {
		field, cause = path, err
	}
	if field == "" {
		return err
	}
	var te *json.UnmarshalTypeError
	if errors.As(cause, &te) {
		return &FieldError{Field: field, Reason: "want " + jsonKind(te.Type) + ", got JSON " + te.Value}
	}
	return &FieldError{Field: field, Reason: cause.Error()}
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// findBad returns the path of the innermost value of raw that does not decode into its
// field of t, and the error decoding it; a nil error when raw decodes.
func findBad(t reflect.Type, raw []byte, path string) (string, error) {
	err := json.Unmarshal(raw, reflect.New(t).Interface())
	if err == nil {
		return "", nil
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return path, err
	}
	switch t.Kind() {
	case reflect.Struct:
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil {
			return path, err
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i := range t.NumField() {
			sf := t.Field(i)
			name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
			if !sf.IsExported() || name == "-" {
				continue
			}
			if name == "" {
				name = sf.Name
			}
			// encoding/json matches keys case-insensitively; so must the search.
			for _, k := range keys {
				if strings.EqualFold(k, name) {
					if f, e := findBad(sf.Type, obj[k], joinPath(path, name)); e != nil {
						return f, e
					}
				}
			}
		}
	case reflect.Slice, reflect.Array:
		var items []json.RawMessage
		if json.Unmarshal(raw, &items) != nil {
			return path, err
		}
		for i, it := range items {
			if f, e := findBad(t.Elem(), it, fmt.Sprintf("%s[%d]", path, i)); e != nil {
				return f, e
			}
		}
	}
	return path, err
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// jsonKind says in JSON terms what a Go type wants.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "a JSON object"
	case reflect.Slice, reflect.Array:
		return "a JSON array"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return t.String()
}

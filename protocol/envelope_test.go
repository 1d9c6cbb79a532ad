package protocol_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/larder-lockers/larder/protocol"
)

func TestEncodeDecodeRoundTrip(t *testing.T) {
	for _, ex := range examples() {
		t.Run(ex.name, func(t *testing.T) {
			raw, err := protocol.Encode(ex.h, ex.body)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			m, err := protocol.Decode(raw)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			want := protocol.Message{Header: ex.h, Type: ex.body.MessageType(), Body: ex.body}
			if diff := cmp.Diff(want, m, equateMsg); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEncodeFillsHeader(t *testing.T) {
	before := time.Now()
	raw, err := protocol.Encode(protocol.Header{}, protocol.Status{Online: true})
	if err != nil {
		t.Fatal(err)
	}
	m, err := protocol.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(m.ID) {
		t.Errorf("id = %q, want a fresh NewID", m.ID)
	}
	if m.Time.Before(before.Add(-time.Second)) || m.Time.After(time.Now().Add(time.Second)) {
		t.Errorf("ts = %v, want about now", m.Time)
	}
	if m.Time.Location() != time.UTC {
		t.Errorf("ts in %v, want UTC on the wire", m.Time.Location())
	}
}

func TestEncodeValidates(t *testing.T) {
	_, err := protocol.Encode(protocol.Header{}, protocol.EventAck{})
	var fe *protocol.FieldError
	if !errors.As(err, &fe) || fe.Field != "seq" {
		t.Errorf("Encode(EventAck{}) = %v, want a FieldError for seq", err)
	}
}

// golden returns the golden file name as a generic JSON tree to mutate.
func golden(t *testing.T, name string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

var segRe = regexp.MustCompile(`^([a-z_]+)((?:\[\d+\])*)$`)

// at walks path ("body.slots[0].compartment") to the container holding its last
// segment, and returns that container and the last key or index.
func at(t *testing.T, root map[string]any, path string) (parent any, key string, idx int) {
	t.Helper()
	var cur any = root
	segs := strings.Split(path, ".")
	for i, seg := range segs {
		m := segRe.FindStringSubmatch(seg)
		if m == nil {
			t.Fatalf("bad path %q", path)
		}
		var steps []any = []any{m[1]}
		for _, ix := range regexp.MustCompile(`\d+`).FindAllString(m[2], -1) {
			n, _ := strconv.Atoi(ix)
			steps = append(steps, n)
		}
		for j, st := range steps {
			last := i == len(segs)-1 && j == len(steps)-1
			switch st := st.(type) {
			case string:
				obj, ok := cur.(map[string]any)
				if !ok {
					t.Fatalf("path %q: %s is not in an object", path, st)
				}
				if last {
					return obj, st, -1
				}
				cur = obj[st]
			case int:
				arr, ok := cur.([]any)
				if !ok || st >= len(arr) {
					t.Fatalf("path %q: no element %d", path, st)
				}
				if last {
					return arr, "", st
				}
				cur = arr[st]
			}
		}
	}
	panic("unreachable")
}

// del removes path from root.
func del(path string) func(*testing.T, map[string]any) {
	return func(t *testing.T, root map[string]any) {
		parent, key, _ := at(t, root, path)
		obj, ok := parent.(map[string]any)
		if !ok {
			t.Fatalf("del %q: not an object member", path)
		}
		if _, ok := obj[key]; !ok {
			t.Fatalf("del %q: the golden has no such field", path)
		}
		delete(obj, key)
	}
}

// set sets path in root to v.
func set(path string, v any) func(*testing.T, map[string]any) {
	return func(t *testing.T, root map[string]any) {
		parent, key, idx := at(t, root, path)
		switch p := parent.(type) {
		case map[string]any:
			p[key] = v
		case []any:
			p[idx] = v
		}
	}
}

type fieldCase struct {
	golden string
	edit   []func(*testing.T, map[string]any)
	field  string // the FieldError's Field
	reason string // a regexp its Reason matches ("" for any)
	// schemaBlind says why asyncapi.yaml's JSON Schema cannot reject this message (it is
	// a rule of the document's prose); empty when the schema must reject it.
	schemaBlind string
}

func fc(golden string, edit []func(*testing.T, map[string]any), field, reason string) fieldCase {
	return fieldCase{golden: golden, edit: edit, field: field, reason: reason}
}

// blind marks a case the JSON Schema cannot express.
func blind(why string, tc fieldCase) fieldCase {
	tc.schemaBlind = why
	return tc
}

// buildCase is the golden of tc with tc's edits applied.
func buildCase(t *testing.T, tc fieldCase) []byte {
	t.Helper()
	root := golden(t, tc.golden)
	for _, e := range tc.edit {
		e(t, root)
	}
	data, err := json.Marshal(root)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func checkFieldCase(t *testing.T, tc fieldCase) {
	t.Helper()
	data := buildCase(t, tc)
	m, err := protocol.Decode(data)
	var fe *protocol.FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("Decode = %+v, %v; want a FieldError for %s\n%s", m, err, tc.field, data)
	}
	if fe.Field != tc.field {
		t.Errorf("FieldError %q, want field %s", err, tc.field)
	}
	if !regexp.MustCompile(tc.reason).MatchString(fe.Reason) {
		t.Errorf("FieldError %q: reason does not match %q", err, tc.reason)
	}
	if !strings.Contains(err.Error(), tc.field) {
		t.Errorf("Error() %q does not name %s", err, tc.field)
	}
}

// TestDecodeFieldErrors removes or spoils each field a receiver needs, in each message,
// and checks the error names exactly that field. The same cases are written to
// testdata/invalid/cases.json (see TestGoldenInvalid) for other implementations.
func TestDecodeFieldErrors(t *testing.T) {
	for _, tc := range fieldCases() {
		t.Run(tc.golden+"/"+tc.field, func(t *testing.T) { checkFieldCase(t, tc) })
	}
}

// fieldCases lists invalid messages: for every message, every field a receiver needs
// (and, for events, every field each kind needs), missing or spoiled.
func fieldCases() []fieldCase {
	e := func(fs ...func(*testing.T, map[string]any)) []func(*testing.T, map[string]any) { return fs }
	hex64 := strings.Repeat("ab", 32)
	cases := []fieldCase{
		// Envelope.
		fc("status", e(del("v")), "v", "required"),
		fc("status", e(set("v", nil)), "v", "required"),
		fc("status", e(set("v", "1")), "v", "integer"),
		fc("status", e(del("id")), "id", "required"),
		fc("status", e(set("id", "")), "id", "required"),
		fc("status", e(set("id", strings.Repeat("a", 65))), "id", "64"),
		fc("status", e(set("id", 7)), "id", "string"),
		fc("status", e(del("ts")), "ts", "required"),
		fc("status", e(set("ts", "2026-05-04 17:30:00")), "ts", "parsing time"),
		fc("status", e(set("ts", 1778000000)), "ts", ""),
		blind("the zero time is a valid date-time", fc("status", e(set("ts", "0001-01-01T00:00:00Z")), "ts", "required")),
		blind("a valid date-time whose UTC year is -1", fc("status", e(set("ts", "0000-01-01T00:30:00+01:00")), "ts", "year")),
		fc("status", e(set("seq", -1)), "seq", "non-negative integer"),
		fc("status", e(set("seq", "1")), "seq", "integer"),
		fc("status", e(del("type")), "type", "required"),
		fc("status", e(set("type", "bogus")), "type", "unknown message type"),
		fc("status", e(del("body")), "body", "required"),
		fc("status", e(set("body", nil)), "body", "required"),
		fc("status", e(set("body", "online")), "body", "object"),
		fc("status", e(set("body", []any{})), "body", "object"),
		// Status.
		fc("status", e(set("body.online", "yes")), "body.online", "boolean"),
		// Birth.
		fc("birth", e(del("body.software")), "body.software", "required"),
		fc("birth", e(del("body.compartments")), "body.compartments", "required"),
		fc("birth", e(set("body.compartments", []any{})), "body.compartments", "required"),
		fc("birth", e(set("body.compartments[2].number", 0)), "body.compartments[2].number", "at least 1"),
		fc("birth", e(set("body.compartments[2].number", "3")), "body.compartments[2].number", "integer"),
		blind("uniqueness of compartment numbers", fc("birth", e(set("body.compartments[3].number", 1)), "body.compartments[3].number", "duplicate")),
		fc("birth", e(del("body.compartments[1].size")), "body.compartments[1].size", "unknown size"),
		fc("birth", e(set("body.compartments[1].size", "XL")), "body.compartments[1].size", "unknown size"),
		fc("birth", e(del("body.compartments[0].zone")), "body.compartments[0].zone", "unknown zone"),
		fc("birth", e(set("body.compartments[0].height_cm", -1)), "body.compartments[0].height_cm", "negative"),
		fc("birth", e(set("body.compartments[0].board", -1)), "body.compartments[0].board", "negative"),
		fc("birth", e(del("body.boards[1].profile")), "body.boards[1].profile", "required"),
		fc("birth", e(set("body.desired_version", -1)), "body.desired_version", "integer"),
		// Telemetry.
		fc("telemetry", e(set("body.zones[1].zone", "warm")), "body.zones[1].zone", "unknown zone"),
		fc("telemetry", e(set("body.zones[0].celsius", "cold")), "body.zones[0].celsius", "number"),
		fc("telemetry", e(set("body.outbox_depth", -1)), "body.outbox_depth", "negative"),
		fc("telemetry", e(set("body.boards", map[string]any{})), "body.boards", "array"),
		// Event: fields of every kind.
		fc("event-door_opened", e(set("seq", 0)), "seq", "required for events"),
		fc("event-door_opened", e(del("body.kind")), "body.kind", "required"),
		fc("event-door_opened", e(del("body.credential")), "body.credential", "required"),
		fc("event-door_opened", e(set("body.credential", "magic")), "body.credential", "unknown credential"),
		fc("event-board_offline", e(set("body.board", -1)), "body.board", "required"),
		fc("event-temperature_excursion", e(set("body.zone", "warm")), "body.zone", "required"),
		// EventAck.
		fc("event_ack", e(del("body.seq")), "body.seq", "required"),
		fc("event_ack", e(set("body.seq", 0)), "body.seq", "required"),
		fc("event_ack-rejected", e(del("body.rejected[0].error")), "body.rejected[0].error", "required"),
		fc("event_ack-rejected", e(set("body.rejected[0].seq", 0)), "body.rejected[0].seq", "required"),
		blind("a rejection beyond the ack's seq", fc("event_ack-rejected", e(set("body.rejected[0].seq", 1225)), "body.rejected[0].seq", "beyond")),
		fc("command-open-ops", e(set("body.id", strings.Repeat("a", 65))), "body.id", "longer than 64"),
		// Command.
		fc("command-resync", e(del("body.id")), "body.id", "required"),
		fc("command-resync", e(del("body.kind")), "body.kind", "required"),
		fc("command-resync", e(set("body.kind", "self_destruct")), "body.kind", "unknown command kind"),
		fc("command-resync", e(del("body.expires_at")), "body.expires_at", "required"),
		fc("command-resync", e(set("body.expires_at", "soon")), "body.expires_at", "parsing time"),
		fc("command-open-ops", e(del("body.compartment")), "body.compartment", "required"),
		fc("command-open-ops", e(del("body.purpose")), "body.purpose", "ops or loading"),
		fc("command-open-ops", e(set("body.purpose", "fun")), "body.purpose", "ops or loading"),
		fc("command-open-ops", e(del("body.reason")), "body.reason", "required"),
		fc("command-open-loading", e(del("body.order")), "body.order", "required"),
		fc("command-open-loading", e(del("body.generation")), "body.generation", "required"),
		fc("command-set_out_of_service", e(del("body.compartment")), "body.compartment", "required"),
		fc("command-set_out_of_service", e(del("body.reason")), "body.reason", "required"),
		fc("command-set_in_service", e(del("body.compartment")), "body.compartment", "required"),
		// CommandAck.
		fc("command_ack-queued", e(del("body.command_id")), "body.command_id", "required"),
		fc("command_ack-queued", e(del("body.state")), "body.state", "unknown state"),
		fc("command_ack-queued", e(set("body.state", "queued")), "body.state", "unknown state"),
		fc("command_ack-failed", e(del("body.error")), "body.error", "required"),
		fc("command_ack-timed_out", e(del("body.error")), "body.error", "required"),
		fc("command_ack-rejected", e(del("body.error")), "body.error", "required"),
		// DesiredGet.
		fc("desired_get", e(set("body.have", "42")), "body.have", "integer"),
		// Desired.
		fc("desired-full", e(del("body.version")), "body.version", "required"),
		fc("desired-full", e(set("body.cancel", []any{"ord-1"})), "body.cancel", "snapshot"),
		fc("desired-full", e(set("body.revoke", []any{"cred-1"})), "body.revoke", "snapshot"),
		fc("desired-full", e(del("body.reservations[1].order")), "body.reservations[1].order", "required"),
		fc("desired-full", e(del("body.reservations[1].slots")), "body.reservations[1].slots", "required"),
		fc("desired-full", e(set("body.reservations[1].slots", []any{})), "body.reservations[1].slots", "required"),
		fc("desired-full", e(del("body.reservations[1].code_digest")), "body.reservations[1].code_digest", "64 hex"),
		fc("desired-full", e(set("body.reservations[1].code_digest", "48291537")), "body.reservations[1].code_digest", "64 hex"),
		fc("desired-full", e(set("body.reservations[1].code_digest", strings.Repeat("g", 64))), "body.reservations[1].code_digest", "64 hex"),
		fc("desired-full", e(del("body.reservations[0].second_factor_digest")), "body.reservations[0].second_factor_digest", "64 hex"),
		fc("desired-full", e(del("body.reservations[0].expires_at")), "body.reservations[0].expires_at", "required"),
		fc("desired-full", e(set("body.reservations[0].expires_at", "2026-05-06")), "body.reservations[0].expires_at", "parsing time"),
		fc("desired-full", e(del("body.reservations[0].zone")), "body.reservations[0].zone", "unknown zone"),
		fc("desired-full", e(set("body.reservations[0].budget_seconds", -1)), "body.reservations[0].budget_seconds", "negative"),
		fc("desired-full", e(set("body.reservations[0].budget_seconds", 1.5)), "body.reservations[0].budget_seconds", "integer"),
		fc("desired-full", e(set("body.reservations[1].slots[1].compartment", 0)), "body.reservations[1].slots[1].compartment", "at least 1"),
		fc("desired-full", e(del("body.reservations[1].slots[1].generation")), "body.reservations[1].slots[1].generation", "required"),
		fc("desired-full", e(set("body.reservations[1].slots[1].generation", "5")), "body.reservations[1].slots[1].generation", "integer"),
		blind("one compartment claimed by two reservations", fc("desired-full", e(set("body.reservations[1].slots[0].compartment", 1)), "body.reservations[1].slots[0].compartment", "also reserved by order ord-1042")),
		fc("desired-full", e(del("body.credentials[0].id")), "body.credentials[0].id", "required"),
		fc("desired-full", e(set("body.credentials[0].digest", hex64[:62])), "body.credentials[0].digest", "64 hex"),
		fc("desired-full", e(del("body.credentials[0].expires_at")), "body.credentials[0].expires_at", "required"),
		fc("desired-delta", e(set("body.cancel", "ord-1038")), "body.cancel", "array"),
	}
	for _, k := range protocol.EventKinds() {
		for _, f := range eventRequires[k] {
			cases = append(cases, fc("event-"+string(k), e(del("body."+f)), "body."+f, "required for "+string(k)))
		}
	}
	return cases
}

// eventRequires is what each event kind requires besides kind and credential, as
// documented on the EventKind constants and in asyncapi.yaml.
var eventRequires = map[protocol.EventKind][]string{
	protocol.EventDoorOpened:       {"compartment"},
	protocol.EventDoorClosed:       {"compartment"},
	protocol.EventLoaded:           {"order", "compartment"},
	protocol.EventPickedUp:         {"order"},
	protocol.EventReassigned:       {"order", "compartment", "to"},
	protocol.EventUncommandedOpen:  {"compartment"},
	protocol.EventDoorLeftOpen:     {"compartment", "seconds"},
	protocol.EventLockJammed:       {"compartment"},
	protocol.EventBoardOffline:     {"board"},
	protocol.EventBoardOnline:      {"board"},
	protocol.EventTempExcursion:    {"zone", "celsius"},
	protocol.EventCodeLockout:      {},
	protocol.EventOrderCompromised: {"order"},
	protocol.EventExpiredRemoved:   {"order"},
	protocol.EventHelpRequested:    {},
	protocol.EventOutage:           {"seconds"},
}

// TestEventKindRequirements removes, from each kind's golden, each field that kind does
// not require: it still decodes. (fieldCases removes the required ones.)
func TestEventKindRequirements(t *testing.T) {
	for _, k := range protocol.EventKinds() {
		req, ok := eventRequires[k]
		if !ok {
			t.Errorf("event kind %s: add its required fields to eventRequires", k)
			continue
		}
		name := "event-" + string(k)
		// Everything else in the golden is optional for this kind.
		body := golden(t, name)["body"].(map[string]any)
		for f := range body {
			if f == "kind" || f == "credential" || contains(req, f) {
				continue
			}
			t.Run(name+"/optional "+f, func(t *testing.T) {
				root := golden(t, name)
				delete(root["body"].(map[string]any), f)
				data, _ := json.Marshal(root)
				if _, err := protocol.Decode(data); err != nil {
					t.Errorf("without optional %s: %v", f, err)
				}
			})
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestUnknownEventKindAccepted: event kinds are append-only, so a v1 receiver must accept
// one it does not know (and store it) rather than block the sender's outbox.
func TestUnknownEventKindAccepted(t *testing.T) {
	root := golden(t, "event-help_requested")
	root["body"].(map[string]any)["kind"] = "lid_ajar"
	data, _ := json.Marshal(root)
	m, err := protocol.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Body.(protocol.Event).Kind; got != "lid_ajar" {
		t.Errorf("kind = %q", got)
	}
	// And an unknown error code in an ack, which receivers treat as internal.
	root = golden(t, "command_ack-failed")
	root["body"].(map[string]any)["error"] = "meteor"
	data, _ = json.Marshal(root)
	if _, err := protocol.Decode(data); err != nil {
		t.Errorf("unknown error code: %v", err)
	}
}

// TestUnknownFieldsIgnored adds fields a newer v1 sender might send, at every level of
// every golden, and checks the message decodes exactly as without them.
func TestUnknownFieldsIgnored(t *testing.T) {
	for _, path := range goldenFiles(t) {
		name := strings.TrimSuffix(filepath.Base(path), ".json")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			want, err := protocol.Decode(data)
			if err != nil {
				t.Fatal(err)
			}
			var root any
			json.Unmarshal(data, &root)
			n := 0
			var sprinkle func(v any)
			sprinkle = func(v any) {
				switch v := v.(type) {
				case map[string]any:
					for _, c := range v {
						sprinkle(c)
					}
					n++
					v[fmt.Sprintf("x_future_%d", n)] = map[string]any{"nested": []any{1, "two", nil}}
				case []any:
					for _, c := range v {
						sprinkle(c)
					}
				}
			}
			sprinkle(root)
			more, _ := json.Marshal(root)
			got, err := protocol.Decode(more)
			if err != nil {
				t.Fatalf("with unknown fields: %v\n%s", err, more)
			}
			if diff := cmp.Diff(want, got, equateMsg); diff != "" {
				t.Errorf("unknown fields changed the message (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeVersion(t *testing.T) {
	for _, tc := range []struct {
		name string
		data string
	}{
		{"v2", `{"v":2,"id":"a","ts":"2026-05-04T17:30:00Z","type":"status","body":{}}`},
		// A v2 envelope may reshape every other field; it is still ErrVersion.
		{"v2 reshaped", `{"v":2,"id":{"uuid":"a"},"ts":1778000000,"type":["status"],"body":"x"}`},
		{"v0 explicit negative", `{"v":-1,"id":"a","ts":"2026-05-04T17:30:00Z","type":"status","body":{}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := protocol.Decode([]byte(tc.data)); !errors.Is(err, protocol.ErrVersion) {
				t.Errorf("Decode = %v, want ErrVersion", err)
			}
		})
	}
}

func TestDecodeNotJSON(t *testing.T) {
	for _, data := range []string{``, `{`, `nope`, `[]`, `"v"`, `{"v":1,}`, "\x00"} {
		if _, err := protocol.Decode([]byte(data)); err == nil {
			t.Errorf("Decode(%q) succeeded", data)
		}
	}
}

// TestDecodeOnMismatch decodes every golden on every channel: only its own is accepted.
func TestDecodeOnMismatch(t *testing.T) {
	for _, ex := range examples() {
		raw, err := protocol.Encode(ex.h, ex.body)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range protocol.Channels() {
			_, err := protocol.DecodeOn(c, raw)
			if c.Type() == ex.body.MessageType() {
				if err != nil {
					t.Errorf("%s on %v: %v", ex.name, c, err)
				}
				continue
			}
			var fe *protocol.FieldError
			if !errors.As(err, &fe) || fe.Field != "type" || !strings.Contains(fe.Reason, c.String()) {
				t.Errorf("%s on %v: %v, want a FieldError for type naming the channel", ex.name, c, err)
			}
		}
	}
	// A broken message on its own channel reports the broken field, not the channel.
	_, err := protocol.DecodeOn(protocol.ChanEventAck, []byte(`{"v":1,"id":"a","ts":"2026-05-04T17:30:00Z","type":"event_ack","body":{}}`))
	var fe *protocol.FieldError
	if !errors.As(err, &fe) || fe.Field != "body.seq" {
		t.Errorf("DecodeOn(event_ack without seq) = %v, want body.seq", err)
	}
}

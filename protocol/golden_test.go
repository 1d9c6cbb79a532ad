package protocol_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/larder-lockers/larder/protocol"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ from the Go examples")

// equateMsg compares decoded messages: times by instant, nil and empty slices alike
// (an empty list is omitted on the wire).
var equateMsg = cmp.Options{cmpopts.EquateEmpty()}

// goldenBytes is the golden form of a message: the envelope pretty-printed, with a newline.
func goldenBytes(t testing.TB, h protocol.Header, body protocol.Body) []byte {
	t.Helper()
	raw, err := protocol.Encode(h, body)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		t.Fatalf("Indent: %v", err)
	}
	buf.WriteByte('\n')
	return buf.Bytes()
}

// channelOf is the channel carrying type typ.
func channelOf(t testing.TB, typ protocol.Type) protocol.Channel {
	t.Helper()
	for _, c := range protocol.Channels() {
		if c.Type() == typ {
			return c
		}
	}
	t.Fatalf("no channel carries type %q", typ)
	return 0
}

// TestGolden checks every Go example against its file in testdata (go test ./protocol
// -run TestGolden -update rewrites them) and that the file decodes back to the example.
func TestGolden(t *testing.T) {
	seen := map[string]bool{}
	for _, ex := range examples() {
		t.Run(ex.name, func(t *testing.T) {
			if seen[ex.name] {
				t.Fatalf("two examples named %s", ex.name)
			}
			seen[ex.name] = true
			if typ, _, _ := strings.Cut(ex.name, "-"); protocol.Type(typ) != ex.body.MessageType() {
				t.Fatalf("example %s carries a %s: its name must start with the type", ex.name, ex.body.MessageType())
			}
			want := goldenBytes(t, ex.h, ex.body)
			path := filepath.Join("testdata", ex.name+".json")
			if *update {
				if err := os.WriteFile(path, want, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./protocol -run TestGolden -update)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s differs from the Go example (-example +file); if the change is intended, run go test ./protocol -run TestGolden -update:\n%s", path, diff)
			}
			m, err := protocol.DecodeOn(channelOf(t, ex.body.MessageType()), got)
			if err != nil {
				t.Fatalf("DecodeOn(%s): %v", path, err)
			}
			if diff := cmp.Diff(ex.h, m.Header, equateMsg); diff != "" {
				t.Errorf("header (-example +decoded):\n%s", diff)
			}
			if diff := cmp.Diff(ex.body, m.Body, equateMsg); diff != "" {
				t.Errorf("body (-example +decoded):\n%s", diff)
			}
		})
	}
}

// goldenFiles lists every golden file ever committed.
func goldenFiles(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no golden files in testdata")
	}
	return files
}

// TestEveryGoldenDecodes decodes every file in testdata, including those whose Go example
// has since been renamed or removed: a message a v1 sender once sent stays decodable.
func TestEveryGoldenDecodes(t *testing.T) {
	for _, path := range goldenFiles(t) {
		name := strings.TrimSuffix(filepath.Base(path), ".json")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			typ, _, _ := strings.Cut(name, "-")
			m, err := protocol.DecodeOn(channelOf(t, protocol.Type(typ)), data)
			if err != nil {
				t.Fatalf("DecodeOn: %v", err)
			}
			// The decoded message survives a round trip unchanged.
			again, err := protocol.Encode(m.Header, m.Body)
			if err != nil {
				t.Fatalf("re-Encode: %v", err)
			}
			m2, err := protocol.Decode(again)
			if err != nil {
				t.Fatalf("Decode of re-encoded: %v", err)
			}
			if diff := cmp.Diff(m, m2, equateMsg); diff != "" {
				t.Errorf("round trip (-golden +re-encoded):\n%s", diff)
			}
		})
	}
}

// TestGoldenCoverage requires a golden file for every message type, event kind, command
// kind and command state, so that adding one to the code forces an example.
func TestGoldenCoverage(t *testing.T) {
	have := map[string]bool{}
	for _, path := range goldenFiles(t) {
		have[strings.TrimSuffix(filepath.Base(path), ".json")] = true
	}
	var want []string
	for _, typ := range protocol.Types() {
		switch typ {
		case protocol.TypeEvent, protocol.TypeCommandAck, protocol.TypeCommand, protocol.TypeDesired:
		default:
			want = append(want, string(typ))
		}
	}
	for _, k := range protocol.EventKinds() {
		want = append(want, "event-"+string(k))
	}
	for _, s := range commandStates {
		want = append(want, "command_ack-"+strings.ToLower(string(s)))
	}
	want = append(want, "command-open-ops", "command-open-loading", "desired-full", "desired-delta")
	for _, k := range commandKinds {
		if k != protocol.CmdOpen {
			want = append(want, "command-"+string(k))
		}
	}
	for _, name := range want {
		if !have[name] {
			t.Errorf("no golden file testdata/%s.json: add an example to examples_test.go and run go test ./protocol -run TestGolden -update", name)
		}
	}
}

// The kinds and states the package has constants for but no list function.
var (
	commandKinds  = []protocol.CommandKind{protocol.CmdOpen, protocol.CmdOutOfService, protocol.CmdInService, protocol.CmdResync}
	commandStates = []protocol.CommandState{protocol.StateQueued, protocol.StateInProgress, protocol.StateSucceeded,
		protocol.StateFailed, protocol.StateTimedOut, protocol.StateRejected}
	credentialKinds = []protocol.CredentialKind{protocol.CredNone, protocol.CredPickup, protocol.CredDriver,
		protocol.CredOpsRemote, protocol.CredOpsLocal, protocol.CredSystem}
	sizes    = []protocol.Size{protocol.SizeS, protocol.SizeM, protocol.SizeL}
	purposes = []protocol.Purpose{protocol.PurposeOps, protocol.PurposeLoading}
)

// invalidCase is one entry of testdata/invalid/cases.json: a message every v1 receiver
// must reject, and the field the Go reference names.
type invalidCase struct {
	Name string `json:"name"`
	// Type is the type of the channel it arrives on (its own type field may be spoiled).
	Type  protocol.Type `json:"type"`
	Field string        `json:"field"`
	// SchemaBlind says why asyncapi.yaml's JSON Schema accepts it although the document's
	// prose forbids it; tools/asyncapi checks that the schema rejects every other case.
	SchemaBlind string          `json:"schema_blind,omitempty"`
	Message     json.RawMessage `json:"message"`
}

// TestGoldenInvalid writes the invalid messages of fieldCases to
// testdata/invalid/cases.json (with -update; otherwise it compares), and checks that
// every case in the committed file is rejected naming its field.
func TestGoldenInvalid(t *testing.T) {
	path := filepath.Join("testdata", "invalid", "cases.json")
	var cases []invalidCase
	n := map[string]int{}
	for _, tc := range fieldCases() {
		name := tc.golden + ": " + tc.field
		n[name]++
		if n[name] > 1 {
			name = fmt.Sprintf("%s (%d)", name, n[name])
		}
		typ, _, _ := strings.Cut(tc.golden, "-")
		cases = append(cases, invalidCase{Name: name, Type: protocol.Type(typ), Field: tc.field,
			SchemaBlind: tc.schemaBlind, Message: buildCase(t, tc)})
	}
	want, err := json.MarshalIndent(cases, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./protocol -run TestGolden -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is not what fieldCases gives; if intended, run go test ./protocol -run TestGolden -update", path)
	}
	var committed []invalidCase
	if err := json.Unmarshal(got, &committed); err != nil {
		t.Fatal(err)
	}
	for _, c := range committed {
		_, err := protocol.DecodeOn(channelOf(t, c.Type), c.Message)
		var fe *protocol.FieldError
		if !errors.As(err, &fe) || fe.Field != c.Field {
			t.Errorf("%s: DecodeOn = %v, want a FieldError for %s", c.Name, err, c.Field)
		}
	}
}

package protocol_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/larder-lockers/larder/protocol"
)

// yamlDoc is what a small line scanner sees of asyncapi.yaml: the scalar values found at
// each dotted path of mapping keys, in document order. List items add their values (or
// their mapping's keys) under the list's own path, without an index. It understands the
// subset of YAML the document is written in: two-space block mappings and lists, block
// scalars (| and >, whose text becomes the value), single-line flow lists and JSON payloads. The protocol package's
// tests stay standard-library only, hence no YAML library.
type yamlDoc struct {
	values map[string][]string
	lines  map[string][]int
	raw    string
}

var yamlKeyRe = regexp.MustCompile(`^([^\s:'"]+|'[^']*'|"[^"]*"):(?:\s+(.*))?$`)

func scanYAML(path string) (*yamlDoc, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	doc := &yamlDoc{values: map[string][]string{}, lines: map[string][]int{}, raw: string(data)}
	type frame struct {
		indent int
		key    string
	}
	var stack []frame
	blockIndent := -1 // inside a block scalar of a key at this indent
	var blockPath string
	var block []string
	record := func(p, v string, line int) {
		doc.values[p] = append(doc.values[p], unquote(v))
		doc.lines[p] = append(doc.lines[p], line)
	}
	pathOf := func(key string) string {
		var ks []string
		for _, f := range stack {
			ks = append(ks, f.key)
		}
		if key != "" {
			ks = append(ks, key)
		}
		return strings.Join(ks, ".")
	}
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		trimmed := strings.TrimLeft(line, " ")
		indent := len(line) - len(trimmed)
		if blockIndent >= 0 {
			if trimmed == "" || indent > blockIndent {
				block = append(block, trimmed)
				continue
			}
			record(blockPath, strings.Join(block, "\n"), n)
			blockIndent = -1
		}
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if strings.HasPrefix(trimmed, "\t") {
			return nil, fmt.Errorf("%s:%d: tab indentation", path, n)
		}
		item := false
		if rest, ok := strings.CutPrefix(trimmed, "- "); ok {
			item = true
			trimmed = rest
			indent += 2
		}
		for len(stack) > 0 && stack[len(stack)-1].indent >= indent {
			stack = stack[:len(stack)-1]
		}
		m := yamlKeyRe.FindStringSubmatch(trimmed)
		if m == nil {
			if !item {
				return nil, fmt.Errorf("%s:%d: the scanner does not understand %q", path, n, line)
			}
			record(pathOf(""), trimmed, n)
			continue
		}
		key, value := unquote(m[1]), m[2]
		p := pathOf(key)
		stack = append(stack, frame{indent, key})
		switch {
		case value == "":
		case strings.HasPrefix(value, "|") || strings.HasPrefix(value, ">"):
			// The block's text (lines unindented) becomes the key's value.
			blockIndent, blockPath, block = indent, p, nil
		case strings.HasPrefix(value, "[") && strings.HasSuffix(value, "]"):
			for _, v := range strings.Split(strings.Trim(value, "[]"), ",") {
				record(p, strings.TrimSpace(v), n)
			}
		default:
			record(p, value, n)
		}
	}
	if blockIndent >= 0 {
		record(blockPath, strings.Join(block, "\n"), 0)
	}
	return doc, nil
}

func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '\'' && s[len(s)-1] == '\'' || s[0] == '"' && s[len(s)-1] == '"') {
		return strings.ReplaceAll(s[1:len(s)-1], "''", "'")
	}
	return s
}

// matching returns the values at paths matching re, keyed by the first submatch.
func (d *yamlDoc) matching(re string) map[string][]string {
	rx := regexp.MustCompile("^" + re + "$")
	out := map[string][]string{}
	for p, vs := range d.values {
		if m := rx.FindStringSubmatch(p); m != nil {
			out[m[1]] = append(out[m[1]], vs...)
		}
	}
	return out
}

func (d *yamlDoc) one(errorf func(string, ...any), p string) string {
	vs := d.values[p]
	if len(vs) != 1 {
		errorf("asyncapi.yaml: %s has %d values %q, want one", p, len(vs), vs)
		return ""
	}
	return vs[0]
}

// sameSet reports names in one list and not the other, in both directions.
func sameSet(errorf func(string, ...any), what string, code, doc []string) {
	for _, c := range code {
		if !slices.Contains(doc, c) {
			errorf("%s %q is in the code but not in asyncapi.yaml", what, c)
		}
	}
	for _, d := range doc {
		if !slices.Contains(code, d) {
			errorf("%s %q is in asyncapi.yaml but not in the code", what, d)
		}
	}
}

func strs[T ~string](xs []T) []string {
	var out []string
	for _, x := range xs {
		out = append(out, string(x))
	}
	return out
}

// TestAsyncAPIMatchesCode fails when a channel, message type or enumerated value of the
// code is missing from asyncapi.yaml or the other way round, when a channel's direction,
// QoS, retain flag or message type differ, or when an example in the document is not
// exactly a golden file.
func TestAsyncAPIMatchesCode(t *testing.T) {
	for _, p := range asyncAPIProblems("asyncapi.yaml") {
		t.Error(p)
	}
}

// asyncAPIProblems lists every disagreement between the document at path and the code.
func asyncAPIProblems(path string) []string {
	var problems []string
	errorf := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	doc, err := scanYAML(path)
	if err != nil {
		return []string{err.Error()}
	}
	if got := doc.one(errorf, "asyncapi"); got != "3.0.0" {
		errorf("asyncapi: %q, want 3.0.0", got)
	}

	// Channels, by address.
	addrOf := map[string]string{} // channel key → address
	for k, vs := range doc.matching(`channels\.([^.]+)\.address`) {
		addrOf[k] = vs[0]
	}
	keyOf := map[string]string{}
	for k, a := range addrOf {
		keyOf[a] = k
	}
	var codeAddrs []string
	for _, c := range protocol.Channels() {
		codeAddrs = append(codeAddrs, "larder/v1/{site}/"+c.Suffix())
	}
	sameSet(errorf, "channel address", codeAddrs, slices.Collect(mapKeys(keyOf)))

	// Messages, by name = envelope type.
	names := doc.matching(`components\.messages\.([^.]+)\.name`)
	var docTypes []string
	for k, vs := range names {
		if vs[0] != k {
			errorf("components.messages.%s is named %q: name each message by its type", k, vs[0])
		}
		docTypes = append(docTypes, vs[0])
		if got := doc.values["components.messages."+k+".payload.allOf.properties.type.const"]; len(got) != 1 || got[0] != k {
			errorf("message %s: its payload's type is const %q, want %q", k, got, k)
		}
	}
	sameSet(errorf, "message type", strs(protocol.Types()), docTypes)

	// Each channel: its message, its one operation, direction, QoS, retain, parameter.
	ops := doc.matching(`operations\.([^.]+)\.channel\.\$ref`)
	for _, c := range protocol.Channels() {
		key, ok := keyOf["larder/v1/{site}/"+c.Suffix()]
		if !ok {
			continue // reported above
		}
		refs := doc.values["channels."+key+".messages."+string(c.Type())+".$ref"]
		if len(refs) != 1 || refs[0] != "#/components/messages/"+string(c.Type()) {
			errorf("channel %s: messages.%s.$ref = %q, want the %s message alone", key, c.Type(), refs, c.Type())
		}
		if msgs := doc.matching(`channels\.` + regexp.QuoteMeta(key) + `\.messages\.([^.]+)\.\$ref`); len(msgs) != 1 {
			errorf("channel %s carries %d messages, want 1", key, len(msgs))
		}
		if got := doc.values["channels."+key+".parameters.site.$ref"]; len(got) != 1 || got[0] != "#/components/parameters/site" {
			errorf("channel %s: no site parameter", key)
		}
		var opsOf []string
		for op, vs := range ops {
			if slices.Contains(vs, "#/channels/"+key) {
				opsOf = append(opsOf, op)
			}
		}
		if len(opsOf) != 1 {
			errorf("channel %s has operations %q, want exactly one", key, opsOf)
			continue
		}
		op := "operations." + opsOf[0]
		want := map[string]string{
			".action":               map[bool]string{true: "send", false: "receive"}[c.FromEdge()],
			".bindings.mqtt.qos":    fmt.Sprint(c.QoS()),
			".bindings.mqtt.retain": fmt.Sprint(c.Retained()),
			".messages.$ref":        "#/channels/" + key + "/messages/" + string(c.Type()),
		}
		for suffix, w := range want {
			if got := doc.one(errorf, op+suffix); got != w {
				errorf("%s%s = %q, want %q (channel %v)", op, suffix, got, w, c)
			}
		}
	}
	if len(ops) != len(protocol.Channels()) {
		errorf("asyncapi.yaml has %d operations, the code %d channels", len(ops), len(protocol.Channels()))
	}

	// Enumerations, in the code's order (append-only lists stay in order in both).
	for schema, code := range map[string][]string{
		"MessageType":    strs(protocol.Types()),
		"EventKind":      strs(protocol.EventKinds()),
		"ErrorCode":      strs(protocol.ErrorCodes()),
		"CommandKind":    strs(commandKinds),
		"CommandState":   strs(commandStates),
		"CredentialKind": strs(credentialKinds),
		"Zone":           strs(protocol.Zones()),
		"Size":           strs(sizes),
		"Purpose":        strs(purposes),
	} {
		got := doc.values["components.schemas."+schema+".enum"]
		sameSet(errorf, schema, code, got)
		if !slices.Equal(code, got) {
			errorf("components.schemas.%s.enum = %q, want the code's order %q", schema, got, code)
		}
	}

	// Event kinds' required fields, as the document's if/then rules state them.
	for k, req := range eventRequires {
		if len(req) > 0 && !strings.Contains(doc.raw, "required: ["+strings.Join(req, ", ")+"]") {
			errorf("asyncapi.yaml has no rule requiring [%s] (event %s)", strings.Join(req, ", "), k)
		}
	}

	// Examples: each is a golden file verbatim, and every golden is an example.
	exNames := doc.matching(`components\.messages\.([^.]+)\.examples\.name`)
	exPayloads := doc.matching(`components\.messages\.([^.]+)\.examples\.payload`)
	seen := map[string]bool{}
	for msg, ns := range exNames {
		ps := exPayloads[msg]
		if len(ps) != len(ns) {
			errorf("message %s: %d example names, %d payloads", msg, len(ns), len(ps))
			continue
		}
		for i, name := range ns {
			seen[name] = true
			golden, err := os.ReadFile(filepath.Join("testdata", name+".json"))
			if err != nil {
				errorf("message %s: example %s is not a golden file: %v", msg, name, err)
				continue
			}
			var compact bytes.Buffer
			json.Compact(&compact, golden)
			if diff := cmp.Diff(compact.String(), ps[i]); diff != "" {
				errorf("message %s: example %s differs from testdata/%s.json (set its payload to `jq -c . testdata/%s.json`):\n%s", msg, name, name, name, diff)
			}
			if typ, _, _ := strings.Cut(name, "-"); typ != msg {
				errorf("example %s is under message %s", name, msg)
			}
		}
	}
	goldens, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, g := range goldens {
		name := strings.TrimSuffix(filepath.Base(g), ".json")
		if !seen[name] {
			errorf("testdata/%s.json is not an example in asyncapi.yaml (add it under its message: name: %s, payload: `jq -c . %s`)", name, name, g)
		}
	}

	// The digest construction is published with its known answers and example key.
	description := doc.one(errorf, "info.description")
	for _, s := range []string{
		string(exampleSiteKey),
		protocol.CodeDigest(exampleSiteKey, exampleCode),
		protocol.SecondFactorDigest(exampleSiteKey, exampleOrder, exampleSecondFactor),
		protocol.CredentialDigest(exampleSiteKey, exampleCredential),
		protocol.CredentialDigest(exampleSiteKey, exampleCode),
		"larder/v1/code", "larder/v1/second-factor", "larder/v1/credential",
		// The known answers with a key in the provisioned format, and their file.
		vectorSiteKey, filepath.ToSlash(filepath.Join("protocol", digestVectorsPath)),
		"used as the 32 bytes they decode to",
	} {
		if !strings.Contains(description, s) {
			errorf("asyncapi.yaml's info.description does not mention %q (digest construction and known answers)", s)
		}
	}
	vectors := computeDigestVectors()
	for _, c := range vectors.Cases {
		if !strings.Contains(description, c.Digest) {
			errorf("asyncapi.yaml's info.description does not give the known answer %s of %s", c.Digest, c.Kind)
		}
	}
	// The client-id rule, where a vendor reads first: the description and the servers'
	// security scheme.
	clientID := protocol.EdgeClientID("{site}")
	for _, p := range []string{"info.description", "components.securitySchemes.edgeLogin.description"} {
		if !strings.Contains(doc.one(errorf, p), clientID) {
			errorf("asyncapi.yaml's %s does not state the client id rule %q", p, clientID)
		}
	}
	slices.Sort(problems)
	return problems
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestAsyncAPIDriftIsCaught proves TestAsyncAPIMatchesCode can fail: each edit of the
// real document below must produce a problem that names what drifted.
func TestAsyncAPIDriftIsCaught(t *testing.T) {
	data, err := os.ReadFile("asyncapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, old, new, want string
	}{
		{"channel renamed", "address: 'larder/v1/{site}/events/ack'", "address: 'larder/v1/{site}/events/acks'", "larder/v1/{site}/events/ack"},
		{"error code dropped", "        - stale_generation\n", "", "stale_generation"},
		{"event kind added", "        - help_requested\n", "        - help_requested\n        - lid_ajar\n", "lid_ajar"},
		{"command state reordered", "        - FAILED\n        - TIMED_OUT\n", "        - TIMED_OUT\n        - FAILED\n", "CommandState"},
		{"message renamed", "      name: desired_get\n", "      name: desired_request\n", "desired_get"},
		{"qos changed", "    summary: Report health periodically.\n    messages:\n      - $ref: '#/channels/telemetry/messages/telemetry'\n    bindings:\n      mqtt:\n        qos: 0",
			"    summary: Report health periodically.\n    messages:\n      - $ref: '#/channels/telemetry/messages/telemetry'\n    bindings:\n      mqtt:\n        qos: 1", "qos"},
		{"direction flipped", "  receiveEventAck:\n    action: receive", "  receiveEventAck:\n    action: send", "action"},
		{"example edited", `"body":{"seq":1222}`, `"body":{"seq":1221}`, "event_ack"},
		{"known answer lost", "ed4aff8682e9ed16e10e6b0cdc3da5c29b411f3c97676bfa8d2490723cead5af", "0000", "ed4aff86"},
		{"provisioned-key answer lost", "39ec1b24bd6fad1b3a216189a69846702ea3126038da13248a386ecda1effe8d", "0000", "39ec1b24"},
		{"key encoding unsaid", "used as the 32 bytes they decode to", "used as it is", "decode to"},
		{"client id rule lost", "client id must be\n    `larder-edge-{site}`", "client id may be\n    anything", "client id rule"},
		{"client id rule lost from the security scheme", "client id\n        `mqtt_client_id`, which is always `larder-edge-{site}`", "client id\n        `mqtt_client_id`", "securitySchemes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(string(data), tc.old) {
				t.Fatalf("asyncapi.yaml no longer contains %q: update this test", tc.old)
			}
			bad := strings.Replace(string(data), tc.old, tc.new, 1)
			// The copy sits in a temporary directory, but examples are compared with the
			// goldens of this package: run from here and name the copy by absolute path.
			p := filepath.Join(t.TempDir(), "asyncapi.yaml")
			if err := os.WriteFile(p, []byte(bad), 0o644); err != nil {
				t.Fatal(err)
			}
			problems := asyncAPIProblems(p)
			if len(problems) == 0 {
				t.Fatal("no problem found")
			}
			if !strings.Contains(strings.Join(problems, "\n"), tc.want) {
				t.Errorf("no problem mentions %q:\n%s", tc.want, strings.Join(problems, "\n"))
			}
		})
	}
}

// clauses are the rule ids asyncapi.yaml must define (a bullet "- **[id]** …"): the
// conformance kit and the tests of both implementations name them.
var clauses = []string{
	"seq.events", "seq.desired", "seq.unsequenced",
	"version.major", "version.revision", "compat.edge-1.0", "compat.cloud-1.0",
	"access.edge", "access.refused", "access.edge-publishes",
	"session.edge", "session.cloud", "connect.sequence", "connect.snapshot",
	"ack.cumulative", "ack.reject", "ack.retry", "ack.resume", "ack.reject-repeat", "edge.set-aside",
	"order.before-birth", "command.dedup", "command.offline", "alarm.table",
}

var (
	clauseDef = regexp.MustCompile(`(?m)^\s*- \*\*\[([a-z0-9.-]+)\]\*\*`)
	clauseRef = regexp.MustCompile(`\*\*\[([a-z0-9.-]+)\]\*\*`)
	// accessRow is a row of the [access.edge] table: channel, own edge, other edge, cloud.
	accessRow = regexp.MustCompile("(?m)^\\s*\\| `([a-z/]+)` \\| (publish|subscribe) \\| (—) \\| (publish|subscribe) \\|$")
)

// TestAsyncAPIRules checks the clauses of asyncapi.yaml against the code: every clause
// the implementations name is defined once and every reference is to a defined one; the
// access table gives each channel exactly the direction the code does; the revision is
// the code's; and every golden carries the envelope seq its channel's rule says.
func TestAsyncAPIRules(t *testing.T) {
	doc, err := scanYAML("asyncapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	desc := doc.one(t.Errorf, "info.description")
	defined := map[string]int{}
	for _, m := range clauseDef.FindAllStringSubmatch(desc, -1) {
		defined[m[1]]++
	}
	for id, n := range defined {
		if n != 1 {
			t.Errorf("clause [%s] is defined %d times", id, n)
		}
	}
	for _, id := range clauses {
		if defined[id] == 0 {
			t.Errorf("clause [%s] is not defined in asyncapi.yaml", id)
		}
	}
	for _, m := range clauseRef.FindAllStringSubmatch(desc, -1) {
		if defined[m[1]] == 0 {
			t.Errorf("asyncapi.yaml refers to clause [%s], which it does not define", m[1])
		}
	}

	// The operators' page cites clauses by id too.
	sync, err := os.ReadFile("../docs/sync.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`\[([a-z]+\.[a-z0-9.-]+)\]`).FindAllStringSubmatch(string(sync), -1) {
		if defined[m[1]] == 0 {
			t.Errorf("docs/sync.md cites clause [%s], which asyncapi.yaml does not define", m[1])
		}
	}

	rows := map[string][]string{}
	for _, m := range accessRow.FindAllStringSubmatch(desc, -1) {
		rows[m[1]] = m[2:]
	}
	for _, c := range protocol.Channels() {
		edge, cloud := "subscribe", "publish"
		if c.FromEdge() {
			edge, cloud = "publish", "subscribe"
		}
		if got, want := rows[c.Suffix()], []string{edge, "—", cloud}; !slices.Equal(got, want) {
			t.Errorf("[access.edge] row of %s: %q, want %q", c, got, want)
		}
	}
	if len(rows) != len(protocol.Channels()) {
		t.Errorf("[access.edge] has %d rows, the code %d channels", len(rows), len(protocol.Channels()))
	}

	if got, want := doc.one(t.Errorf, "info.version"), protocol.Revision+".0"; got != want {
		t.Errorf("info.version %q, want %q (protocol.Revision)", got, want)
	}
	if !strings.Contains(desc, "revision "+protocol.Revision) {
		t.Errorf("info.description does not say it is revision %s", protocol.Revision)
	}

	for _, g := range goldenFiles(t) {
		raw, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		m, err := protocol.Decode(raw)
		if err != nil {
			t.Fatalf("%s: %v", g, err)
		}
		ch := channelOf(t, m.Type)
		switch {
		case ch == protocol.ChanDesired && m.Seq != m.Body.(protocol.Desired).Version:
			t.Errorf("%s: seq %d, want the version %d [seq.desired]", g, m.Seq, m.Body.(protocol.Desired).Version)
		case ch == protocol.ChanEvents && m.Seq == 0:
			t.Errorf("%s: an event without seq [seq.events]", g)
		case !ch.Sequenced() && m.Seq != 0:
			t.Errorf("%s: seq %d on %s, which is not sequenced [seq.unsequenced]", g, m.Seq, ch)
		case ch == protocol.ChanCommands && m.ID != m.Body.(protocol.Command).ID:
			t.Errorf("%s: envelope id %s, command id %s [command.dedup]", g, m.ID, m.Body.(protocol.Command).ID)
		}
	}
}

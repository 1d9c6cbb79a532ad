package protocol_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/larder-lockers/larder/protocol"
)

// FuzzDecode feeds Decode and DecodeOn arbitrary bytes, seeded from every golden file. It
// must never panic, and a message it accepts must survive Encode and Decode unchanged
// (so a receiver that stores and forwards what it decoded never corrupts it).
func FuzzDecode(f *testing.F) {
	for _, path := range goldenFiles(f) {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	// And every invalid case: each sits one edit away from a valid message.
	if data, err := os.ReadFile(filepath.Join("testdata", "invalid", "cases.json")); err == nil {
		var cases []invalidCase
		if err := json.Unmarshal(data, &cases); err != nil {
			f.Fatal(err)
		}
		for _, c := range cases {
			f.Add([]byte(c.Message))
		}
	}
	for _, s := range []string{
		``, `{}`, `null`, `[]`, `{"v":1}`, `{"v":2}`, `{"v":"1"}`,
		`{"v":1,"id":"a","ts":"2026-05-04T17:30:00Z","type":"status","body":{}}`,
		`{"v":1,"id":"a","ts":"0000-01-01T00:30:00+01:00","type":"status","body":{}}`,
		`{"v":1,"id":"a","ts":"9999-12-31T23:30:00-01:00","type":"status","body":{}}`,
		`{"V":1,"ID":"a","TS":"2026-05-04T17:30:00Z","Type":"event_ack","Body":{"SEQ":1}}`,
		`{"v":1,"id":"a","ts":"2026-05-04T17:30:00Z","type":"desired","body":{"version":1,"reservations":[]}}`,
		`{"v":1,"id":"a","ts":"2026-05-04T17:30:00Z","type":"event","body":{"kind":"board_online","credential":"none","board":-0,"seconds":-0}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := protocol.Decode(data)
		for _, c := range protocol.Channels() {
			mc, errc := protocol.DecodeOn(c, data)
			if (errc == nil) != (err == nil && m.Type == c.Type()) {
				t.Fatalf("DecodeOn(%v) = %v, Decode = %v (type %q)", c, errc, err, m.Type)
			}
			if errc == nil && !cmp.Equal(m, mc, equateMsg) {
				t.Fatalf("DecodeOn(%v) and Decode differ", c)
			}
		}
		if err != nil {
			// What a receiver does with an undecodable event: reject it by its seq, or not.
			if r, ok := protocol.RejectEvent(data, err); ok && (r.Seq == 0 || r.Error != protocol.ErrInvalidEvent) {
				t.Fatalf("RejectEvent = %+v", r)
			}
			return
		}
		if m.Body.MessageType() != m.Type {
			t.Fatalf("type %q carries a %T", m.Type, m.Body)
		}
		again, err := protocol.Encode(m.Header, m.Body)
		if err != nil {
			t.Fatalf("Decode accepted what Encode refuses: %v\ninput: %q", err, data)
		}
		m2, err := protocol.Decode(again)
		if err != nil {
			t.Fatalf("re-encoded message does not decode: %v\n%s", err, again)
		}
		if diff := cmp.Diff(m, m2, equateMsg); diff != "" {
			t.Fatalf("round trip changed the message (-first +second):\n%s", diff)
		}
	})
}

// FuzzParseTopic: ParseTopic never panics, and whatever it accepts is exactly the topic
// Topic builds from the result (one spelling per topic; no wildcard ever gets through).
// Goldens hold payloads, not topics, so the seeds are every channel's topic and filter.
func FuzzParseTopic(f *testing.F) {
	for _, site := range []string{"a", "courtyard-17", "bank_03"} {
		for _, c := range protocol.Channels() {
			f.Add(protocol.Topic(site, c))
			f.Add(protocol.AllSites(c))
		}
		f.Add(protocol.SiteFilter(site))
	}
	for _, s := range []string{"", "larder/v1", "larder/v1/+/status", "larder/v1/a/#", "larder/v1/a/commands/ack/", "larder/v1/A/status", "$SYS/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, topic string) {
		site, c, err := protocol.ParseTopic(topic)
		if err != nil {
			return
		}
		if !protocol.ValidSite(site) {
			t.Fatalf("ParseTopic(%q) accepted site %q", topic, site)
		}
		if got := protocol.Topic(site, c); got != topic {
			t.Fatalf("ParseTopic(%q) = %q, %v, which builds %q", topic, site, c, got)
		}
	})
}

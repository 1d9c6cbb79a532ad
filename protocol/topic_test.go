package protocol_test

import (
	"strings"
	"testing"

	"github.com/larder-lockers/larder/protocol"
)

func TestTopicRoundTrip(t *testing.T) {
	for _, site := range []string{"a", "courtyard-17", "bank_03", strings.Repeat("x", 64)} {
		for _, c := range protocol.Channels() {
			topic := protocol.Topic(site, c)
			if want := "larder/v1/" + site + "/" + c.Suffix(); topic != want {
				t.Errorf("Topic(%q, %v) = %q, want %q", site, c, topic, want)
			}
			gotSite, gotC, err := protocol.ParseTopic(topic)
			if err != nil || gotSite != site || gotC != c {
				t.Errorf("ParseTopic(%q) = %q, %v, %v; want %q, %v", topic, gotSite, gotC, err, site, c)
			}
		}
	}
}

// TestChannelTable pins each channel's topic, direction, QoS, retain flag and type: they
// are the published contract, and changing one breaks deployed edges.
func TestChannelTable(t *testing.T) {
	type row struct {
		suffix   string
		fromEdge bool
		qos      byte
		retained bool
		typ      protocol.Type
	}
	want := map[protocol.Channel]row{
		protocol.ChanStatus:     {"status", true, 1, true, protocol.TypeStatus},
		protocol.ChanBirth:      {"birth", true, 1, false, protocol.TypeBirth},
		protocol.ChanEvents:     {"events", true, 1, false, protocol.TypeEvent},
		protocol.ChanTelemetry:  {"telemetry", true, 0, false, protocol.TypeTelemetry},
		protocol.ChanCommandAck: {"commands/ack", true, 1, false, protocol.TypeCommandAck},
		protocol.ChanDesiredGet: {"desired/get", true, 1, false, protocol.TypeDesiredGet},
		protocol.ChanDesired:    {"desired", false, 1, false, protocol.TypeDesired},
		protocol.ChanCommands:   {"commands", false, 1, false, protocol.TypeCommand},
		protocol.ChanEventAck:   {"events/ack", false, 1, false, protocol.TypeEventAck},
	}
	chans := protocol.Channels()
	if len(chans) != len(want) {
		t.Fatalf("Channels() has %d channels, the table %d", len(chans), len(want))
	}
	edgeDone := false
	types := map[protocol.Type]bool{}
	for _, c := range chans {
		w, ok := want[c]
		if !ok {
			t.Fatalf("channel %v is not in the table", c)
		}
		got := row{c.Suffix(), c.FromEdge(), c.QoS(), c.Retained(), c.Type()}
		if got != w {
			t.Errorf("channel %v = %+v, want %+v", c, got, w)
		}
		if c.String() != w.suffix {
			t.Errorf("String() = %q, want %q", c.String(), w.suffix)
		}
		if types[c.Type()] {
			t.Errorf("type %q is carried by two channels", c.Type())
		}
		types[c.Type()] = true
		// Channels() promises edge→cloud first.
		if !c.FromEdge() {
			edgeDone = true
		} else if edgeDone {
			t.Errorf("edge channel %v after a cloud channel in Channels()", c)
		}
		if got, want := protocol.AllSites(c), "larder/v1/+/"+w.suffix; got != want {
			t.Errorf("AllSites(%v) = %q, want %q", c, got, want)
		}
	}
	if got := protocol.SiteFilter("bank-1"); got != "larder/v1/bank-1/#" {
		t.Errorf("SiteFilter = %q", got)
	}
	if got := protocol.Channel(0).String(); got != "Channel(0)" {
		t.Errorf("Channel(0).String() = %q", got)
	}
}

func TestParseTopicRejects(t *testing.T) {
	for _, topic := range []string{
		"",
		"larder/v1",
		"larder/v1/",
		"larder/v2/site/status",
		"other/v1/site/status",
		"larder/v1/site",
		"larder/v1/site/",
		"larder/v1/site/unknown",
		"larder/v1/site/status/",
		"larder/v1/site/commands/ack/extra",
		"larder/v1/site/Status",
		"larder/v1/+/status",
		"larder/v1/#",
		"larder/v1/si+te/status",
		"larder/v1/Site/status",
		"larder/v1//status",
		"larder/v1/" + strings.Repeat("x", 65) + "/status",
		"/larder/v1/site/status",
	} {
		if site, c, err := protocol.ParseTopic(topic); err == nil {
			t.Errorf("ParseTopic(%q) = %q, %v; want an error", topic, site, c)
		}
	}
}

func TestValidSite(t *testing.T) {
	for site, want := range map[string]bool{
		"a": true, "bank-01": true, "bank_01": true, "0": true, strings.Repeat("z", 64): true,
		"": false, strings.Repeat("z", 65): false, "+": false, "#": false, "a/b": false,
		"A": false, "bank 1": false, "bänk": false, "a\x00": false, "$SYS": false,
	} {
		if got := protocol.ValidSite(site); got != want {
			t.Errorf("ValidSite(%q) = %v, want %v", site, got, want)
		}
	}
}

func TestTopicPanicsOnInvalid(t *testing.T) {
	for name, f := range map[string]func(){
		"wildcard site": func() { protocol.Topic("+", protocol.ChanStatus) },
		"slash site":    func() { protocol.Topic("a/b", protocol.ChanStatus) },
		"hash site":     func() { protocol.Topic("#", protocol.ChanStatus) },
		"empty site":    func() { protocol.Topic("", protocol.ChanStatus) },
		"zero channel":  func() { protocol.Topic("a", 0) },
		"filter +":      func() { protocol.SiteFilter("+") },
		"filter slash":  func() { protocol.SiteFilter("a/#") },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("no panic")
				}
			}()
			f()
		})
	}
}

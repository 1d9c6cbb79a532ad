package protocol

import (
	"fmt"
	"strings"
)

// Root is the first two levels of every topic: the product and the major protocol version.
const Root = "larder/v1"

// Channel is one kind of topic under a site. The zero Channel is invalid.
type Channel int

// The channels of protocol v1. Edge→cloud channels come first.
const (
	_ Channel = iota
	// ChanStatus carries the retained online/offline [Status]; the offline form is the
	// MQTT Last Will, so the broker publishes it when the edge vanishes.
	ChanStatus
	// ChanBirth carries a [Birth] on every connect.
	ChanBirth
	// ChanEvents carries [Event]s from the edge's durable outbox, in sequence order.
	ChanEvents
	// ChanTelemetry carries periodic [Telemetry]; QoS 0, losing one costs nothing.
	ChanTelemetry
	// ChanCommandAck carries [CommandAck]s, the progress of cloud commands.
	ChanCommandAck
	// ChanDesiredGet carries a [DesiredGet]: the edge asks for a full desired snapshot.
	ChanDesiredGet

	// ChanDesired carries [Desired] state, full snapshots and incremental deltas.
	ChanDesired
	// ChanCommands carries [Command]s.
	ChanCommands
	// ChanEventAck carries [EventAck]s: the cloud's cumulative acknowledgement of events.
	ChanEventAck
)

type channelInfo struct {
	suffix   string
	fromEdge bool
	qos      byte
	retained bool
}

var channels = map[Channel]channelInfo{
	ChanStatus:     {"status", true, 1, true},
	ChanBirth:      {"birth", true, 1, false},
	ChanEvents:     {"events", true, 1, false},
	ChanTelemetry:  {"telemetry", true, 0, false},
	ChanCommandAck: {"commands/ack", true, 1, false},
	ChanDesiredGet: {"desired/get", true, 1, false},
	ChanDesired:    {"desired", false, 1, false},
	ChanCommands:   {"commands", false, 1, false},
	ChanEventAck:   {"events/ack", false, 1, false},
}

// Channels lists every channel, edge→cloud first.
func Channels() []Channel {
	return []Channel{ChanStatus, ChanBirth, ChanEvents, ChanTelemetry, ChanCommandAck,
		ChanDesiredGet, ChanDesired, ChanCommands, ChanEventAck}
}

// Suffix is the part of the topic after the site, e.g. "commands/ack".
func (c Channel) Suffix() string { return channels[c].suffix }

// FromEdge reports whether the edge publishes on c (true) or the cloud does (false).
func (c Channel) FromEdge() bool { return channels[c].fromEdge }

// QoS is the MQTT quality of service to publish and subscribe with on c.
func (c Channel) QoS() byte { return channels[c].qos }

// Sequenced reports whether messages on c carry a sequence in the envelope's seq: the
// events (the edge's outbox sequence, acknowledged by [EventAck]) and desired state (the
// desired version). Every other channel carries seq 0: commands are deduplicated by their
// id and are independent jobs, event acks are cumulative (the highest wins), and the
// rest is presence, reports or requests whose order means nothing.
func (c Channel) Sequenced() bool { return c == ChanEvents || c == ChanDesired }

// Retained reports whether messages on c are published with the retain flag.
func (c Channel) Retained() bool { return channels[c].retained }

func (c Channel) String() string {
	if info, ok := channels[c]; ok {
		return info.suffix
	}
	return fmt.Sprintf("Channel(%d)", int(c))
}

// ValidSite reports whether site can be a topic level: 1 to 64 characters of lower-case
// letters, digits, '-' and '_'. That excludes the MQTT wildcards and separators, so a
// site id can never widen a subscription or an ACL.
func ValidSite(site string) bool {
	if len(site) == 0 || len(site) > 64 {
		return false
	}
	for _, r := range site {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// Topic is the topic of channel c at site. It panics on an invalid site or channel:
// callers validate site ids where they enter the system (config, API).
func Topic(site string, c Channel) string {
	if !ValidSite(site) {
		panic(fmt.Sprintf("protocol: invalid site id %q", site))
	}
	info, ok := channels[c]
	if !ok {
		panic(fmt.Sprintf("protocol: invalid channel %d", int(c)))
	}
	return Root + "/" + site + "/" + info.suffix
}

// EdgeClientID is the MQTT client id the edge of site must connect with: "larder-edge-"
// followed by the site id. Brokers bind the id to the login (username = site id), so an
// edge can never take over another edge's session, or the cloud's; any other id is
// refused.
func EdgeClientID(site string) string { return "larder-edge-" + site }

// SiteFilter is the filter matching every topic of one site: what an edge's credentials
// are confined to, and what an edge needs to see of its own site.
func SiteFilter(site string) string {
	if !ValidSite(site) {
		panic(fmt.Sprintf("protocol: invalid site id %q", site))
	}
	return Root + "/" + site + "/#"
}

// AllSites is the filter matching channel c at every site, for the cloud's subscriptions.
func AllSites(c Channel) string { return Root + "/+/" + channels[c].suffix }

// ParseTopic takes a topic apart into its site and channel.
func ParseTopic(topic string) (site string, c Channel, err error) {
	rest, ok := strings.CutPrefix(topic, Root+"/")
	if !ok {
		return "", 0, fmt.Errorf("protocol: topic %q is not under %s/", topic, Root)
	}
	site, suffix, ok := strings.Cut(rest, "/")
	if !ok || !ValidSite(site) {
		return "", 0, fmt.Errorf("protocol: topic %q has no valid site", topic)
	}
	for ch, info := range channels {
		if info.suffix == suffix {
			return site, ch, nil
		}
	}
	return "", 0, fmt.Errorf("protocol: topic %q: unknown channel %q", topic, suffix)
}

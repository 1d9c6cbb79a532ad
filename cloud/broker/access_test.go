package broker_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mochipackets "github.com/mochi-mqtt/server/v2/packets"

	"github.com/larder-lockers/larder/protocol"
)

// accessRow is a row of asyncapi.yaml's [access.edge] table: channel, the site's own
// edge, an edge of another site, the cloud.
var accessRow = regexp.MustCompile("(?m)^\\s*\\| `([a-z/]+)` \\| (publish|subscribe|—) \\| (publish|subscribe|—) \\| (publish|subscribe|—) \\|$")

// TestAccessTableEnforced checks the embedded broker against the access table published
// in asyncapi.yaml ([access.edge]), channel by channel, through real connections: what
// the table lets an edge subscribe to is granted and nothing else; what it lets an edge
// publish reaches the cloud and nothing else does, of its own site or another's; and
// refused publishes are acknowledged and dropped without closing the edge's connection
// ([access.refused]).
func TestAccessTableEnforced(t *testing.T) {
	doc, err := os.ReadFile("../../protocol/asyncapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	type grant struct{ own, other string }
	table := map[string]grant{}
	for _, m := range accessRow.FindAllStringSubmatch(string(doc), -1) {
		table[m[1]] = grant{m[2], m[3]}
	}
	if len(table) != len(protocol.Channels()) {
		t.Fatalf("access table has %d rows, want one per channel (%d)", len(table), len(protocol.Channels()))
	}

	b := startBroker(t)
	cloud := mustConnect(t, b, "larder-cloud-1", svcUser, svcPass)
	in := newInbox()
	subscribe(t, cloud, protocol.Root+"/#", in.handler)
	a := edge(t, b, "site-a")

	var want []string
	for _, c := range protocol.Channels() {
		g, ok := table[c.Suffix()]
		if !ok {
			t.Errorf("no access row for %s", c)
			continue
		}
		for site, may := range map[string]string{"site-a": g.own, "site-b": g.other} {
			topic := protocol.Topic(site, c)
			code := subscribe(t, a, topic, func(paho.Client, paho.Message) {})
			if granted := code < 0x80; granted != (may == "subscribe") {
				t.Errorf("site-a subscribing to %s: granted %v (code %#x), table says %q", topic, granted, code, may)
			}
			// Acknowledged whether refused or not: a refusal is a drop, not a disconnect.
			if err := publish(a, topic, "from-a"); err != nil {
				t.Errorf("site-a publishing on %s: %v (table says %q)", topic, err, may)
			}
			if may == "publish" {
				want = append(want, topic+" from-a")
			}
		}
	}
	if !a.IsConnectionOpen() {
		t.Fatal("the broker closed the edge's connection over a refused publish")
	}
	// A marker after every attempt: once it arrived, anything delivered earlier has too.
	marker := protocol.Topic("site-a", protocol.ChanTelemetry)
	if err := publish(a, marker, "marker"); err != nil {
		t.Fatal(err)
	}
	want = append(want, marker+" marker")
	deadline := time.After(5 * time.Second)
	for !slices.Contains(in.all(), marker+" marker") {
		select {
		case <-in.got:
		case <-deadline:
			t.Fatalf("marker never arrived; got %q", in.all())
		}
	}
	got := in.all()
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("the cloud received:\n%s\nwant exactly what the table lets site-a publish:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestRefusedPublishV5 speaks MQTT 5 by hand (paho.mqtt.golang speaks 3.1.1 only): a
// refused QoS 1 publish gets a PUBACK with reason 0x87 "not authorized", and the
// connection stays up for the next publish ([access.refused]).
func TestRefusedPublishV5(t *testing.T) {
	b := startBroker(t)
	conn, err := net.DialTimeout("tcp", b.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(conn)
	send := func(pk mochipackets.Packet, encode func(*mochipackets.Packet, *bytes.Buffer) error) {
		t.Helper()
		var buf bytes.Buffer
		if err := encode(&pk, &buf); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write(buf.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	read := func(want byte) mochipackets.Packet {
		t.Helper()
		first, err := r.ReadByte()
		if err != nil {
			t.Fatalf("read: %v (connection closed?)", err)
		}
		var fh mochipackets.FixedHeader
		if err := fh.Decode(first); err != nil || fh.Type != want {
			t.Fatalf("packet type %d (err %v), want %d", fh.Type, err, want)
		}
		n, err := binary.ReadUvarint(r)
		if err != nil {
			t.Fatal(err)
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			t.Fatal(err)
		}
		fh.Remaining = int(n)
		pk := mochipackets.Packet{FixedHeader: fh, ProtocolVersion: 5}
		switch want {
		case mochipackets.Connack:
			err = pk.ConnackDecode(body)
		case mochipackets.Puback:
			err = pk.PubackDecode(body)
		}
		if err != nil {
			t.Fatal(err)
		}
		return pk
	}
	send(mochipackets.Packet{FixedHeader: mochipackets.FixedHeader{Type: mochipackets.Connect}, ProtocolVersion: 5,
		Connect: mochipackets.ConnectParams{ProtocolName: []byte("MQTT"), ClientIdentifier: protocol.EdgeClientID("site-a"),
			Clean: true, Keepalive: 30, UsernameFlag: true, Username: []byte("site-a"), PasswordFlag: true,
			Password: []byte(passwords["site-a"])}}, (*mochipackets.Packet).ConnectEncode)
	if ack := read(mochipackets.Connack); ack.ReasonCode != 0 {
		t.Fatalf("CONNACK %#x", ack.ReasonCode)
	}
	for i, tc := range []struct {
		topic string
		want  byte
	}{
		{protocol.Topic("site-a", protocol.ChanCommands), mochipackets.ErrNotAuthorized.Code}, // a cloud→edge channel
		{protocol.Topic("site-b", protocol.ChanEvents), mochipackets.ErrNotAuthorized.Code},   // another site
		{protocol.Topic("site-a", protocol.ChanEvents), mochipackets.CodeSuccess.Code},        // still connected
	} {
		send(mochipackets.Packet{FixedHeader: mochipackets.FixedHeader{Type: mochipackets.Publish, Qos: 1}, ProtocolVersion: 5,
			TopicName: tc.topic, PacketID: uint16(i + 1), Payload: []byte("x")}, (*mochipackets.Packet).PublishEncode)
		if ack := read(mochipackets.Puback); ack.PacketID != uint16(i+1) || ack.ReasonCode != tc.want {
			t.Errorf("PUBACK for %s: id %d reason %#x, want id %d reason %#x", tc.topic, ack.PacketID, ack.ReasonCode, i+1, tc.want)
		}
	}
}

package broker_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	pahopackets "github.com/eclipse/paho.mqtt.golang/packets"
	mochipackets "github.com/mochi-mqtt/server/v2/packets"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/larder-lockers/larder/cloud/broker"
	"github.com/larder-lockers/larder/protocol"
)

const (
	svcUser = "larder.cloud"
	svcPass = "service-secret"
)

var passwords = map[string]string{"site-a": "pw-a-0123456789abcdef", "site-b": "pw-b-0123456789abcdef"}

func startBroker(t *testing.T) *broker.Broker {
	t.Helper()
	creds := broker.StaticCredentials{}
	for s, p := range passwords {
		creds[s] = broker.PasswordDigest(p)
	}
	return startBrokerWith(t, creds, nil)
}

// startBrokerWith starts a broker on a free loopback port with creds and the service
// account, after edit (when not nil) changed the rest of its configuration; it is
// closed when the test ends.
func startBrokerWith(t testing.TB, creds broker.StaticCredentials, edit func(*broker.Config)) *broker.Broker {
	t.Helper()
	cfg := broker.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Credentials = creds
	cfg.ServiceUser, cfg.ServicePassword = svcUser, svcPass
	if edit != nil {
		edit(&cfg)
	}
	b, err := broker.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// inbox collects messages received by a client.
type inbox struct {
	mu   sync.Mutex
	msgs []string // "topic payload"
	got  chan struct{}
}

func newInbox() *inbox { return &inbox{got: make(chan struct{}, 1000)} }

func (i *inbox) handler(_ paho.Client, m paho.Message) {
	i.mu.Lock()
	i.msgs = append(i.msgs, m.Topic()+" "+string(m.Payload()))
	i.mu.Unlock()
	i.got <- struct{}{}
}

func (i *inbox) all() []string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return append([]string(nil), i.msgs...)
}

type clientOpt func(*paho.ClientOptions)

func connect(t *testing.T, b *broker.Broker, id, user, pass string, opts ...clientOpt) (paho.Client, error) {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(b.URL()).SetClientID(id).SetUsername(user).SetPassword(pass).
		SetAutoReconnect(false).SetConnectRetry(false).SetOrderMatters(false).SetConnectTimeout(5 * time.Second)
	for _, f := range opts {
		f(o)
	}
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(5 * time.Second) {
		return nil, fmt.Errorf("connect timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c, nil
}

func mustConnect(t *testing.T, b *broker.Broker, id, user, pass string, opts ...clientOpt) paho.Client {
	t.Helper()
	c, err := connect(t, b, id, user, pass, opts...)
	if err != nil {
		t.Fatalf("connect %s: %v", id, err)
	}
	return c
}

func edge(t *testing.T, b *broker.Broker, site string) paho.Client {
	return mustConnect(t, b, broker.EdgeClientID(site), site, passwords[site])
}

func subscribe(t *testing.T, c paho.Client, filter string, h paho.MessageHandler) byte {
	t.Helper()
	tok := c.Subscribe(filter, 1, h)
	if !tok.WaitTimeout(5 * time.Second) {
		t.Fatalf("subscribe %s timed out", filter)
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("subscribe %s: %v", filter, err)
	}
	key := filter
	if rest, ok := strings.CutPrefix(filter, "$share/"); ok { // paho keys results without the group
		_, key, _ = strings.Cut(rest, "/")
	}
	code, ok := tok.(*paho.SubscribeToken).Result()[key]
	if !ok {
		t.Fatalf("subscribe %s: no result", filter)
	}
	return code
}

func publish(c paho.Client, topic, payload string) error {
	tok := c.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(2 * time.Second) {
		return fmt.Errorf("publish %s: no PUBACK", topic)
	}
	return tok.Error()
}

func TestLoginRefusals(t *testing.T) {
	b := startBroker(t)
	tests := []struct {
		name, id, user, pass string
		opts                 []clientOpt
		ok                   bool
	}{
		{"edge", broker.EdgeClientID("site-a"), "site-a", passwords["site-a"], nil, true},
		{"service", "larder-cloud-1", svcUser, svcPass, nil, true},
		{"wrong password", broker.EdgeClientID("site-a"), "site-a", "nope", nil, false},
		{"other site's password", broker.EdgeClientID("site-a"), "site-a", passwords["site-b"], nil, false},
		{"unknown site", broker.EdgeClientID("site-z"), "site-z", "whatever", nil, false},
		{"anonymous", "anon", "", "", nil, false},
		{"wrong service password", "larder-cloud-2", svcUser, "nope", nil, false},
		{"client id of another site", broker.EdgeClientID("site-b"), "site-a", passwords["site-a"], nil, false},
		{"client id of the cloud", "larder-cloud-1", "site-a", passwords["site-a"], nil, false},
		{"will on another site", broker.EdgeClientID("site-a"), "site-a", passwords["site-a"],
			[]clientOpt{func(o *paho.ClientOptions) {
				o.SetWill(protocol.Topic("site-b", protocol.ChanStatus), `{"online":false}`, 1, true)
			}}, false},
		{"will on own status", broker.EdgeClientID("site-b"), "site-b", passwords["site-b"],
			[]clientOpt{func(o *paho.ClientOptions) {
				o.SetWill(protocol.Topic("site-b", protocol.ChanStatus), `{"online":false}`, 1, true)
			}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := connect(t, b, tt.id, tt.user, tt.pass, tt.opts...)
			if got := err == nil; got != tt.ok {
				t.Fatalf("connect ok = %v (err %v), want %v", got, err, tt.ok)
			}
			if c != nil {
				c.Disconnect(50)
			}
		})
	}
}

// TestEdgeCannotPublishToAnotherSite is the authorisation criterion: a message an edge
// publishes on another site's topic never reaches a subscriber, while its own does.
func TestEdgeCannotPublishToAnotherSite(t *testing.T) {
	b := startBroker(t)
	cloud := mustConnect(t, b, "larder-cloud-1", svcUser, svcPass)
	in := newInbox()
	subscribe(t, cloud, protocol.Root+"/#", in.handler)

	a := edge(t, b, "site-a")
	// Own site first: it must arrive, proving the path works.
	if err := publish(a, protocol.Topic("site-a", protocol.ChanEvents), "own"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, in, 1)

	foreign := []string{
		protocol.Topic("site-b", protocol.ChanEvents),   // another site's edge channel
		protocol.Topic("site-b", protocol.ChanStatus),   // forging presence
		protocol.Topic("site-a", protocol.ChanCommands), // a cloud→edge channel, even its own
		protocol.Topic("site-a", protocol.ChanDesired),
		"larder/v1/site-b/unknown",
		"elsewhere/entirely",
	}
	for _, topic := range foreign {
		// Refused: acknowledged and dropped, the connection kept ([access.refused]).
		if err := publish(a, topic, "forged"); err != nil {
			t.Errorf("publish on %s: %v, want a PUBACK", topic, err)
		}
	}
	// A marker from site-b after the forged publishes: once it arrived, anything
	// forged earlier would have arrived too (one broker, in order per subscriber).
	bb := edge(t, b, "site-b")
	if err := publish(bb, protocol.Topic("site-b", protocol.ChanEvents), "marker"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, in, 2)
	time.Sleep(50 * time.Millisecond)
	got := in.all()
	want := []string{protocol.Topic("site-a", protocol.ChanEvents) + " own", protocol.Topic("site-b", protocol.ChanEvents) + " marker"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("cloud received:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestEdgeSubscriptions(t *testing.T) {
	b := startBroker(t)
	a := edge(t, b, "site-a")
	tests := []struct {
		filter string
		ok     bool
	}{
		{protocol.Topic("site-a", protocol.ChanCommands), true},
		{protocol.Topic("site-a", protocol.ChanDesired), true},
		{protocol.Topic("site-a", protocol.ChanEventAck), true},
		{protocol.SiteFilter("site-a"), true},
		{protocol.Topic("site-b", protocol.ChanCommands), false},
		{protocol.SiteFilter("site-b"), false},
		{protocol.AllSites(protocol.ChanCommands), false},
		{protocol.Topic("site-a", protocol.ChanEvents), false}, // an edge→cloud channel
		{"#", false},
		{"larder/#", false},
		{"$share/g/" + protocol.Topic("site-a", protocol.ChanCommands), false},
	}
	for _, tt := range tests {
		code := subscribe(t, a, tt.filter, func(paho.Client, paho.Message) {})
		if got := code < 0x80; got != tt.ok {
			t.Errorf("subscribe %s: granted = %v (code %#x), want %v", tt.filter, got, code, tt.ok)
		}
	}
}

// TestEdgeReceivesOnlyItsOwn: through its site filter an edge gets its own cloud→edge
// messages and nothing of another site.
func TestEdgeReceivesOnlyItsOwn(t *testing.T) {
	b := startBroker(t)
	cloud := mustConnect(t, b, "larder-cloud-1", svcUser, svcPass)
	a := edge(t, b, "site-a")
	in := newInbox()
	subscribe(t, a, protocol.SiteFilter("site-a"), in.handler)
	for _, topic := range []string{
		protocol.Topic("site-b", protocol.ChanCommands),
		protocol.Topic("site-a", protocol.ChanEvents), // the cloud may publish anywhere; the edge may not read it
		protocol.Topic("site-a", protocol.ChanCommands),
	} {
		if err := publish(cloud, topic, "x"); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, in, 1)
	time.Sleep(50 * time.Millisecond)
	if got, want := in.all(), []string{protocol.Topic("site-a", protocol.ChanCommands) + " x"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("edge received %q, want %q", got, want)
	}
}

func TestServiceSharedSubscription(t *testing.T) {
	b := startBroker(t)
	c1 := mustConnect(t, b, "larder-cloud-1", svcUser, svcPass)
	c2 := mustConnect(t, b, "larder-cloud-2", svcUser, svcPass)
	in1, in2 := newInbox(), newInbox()
	f := "$share/larder-cloud/" + protocol.AllSites(protocol.ChanEvents)
	subscribe(t, c1, f, in1.handler)
	subscribe(t, c2, f, in2.handler)
	a := edge(t, b, "site-a")
	const n = 20
	for i := range n {
		if err := publish(a, protocol.Topic("site-a", protocol.ChanEvents), fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.After(5 * time.Second)
	for len(in1.all())+len(in2.all()) < n {
		select {
		case <-deadline:
			t.Fatalf("got %d+%d messages, want %d in total", len(in1.all()), len(in2.all()), n)
		case <-in1.got:
		case <-in2.got:
		}
	}
	time.Sleep(50 * time.Millisecond)
	if total := len(in1.all()) + len(in2.all()); total != n {
		t.Fatalf("shared group delivered %d messages, want exactly %d", total, n)
	}
}

func TestConfigValidate(t *testing.T) {
	cfg := broker.DefaultConfig()
	cfg.Credentials = broker.StaticCredentials{}
	cfg.ServiceUser, cfg.ServicePassword = "larder-cloud", "x"
	if err := cfg.Validate(); err == nil {
		t.Error("a service user that could be a site id was accepted")
	}
	cfg.ServiceUser = svcUser
	if err := cfg.Validate(); err != nil {
		t.Error(err)
	}
	cfg.Credentials = nil
	if err := cfg.Validate(); err == nil {
		t.Error("missing credentials accepted")
	}
}

func TestAddressInUse(t *testing.T) {
	b := startBroker(t)
	cfg := broker.DefaultConfig()
	cfg.Addr = b.Addr()
	cfg.Credentials = broker.StaticCredentials{}
	cfg.ServiceUser, cfg.ServicePassword = svcUser, svcPass
	if b2, err := broker.Start(cfg); err == nil {
		b2.Close()
		t.Fatal("second broker on the same address started")
	}
}

func waitFor(t *testing.T, in *inbox, n int) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for len(in.all()) < n {
		select {
		case <-in.got:
		case <-deadline:
			t.Fatalf("received %d messages, want %d: %q", len(in.all()), n, in.all())
		}
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := broker.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Credentials = broker.StaticCredentials{"site-a": broker.PasswordDigest(passwords["site-a"])}
	cfg.ServiceUser, cfg.ServicePassword = svcUser, svcPass
	cfg.Registry = reg
	b, err := broker.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	a := edge(t, b, "site-a")
	for range 3 {
		if err := publish(a, protocol.Topic("site-a", protocol.ChanEvents), "x"); err != nil {
			t.Fatal(err)
		}
	}
	if err := publish(a, protocol.Topic("site-a", protocol.ChanCommands), "forged"); err != nil { // refused, acknowledged
		t.Fatal(err)
	}
	got := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		got[mf.GetName()] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
	}
	if got["larder_broker_clients_connected"] != 1 || got["larder_broker_messages_received_total"] != 4 ||
		got["larder_broker_publishes_refused_total"] != 1 {
		t.Fatalf("metrics %v", got)
	}
}

// TestWrongClientIDIsIdentifierRejected: an edge with the right password but a client id
// other than larder-edge-{site} is told "identifier rejected", not "not authorized", so
// an installer can tell a misconfigured client id from a wrong password.
func TestWrongClientIDIsIdentifierRejected(t *testing.T) {
	b := startBroker(t)
	for _, tc := range []struct {
		name, id, pass string
		want           error
	}{
		{"client id of another site", broker.EdgeClientID("site-b"), passwords["site-a"], pahopackets.ErrorRefusedIDRejected},
		{"client id of the cloud", "larder-cloud-1", passwords["site-a"], pahopackets.ErrorRefusedIDRejected},
		{"site id as client id", "site-a", passwords["site-a"], pahopackets.ErrorRefusedIDRejected},
		{"wrong client id and password", "site-a", "nope", pahopackets.ErrorRefusedIDRejected},
		{"right client id, wrong password", broker.EdgeClientID("site-a"), "nope", pahopackets.ErrorRefusedNotAuthorised},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := connect(t, b, tc.id, "site-a", tc.pass)
			if !errors.Is(err, tc.want) {
				t.Fatalf("connect err = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestWrongClientIDIsIdentifierRejectedV5 is the same refusal for an MQTT 5 client,
// spoken by hand (paho.mqtt.golang speaks 3.1.1 only): reason 0x85.
func TestWrongClientIDIsIdentifierRejectedV5(t *testing.T) {
	b := startBroker(t)
	for _, tc := range []struct {
		name, id, pass string
		want           byte
	}{
		{"wrong client id", "site-a", passwords["site-a"], mochipackets.ErrClientIdentifierNotValid.Code},
		{"right client id, wrong password", broker.EdgeClientID("site-a"), "nope", mochipackets.ErrBadUsernameOrPassword.Code},
		{"edge", broker.EdgeClientID("site-a"), passwords["site-a"], mochipackets.CodeSuccess.Code},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := connackV5(t, b.Addr(), tc.id, "site-a", tc.pass); got != tc.want {
				t.Errorf("CONNACK reason = %#x, want %#x", got, tc.want)
			}
		})
	}
}

// connackV5 sends an MQTT 5 CONNECT and returns the CONNACK's reason code.
func connackV5(t *testing.T, addr, id, user, pass string) byte {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	pk := mochipackets.Packet{
		FixedHeader:     mochipackets.FixedHeader{Type: mochipackets.Connect},
		ProtocolVersion: 5,
		Connect: mochipackets.ConnectParams{
			ProtocolName: []byte("MQTT"), ClientIdentifier: id, Clean: true, Keepalive: 30,
			UsernameFlag: true, Username: []byte(user), PasswordFlag: true, Password: []byte(pass),
		},
	}
	var buf bytes.Buffer
	if err := pk.ConnectEncode(&buf); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	var fh mochipackets.FixedHeader
	first, err := r.ReadByte()
	if err != nil {
		t.Fatalf("read CONNACK: %v", err)
	}
	if err := fh.Decode(first); err != nil || fh.Type != mochipackets.Connack {
		t.Fatalf("first packet is type %d (err %v), want CONNACK", fh.Type, err)
	}
	n, err := binary.ReadUvarint(r) // MQTT's variable byte integer is the same encoding
	if err != nil {
		t.Fatalf("read CONNACK length: %v", err)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		t.Fatalf("read CONNACK: %v", err)
	}
	ack := mochipackets.Packet{FixedHeader: fh, ProtocolVersion: 5}
	if err := ack.ConnackDecode(body); err != nil {
		t.Fatalf("decode CONNACK: %v", err)
	}
	return ack.ReasonCode
}

// TestHoldEdges: with HoldEdges an edge login is refused as "server unavailable", even
// with the right password, while the service account logs in; after AcceptEdges the
// same edge logs in, and a wrong password is still refused.
func TestHoldEdges(t *testing.T) {
	creds := broker.StaticCredentials{}
	for s, p := range passwords {
		creds[s] = broker.PasswordDigest(p)
	}
	b := startBrokerWith(t, creds, func(c *broker.Config) { c.HoldEdges = true })
	if _, err := connect(t, b, broker.EdgeClientID("site-a"), "site-a", passwords["site-a"]); !errors.Is(err, pahopackets.ErrorRefusedServerUnavailable) {
		t.Fatalf("edge while held: %v, want server unavailable", err)
	}
	mustConnect(t, b, "larder-cloud-hold", svcUser, svcPass)
	b.AcceptEdges()
	edge(t, b, "site-a")
	if _, err := connect(t, b, broker.EdgeClientID("site-b"), "site-b", "nope"); !errors.Is(err, pahopackets.ErrorRefusedNotAuthorised) {
		t.Fatalf("wrong password after AcceptEdges: %v, want not authorised", err)
	}
}

package conform

import (
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/larder-lockers/larder/protocol"
)

// login is one CONNECT the kit's broker saw for the site under test.
type login struct {
	At       time.Time
	ClientID string
	Username string
	Accepted bool
	Clean    bool
	Will     *will // nil: no Last Will
}

type will struct {
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool
}

// broker is the kit's embedded MQTT broker in edge mode (mochi-mqtt). The kit's own
// cloud side is mochi's inline client, subscribed before the listener accepts anyone,
// so nothing the edge publishes right after a (re)connect can be missed. Restart stops
// it and starts a fresh one on the same address, with no sessions and no retained
// messages, as a broker without persistence comes back.
type broker struct {
	addr, site, password string
	box                  *mailbox
	log                  *slog.Logger

	mu  sync.Mutex
	srv *mochi.Server // guarded by mu
	// logins and denied are what the hook saw, for the connect and access clauses.
	logins []login        // guarded by mu
	denied []string       // guarded by mu: topics the edge published on that are not its own edge→cloud channels
	subs   []subscription // guarded by mu: every SUBSCRIBE of the edge
}

func startBroker(addr, site, password string, box *mailbox, log *slog.Logger) (*broker, error) {
	b := &broker{addr: addr, site: site, password: password, box: box, log: log}
	if err := b.start(); err != nil {
		return nil, err
	}
	return b, nil
}

func (b *broker) start() error {
	srv := mochi.New(&mochi.Options{InlineClient: true, Logger: b.log.With("component", "broker")})
	if err := srv.AddHook(&hook{b: b}, nil); err != nil {
		return fmt.Errorf("conform: broker hook: %w", err)
	}
	for _, ch := range protocol.Channels() {
		if !ch.FromEdge() {
			continue
		}
		err := srv.Subscribe(protocol.Topic(b.site, ch), 1, func(_ *mochi.Client, _ packets.Subscription, pk packets.Packet) {
			b.box.add(pk.TopicName, pk.Payload, pk.FixedHeader.Retain, pk.FixedHeader.Qos)
		})
		if err != nil {
			return fmt.Errorf("conform: broker subscribe: %w", err)
		}
	}
	// The old listener's port may take a moment to free after a restart.
	var ln net.Listener
	var err error
	for range 100 {
		if ln, err = net.Listen("tcp", b.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("conform: broker listen %s: %w", b.addr, err)
	}
	b.addr = ln.Addr().String()
	if err := srv.AddListener(listeners.NewNet("tcp", ln)); err != nil {
		ln.Close()
		return fmt.Errorf("conform: broker listener: %w", err)
	}
	if err := srv.Serve(); err != nil {
		return fmt.Errorf("conform: broker serve: %w", err)
	}
	b.mu.Lock()
	b.srv = srv
	b.mu.Unlock()
	return nil
}

// restart stops the broker (every client is disconnected) and starts a fresh one.
func (b *broker) restart() error {
	b.close()
	return b.start()
}

func (b *broker) close() {
	b.mu.Lock()
	srv := b.srv
	b.srv = nil
	b.mu.Unlock()
	if srv != nil {
		_ = srv.Close() // it only reports the listeners' close errors
	}
}

// publish sends payload to the edge on ch, as the cloud would.
func (b *broker) publish(ch protocol.Channel, payload []byte) error {
	b.mu.Lock()
	srv := b.srv
	b.mu.Unlock()
	if srv == nil {
		return fmt.Errorf("conform: broker stopped")
	}
	return srv.Publish(protocol.Topic(b.site, ch), payload, ch.Retained(), ch.QoS())
}

// URL is the broker's address for an edge: tcp://host:port.
func (b *broker) URL() string { return "tcp://" + b.addr }

// subscription is one SUBSCRIBE of the edge.
type subscription struct {
	At      time.Time
	Filters []string
}

func (b *broker) seen() (logins []login, denied []string, subs []subscription) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]login(nil), b.logins...), append([]string(nil), b.denied...), append([]subscription(nil), b.subs...)
}

// hook admits the edge under test (username = site, the password, any client id: the
// client id clause reads what was sent) and records what it does.
type hook struct {
	mochi.HookBase
	b *broker
}

func (h *hook) ID() string { return "larder-conform" }

func (h *hook) Provides(k byte) bool {
	return k == mochi.OnConnectAuthenticate || k == mochi.OnACLCheck || k == mochi.OnSubscribe
}

func (h *hook) OnConnectAuthenticate(cl *mochi.Client, pk packets.Packet) bool {
	c := pk.Connect
	l := login{At: time.Now(), ClientID: cl.ID, Username: string(c.Username), Clean: c.Clean}
	if c.WillFlag {
		l.Will = &will{Topic: c.WillTopic, Payload: append([]byte(nil), c.WillPayload...), QoS: c.WillQos, Retain: c.WillRetain}
	}
	l.Accepted = l.Username == h.b.site && subtle.ConstantTimeCompare(c.Password, []byte(h.b.password)) == 1
	h.b.mu.Lock()
	h.b.logins = append(h.b.logins, l)
	h.b.mu.Unlock()
	return l.Accepted
}

func (h *hook) OnACLCheck(cl *mochi.Client, topic string, write bool) bool {
	if write && cl.ID != mochi.InlineClientId {
		if site, ch, err := protocol.ParseTopic(topic); err != nil || site != h.b.site || !ch.FromEdge() {
			h.b.mu.Lock()
			h.b.denied = append(h.b.denied, topic)
			h.b.mu.Unlock()
		}
	}
	// Allowed all the same: the kit reports a stray publish rather than disconnecting
	// the edge (a broker's refusal would make a persistent session resend it forever).
	return true
}

func (h *hook) OnSubscribe(cl *mochi.Client, pk packets.Packet) packets.Packet {
	if cl.ID != mochi.InlineClientId {
		var fs []string
		for _, f := range pk.Filters {
			fs = append(fs, f.Filter)
		}
		h.b.mu.Lock()
		h.b.subs = append(h.b.subs, subscription{At: time.Now(), Filters: fs})
		h.b.mu.Unlock()
	}
	return pk
}

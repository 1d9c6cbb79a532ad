package broker

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/larder-lockers/larder/protocol"
)

// DefaultAddr is the embedded broker's default listen address: loopback, and 1884
// rather than MQTT's 1883 so it never collides with a Mosquitto on the same machine.
const DefaultAddr = "127.0.0.1:1884"

// Config configures the embedded broker. The zero value of each size field means the
// documented default, never "unlimited".
type Config struct {
	// Addr is the TCP listen address (default [DefaultAddr]). Use "127.0.0.1:0" in
	// tests and read [Broker.Addr].
	Addr string
	// Credentials checks edge passwords. Required.
	Credentials Credentials
	// ServiceUser and ServicePassword are the cloud's own account, which may publish
	// and subscribe anywhere (including shared subscriptions). Required.
	ServiceUser     string
	ServicePassword string

	// MaxInflight bounds the QoS 1 messages the broker keeps in flight per client
	// (default 8192); mochi drops (and counts) a message for a client already at the
	// limit. The cloud's connection never gets near it (publishers are held at its
	// window, see MaxWritesPending), nor does a connected edge (its traffic is bounded by
	// the protocol); it bounds what an offline persistent session piles up until it
	// expires. The map grows only as messages are held, so it costs no memory up front.
	MaxInflight uint16
	// ReceiveMaximum bounds the unacknowledged QoS 1 publishes a client may send
	// (MQTT 5; default 256).
	ReceiveMaximum uint16
	// MaxWritesPending bounds each client's outgoing write queue (default 512
	// packets); mochi drops (and counts) a message for a client whose queue is full. The
	// queue is allocated whole for every connection (8 bytes a packet), so it is most of
	// what an idle edge costs. A service-account (cloud) connection is protected by
	// back-pressure instead: a publisher is held, before its PUBACK, while the cloud has
	// three quarters of the smaller of MaxWritesPending and MaxInflight messages (QoS 1
	// in flight, QoS 0 queued) outstanding: its window, 384 by default. The last quarter
	// is for what the broker sends the cloud without a publisher to hold (retained
	// messages when it subscribes). A hold lasts at most 5 s: a cloud that acknowledges
	// nothing for that long is stuck, and the message goes to the queue.
	MaxWritesPending int32
	// SessionExpiry is how long a disconnected persistent session (and its queued
	// messages) is kept (default 72 h: an edge offline for longer resynchronises from
	// its birth and a desired snapshot anyway). Without it, offline persistent sessions
	// grow without bound (mochi-mqtt #340).
	SessionExpiry time.Duration
	// MaxPacketSize bounds an MQTT packet (default 256 KiB; desired snapshots of a
	// large bank are tens of KiB).
	MaxPacketSize uint32
	// MaxClients bounds concurrent connections (default 100,000).
	MaxClients int64

	// HoldEdges refuses edge logins ("server unavailable") until AcceptEdges is called;
	// the service account may log in at once. larder-cloud holds them until its fleet
	// adapter has subscribed: what an edge publishes first after a restart (its birth,
	// the events it kept while the cloud was down) would otherwise reach no subscriber
	// and wait for the edge's ack timeout. False: edges are accepted from the start.
	HoldEdges bool

	// Logger receives the broker's own warnings and auth refusals (nil: discard).
	Logger *slog.Logger
	// Registry receives the larder_broker_* metrics (nil: none).
	Registry prometheus.Registerer
}

// DefaultConfig returns a Config with every default filled in, except Credentials and
// the service account.
func DefaultConfig() Config {
	return Config{
		Addr:             DefaultAddr,
		MaxInflight:      8192,
		ReceiveMaximum:   256,
		MaxWritesPending: 512,
		SessionExpiry:    72 * time.Hour,
		MaxPacketSize:    256 << 10,
		MaxClients:       100_000,
	}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.Credentials == nil:
		return errors.New("broker: Credentials required")
	case c.ServiceUser == "" || c.ServicePassword == "":
		return errors.New("broker: service user and password required")
	case protocol.ValidSite(c.ServiceUser):
		// Otherwise a site of that name would be mistaken for the cloud.
		return fmt.Errorf("broker: service user %q could be a site id: use a name with a character sites cannot have (e.g. %q)", c.ServiceUser, "larder.cloud")
	case c.SessionExpiry < 0:
		return errors.New("broker: negative SessionExpiry")
	case c.MaxWritesPending < 0 || c.MaxWritesPending > 0 && c.MaxWritesPending < 16 || c.MaxInflight > 0 && c.MaxInflight < 16:
		return errors.New("broker: MaxWritesPending and MaxInflight must be at least 16 (zero: the default)")
	}
	return nil
}

func (c *Config) fill() {
	d := DefaultConfig()
	if c.Addr == "" {
		c.Addr = d.Addr
	}
	if c.MaxInflight == 0 {
		c.MaxInflight = d.MaxInflight
	}
	if c.ReceiveMaximum == 0 {
		c.ReceiveMaximum = d.ReceiveMaximum
	}
	if c.MaxWritesPending == 0 {
		c.MaxWritesPending = d.MaxWritesPending
	}
	if c.SessionExpiry == 0 {
		c.SessionExpiry = d.SessionExpiry
	}
	if c.MaxPacketSize == 0 {
		c.MaxPacketSize = d.MaxPacketSize
	}
	if c.MaxClients == 0 {
		c.MaxClients = d.MaxClients
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// window is the service account's in-flight window (see MaxWritesPending).
func (c Config) window() int {
	return max(1, min(int(c.MaxInflight), int(c.MaxWritesPending))*3/4)
}

// sysTick is mochi's $SYS interval in seconds, also the period of the aggregated drop
// log (flowHook.OnSysInfoTick).
const sysTick = 60

// quietDrops leaves out two of mochi's warnings that come once per message or per
// connection, which at fleet scale would drown the cloud's log: the one for every
// message dropped at a full in-flight window (counted by mochi, logged once a minute by
// flowHook.OnSysInfoTick), and its listener's line with an empty message for every
// connection that ended with an error (a client gone, every client at shutdown),
// counted in ends and logged once a minute the same way.
type quietDrops struct {
	slog.Handler
	ends *connEnds
}

// connEnds counts the connections that ended with an error since the last tick, and
// keeps the last error.
type connEnds struct {
	n    atomic.Int64
	last atomic.Pointer[string]
}

func (q quietDrops) Handle(ctx context.Context, r slog.Record) error {
	switch r.Message {
	case "client store quota reached":
		return nil
	case "":
		q.ends.n.Add(1)
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "error" {
				v := a.Value.String()
				q.ends.last.Store(&v)
			}
			return true
		})
		return nil
	}
	return q.Handler.Handle(ctx, r)
}

func (q quietDrops) WithAttrs(as []slog.Attr) slog.Handler {
	return quietDrops{q.Handler.WithAttrs(as), q.ends}
}
func (q quietDrops) WithGroup(n string) slog.Handler {
	return quietDrops{q.Handler.WithGroup(n), q.ends}
}

// Broker is a running embedded MQTT broker. Close stops it; Close is idempotent.
type Broker struct {
	srv  *mochi.Server
	addr string
	auth *authHook

	closeOnce sync.Once
	closeErr  error
}

// Start listens on cfg.Addr and serves until Close.
func Start(cfg Config) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.fill()

	caps := mochi.NewDefaultServerCapabilities()
	caps.MaximumInflight = cfg.MaxInflight
	caps.ReceiveMaximum = cfg.ReceiveMaximum
	caps.MaximumClientWritesPending = cfg.MaxWritesPending
	caps.MaximumSessionExpiryInterval = uint32(cfg.SessionExpiry / time.Second)
	caps.MaximumPacketSize = cfg.MaxPacketSize
	caps.MaximumClients = cfg.MaxClients
	caps.MaximumQos = 1 // QoS 2 is not part of the protocol (paho #788)
	// A client refused by the ACL learns only "unspecified error" on MQTT 5.
	caps.Compatibilities.ObscureNotAuthorized = true

	// The broker logs at warn and above: its info lines (every connect) would
	// drown the cloud's own logs at fleet scale.
	ends := &connEnds{}
	srv := mochi.New(&mochi.Options{
		Capabilities:           caps,
		Logger:                 slog.New(quietDrops{cfg.Logger.Handler(), ends}).With("component", "broker"),
		SysTopicResendInterval: sysTick,
	})
	flow := &flowHook{serviceUser: []byte(cfg.ServiceUser), window: cfg.window(), srv: srv, log: cfg.Logger, ends: ends}
	h := &authHook{creds: cfg.Credentials, serviceUser: cfg.ServiceUser,
		servicePassword: cfg.ServicePassword, log: cfg.Logger, srv: srv}
	h.edgesOpen.Store(!cfg.HoldEdges)
	if cfg.Registry != nil {
		h.refused = prometheus.NewCounter(prometheus.CounterOpts{Name: "larder_broker_publishes_refused_total",
			Help: "Publishes the embedded broker dropped because the client may not publish on the topic (acknowledged, never delivered)."})
		if err := cfg.Registry.Register(h.refused); err != nil {
			return nil, fmt.Errorf("broker: register metrics: %w", err)
		}
		flow.held = prometheus.NewCounter(prometheus.CounterOpts{Name: "larder_broker_publishes_held_total",
			Help: "Publishes the embedded broker held back because the cloud's connection had its window of messages in flight."})
		flow.timedOut = prometheus.NewCounter(prometheus.CounterOpts{Name: "larder_broker_publishes_hold_timeouts_total",
			Help: "Held publishes released after the longest hold (5 s) without room: the cloud's connection acknowledged nothing meanwhile."})
		for _, c := range []prometheus.Collector{flow.held, flow.timedOut} {
			if err := cfg.Registry.Register(c); err != nil {
				return nil, fmt.Errorf("broker: register metrics: %w", err)
			}
		}
		if err := registerMetrics(cfg.Registry, srv); err != nil {
			return nil, err
		}
	}
	// The auth hook first: a refused publish never reaches the flow hook.
	if err := srv.AddHook(h, nil); err != nil {
		return nil, fmt.Errorf("broker: add auth hook: %w", err)
	}
	if err := srv.AddHook(flow, nil); err != nil {
		return nil, fmt.Errorf("broker: add flow hook: %w", err)
	}

	// Listen ourselves so that an address in use fails here and ":0" resolves.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("broker: listen %s: %w", cfg.Addr, err)
	}
	addr := ln.Addr().String()
	tcp := listeners.NewNet("tcp", ln)
	if err := srv.AddListener(tcp); err != nil {
		ln.Close()
		return nil, fmt.Errorf("broker: add listener: %w", err)
	}
	if err := srv.Serve(); err != nil {
		ln.Close()
		return nil, fmt.Errorf("broker: serve: %w", err)
	}
	return &Broker{srv: srv, addr: addr, auth: h}, nil
}

// AcceptEdges ends the hold of Config.HoldEdges: edge logins are checked as usual from
// now on. Calling it again does nothing.
func (b *Broker) AcceptEdges() { b.auth.edgesOpen.Store(true) }

// Addr is the address the broker listens on (host:port).
func (b *Broker) Addr() string { return b.addr }

// URL is the broker's address as an MQTT URL for clients ("tcp://host:port").
func (b *Broker) URL() string { return "tcp://" + b.addr }

// Close disconnects every client and stops listening.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		b.closeErr = b.srv.Close()
	})
	return b.closeErr
}

// checkService compares a username/password with the service account in constant time.
func (h *authHook) checkService(user, password string) bool {
	u := subtle.ConstantTimeCompare([]byte(user), []byte(h.serviceUser))
	p := subtle.ConstantTimeCompare([]byte(password), []byte(h.servicePassword))
	return u&p == 1
}

// credentialTimeout bounds a Credentials lookup: the broker's connect path has no
// context of its own.
const credentialTimeout = 5 * time.Second

func (h *authHook) checkEdge(site, password string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), credentialTimeout)
	defer cancel()
	ok, err := h.creds.CheckEdge(ctx, site, password)
	if err != nil {
		h.log.Warn("broker: credential lookup failed", "site", site, "err", err)
		return false
	}
	return ok
}

package mqtt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/larder-lockers/larder/protocol"
)

// ErrOffline is returned for a publish attempted while the edge is not connected.
var ErrOffline = errors.New("mqtt: not connected to the broker")

// errTimeout is a paho token that did not complete within Config.OpTimeout.
var errTimeout = errors.New("mqtt: timed out waiting for the broker")

// stableAfter is how long a connection must last before the backoff starts over.
const stableAfter = time.Minute

// Client is the edge's sync with the cloud. Create it with New, run it with Run (once),
// and call Notify whenever the core has committed a new outbox event or command ack.
type Client struct {
	cfg   Config
	ports Ports
	log   *slog.Logger
	m     *metrics

	wake    chan struct{}         // cap 1: the outbox has new events (Notify)
	ackSig  chan struct{}         // cap 1: an EventAck arrived (see ackHigh)
	ackWake chan struct{}         // cap 1: a command ack may have been queued (Notify)
	telWake chan struct{}         // cap 1: desired applied or outbox caught up; publish telemetry now
	inbound chan protocol.Message // desired and command messages for the worker
	stopped chan struct{}         // closed when Run's context ends: nothing waits on inbound any more

	ackMu   sync.Mutex
	ackHigh uint64 // highest EventAck.Seq received and not yet taken by the drainer
	// ackRejected are the rejections of the acks received since the drainer last took
	// them, one per sequence (at most maxAckRejections).
	ackRejected []protocol.Rejection

	mu  sync.Mutex // guards cli
	cli paho.Client

	running atomic.Bool
}

// New checks cfg and ports and returns a Client. log nil discards; it carries the
// caller's context (the daemon's logger already names the site). reg nil registers no
// metrics anywhere.
func New(cfg Config, ports Ports, log *slog.Logger, reg prometheus.Registerer) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := ports.validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(reg, ports.Reporter)
	if err != nil {
		return nil, fmt.Errorf("mqtt: metrics: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Client{
		cfg:     cfg,
		ports:   ports,
		log:     log,
		m:       m,
		wake:    make(chan struct{}, 1),
		ackSig:  make(chan struct{}, 1),
		ackWake: make(chan struct{}, 1),
		telWake: make(chan struct{}, 1),
		inbound: make(chan protocol.Message, cfg.InboundQueue),
		stopped: make(chan struct{}),
	}, nil
}

// Notify tells the sync that the core has committed new outbox events or command acks.
// It never blocks and is safe from any goroutine; calls while a wake-up is pending
// coalesce.
func (c *Client) Notify() {
	signal(c.wake)
	signal(c.ackWake)
}

// Connected reports whether the edge is connected to the broker right now.
func (c *Client) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cli != nil
}

// Run connects, keeps reconnecting and syncs until ctx ends; then it publishes the
// retained offline status, disconnects and returns nil. It returns an error only when
// called twice.
func (c *Client) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("mqtt: Run called twice")
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); c.worker(ctx) }()
	go func() { defer wg.Done(); <-ctx.Done(); close(c.stopped) }()
	defer wg.Wait()

	c.log.Info("mqtt: starting", "config", c.cfg)
	rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	attempt := 0
	for {
		if ctx.Err() != nil {
			return nil
		}
		lost := make(chan struct{})
		var broker string
		cli := c.newPaho(lost, &broker)
		c.m.attempts.Inc()
		start := time.Now()
		if err := c.connect(ctx, cli); err != nil {
			c.log.Warn("mqtt: connect failed", "attempt", attempt, "err", err)
		} else {
			c.session(ctx, cli, lost, broker)
			if ctx.Err() != nil {
				c.shutdown(cli)
				return nil
			}
			if time.Since(start) >= stableAfter {
				attempt = 0
			}
		}
		d := backoff(attempt, c.cfg.BackoffMin, c.cfg.BackoffMax, rng)
		attempt++
		c.log.Debug("mqtt: reconnecting later", "delay", d)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(d):
		}
	}
}

// newPaho builds a fresh paho client for one connection; lost is closed when that
// connection drops. trying is set to each broker URL as paho tries it; read it only
// once Connect has completed.
func (c *Client) newPaho(lost chan struct{}, trying *string) paho.Client {
	var once sync.Once
	opts := paho.NewClientOptions()
	// paho tries the brokers in the order added, on every Connect; each attempt is a
	// fresh client, so every reconnect starts again from the first (Validate has
	// checked the list).
	brokers, _ := c.cfg.Brokers()
	for _, b := range brokers {
		opts.AddBroker(b)
	}
	opts.
		SetClientID(c.cfg.clientID()).
		SetProtocolVersion(4).
		SetCleanSession(false).
		SetOrderMatters(false).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetResumeSubs(false).
		SetKeepAlive(c.cfg.KeepAlive).
		SetPingTimeout(c.cfg.OpTimeout).
		SetConnectTimeout(c.cfg.ConnectTimeout).
		SetWriteTimeout(c.cfg.OpTimeout).
		SetMaxResumePubInFlight(c.cfg.OutboxWindow).
		SetStore(paho.NewMemoryStore()).
		SetDefaultPublishHandler(c.route(lost)).
		// paho calls this before trying each broker, so the last call before the
		// CONNACK names the broker the connection is to.
		SetConnectionAttemptHandler(func(u *url.URL, tlsCfg *tls.Config) *tls.Config {
			*trying = u.Redacted()
			return tlsCfg
		}).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			c.log.Warn("mqtt: connection lost", "err", err)
			once.Do(func() { close(lost) })
		})
	if c.cfg.Username != "" {
		opts.SetUsername(c.cfg.Username)
		opts.SetPassword(c.cfg.Password)
	}
	if c.cfg.TLS != nil {
		opts.SetTLSConfig(c.cfg.TLS)
	}
	if will, err := protocol.Encode(protocol.Header{}, protocol.Status{Online: false, Software: c.cfg.Software}); err == nil {
		ch := protocol.ChanStatus
		opts.SetBinaryWill(protocol.Topic(c.cfg.Site, ch), will, ch.QoS(), ch.Retained())
	}
	return paho.NewClient(opts)
}

// connect makes one connection attempt; it gives up early when ctx ends, so a shutdown
// never waits for a broker that does not answer.
func (c *Client) connect(ctx context.Context, cli paho.Client) error {
	tok := cli.Connect()
	// paho bounds the attempt at each broker with ConnectTimeout and tries them one after
	// the other; the extra OpTimeout is our own guard.
	brokers, _ := c.cfg.Brokers()
	t := time.NewTimer(time.Duration(len(brokers))*c.cfg.ConnectTimeout + c.cfg.OpTimeout)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		cli.Disconnect(0)
		return ctx.Err()
	case <-t.C:
		cli.Disconnect(0)
		return errTimeout
	}
}

// session runs one connection, to broker, until it drops or ctx ends.
func (c *Client) session(ctx context.Context, cli paho.Client, lost <-chan struct{}, broker string) {
	if err := c.onConnect(cli); err != nil {
		c.log.Warn("mqtt: connect sequence failed", "err", err)
		c.drop(cli)
		return
	}
	c.mu.Lock()
	c.cli = cli
	c.mu.Unlock()
	c.m.connected.Set(1)
	c.log.Info("mqtt: connected", "broker", broker)
	c.link(ctx, true)

	sctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 3)
	var wg sync.WaitGroup
	for _, loop := range []func(context.Context, paho.Client) error{c.drain, c.telemetry, c.publishAcks} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := loop(sctx, cli); err != nil {
				errc <- err
			}
		}()
	}
	var failed error
	select {
	case <-ctx.Done():
	case <-lost:
	case failed = <-errc:
	}
	cancel()
	wg.Wait()

	c.mu.Lock()
	c.cli = nil
	c.mu.Unlock()
	c.m.connected.Set(0)
	c.link(ctx, false)
	if failed != nil {
		// The link looks dead although paho has not noticed yet: drop it and start over.
		c.log.Warn("mqtt: dropping connection", "err", failed)
		c.drop(cli)
	}
}

// link tells Ports.Link that the connection is up or has ended. A failure is logged:
// the sync goes on, and the core's outage record is only as precise as its store.
func (c *Client) link(ctx context.Context, up bool) {
	if c.ports.Link == nil {
		return
	}
	ctx = context.WithoutCancel(ctx) // a shutdown ends the link too
	var err error
	if up {
		err = c.ports.Link.LinkUp(ctx)
	} else {
		err = c.ports.Link.LinkDown(ctx)
	}
	if err != nil {
		c.log.Error("mqtt: recording the link", "up", up, "err", err)
	}
}

// drop ends a connection we gave up on. paho cannot close a socket without sending
// DISCONNECT, and a DISCONNECT that gets through cancels the Last Will, which would
// leave the retained status saying online while we back off. So say offline first;
// if even that fails, the DISCONNECT most likely fails too and the Will fires.
func (c *Client) drop(cli paho.Client) {
	payload, err := protocol.Encode(protocol.Header{}, protocol.Status{Online: false, Software: c.cfg.Software})
	if err == nil && cli.IsConnected() {
		ch := protocol.ChanStatus
		cli.Publish(protocol.Topic(c.cfg.Site, ch), ch.QoS(), ch.Retained(), payload).WaitTimeout(time.Second)
	}
	cli.Disconnect(0)
}

// onConnect is the sequence every new connection starts with; see the package doc.
func (c *Client) onConnect(cli paho.Client) error {
	filters := map[string]byte{}
	for _, ch := range []protocol.Channel{protocol.ChanDesired, protocol.ChanCommands, protocol.ChanEventAck} {
		filters[protocol.Topic(c.cfg.Site, ch)] = ch.QoS()
	}
	tok := cli.SubscribeMultiple(filters, nil) // nil: the default handler, route(lost)
	if err := c.wait(tok); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	// A refused filter (SUBACK 0x80) is no error to paho, but without it the edge would
	// never hear acks, desired state or commands on this connection. A broker refuses
	// one when its ACL lacks the topic, or (nats-server) when the session's QoS 1
	// subscriptions would overdraw its packet ids (see deploy/nats). Dropping the
	// connection retries after the backoff, and the refusal is in the log.
	if st, ok := tok.(*paho.SubscribeToken); ok {
		for f, code := range st.Result() {
			if code >= 0x80 {
				return fmt.Errorf("subscribe: broker refused %s (SUBACK %#x)", f, code)
			}
		}
	}
	if err := c.pub(cli, protocol.Status{Online: true, Software: c.cfg.Software}); err != nil {
		return fmt.Errorf("status: %w", err)
	}
	// No desired_get: the cloud answers every birth with a full snapshot (protocol
	// clause connect.snapshot), and asking as well got the same snapshot twice.
	return c.publishBirth(cli)
}

func (c *Client) publishBirth(cli paho.Client) error {
	b, err := c.ports.Reporter.Birth()
	if err != nil {
		// Without a birth the cloud still gets events and status; carry on.
		c.log.Error("mqtt: birth from store", "err", err)
		return nil
	}
	if err := c.pub(cli, b); err != nil {
		return fmt.Errorf("birth: %w", err)
	}
	return nil
}

func (c *Client) requestSnapshot(cli paho.Client, reason string) error {
	v, err := c.ports.Desired.DesiredVersion()
	if err != nil {
		c.log.Error("mqtt: desired version from store", "err", err)
		v = 0 // asking with Have 0 always gets a snapshot
	}
	if err := c.pub(cli, protocol.DesiredGet{Have: v, Reason: reason}); err != nil {
		return fmt.Errorf("desired get: %w", err)
	}
	c.log.Info("mqtt: requested desired snapshot", "have", v, "reason", reason)
	return nil
}

// shutdown announces a clean exit: a DISCONNECT suppresses the Will, so publish the
// retained offline status ourselves first.
func (c *Client) shutdown(cli paho.Client) {
	if err := c.pub(cli, protocol.Status{Online: false, Software: c.cfg.Software}); err != nil {
		c.log.Warn("mqtt: offline status on shutdown", "err", err)
	}
	cli.Disconnect(250)
	c.log.Info("mqtt: disconnected")
}

// pub publishes body on the channel that carries its type, with that channel's QoS and
// retain flag, and waits for the broker at most OpTimeout.
func (c *Client) pub(cli paho.Client, body protocol.Body) error {
	payload, err := protocol.Encode(protocol.Header{}, body)
	if err != nil {
		return err
	}
	return c.pubRaw(cli, chanOf(body.MessageType()), payload)
}

// pubRaw publishes payload on ch. It refuses a cloud→edge channel: brokers drop such a
// publish (or disconnect), and the edge never has a reason to make one (protocol clause
// access.edge).
func (c *Client) pubRaw(cli paho.Client, ch protocol.Channel, payload []byte) error {
	if !ch.FromEdge() {
		return fmt.Errorf("mqtt: an edge never publishes on %s, a cloud→edge channel", ch)
	}
	return c.wait(cli.Publish(protocol.Topic(c.cfg.Site, ch), ch.QoS(), ch.Retained(), payload))
}

// current is the connected paho client, or nil.
func (c *Client) current() paho.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cli
}

func (c *Client) wait(tok paho.Token) error {
	if !tok.WaitTimeout(c.cfg.OpTimeout) {
		return errTimeout
	}
	return tok.Error()
}

func chanOf(t protocol.Type) protocol.Channel {
	for _, ch := range protocol.Channels() {
		if ch.Type() == t {
			return ch
		}
	}
	panic(fmt.Sprintf("mqtt: no channel carries %q", t))
}

// telemetry publishes the core's telemetry every TelemetryInterval (QoS 0), and at once
// when desired state was applied or the outbox caught up (telWake), so that the cloud
// hears the applied version and the drained outbox promptly.
func (c *Client) telemetry(ctx context.Context, cli paho.Client) error {
	t := time.NewTicker(c.cfg.TelemetryInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-c.telWake:
		}
		tel, err := c.ports.Reporter.Telemetry()
		if err != nil {
			c.log.Error("mqtt: telemetry from store", "err", err)
			continue
		}
		if err := c.pub(cli, tel); err != nil {
			c.log.Warn("mqtt: telemetry", "err", err)
		}
	}
}

// ackBatch is how many queued command acks sendAcks reads from the core at a time.
const ackBatch = 32

// publishAcks publishes the core's queued command acks in order while connected, each
// removed from the queue once the broker has acknowledged it (PUBACK). A publish that
// fails leaves it queued for the next try or the next connection; so does a failure to
// remove it, which at worst sends it twice (the cloud takes duplicate acks: states only
// move forward).
func (c *Client) publishAcks(ctx context.Context, cli paho.Client) error {
	cmds := c.ports.Commands
	retry := time.NewTicker(time.Second)
	defer retry.Stop()
	for {
		c.sendAcks(cli, cmds)
		select {
		case <-ctx.Done():
			return nil
		case <-c.ackWake:
		case <-retry.C:
		}
	}
}

// sendAcks publishes queued acks until none is left or one fails.
func (c *Client) sendAcks(cli paho.Client, cmds Commands) {
	for {
		batch, err := cmds.PendingCommandAcks(ackBatch)
		if err != nil {
			c.log.Error("mqtt: command acks from store", "err", err)
			return
		}
		if len(batch) == 0 {
			return
		}
		for _, a := range batch {
			if err := c.pubRaw(cli, protocol.ChanCommandAck, a.Payload); err != nil {
				c.log.Warn("mqtt: command ack", "err", err)
				return
			}
			c.m.commandAcksSent.Inc()
			if err := cmds.CommandAckSent(a.Key); err != nil {
				c.log.Error("mqtt: command ack sent, not removed from store", "err", err)
				return
			}
		}
	}
}

// signal does a non-blocking send on a capacity-1 channel.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

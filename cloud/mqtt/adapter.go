package mqtt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/protocol"
)

// ErrClosed is returned by publishes after Close.
var ErrClosed = errors.New("mqtt: adapter closed")

// ErrNotConnected is returned by publishes while the broker connection is down.
var ErrNotConnected = errors.New("mqtt: not connected to the broker")

// Adapter connects the cloud's domain to the fleet over MQTT. Create it with [New],
// then [Adapter.Start]; [Adapter.Close] stops it. It implements [Publisher].
type Adapter struct {
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	m       *metrics
	warn    *warnings
	client  paho.Client
	workers []*worker
	jobs    *jobs
	// own is the replica's view of the sites it owns (nil without [Config.Owner]: every
	// site). subMu serialises the subscription changes of onConnect and follow, and
	// guards subscribed: the owned sites the broker has subscriptions for on the current
	// connection.
	own        *owned
	subMu      sync.Mutex
	subscribed map[string]bool

	ctx    context.Context // cancelled by Close; parent of every Fleet call
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// lostAt is when this process last lost the broker (unix ns; 0: never): the start
	// of a central outage, which every edge suffered alike.
	lostAt atomic.Int64
	// connGen counts connections: a status replayed on a new connection (retained)
	// means something, the same message twice on one connection does not.
	connGen   atomic.Uint64
	ready     chan struct{} // closed after the first successful subscription
	readyOnce sync.Once
	closeOnce sync.Once
}

// New checks cfg and builds an adapter; nothing connects before Start.
func New(cfg Config) (*Adapter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.fill()
	m, err := newMetrics(cfg.Registry)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := &Adapter{cfg: cfg, log: cfg.Logger, now: cfg.Now, m: m, ctx: ctx, cancel: cancel, ready: make(chan struct{}),
		warn: newWarnings(cfg.Logger, cfg.Now, cfg.WarnEvery)}
	a.jobs = newJobs(a)
	if cfg.Owner != nil {
		a.own, a.subscribed = newOwned(), map[string]bool{}
		cfg.Owner.OnChange(func(site string, f cloud.Fence, owned bool) {
			if !protocol.ValidSite(site) {
				a.log.Error("mqtt: the owner reported an invalid site id", "site", site)
				return
			}
			a.own.set(site, f, owned)
		})
	}
	for range cfg.Workers {
		a.workers = append(a.workers, &worker{a: a, q: newQueue(cfg.SiteQueue), sites: map[string]*siteState{}})
	}

	opts := paho.NewClientOptions()
	// paho tries the brokers in order, on the first connection and on every reconnect.
	for _, u := range cfg.brokers() {
		opts.AddBroker(u)
	}
	opts.SetClientID(cfg.ClientID).
		SetUsername(cfg.Username).
		SetPassword(cfg.Password).
		// Clean sessions: nothing is lost when the broker keeps nothing for the cloud
		// while it is away, since the cloud resynchronises from births, retained status
		// and the edges' resends of everything after the last ack.
		SetCleanSession(true).
		// The handler only enqueues (never blocks), so paho may call it in order on its
		// router goroutine; that keeps a site's messages in arrival order. Flow control
		// is the edges' windows, not the handler (see the package doc).
		SetOrderMatters(true).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(30 * time.Second).
		SetKeepAlive(30 * time.Second).
		SetPingTimeout(10 * time.Second).
		SetWriteTimeout(cfg.PublishTimeout).
		SetConnectTimeout(cfg.ConnectTimeout).
		SetResumeSubs(false).
		SetMaxResumePubInFlight(64).
		SetDefaultPublishHandler(a.onMessage).
		SetOnConnectHandler(a.onConnect).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			a.lostAt.Store(a.now().UnixNano())
			a.m.connected.Set(0)
			a.log.Warn("mqtt: connection to broker lost", "err", err)
		})
	if plainTCP(cfg.brokers()) {
		opts.SetCustomOpenConnectionFn(dialBuffered(cfg.ConnectTimeout))
	}
	a.client = paho.NewClient(opts)
	return a, nil
}

func (c *Config) fill() {
	if c.ClientID == "" {
		c.ClientID = "larder-cloud-" + protocol.NewID()[:12]
	}
	if c.Workers == 0 {
		c.Workers = 8
	}
	if c.SiteQueue == 0 {
		c.SiteQueue = 2 * maxEdgeWindow
	}
	if c.BatchMax == 0 {
		c.BatchMax = 2048
	}
	if c.WarnEvery == 0 {
		c.WarnEvery = time.Minute
	}
	if c.CallTimeout == 0 {
		c.CallTimeout = 10 * time.Second
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = 10 * time.Second
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.CommandGrace == 0 {
		c.CommandGrace = 30 * time.Second
	}
	if c.GapHold == 0 {
		c.GapHold = maxEdgeWindow
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Start connects to the broker, waits until subscribed, and arms the expiry timers of
// pending commands. It fails if the first connection does not succeed within
// [Config.ConnectTimeout] (the adapter is then closed); later disconnections are
// retried forever in the background.
func (a *Adapter) Start(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	for _, w := range a.workers {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			w.run()
		}()
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.warn.run(a.ctx.Done())
	}()
	if a.own == nil {
		// With an owner, each site's timers are armed when the site is gained.
		pending, err := a.cfg.Fleet.PendingCommands(ctx, "")
		if err != nil {
			return fmt.Errorf("mqtt: pending commands: %w", err)
		}
		for _, p := range pending {
			a.jobs.arm(p.Site, p.Command)
		}
	}
	tok := a.client.Connect()
	if !waitToken(ctx, tok, a.cfg.ConnectTimeout) {
		a.client.Disconnect(0)
		return fmt.Errorf("mqtt: connect %s: timed out after %s", a.cfg.Broker, a.cfg.ConnectTimeout)
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("mqtt: connect %s: %w", a.cfg.Broker, err)
	}
	// Subscribing happens in onConnect; callers expect a started adapter to hear.
	t := time.NewTimer(a.cfg.ConnectTimeout)
	defer t.Stop()
	select {
	case <-a.ready:
		if a.own != nil {
			a.wg.Add(2)
			go func() {
				defer a.wg.Done()
				a.follow()
			}()
			go func() {
				defer a.wg.Done()
				a.jobs.reload()
			}()
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("mqtt: subscribe at %s: timed out", a.cfg.Broker)
	}
}

// Close disconnects, stops the workers (forgetting queued messages: their events are
// unacknowledged, so the edges resend them to the next process) and the command
// timers. It is idempotent.
func (a *Adapter) Close() error {
	a.closeOnce.Do(func() {
		a.client.Disconnect(250)
		a.cancel()
		a.jobs.stop()
		for _, w := range a.workers {
			w.q.close()
		}
		a.wg.Wait()
		a.m.connected.Set(0)
	})
	return nil
}

// subscriptions are the filters the cloud consumes: every edge-to-cloud channel, of
// every site or of [Config.Sites].
func (a *Adapter) subscriptions() map[string]byte {
	subs := map[string]byte{}
	for _, c := range protocol.Channels() {
		if !c.FromEdge() {
			continue
		}
		filters := []string{protocol.AllSites(c)}
		if len(a.cfg.Sites) > 0 {
			filters = filters[:0]
			for _, s := range a.cfg.Sites {
				filters = append(filters, protocol.Topic(s, c))
			}
		}
		for _, f := range filters {
			subs[f] = c.QoS()
		}
	}
	return subs
}

// onConnect (re)subscribes on every connection: with clean sessions, subscriptions do
// not survive a reconnect (paho #173). paho calls it on its own goroutine.
func (a *Adapter) onConnect(c paho.Client) {
	gen := a.connGen.Add(1)
	if a.own != nil {
		a.onConnectOwned(c, gen)
		return
	}
	if !a.subscribeAll(c, gen) {
		return
	}
	if gen > 1 {
		// What the edges sent while the cloud was away went nowhere (its session is
		// clean): a non-advancing ack makes a 1.1 edge resend it at once (rule
		// ack.resume) instead of after its ack timeout. Each worker acknowledges the
		// sites it has heard from since the process started; an edge it has not, or
		// one with no event committed yet (there is no ack of 0), resends after its
		// ack timeout.
		for _, w := range a.workers {
			w.q.push(task{kind: taskAckKnown})
		}
	}
	a.connected()
}

// subscribeAll subscribes to every site's edge→cloud topics (or Config.Sites'), retrying
// on the open connection gen; false when that connection ended first.
func (a *Adapter) subscribeAll(c paho.Client, gen uint64) bool {
	for {
		tok := c.SubscribeMultiple(a.subscriptions(), a.onMessage)
		err := errors.New("no SUBACK within the publish timeout")
		if tok.WaitTimeout(a.cfg.PublishTimeout) {
			err = tok.Error()
		}
		if err == nil {
			// A refusal is retried like a failure: nats-server refuses a QoS 1 filter
			// while JetStream elects the leaders a dead node held (seen after a node's
			// SIGKILL), and a cloud without, say, its command acks is not connected.
			var refused []string
			for f, code := range tok.(*paho.SubscribeToken).Result() {
				if code >= 0x80 {
					refused = append(refused, f)
				}
			}
			if len(refused) == 0 {
				return true
			}
			slices.Sort(refused)
			err = fmt.Errorf("subscription refused by broker: %s", strings.Join(refused, " "))
		}
		a.log.Error("mqtt: subscribe failed; retrying", "err", err)
		if !a.stillConnected(c, gen) {
			return false
		}
	}
}

// stillConnected waits retryAfter and reports whether connection gen is still the open
// one, to retry a subscription on it (a new connection subscribes afresh). paho's
// Disconnect would not do: it ends the client for good, without reconnecting.
func (a *Adapter) stillConnected(c paho.Client, gen uint64) bool {
	t := time.NewTimer(retryAfter)
	defer t.Stop()
	select {
	case <-a.ctx.Done():
		return false
	case <-t.C:
	}
	return c.IsConnectionOpen() && a.connGen.Load() == gen
}

func (a *Adapter) connected() {
	a.m.connected.Set(1)
	a.readyOnce.Do(func() { close(a.ready) })
	a.log.Info("mqtt: connected and subscribed", "broker", a.cfg.Broker)
}

// onConnectOwned subscribes to the sites the replica owns. On a reconnect it also
// acknowledges each site's high water again: events the edges sent while this replica
// was away were dropped with its clean session, and a non-advancing ack makes a 1.1
// edge resend them at once instead of after its ack timeout.
func (a *Adapter) onConnectOwned(c paho.Client, gen uint64) {
	if a.cfg.SubscribeAll && !a.subscribeAll(c, gen) {
		return
	}
	a.subMu.Lock()
	clear(a.subscribed)
	a.subMu.Unlock()
	start := a.now()
	for {
		// Between rounds follow may have subscribed gained sites, or dropped lost ones.
		a.subMu.Lock()
		var todo []string
		for _, s := range a.own.sites() {
			if !a.subscribed[s] {
				todo = append(todo, s)
			}
		}
		granted, err := a.subscribeSites(todo)
		for _, s := range granted {
			a.subscribed[s] = true
		}
		a.m.sitesOwned.Set(float64(len(a.subscribed)))
		a.subMu.Unlock()
		if gen > 1 {
			for _, s := range granted {
				a.dispatch(task{site: s, kind: taskAckAgain})
				// What the site's edge published while this replica was away (its
				// birth on reconnecting to another node) and what the replica failed
				// to publish meanwhile (desired deltas, commands) went nowhere: as
				// after a gain, a resync brings a birth, answered with a full
				// snapshot and the pending commands, once the repeated ack has
				// brought the edge's resend.
				time.AfterFunc(2*gainAckRepeat, func() {
					if a.owns(s) {
						a.resync(s)
					}
				})
			}
		}
		if err == nil {
			break
		}
		a.log.Error("mqtt: subscribe failed; retrying", "sites", len(todo), "granted", len(granted), "err", err)
		if !a.stillConnected(c, gen) {
			return
		}
	}
	a.log.Info("mqtt: subscribed to the owned sites", "sites", len(a.own.sites()), "seconds", a.now().Sub(start).Seconds())
	a.connected()
}

// maxEdgeWindow is the largest outbox window an edge may use (edge/mqtt's OutboxWindow
// is 1..1000): the most events of a site past the cloud's last ack.
const maxEdgeWindow = 1000

// onMessage runs on paho's router goroutine: parse the topic and hand the message to
// the site's worker without blocking.
func (a *Adapter) onMessage(_ paho.Client, msg paho.Message) {
	site, ch, err := protocol.ParseTopic(msg.Topic())
	if err != nil || !ch.FromEdge() {
		a.log.Debug("mqtt: message on an unexpected topic", "topic", msg.Topic())
		return
	}
	a.m.receivedOn(ch).Inc()
	if !a.owns(site) {
		a.unowned(site, ch)
		return
	}
	if !a.dispatch(task{site: site, ch: ch, payload: msg.Payload(), at: a.now(), gen: a.connGen.Load()}) && a.ctx.Err() == nil {
		// Only events are turned away, and only those of a site already past SiteQueue
		// in its worker's queue: an edge ignoring its window. They are not
		// acknowledged, so the edge still holds them and sends them again (see the
		// package doc); no other site's events are affected.
		a.m.refused.Inc()
		a.warn.Warn("mqtt: edge sends beyond its window; events dropped unacknowledged", "site", site, "site_queue", a.cfg.SiteQueue)
	}
}

func (a *Adapter) dispatch(t task) bool {
	return a.workers[siteHash(t.site)%uint32(len(a.workers))].q.push(t)
}

// siteHash is FNV-1a of site, inline: hash/fnv's would allocate once per message.
func siteHash(site string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(site); i++ {
		h ^= uint32(site[i])
		h *= 16777619
	}
	return h
}

// PublishDesired publishes desired state d to site (see [Publisher]).
func (a *Adapter) PublishDesired(ctx context.Context, site string, d protocol.Desired) error {
	if !protocol.ValidSite(site) {
		return fmt.Errorf("mqtt: publish desired: invalid site %q", site)
	}
	if err := a.publish(ctx, site, protocol.ChanDesired, protocol.Header{Seq: d.Version}, d); err != nil {
		return fmt.Errorf("mqtt: publish desired v%d to %s: %w", d.Version, site, err)
	}
	return nil
}

// PublishCommand publishes command c to site and arms its expiry timer (see
// [Publisher]). The timer is armed even when the publish fails, so a command that
// never reaches the edge still ends TIMED_OUT. With an owner, only the site's owner
// arms it (see the package doc): a replica that publishes for a site it does not own
// leaves the timer to the owner.
func (a *Adapter) PublishCommand(ctx context.Context, site string, c protocol.Command) error {
	if !protocol.ValidSite(site) {
		return fmt.Errorf("mqtt: publish command: invalid site %q", site)
	}
	if err := c.Validate(); err != nil {
		return fmt.Errorf("mqtt: publish command %s: %w", c.ID, err)
	}
	a.jobs.arm(site, c)
	if err := a.publish(ctx, site, protocol.ChanCommands, commandHeader(c), c); err != nil {
		return fmt.Errorf("mqtt: publish command %s to %s: %w", c.ID, site, err)
	}
	return nil
}

// commandHeader is the envelope of command c: its id is the command's (the edge
// deduplicates on body.id; the envelope says the same, so a republished command is a
// redelivery of one message), and commands are not sequenced.
func commandHeader(c protocol.Command) protocol.Header { return protocol.Header{ID: c.ID} }

// publish sends one message and waits for the broker's PUBACK, ctx or the publish
// timeout, whichever comes first.
func (a *Adapter) publish(ctx context.Context, site string, ch protocol.Channel, h protocol.Header, body protocol.Body) error {
	tok, err := a.publishAsync(site, ch, h, body)
	if err != nil {
		return err
	}
	return a.wait(ctx, tok)
}

func (a *Adapter) publishAsync(site string, ch protocol.Channel, h protocol.Header, body protocol.Body) (paho.Token, error) {
	if a.ctx.Err() != nil {
		return nil, ErrClosed
	}
	if !a.client.IsConnectionOpen() {
		return nil, ErrNotConnected
	}
	if h.Time.IsZero() {
		h.Time = a.now()
	}
	payload, err := protocol.Encode(h, body)
	if err != nil {
		return nil, err
	}
	return a.client.Publish(protocol.Topic(site, ch), ch.QoS(), ch.Retained(), payload), nil
}

func (a *Adapter) wait(ctx context.Context, tok paho.Token) error {
	if !waitToken(ctx, tok, a.cfg.PublishTimeout) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("no PUBACK within %s", a.cfg.PublishTimeout)
	}
	return tok.Error()
}

// waitToken waits for tok, ctx or d; true if the token completed.
func waitToken(ctx context.Context, tok paho.Token, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-tok.Done():
		return true
	case <-ctx.Done():
		return false
	case <-t.C:
		return false
	}
}

// call bounds one call into the domain.
func (a *Adapter) call() (context.Context, context.CancelFunc) {
	return context.WithTimeout(a.ctx, a.cfg.CallTimeout)
}

// callFor bounds one call into the domain on behalf of site, carrying the site's fence
// (none without an owner), which it also returns; ok is false when the replica does not
// own site, and then nothing is to be called.
func (a *Adapter) callFor(site string) (ctx context.Context, cancel context.CancelFunc, f cloud.Fence, ok bool) {
	f, ok = a.fence(site)
	if !ok {
		return nil, nil, f, false
	}
	ctx, cancel = a.call()
	if a.own != nil {
		ctx = cloud.WithFences(ctx, f)
	}
	return ctx, cancel, f, true
}

// unowned counts a message of a site this replica does not own: in flight while the
// site moved. It is not acknowledged; the edge resends it to the owner.
func (a *Adapter) unowned(site string, ch protocol.Channel) {
	a.m.unowned.WithLabelValues(ch.String()).Inc()
	a.warn.Warn("mqtt: message of a site this replica does not own ignored", "site", site, "channel", ch.String())
}

package loadgen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/larder-lockers/larder/protocol"
)

// software is what the simulated edges say they run, in status and birth.
const software = "larder-load"

// edgeCounters are the protocol facts every simulated edge adds to; the run reports
// them. Each is a count over the whole fleet.
type edgeCounters struct {
	eventsPublished atomic.Int64 // distinct events written to the outboxes
	eventsSent      atomic.Int64 // publishes of events, resends included
	eventsResent    atomic.Int64 // publishes of an event already sent once
	acksDuplicate   atomic.Int64 // event acks that acknowledged nothing new
	acksBeyond      atomic.Int64 // event acks beyond the last event published: a cloud bug
	desiredApplied  atomic.Int64
	desiredStale    atomic.Int64 // desired messages at or below the applied version
	desiredGaps     atomic.Int64 // gaps that outlived GapGrace and cost a snapshot request
	inboundDropped  atomic.Int64 // desired or command messages dropped by a full inbound queue
	rejected        atomic.Int64 // inbound messages that did not decode
	commands        atomic.Int64 // distinct commands received
	commandsRepeat  atomic.Int64 // commands received again (answered with their last state)
	commandAcks     atomic.Int64 // command acks the broker took
	commandAckFails atomic.Int64 // command acks the broker did not take in time, after retries
	connectionsLost atomic.Int64
	stormLost       atomic.Int64 // connections lost while the run restarted the broker
	publishFailures atomic.Int64 // status, birth, desired get or telemetry not taken in time
}

// edgeOptions are what every simulated edge shares.
type edgeOptions struct {
	broker       string
	compartments []protocol.Compartment
	telemetry    time.Duration
	window       int
	ackTimeout   time.Duration
	gapGrace     time.Duration
	opTimeout    time.Duration
	backoffMin   time.Duration
	backoffMax   time.Duration
	counters     *edgeCounters
	log          *slog.Logger
	// storm, while set, counts lost connections apart (the run restarted the broker)
	// instead of as failures.
	storm atomic.Bool
}

// edge is one simulated larder-edge, speaking protocol 1.1 over paho as edge/mqtt does:
// client id larder-edge-{site}, persistent session, retained status with an offline
// Last Will, on every connect subscribe → online status → birth (whose snapshot answer
// replaces a desired get), then the outbox drained at most window events beyond the
// last event ack, resent after ackTimeout without progress or at once on an ack that
// does not advance (rule ack.resume, at most once per ackTimeout/4); desired state
// applied by version (gaps held for gapGrace, then a snapshot request) with telemetry
// at once after each; commands answered QUEUED → IN_PROGRESS → (door_opened event) →
// SUCCEEDED. A lost connection is redialled with larder-edge's full-jitter backoff
// until the run ends. Every inbound message is decoded in route and handled in handle:
// the one place the wire is read.
type edge struct {
	site     string
	ctx      context.Context // the run's: redialling stops when it ends
	key      []byte          // the site key, decoded
	user     string
	password string
	o        *edgeOptions
	started  time.Time

	inbound chan protocol.Message // desired and commands, for the worker
	wake    chan struct{}         // cap 1: new events in the outbox
	ackSig  chan struct{}         // cap 1: the ack mark moved
	telWake chan struct{}         // cap 1: publish telemetry now
	snapSig chan struct{}         // cap 1: a desired message was dropped: ask for a snapshot

	mu           sync.Mutex // guards everything below
	cli          paho.Client
	outbox       [][]byte // outbox[i] is the encoded event of seq i+1
	acked        uint64   // the cloud's cumulative event ack
	sent         uint64   // highest seq published on the current connection
	progress     time.Time
	fastResend   time.Time     // when the last resend on a non-advancing ack started
	connects     int           // connections made, the first included
	connectedAt  time.Time     // when the current connection's connect sequence ended
	ackCh        chan struct{} // closed and replaced whenever acked moves
	version      uint64        // desired version applied
	held         map[uint64]protocol.Desired
	gapTimer     *time.Timer
	reservations map[string]protocol.Reservation
	resWait      map[string]chan struct{}
	cmds         map[string]protocol.CommandAck // last ack of each command
	firstDesired chan struct{}                  // closed when the first desired message is applied
}

func newEdge(p provisioning, key []byte, o *edgeOptions) *edge {
	return &edge{
		site: p.Site, key: key, user: p.MQTTUsername, password: p.MQTTPassword, o: o,
		inbound: make(chan protocol.Message, 256),
		wake:    make(chan struct{}, 1), ackSig: make(chan struct{}, 1),
		telWake: make(chan struct{}, 1), snapSig: make(chan struct{}, 1),
		ackCh: make(chan struct{}), held: map[uint64]protocol.Desired{},
		reservations: map[string]protocol.Reservation{}, resWait: map[string]chan struct{}{},
		cmds: map[string]protocol.CommandAck{}, firstDesired: make(chan struct{}),
	}
}

// connect opens the MQTT session and runs the connect sequence; the edge's loops run
// until ctx ends. A lost connection is counted and redialled until ctx ends.
func (e *edge) connect(ctx context.Context) error {
	e.started = time.Now()
	e.ctx = ctx
	if err := e.dialWithin(e.o.opTimeout); err != nil {
		return err
	}
	go e.worker(ctx)
	go e.drain(ctx)
	go e.telemetryLoop(ctx)
	return nil
}

func (e *edge) dial() error {
	opts := paho.NewClientOptions()
	for _, b := range brokerURLs(e.o.broker) { // tried in order, as larder-edge does
		opts.AddBroker(b)
	}
	opts.
		SetClientID(protocol.EdgeClientID(e.site)).
		SetUsername(e.user).SetPassword(e.password).
		SetProtocolVersion(4).
		SetCleanSession(false).
		SetOrderMatters(false).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetResumeSubs(false).
		SetKeepAlive(30 * time.Second).
		SetPingTimeout(e.o.opTimeout).
		SetConnectTimeout(e.o.opTimeout).
		SetWriteTimeout(e.o.opTimeout).
		SetMaxResumePubInFlight(e.o.window).
		SetStore(paho.NewMemoryStore()).
		SetDefaultPublishHandler(e.route).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			if e.o.storm.Load() {
				e.o.counters.stormLost.Add(1)
			} else {
				e.o.counters.connectionsLost.Add(1)
				e.o.log.Warn("loadgen: edge connection lost", "site", e.site, "err", err)
			}
			go e.redial()
		})
	if will, err := protocol.Encode(protocol.Header{}, protocol.Status{Online: false, Software: software}); err == nil {
		ch := protocol.ChanStatus
		opts.SetBinaryWill(protocol.Topic(e.site, ch), will, ch.QoS(), ch.Retained())
	}
	cli := paho.NewClient(opts)
	// As larder-edge: paho tries the brokers one after the other, each for opTimeout.
	// An attempt given up on is aborted, or it could still connect later, take the
	// session from this edge's next connection (same client id) and start a second
	// redial loop when it is itself replaced.
	if err := wait(cli.Connect(), time.Duration(len(brokerURLs(e.o.broker))+1)*e.o.opTimeout); err != nil {
		cli.Disconnect(0)
		return fmt.Errorf("edge %s: connect: %w", e.site, err)
	}
	if err := e.onConnect(cli); err != nil {
		cli.Disconnect(0)
		return fmt.Errorf("edge %s: %w", e.site, err)
	}
	return nil
}

// redial reconnects after a lost connection as edge/mqtt does: attempt n waits a
// uniformly random time in [0, min(backoffMax, backoffMin·2ⁿ)] ("full jitter", so that
// a fleet that lost its broker at once does not come back at once), until the run ends.
func (e *edge) redial() {
	e.mu.Lock()
	e.cli = nil
	e.mu.Unlock()
	for attempt := 0; ; attempt++ {
		limit := e.o.backoffMax
		if attempt < 30 {
			limit = min(limit, e.o.backoffMin<<attempt)
		}
		select {
		case <-e.ctx.Done():
			return
		case <-time.After(rand.N(limit + 1)):
		}
		if err := e.dial(); err == nil {
			return
		}
	}
}

// dialWithin dials until it succeeds or d has passed, backing off up to 2 s: the first
// connect of a fleet may find a broker cluster refusing logins or subscriptions for a
// while (NATS, while JetStream creates the sessions' consumers under load).
func (e *edge) dialWithin(d time.Duration) error {
	deadline := time.Now().Add(d)
	for wait := 250 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		err := e.dial()
		if err == nil || time.Now().Add(wait).After(deadline) {
			return err
		}
		time.Sleep(wait)
	}
}

// onConnect is edge/mqtt's connect sequence: subscribe, online status, birth (the
// cloud answers it with the full desired snapshot, rule connect.snapshot); then
// everything after the last event ack is sent again.
func (e *edge) onConnect(cli paho.Client) error {
	filters := map[string]byte{}
	for _, ch := range []protocol.Channel{protocol.ChanDesired, protocol.ChanCommands, protocol.ChanEventAck} {
		filters[protocol.Topic(e.site, ch)] = ch.QoS()
	}
	tok := cli.SubscribeMultiple(filters, e.route)
	if err := wait(tok, e.o.opTimeout); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	// As larder-edge: a refused filter (SUBACK 0x80, which paho does not report as an
	// error) fails the connect, rather than run without event acks or commands.
	for f, code := range tok.(*paho.SubscribeToken).Result() {
		if code >= 0x80 {
			return fmt.Errorf("subscribe: %s refused by the broker", f)
		}
	}
	if err := e.pub(cli, protocol.Status{Online: true, Software: software}); err != nil {
		return fmt.Errorf("status: %w", err)
	}
	e.mu.Lock()
	birth := protocol.Birth{Software: software, Protocol: protocol.Revision, Compartments: e.o.compartments,
		Boards:         []protocol.Board{{Address: 0, Profile: "kerong-cu16", Locks: len(e.o.compartments)}},
		DesiredVersion: e.version, OutboxHighWater: uint64(len(e.outbox))}
	e.mu.Unlock()
	if err := e.pub(cli, birth); err != nil {
		return fmt.Errorf("birth: %w", err)
	}
	e.mu.Lock()
	e.cli = cli
	e.sent = e.acked
	e.progress = time.Now()
	e.connects++
	e.connectedAt = time.Now()
	e.mu.Unlock()
	signal(e.wake)
	return nil
}

// close says offline (a DISCONNECT suppresses the Will) and disconnects.
func (e *edge) close() {
	e.mu.Lock()
	cli := e.cli
	e.cli = nil
	e.mu.Unlock()
	if cli == nil {
		return
	}
	_ = e.pub(cli, protocol.Status{Online: false, Software: software})
	cli.Disconnect(100)
}

func (e *edge) current() paho.Client {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cli
}

// route is every paho callback: decode, then handle an event ack at once and queue
// desired state and commands for the worker, never blocking paho.
func (e *edge) route(_ paho.Client, msg paho.Message) {
	site, ch, err := protocol.ParseTopic(msg.Topic())
	if err != nil || site != e.site {
		e.o.counters.rejected.Add(1)
		return
	}
	m, err := protocol.DecodeOn(ch, msg.Payload())
	if err != nil {
		e.o.counters.rejected.Add(1)
		e.o.log.Warn("loadgen: edge got a malformed message", "site", e.site, "channel", ch.String(), "err", err)
		return
	}
	if a, ok := m.Body.(protocol.EventAck); ok {
		e.ack(a.Seq)
		return
	}
	select {
	case e.inbound <- m:
	default:
		e.o.counters.inboundDropped.Add(1)
		if m.Type == protocol.TypeDesired {
			signal(e.snapSig)
		}
	}
}

// worker applies desired state and runs commands in arrival order.
func (e *edge) worker(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.snapSig:
			e.requestSnapshot("dropped")
		case m := <-e.inbound:
			e.handle(ctx, m)
		}
	}
}

// handle is what the edge does with each message the cloud sends it (event acks are
// taken in route).
func (e *edge) handle(ctx context.Context, m protocol.Message) {
	switch b := m.Body.(type) {
	case protocol.Desired:
		e.applyDesired(b)
	case protocol.Command:
		e.runCommand(ctx, b)
	}
}

// ack takes the cloud's cumulative event ack.
func (e *edge) ack(seq uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case seq == e.acked && e.sent > e.acked && time.Since(e.fastResend) >= e.o.ackTimeout/4:
		// Rule ack.resume: the cloud holds nothing past seq; resend the rest now.
		e.o.counters.acksDuplicate.Add(1)
		e.o.counters.eventsResent.Add(int64(e.sent - e.acked))
		e.fastResend = time.Now()
		e.sent = e.acked
		e.progress = time.Now()
		signal(e.ackSig)
		return
	case seq <= e.acked:
		e.o.counters.acksDuplicate.Add(1)
		return
	case seq > uint64(len(e.outbox)):
		e.o.counters.acksBeyond.Add(1)
		return
	}
	e.acked = seq
	e.progress = time.Now()
	close(e.ackCh)
	e.ackCh = make(chan struct{})
	signal(e.ackSig)
	if e.acked == uint64(len(e.outbox)) {
		signal(e.telWake) // as edge/mqtt: the drained outbox is reported at once
	}
}

// enqueue writes ev to the outbox and returns its sequence.
func (e *edge) enqueue(ev protocol.Event) (uint64, error) {
	e.mu.Lock()
	seq := uint64(len(e.outbox)) + 1
	data, err := protocol.Encode(protocol.Header{Seq: seq}, ev)
	if err != nil {
		e.mu.Unlock()
		return 0, err
	}
	e.outbox = append(e.outbox, data)
	e.mu.Unlock()
	e.o.counters.eventsPublished.Add(1)
	signal(e.wake)
	return seq, nil
}

// waitAcked waits until the cloud has acknowledged seq.
func (e *edge) waitAcked(ctx context.Context, seq uint64) error {
	for {
		e.mu.Lock()
		done, ch := e.acked >= seq, e.ackCh
		e.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("edge %s: event %d not acknowledged: %w", e.site, seq, ctx.Err())
		case <-ch:
		}
	}
}

// unacked is how many events of the outbox the cloud has not acknowledged.
func (e *edge) unacked() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.outbox) - int(e.acked)
}

// drain publishes the outbox, at most window beyond the last ack; with no progress for
// ackTimeout it sends everything unacknowledged again, with the same bytes.
func (e *edge) drain(ctx context.Context) {
	t := time.NewTimer(e.o.ackTimeout)
	defer t.Stop()
	for {
		e.mu.Lock()
		cli := e.cli
		var batch [][]byte
		if cli != nil {
			limit := min(uint64(len(e.outbox)), e.acked+uint64(e.o.window))
			if e.sent < e.acked {
				e.sent = e.acked
			}
			if e.sent == e.acked && limit > e.sent {
				e.progress = time.Now() // the clock starts with the first unacknowledged send
			}
			batch = e.outbox[e.sent:limit]
			e.sent = max(e.sent, limit)
		}
		deadline := e.progress.Add(e.o.ackTimeout)
		pending := e.sent > e.acked
		e.mu.Unlock()
		for _, data := range batch {
			ch := protocol.ChanEvents
			cli.Publish(protocol.Topic(e.site, ch), ch.QoS(), ch.Retained(), data)
		}
		e.o.counters.eventsSent.Add(int64(len(batch)))
		if pending {
			t.Reset(time.Until(deadline))
		} else {
			t.Reset(e.o.ackTimeout) // nothing to resend: just look again later
		}
		select {
		case <-ctx.Done():
			return
		case <-e.wake:
		case <-e.ackSig:
		case <-t.C:
			e.mu.Lock()
			if pending && e.sent > e.acked && time.Since(e.progress) >= e.o.ackTimeout {
				n := e.sent - e.acked
				e.o.counters.eventsResent.Add(int64(n))
				e.sent = e.acked
				e.progress = time.Now()
			}
			e.mu.Unlock()
		}
	}
}

// applyDesired applies a snapshot newer than the edge's version, or the delta right
// after it; a delta ahead of its predecessor is held for gapGrace (paho may swap two
// messages published back to back), then the edge asks for a snapshot.
func (e *edge) applyDesired(d protocol.Desired) {
	e.mu.Lock()
	applied := false
	switch {
	case d.Version <= e.version:
		e.o.counters.desiredStale.Add(1)
	case d.Full:
		clear(e.reservations)
		e.apply(d)
		applied = true
	case d.Version == e.version+1:
		e.apply(d)
		applied = true
	default:
		e.held[d.Version] = d
		if e.gapTimer == nil {
			e.gapTimer = time.AfterFunc(e.o.gapGrace, e.gapExpired)
		}
	}
	for applied {
		next, ok := e.held[e.version+1]
		if !ok {
			break
		}
		delete(e.held, next.Version)
		e.apply(next)
	}
	for v := range e.held {
		if v <= e.version {
			delete(e.held, v)
		}
	}
	if len(e.held) == 0 && e.gapTimer != nil {
		e.gapTimer.Stop()
		e.gapTimer = nil
	}
	e.mu.Unlock()
	if applied {
		signal(e.telWake)
	}
}

// apply puts d into force; e.mu is held.
func (e *edge) apply(d protocol.Desired) {
	for _, r := range d.Reservations {
		e.reservations[r.Order] = r
		if ch, ok := e.resWait[r.Order]; ok {
			close(ch)
			delete(e.resWait, r.Order)
		}
	}
	for _, id := range d.Cancel {
		delete(e.reservations, id)
	}
	e.version = d.Version
	e.o.counters.desiredApplied.Add(1)
	if e.firstDesired != nil {
		close(e.firstDesired)
		e.firstDesired = nil
	}
}

func (e *edge) gapExpired() {
	e.mu.Lock()
	gap := len(e.held) > 0
	clear(e.held)
	e.gapTimer = nil
	e.mu.Unlock()
	if gap {
		e.o.counters.desiredGaps.Add(1)
		e.requestSnapshot("gap")
	}
}

func (e *edge) requestSnapshot(reason string) {
	cli := e.current()
	if cli == nil {
		return
	}
	e.mu.Lock()
	have := e.version
	e.mu.Unlock()
	if err := e.pub(cli, protocol.DesiredGet{Have: have, Reason: reason}); err != nil {
		e.o.counters.publishFailures.Add(1)
	}
}

// ready is closed once the edge has applied its first desired message (the snapshot
// the cloud answers a birth with).
func (e *edge) ready() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.firstDesired == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return e.firstDesired
}

// waitReservation waits until the desired state holds a reservation for order.
func (e *edge) waitReservation(ctx context.Context, order string) (protocol.Reservation, error) {
	e.mu.Lock()
	if r, ok := e.reservations[order]; ok {
		e.mu.Unlock()
		return r, nil
	}
	ch, ok := e.resWait[order]
	if !ok {
		ch = make(chan struct{})
		e.resWait[order] = ch
	}
	e.mu.Unlock()
	select {
	case <-ctx.Done():
		return protocol.Reservation{}, fmt.Errorf("edge %s: no reservation for order %s: %w", e.site, order, ctx.Err())
	case <-ch:
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	r, ok := e.reservations[order]
	if !ok {
		return protocol.Reservation{}, fmt.Errorf("edge %s: reservation for order %s cancelled at once", e.site, order)
	}
	return r, nil
}

// runCommand carries out a command as larder-edge does, with the door as proof: an
// open is QUEUED, IN_PROGRESS, its door_opened event goes into the outbox, then
// SUCCEEDED (and the door closes again). A command seen before gets its last ack again.
func (e *edge) runCommand(ctx context.Context, c protocol.Command) {
	e.mu.Lock()
	last, seen := e.cmds[c.ID]
	e.mu.Unlock()
	if seen {
		e.o.counters.commandsRepeat.Add(1)
		e.sendAck(last)
		return
	}
	e.o.counters.commands.Add(1)
	final := func(a protocol.CommandAck) {
		e.mu.Lock()
		e.cmds[c.ID] = a
		e.mu.Unlock()
		e.sendAck(a)
	}
	switch {
	case !time.Now().Before(c.ExpiresAt):
		final(protocol.CommandAck{CommandID: c.ID, State: protocol.StateRejected, Error: protocol.ErrExpired, Message: "arrived after its expiry"})
		return
	case c.Compartment > len(e.o.compartments):
		final(protocol.CommandAck{CommandID: c.ID, State: protocol.StateRejected, Error: protocol.ErrUnknownCompartment, Message: "no such compartment"})
		return
	}
	switch c.Kind {
	case protocol.CmdOpen:
		e.sendAck(protocol.CommandAck{CommandID: c.ID, State: protocol.StateQueued})
		e.sendAck(protocol.CommandAck{CommandID: c.ID, State: protocol.StateInProgress})
		cred := protocol.CredOpsRemote
		if c.Purpose == protocol.PurposeLoading {
			cred = protocol.CredDriver
		}
		if _, err := e.enqueue(protocol.Event{Kind: protocol.EventDoorOpened, Credential: cred, Compartment: c.Compartment, Generation: c.Generation}); err != nil {
			final(protocol.CommandAck{CommandID: c.ID, State: protocol.StateFailed, Error: protocol.ErrInternal, Message: err.Error()})
			return
		}
		final(protocol.CommandAck{CommandID: c.ID, State: protocol.StateSucceeded})
		_, _ = e.enqueue(protocol.Event{Kind: protocol.EventDoorClosed, Credential: protocol.CredNone, Compartment: c.Compartment})
	case protocol.CmdResync:
		final(protocol.CommandAck{CommandID: c.ID, State: protocol.StateSucceeded})
		if cli := e.current(); cli != nil {
			if err := e.onConnect(cli); err != nil {
				e.o.counters.publishFailures.Add(1)
			}
		}
	default:
		final(protocol.CommandAck{CommandID: c.ID, State: protocol.StateSucceeded})
	}
}

// sendAck publishes a command ack at QoS 1 and waits for the broker, retrying twice.
func (e *edge) sendAck(a protocol.CommandAck) {
	for range 3 {
		cli := e.current()
		if cli == nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if err := e.pub(cli, a); err == nil {
			e.o.counters.commandAcks.Add(1)
			return
		}
	}
	e.o.counters.commandAckFails.Add(1)
}

// telemetryLoop publishes telemetry every interval, and at once after desired state was
// applied or the outbox drained (edge/mqtt does the same).
func (e *edge) telemetryLoop(ctx context.Context) {
	t := time.NewTicker(e.o.telemetry)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-e.telWake:
		}
		cli := e.current()
		if cli == nil {
			continue
		}
		e.mu.Lock()
		tel := protocol.Telemetry{UptimeSeconds: time.Since(e.started).Seconds(), OutboxDepth: len(e.outbox) - int(e.acked),
			DesiredVersion: e.version, Zones: zoneReadings, Boards: []protocol.BoardHealth{{Address: 0, Online: true}}}
		e.mu.Unlock()
		payload, err := protocol.Encode(protocol.Header{}, tel)
		if err != nil {
			continue
		}
		ch := protocol.ChanTelemetry
		cli.Publish(protocol.Topic(e.site, ch), ch.QoS(), ch.Retained(), payload) // QoS 0: nothing to wait for
	}
}

var zoneReadings = func() []protocol.ZoneReading {
	c, f, a := 4.0, -18.0, 21.0
	return []protocol.ZoneReading{{Zone: protocol.ZoneChilled, Celsius: &c}, {Zone: protocol.ZoneFrozen, Celsius: &f}, {Zone: protocol.ZoneAmbient, Celsius: &a}}
}()

// pub publishes body on its channel and waits for the broker.
func (e *edge) pub(cli paho.Client, body protocol.Body) error {
	payload, err := protocol.Encode(protocol.Header{}, body)
	if err != nil {
		return err
	}
	ch := channelOf(body.MessageType())
	return wait(cli.Publish(protocol.Topic(e.site, ch), ch.QoS(), ch.Retained(), payload), e.o.opTimeout)
}

func channelOf(t protocol.Type) protocol.Channel {
	for _, ch := range protocol.Channels() {
		if ch.Type() == t {
			return ch
		}
	}
	panic(fmt.Sprintf("loadgen: no channel carries %q", t))
}

var errTimeout = errors.New("timed out waiting for the broker")

// wait bounds a paho token: token.Wait alone can wait forever.
func wait(tok paho.Token, d time.Duration) error {
	if !tok.WaitTimeout(d) {
		return errTimeout
	}
	return tok.Error()
}

// signal does a non-blocking send on a capacity-1 channel.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// compartments is the birth's list: n doors, the first half chilled, a quarter frozen,
// the rest ambient.
func compartments(n int) []protocol.Compartment {
	cs := make([]protocol.Compartment, n)
	for i := range cs {
		z := protocol.ZoneAmbient
		switch {
		case i < n/2:
			z = protocol.ZoneChilled
		case i < n*3/4:
			z = protocol.ZoneFrozen
		}
		cs[i] = protocol.Compartment{Number: i + 1, Size: protocol.SizeM, Zone: z, HeightCM: 20 + 30*(i%6), Board: 0, Lock: i + 1}
	}
	return cs
}

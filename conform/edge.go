package conform

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/larder-lockers/larder/protocol"
)

// EdgeConfig configures a run of edge mode: the kit is the broker and the cloud, the
// edge under test connects to the kit's broker and serves its kiosk API, and the
// simulator around it plays the people (a driver loading, a resident picking up) and
// tells the kit what the doors really did.
type EdgeConfig struct {
	// Listen is the kit's broker address (default 127.0.0.1:1885); the edge under test
	// must be configured with tcp://{Listen}.
	Listen string
	// Site, SiteKey and Password are what the edge under test was provisioned with:
	// its site id, its site key (the 32 bytes the 64 hex characters decode to) and its
	// MQTT password. The kit accepts that login only.
	Site     string
	SiteKey  []byte
	Password string
	// Kiosk is the base URL of the edge's kiosk API (docs/kiosk-api.md).
	Kiosk string
	// Sim is the base URL of larder-sim's control API, which the edge's lock boards are.
	Sim string
	// Timeout bounds every wait for the edge (default 20 s). Wait is how long the kit
	// watches for something that must not happen (a second pulse; default 3 s).
	Timeout, Wait time.Duration
	// Select chooses the clauses to check (zero: all).
	Select Selection
	// Listening, if set, is called once the broker accepts connections.
	Listening func(brokerURL string)
	// Log receives the kit's own progress (nil: discard).
	Log *slog.Logger
}

func (c *EdgeConfig) fill() error {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:1885"
	}
	if c.Timeout == 0 {
		c.Timeout = 20 * time.Second
	}
	if c.Wait == 0 {
		c.Wait = 3 * time.Second
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	switch {
	case !protocol.ValidSite(c.Site):
		return fmt.Errorf("conform: invalid site id %q", c.Site)
	case len(c.SiteKey) < 32:
		return fmt.Errorf("conform: site key has %d bytes, want 32", len(c.SiteKey))
	case c.Password == "":
		return errors.New("conform: the edge's MQTT password is required")
	case c.Kiosk == "" || c.Sim == "":
		return errors.New("conform: the kiosk URL and the simulator's control URL are required")
	}
	return nil
}

const (
	needLogin    = "edge.connect.login"
	needBirth    = "edge.birth.compartments"
	needSnapshot = "edge.desired.snapshot"
	needStates   = "edge.commands.states"
)

var edgeClauses = []Clause{
	{ID: needLogin, Mode: ModeEdge, Section: "Connecting",
		Text: "The edge logs in to the broker with its site id as username and the password it was provisioned with."},
	{ID: "edge.connect.client-id", Mode: ModeEdge, Section: "Connecting", Needs: []string{needLogin},
		Text: "Its client id is larder-edge-{site}."},
	{ID: "edge.connect.session", Mode: ModeEdge, Section: "Sessions and the connect sequence", Spec: []string{"session.edge"}, Needs: []string{needLogin},
		Text: "The edge connects with clean session false."},
	{ID: "edge.connect.subscribe", Mode: ModeEdge, Section: "Sessions and the connect sequence", Spec: []string{"connect.sequence"}, Needs: []string{needLogin},
		Text: "It subscribes to desired, commands and events/ack of its own site (or to its site filter) before it publishes its online status."},
	{ID: "edge.presence.will", Mode: ModeEdge, Section: "Presence and birth", Spec: []string{"connect.sequence"}, Needs: []string{needLogin},
		Text: "On connect it registers as its Last Will a retained QoS 1 status with online false on its own status topic."},
	{ID: "edge.presence.online", Mode: ModeEdge, Section: "Presence and birth", Spec: []string{"connect.sequence"}, Needs: []string{needLogin},
		Text: "It then publishes a retained status with online true."},
	{ID: needBirth, Mode: ModeEdge, Section: "Presence and birth", Spec: []string{"connect.sequence", "version.revision"}, Needs: []string{needLogin},
		Text: "And a birth listing its compartments (the kit needs at least 6), after the online status."},
	{ID: "edge.connect.snapshot", Mode: ModeEdge, Section: "Sessions and the connect sequence", Spec: []string{"connect.snapshot"}, Needs: []string{needBirth},
		Text: "An edge of revision 1.1 (birth.protocol) sends no desired_get on connect: the cloud answers every birth with a snapshot (1.1)."},
	{ID: needSnapshot, Mode: ModeEdge, Section: "Desired state", Needs: []string{needBirth},
		Text: "A full snapshot newer than the edge's state is applied: the birth that answers a resync command reports its version as desired_version."},
	{ID: "edge.desired.delta", Mode: ModeEdge, Section: "Desired state", Needs: []string{needSnapshot},
		Text: "A delta on top of the edge's version is applied."},
	{ID: "edge.desired.gap", Mode: ModeEdge, Section: "Desired state", Needs: []string{"edge.desired.delta"},
		Text: "A delta after a gap is not applied; the edge publishes a desired_get with have = its version, and applies the snapshot that answers it."},
	{ID: "edge.digest.credential", Mode: ModeEdge, Section: "Secrets and digests", Needs: []string{needSnapshot},
		Text: "A driver's loading credential whose digest (larder/v1/credential, keyed with the site key's bytes) the desired state carries signs the driver in at the kiosk."},
	{ID: "edge.events.loaded", Mode: ModeEdge, Section: "Events and their acknowledgement", Needs: []string{"edge.digest.credential"},
		Text: "A driver opening the order's door at the kiosk, putting the parcel in and closing it makes a loaded event naming the order and the compartment, credential driver."},
	{ID: "edge.digest.code", Mode: ModeEdge, Section: "Secrets and digests", Needs: []string{"edge.events.loaded"},
		Text: "A pickup code and phone ending whose digests (larder/v1/code, larder/v1/second-factor) the reservation carries open the order's door at the kiosk; a wrong code opens nothing."},
	{ID: "edge.events.picked-up", Mode: ModeEdge, Section: "Events and their acknowledgement", Needs: []string{"edge.digest.code"},
		Text: "The resident emptying the compartment and closing the door makes a picked_up event naming the order."},
	{ID: needStates, Mode: ModeEdge, Section: "Commands", Needs: []string{needBirth},
		Text: "An ops open is answered on commands/ack with QUEUED, IN_PROGRESS and SUCCEEDED, in that order, echoing the command id."},
	{ID: "edge.commands.door-proof", Mode: ModeEdge, Section: "Commands", Needs: []string{needStates},
		Text: "An open SUCCEEDS only when the door opened: the simulator saw the latch pulsed and the door open, and a door_opened event (credential ops_remote) came; with the latch jammed it ends FAILED (jammed), never SUCCEEDED."},
	{ID: "edge.commands.dedupe", Mode: ModeEdge, Section: "Commands", Spec: []string{"command.dedup"}, Needs: []string{needStates},
		Text: "A command delivered again, in the same envelope or in a new one with the same body.id, is not carried out again: no second latch pulse."},
	{ID: "edge.commands.expired", Mode: ModeEdge, Section: "Commands", Spec: []string{"command.offline"}, Needs: []string{needBirth},
		Text: "A command that arrives after its expires_at is REJECTED with expired, and nothing opens."},
	{ID: "edge.reject.desired", Mode: ModeEdge, Section: "Envelope", Needs: []string{needSnapshot},
		Text: "Malformed desired messages (not JSON, another protocol version, a required field missing, a digest that is not 64 hex characters) are rejected as a whole: the edge stays connected and its desired version does not move."},
	{ID: "edge.reject.command", Mode: ModeEdge, Section: "Envelope", Needs: []string{needBirth},
		Text: "Malformed commands (no expires_at, an unknown kind) are not carried out: nothing opens, the edge stays connected and answers the next command."},
	{ID: "edge.connect.reconnect", Mode: ModeEdge, Section: "Presence and birth", Spec: []string{"session.edge", "connect.sequence"}, Needs: []string{needBirth},
		Text: "After the broker restarts without keeping sessions, the edge reconnects, registers its Last Will, publishes its online status and a birth, and subscribes again (a command sent after the reconnect is answered)."},
	{ID: "edge.events.resend", Mode: ModeEdge, Section: "Events and their acknowledgement", Spec: []string{"ack.cumulative"}, Needs: []string{"edge.connect.reconnect"},
		Text: "After a reconnect the edge resends every event after the last acknowledged sequence, in order, with the same envelopes (same id, same seq)."},
	{ID: "edge.events.acked-not-resent", Mode: ModeEdge, Section: "Events and their acknowledgement", Spec: []string{"ack.cumulative"}, Needs: []string{"edge.connect.reconnect"},
		Text: "Events up to the cloud's cumulative acknowledgement are not sent again."},
	{ID: "edge.events.sequence", Mode: ModeEdge, Section: "Events and their acknowledgement", Spec: []string{"seq.events"}, Needs: []string{needBirth},
		Text: "An event's seq is its outbox sequence: each new event (new id) takes the next seq, with no gap and no reuse, and a redelivery keeps the id, the seq and the body."},
	{ID: "edge.envelope.seq", Mode: ModeEdge, Section: "Envelope", Spec: []string{"seq.unsequenced"}, Needs: []string{needLogin},
		Text: "Only events and desired are sequenced: every message the edge sends on another channel (status, birth, telemetry, command acks, desired_get) carries seq 0 (1.1)."},
	{ID: "edge.envelope.valid", Mode: ModeEdge, Section: "Envelope", Spec: []string{"version.major"}, Needs: []string{needLogin},
		Text: "Every message the edge published is a protocol v1 envelope of the type its channel carries, with every required field."},
	{ID: "edge.topics.own-channels", Mode: ModeEdge, Section: "Topics", Spec: []string{"access.edge", "access.edge-publishes"}, Needs: []string{needLogin},
		Text: "The edge publishes only on its own site's edge→cloud channels."},
}

// edgeRun is one run of edge mode: the kit's broker, its cloud state and the clients of
// the edge's kiosk and the simulator.
type edgeRun struct {
	cfg   EdgeConfig
	box   *mailbox
	b     *broker
	kiosk *api
	sim   simulator
	log   *slog.Logger

	mu       sync.Mutex
	state    protocol.Desired // guarded by mu: the kit's desired state of the site (always Full)
	acked    uint64           // guarded by mu: the cumulative ack the kit has published
	seen     map[uint64]bool  // guarded by mu: event sequences received
	holdAcks bool             // guarded by mu: acknowledge nothing for now
	// quiet stops the kit from answering births and desired_gets with a snapshot, while
	// a check must see what the edge made of a delta by itself.
	quiet    bool                 // guarded by mu
	rejected []protocol.Rejection // guarded by mu: events that did not decode, named in every ack

	comps      []protocol.Compartment // from the first birth, by number
	orders     []order                // A, B and C of the desired state
	cred       string                 // the driver's loading credential, in clear
	credential protocol.LoadingCredential
	token      string // the driver's kiosk token
}

// order is a reservation the kit made, with its secrets in clear.
type order struct {
	id, code, factor string
	comp             protocol.Compartment
}

// RunEdge checks an edge against the specification and returns the report. It fails
// only when the kit itself cannot start (a bad config, the broker's address in use).
func RunEdge(ctx context.Context, cfg EdgeConfig) (Report, error) {
	if err := cfg.fill(); err != nil {
		return Report{}, err
	}
	e := &edgeRun{cfg: cfg, box: newMailbox(cfg.Site), kiosk: newAPI("kiosk", cfg.Kiosk, ""),
		sim: simulator{newAPI("sim", cfg.Sim, "")}, log: cfg.Log, seen: map[uint64]bool{}}
	var err error
	if e.b, err = startBroker(cfg.Listen, cfg.Site, cfg.Password, e.box, cfg.Log); err != nil {
		return Report{}, err
	}
	defer e.b.close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go e.serve(ctx)
	if cfg.Listening != nil {
		cfg.Listening(e.b.URL())
	}
	e.log.Info("conform: broker listening; waiting for the edge", "broker", e.b.URL(), "site", cfg.Site)

	r := newRunner(ModeEdge, cfg.Site+" via "+e.b.URL(), edgeClauses, cfg.Select)
	r.check(ctx, needLogin, e.checkLogin)
	r.check(ctx, "edge.connect.client-id", e.checkClientID)
	r.check(ctx, "edge.connect.session", e.checkSession)
	r.check(ctx, "edge.connect.subscribe", e.checkSubscribe)
	r.check(ctx, "edge.presence.will", func(context.Context) (string, error) { return e.checkWill(0) })
	r.check(ctx, "edge.presence.online", func(ctx context.Context) (string, error) { return e.checkOnline(ctx, 0) })
	r.check(ctx, needBirth, e.checkBirth)
	r.check(ctx, "edge.connect.snapshot", e.checkNoDesiredGet)
	r.check(ctx, needSnapshot, e.checkSnapshot)
	r.check(ctx, "edge.desired.delta", e.checkDelta)
	r.check(ctx, "edge.desired.gap", e.checkGap)
	r.check(ctx, "edge.digest.credential", e.checkCredential)
	r.check(ctx, "edge.events.loaded", e.checkLoaded)
	r.check(ctx, "edge.digest.code", e.checkCode)
	r.check(ctx, "edge.events.picked-up", e.checkPickedUp)
	var open protocol.Command
	var openRaw []byte
	r.check(ctx, needStates, func(ctx context.Context) (string, error) {
		var err error
		open, openRaw, err = e.opsOpen(ctx, e.comps[3].Number)
		if err != nil {
			return "", err
		}
		return e.checkStates(ctx, open)
	})
	r.check(ctx, "edge.commands.door-proof", func(ctx context.Context) (string, error) { return e.checkDoorProof(ctx, open) })
	r.check(ctx, "edge.commands.dedupe", func(ctx context.Context) (string, error) { return e.checkDedupe(ctx, open, openRaw) })
	r.check(ctx, "edge.commands.expired", e.checkExpired)
	r.check(ctx, "edge.reject.desired", e.checkRejectDesired)
	r.check(ctx, "edge.reject.command", e.checkRejectCommand)
	var held heldEvents
	r.check(ctx, "edge.connect.reconnect", func(ctx context.Context) (string, error) {
		var err error
		held, err = e.holdAndRestart(ctx)
		if err != nil {
			return "", err
		}
		return e.checkReconnect(ctx, held)
	})
	r.check(ctx, "edge.events.resend", func(ctx context.Context) (string, error) { return e.checkResend(ctx, held) })
	r.check(ctx, "edge.events.acked-not-resent", func(ctx context.Context) (string, error) { return e.checkNotResent(ctx, held) })
	e.releaseAcks()
	r.check(ctx, "edge.events.sequence", e.checkSequence)
	r.check(ctx, "edge.envelope.seq", e.checkSeq)
	r.check(ctx, "edge.envelope.valid", e.checkEnvelopes)
	r.check(ctx, "edge.topics.own-channels", e.checkTopics)
	e.clear()
	return *r.report, nil
}

// clear leaves the edge without the kit's reservations and credential: an empty
// snapshot, one version on.
func (e *edgeRun) clear() {
	e.mu.Lock()
	had := e.state.Version
	e.state = protocol.Desired{Version: had + 1, Full: true}
	d := e.state
	e.mu.Unlock()
	if had == 0 {
		return
	}
	if err := e.send(protocol.ChanDesired, protocol.Header{}, d); err != nil {
		e.log.Warn("conform: clearing the desired state", "err", err)
	}
	time.Sleep(200 * time.Millisecond) // let it leave before the broker stops
}

// serve is the kit's cloud: it acknowledges events cumulatively (unless told to hold),
// and answers every birth, and a desired_get from an edge behind, with a full snapshot.
func (e *edgeRun) serve(ctx context.Context) {
	next := 0
	for ctx.Err() == nil {
		msgs, _ := e.box.wait(ctx, time.Hour, next, "message", func(m []received) bool { return len(m) > 0 })
		next += len(msgs)
		for _, m := range msgs {
			if m.Err != nil {
				// A 1.1 cloud acknowledges an event it cannot decode as rejected, so the
				// stream goes on (edge.envelope.valid reports it).
				if rej, ok := protocol.RejectEvent(m.Raw, m.Err); ok && m.Channel == protocol.ChanEvents {
					e.mu.Lock()
					e.rejected = append(e.rejected, rej)
					e.mu.Unlock()
					e.sawEvent(rej.Seq)
				}
				continue
			}
			switch body := m.Msg.Body.(type) {
			case protocol.Event:
				e.sawEvent(m.Msg.Seq)
			case protocol.DesiredGet:
				e.answerSnapshot(body.Have, false)
			case protocol.Birth:
				e.answerSnapshot(body.DesiredVersion, true)
			}
		}
	}
}

// sawEvent records event seq and acknowledges.
func (e *edgeRun) sawEvent(seq uint64) {
	e.mu.Lock()
	if len(e.seen) == 0 {
		// An edge with history starts beyond 1: acknowledge from its first.
		e.acked = seq - 1
	}
	e.seen[seq] = true
	e.mu.Unlock()
	e.ack()
}

// ack publishes the cumulative acknowledgement of the events received without a gap.
func (e *edgeRun) ack() {
	e.mu.Lock()
	for e.seen[e.acked+1] {
		e.acked++
	}
	if e.holdAcks || e.acked == 0 {
		e.mu.Unlock()
		return
	}
	a := protocol.EventAck{Seq: e.acked}
	for _, r := range e.rejected {
		if r.Seq <= a.Seq {
			a.Rejected = append(a.Rejected, r)
		}
	}
	e.mu.Unlock()
	if err := e.send(protocol.ChanEventAck, protocol.Header{}, a); err != nil {
		e.log.Warn("conform: event ack", "err", err)
	}
}

func (e *edgeRun) releaseAcks() {
	e.mu.Lock()
	e.holdAcks = false
	e.mu.Unlock()
	e.ack()
}

func (e *edgeRun) setQuiet(q bool) {
	e.mu.Lock()
	e.quiet = q
	e.mu.Unlock()
}

// answerSnapshot publishes the kit's full snapshot to an edge that has version have:
// always after a birth (as a 1.1 cloud does), after a desired_get only when the edge is
// behind; never before the kit has a state, nor while quiet.
func (e *edgeRun) answerSnapshot(have uint64, always bool) {
	e.mu.Lock()
	d, quiet := e.state, e.quiet
	e.mu.Unlock()
	if quiet || d.Version == 0 || (!always && have >= d.Version) {
		return
	}
	if err := e.send(protocol.ChanDesired, protocol.Header{}, d); err != nil {
		e.log.Warn("conform: desired snapshot", "err", err)
	}
}

// send encodes body and publishes it on ch. Of the cloud's channels only desired is
// sequenced, by its version; the others carry seq 0.
func (e *edgeRun) send(ch protocol.Channel, h protocol.Header, body protocol.Body) error {
	if d, ok := body.(protocol.Desired); ok {
		h.Seq = d.Version
	}
	raw, err := protocol.Encode(h, body)
	if err != nil {
		return err
	}
	return e.b.publish(ch, raw)
}

// command publishes cmd with the envelope id equal to the command id and returns the
// bytes, for a redelivery.
func (e *edgeRun) command(cmd protocol.Command) ([]byte, error) {
	raw, err := protocol.Encode(protocol.Header{ID: cmd.ID}, cmd)
	if err != nil {
		return nil, err
	}
	return raw, e.b.publish(protocol.ChanCommands, raw)
}

// acks returns the states reported for command id in msgs, in arrival order.
func acks(msgs []received, id string) []protocol.CommandAck {
	var out []protocol.CommandAck
	for _, m := range on(msgs, protocol.ChanCommandAck) {
		if a := m.Msg.Body.(protocol.CommandAck); a.CommandID == id {
			out = append(out, a)
		}
	}
	return out
}

// waitFinal waits for a final state of command id after mark.
func (e *edgeRun) waitFinal(ctx context.Context, mark int, id string) ([]protocol.CommandAck, error) {
	msgs, err := e.box.wait(ctx, e.cfg.Timeout, mark, "final state of command "+id, func(m []received) bool {
		as := acks(m, id)
		return len(as) > 0 && as[len(as)-1].State.Final()
	})
	return acks(msgs, id), err
}

// logins returns the accepted logins of the site.
func (e *edgeRun) logins() []login {
	ls, _, _ := e.b.seen()
	var out []login
	for _, l := range ls {
		if l.Accepted {
			out = append(out, l)
		}
	}
	return out
}

func (e *edgeRun) checkLogin(ctx context.Context) (string, error) {
	err := poll(ctx, e.cfg.Timeout, func() error {
		if len(e.logins()) == 0 {
			return errors.New("none")
		}
		return nil
	})
	if err != nil {
		ls, _, _ := e.b.seen()
		if len(ls) == 0 {
			return "", fmt.Errorf("no edge connected to %s within %v", e.b.URL(), e.cfg.Timeout)
		}
		l := ls[len(ls)-1]
		return "", fmt.Errorf("login refused: username %q (want the site id %q) with a password that is not the provisioned one, or both", l.Username, e.cfg.Site)
	}
	return fmt.Sprintf("username %s", e.cfg.Site), nil
}

func (e *edgeRun) checkClientID(context.Context) (string, error) {
	l := e.logins()[0]
	if want := protocol.EdgeClientID(e.cfg.Site); l.ClientID != want {
		return "", fmt.Errorf("client id %q, want %q", l.ClientID, want)
	}
	return l.ClientID, nil
}

func (e *edgeRun) checkSession(context.Context) (string, error) {
	if e.logins()[0].Clean {
		return "", errors.New("connected with clean session true")
	}
	return "clean session false", nil
}

func (e *edgeRun) checkSubscribe(ctx context.Context) (string, error) {
	msgs, err := e.box.wait(ctx, e.cfg.Timeout, 0, "online status", func(m []received) bool {
		_, ok := first(m, protocol.ChanStatus, func(r received) bool { return r.Msg.Body.(protocol.Status).Online })
		return ok
	})
	if err != nil {
		return "", err
	}
	online, _ := first(msgs, protocol.ChanStatus, func(r received) bool { return r.Msg.Body.(protocol.Status).Online })
	_, _, subs := e.b.seen()
	covered := map[protocol.Channel]bool{}
	for _, sub := range subs {
		if sub.At.After(online.At) {
			continue
		}
		for _, f := range sub.Filters {
			for _, ch := range []protocol.Channel{protocol.ChanDesired, protocol.ChanCommands, protocol.ChanEventAck} {
				if f == protocol.Topic(e.cfg.Site, ch) || f == protocol.SiteFilter(e.cfg.Site) {
					covered[ch] = true
				}
			}
		}
	}
	var f failures
	for _, ch := range []protocol.Channel{protocol.ChanDesired, protocol.ChanCommands, protocol.ChanEventAck} {
		if !covered[ch] {
			f.add("not subscribed to %s before the online status", protocol.Topic(e.cfg.Site, ch))
		}
	}
	return "desired, commands, events/ack", f.err()
}

// checkNoDesiredGet: a 1.1 edge leaves the snapshot on connect to the cloud.
func (e *edgeRun) checkNoDesiredGet(ctx context.Context) (string, error) {
	b, _ := first(e.box.all(), protocol.ChanBirth, nil)
	rev := b.Msg.Body.(protocol.Birth).Protocol
	if rev == "" || rev == "1.0" {
		return "a 1.0 edge: a desired_get on connect is allowed", nil
	}
	time.Sleep(e.cfg.Wait)
	if g, ok := first(e.box.all(), protocol.ChanDesiredGet, nil); ok {
		return "", fmt.Errorf("revision %s edge sent desired_get (have %d, reason %q) on connect", rev, g.Msg.Body.(protocol.DesiredGet).Have, g.Msg.Body.(protocol.DesiredGet).Reason)
	}
	return "revision " + rev + ": no desired_get on connect", nil
}

// checkWill checks the Last Will of the accepted login n.
func (e *edgeRun) checkWill(n int) (string, error) {
	ls := e.logins()
	if n >= len(ls) {
		return "", fmt.Errorf("no login %d", n+1)
	}
	w := ls[n].Will
	if w == nil {
		return "", errors.New("no Last Will registered")
	}
	var f failures
	if want := protocol.Topic(e.cfg.Site, protocol.ChanStatus); w.Topic != want {
		f.add("will topic %q, want %q", w.Topic, want)
	}
	if !w.Retain {
		f.add("will not retained")
	}
	if w.QoS != 1 {
		f.add("will QoS %d, want 1", w.QoS)
	}
	m, err := protocol.DecodeOn(protocol.ChanStatus, w.Payload)
	if err != nil {
		f.add("will payload: %v", err)
	} else if m.Body.(protocol.Status).Online {
		f.add("will says online true")
	}
	return "retained QoS 1 offline status", f.err()
}

// checkOnline checks for a retained online status after mark.
func (e *edgeRun) checkOnline(ctx context.Context, mark int) (string, error) {
	msgs, err := e.box.wait(ctx, e.cfg.Timeout, mark, "online status", func(m []received) bool {
		_, ok := first(m, protocol.ChanStatus, func(r received) bool { return r.Msg.Body.(protocol.Status).Online })
		return ok
	})
	if err != nil {
		return "", err
	}
	s, _ := first(msgs, protocol.ChanStatus, func(r received) bool { return r.Msg.Body.(protocol.Status).Online })
	if !s.Retained {
		return "", errors.New("online status published without the retain flag")
	}
	return "retained online status", nil
}

func (e *edgeRun) checkBirth(ctx context.Context) (string, error) {
	msgs, err := e.box.wait(ctx, e.cfg.Timeout, 0, "birth", func(m []received) bool {
		_, ok := first(m, protocol.ChanBirth, nil)
		return ok
	})
	if err != nil {
		for _, m := range msgs {
			if m.Channel == protocol.ChanBirth {
				return "", fmt.Errorf("birth does not decode: %v", m.Err)
			}
		}
		return "", err
	}
	bm, _ := first(msgs, protocol.ChanBirth, nil)
	if _, ok := first(msgs, protocol.ChanStatus, func(r received) bool {
		return r.Msg.Body.(protocol.Status).Online && !r.At.After(bm.At)
	}); !ok {
		return "", errors.New("birth published before the online status")
	}
	b := bm.Msg.Body.(protocol.Birth)
	e.comps = slices.Clone(b.Compartments)
	slices.SortFunc(e.comps, func(a, b protocol.Compartment) int { return a.Number - b.Number })
	if len(e.comps) < 6 {
		return "", fmt.Errorf("birth lists %d compartments; the kit needs 6 to exercise loading, pickup and commands", len(e.comps))
	}
	rev := b.Protocol
	if rev == "" {
		rev = "1.0"
	} else if !regexp.MustCompile(`^1\.[0-9]+$`).MatchString(rev) {
		return "", fmt.Errorf("birth.protocol %q is not a revision of protocol 1 (want 1.N)", rev)
	}
	return fmt.Sprintf("revision %s, %d compartments, desired_version %d, outbox_high_water %d", rev, len(b.Compartments), b.DesiredVersion, b.OutboxHighWater), nil
}

// resync sends a resync command and returns the birth that answers it, once the
// command is SUCCEEDED (by then the edge has also asked for a snapshot).
func (e *edgeRun) resync(ctx context.Context) (protocol.Birth, error) {
	mark := e.box.len()
	cmd := protocol.Command{ID: protocol.NewID(), Kind: protocol.CmdResync, ExpiresAt: time.Now().Add(time.Minute).UTC()}
	if _, err := e.command(cmd); err != nil {
		return protocol.Birth{}, err
	}
	msgs, err := e.box.wait(ctx, e.cfg.Timeout, mark, "birth and SUCCEEDED after a resync command", func(m []received) bool {
		_, ok := first(m, protocol.ChanBirth, nil)
		as := acks(m, cmd.ID)
		return ok && len(as) > 0 && as[len(as)-1].State.Final()
	})
	if err != nil {
		return protocol.Birth{}, err
	}
	if as := acks(msgs, cmd.ID); as[len(as)-1].State != protocol.StateSucceeded {
		return protocol.Birth{}, fmt.Errorf("resync command ended %s (%s)", as[len(as)-1].State, as[len(as)-1].Error)
	}
	b, _ := first(msgs, protocol.ChanBirth, nil)
	return b.Msg.Body.(protocol.Birth), nil
}

// expectVersion asks for births (resync commands) until one reports desired_version
// want, for up to the timeout: a command may overtake a desired message on the way (they
// are separate channels). It fails at once on a version above want.
func (e *edgeRun) expectVersion(ctx context.Context, want uint64) error {
	deadline := time.Now().Add(e.cfg.Timeout)
	for {
		b, err := e.resync(ctx)
		if err != nil {
			return err
		}
		if b.DesiredVersion == want {
			return nil
		}
		if b.DesiredVersion > want || time.Now().After(deadline) {
			return fmt.Errorf("birth after resync reports desired_version %d, want %d", b.DesiredVersion, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func digits(n int) string {
	s := make([]byte, n)
	for i := range s {
		d, _ := rand.Int(rand.Reader, big.NewInt(10))
		s[i] = byte('0' + d.Int64())
	}
	return string(s)
}

func (e *edgeRun) reservation(o order) protocol.Reservation {
	budget := 0
	if o.comp.Zone == protocol.ZoneChilled || o.comp.Zone == protocol.ZoneFrozen {
		budget = 1800
	}
	return protocol.Reservation{Order: o.id, Slots: []protocol.Slot{{Compartment: o.comp.Number, Generation: 1, Size: o.comp.Size}},
		CodeDigest:         protocol.CodeDigest(e.cfg.SiteKey, o.code),
		SecondFactorDigest: protocol.SecondFactorDigest(e.cfg.SiteKey, o.id, o.factor),
		ExpiresAt:          time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second), Zone: o.comp.Zone, BudgetSeconds: budget}
}

// change applies delta d to the kit's state and returns the new full state.
func (e *edgeRun) change(d protocol.Desired) protocol.Desired {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := &e.state
	s.Version, s.Full = d.Version, true
	// New slices: snapshots handed out earlier share the old ones.
	s.Reservations, s.Credentials = slices.Clone(s.Reservations), slices.Clone(s.Credentials)
	for _, r := range d.Reservations {
		s.Reservations = slices.DeleteFunc(s.Reservations, func(x protocol.Reservation) bool { return x.Order == r.Order })
		s.Reservations = append(s.Reservations, r)
	}
	for _, c := range d.Credentials {
		s.Credentials = slices.DeleteFunc(s.Credentials, func(x protocol.LoadingCredential) bool { return x.ID == c.ID })
		s.Credentials = append(s.Credentials, c)
	}
	return *s
}

func (e *edgeRun) checkSnapshot(ctx context.Context) (string, error) {
	for i := range 3 {
		e.orders = append(e.orders, order{id: "conform-" + protocol.NewID()[:12], code: digits(protocol.CodeDigits),
			factor: digits(protocol.FactorDigits), comp: e.comps[i]})
	}
	e.cred = "conform-" + protocol.NewID()
	e.credential = protocol.LoadingCredential{ID: "conform-driver", Digest: protocol.CredentialDigest(e.cfg.SiteKey, e.cred),
		Driver: "larder-conform", ExpiresAt: time.Now().Add(time.Hour).UTC().Truncate(time.Second)}
	// Above whatever version the edge has, so the snapshot is newer.
	b, err := e.resync(ctx)
	if err != nil {
		return "", err
	}
	v := b.DesiredVersion + 1
	snap := e.change(protocol.Desired{Version: v, Full: true, Reservations: []protocol.Reservation{e.reservation(e.orders[0])},
		Credentials: []protocol.LoadingCredential{e.credential}})
	if err := e.send(protocol.ChanDesired, protocol.Header{}, snap); err != nil {
		return "", err
	}
	if err := e.expectVersion(ctx, v); err != nil {
		return "", err
	}
	return fmt.Sprintf("version %d applied", v), nil
}

func (e *edgeRun) version() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.state.Version
}

func (e *edgeRun) checkDelta(ctx context.Context) (string, error) {
	// Quiet: the delta must be applied by itself, not healed by a snapshot.
	e.setQuiet(true)
	defer e.setQuiet(false)
	d := protocol.Desired{Version: e.version() + 1, Reservations: []protocol.Reservation{e.reservation(e.orders[1])}}
	e.change(d)
	if err := e.send(protocol.ChanDesired, protocol.Header{}, d); err != nil {
		return "", err
	}
	if err := e.expectVersion(ctx, d.Version); err != nil {
		return "", err
	}
	return fmt.Sprintf("delta %d applied", d.Version), nil
}

func (e *edgeRun) checkGap(ctx context.Context) (string, error) {
	e.setQuiet(true)
	defer e.setQuiet(false)
	have := e.version()
	// Delta have+1 (order C) is "lost"; have+2 arrives.
	e.change(protocol.Desired{Version: have + 1, Reservations: []protocol.Reservation{e.reservation(e.orders[2])}})
	late := protocol.Desired{Version: have + 2, Credentials: []protocol.LoadingCredential{e.credential}}
	snap := e.change(late)
	mark := e.box.len()
	if err := e.send(protocol.ChanDesired, protocol.Header{}, late); err != nil {
		return "", err
	}
	msgs, err := e.box.wait(ctx, e.cfg.Timeout, mark, "desired_get after a gap", func(m []received) bool {
		_, ok := first(m, protocol.ChanDesiredGet, nil)
		return ok
	})
	if err != nil {
		return "", err
	}
	g, _ := first(msgs, protocol.ChanDesiredGet, nil)
	if got := g.Msg.Body.(protocol.DesiredGet).Have; got != have {
		return "", fmt.Errorf("desired_get has %d, want %d (a delta after a gap must not be applied)", got, have)
	}
	if err := e.send(protocol.ChanDesired, protocol.Header{}, snap); err != nil {
		return "", err
	}
	if err := e.expectVersion(ctx, have+2); err != nil {
		return "", err
	}
	return fmt.Sprintf("desired_get have %d, snapshot %d applied", have, have+2), nil
}

func (e *edgeRun) checkCredential(ctx context.Context) (string, error) {
	ans, err := e.kiosk.expect(ctx, 200, "POST", "/api/driver/login", map[string]string{"credential": e.cred})
	if err != nil {
		return "", err
	}
	if e.token = ans.str("token"); e.token == "" {
		return "", fmt.Errorf("driver login answered no token: %s", ans.Raw)
	}
	if ans, err := e.kiosk.call(ctx, "POST", "/api/driver/login", map[string]string{"credential": e.cred + "x"}); err != nil || ans.Status == 200 {
		return "", fmt.Errorf("a credential the desired state does not carry signed a driver in (%v)", err)
	}
	return "driver signed in", nil
}

// waitEvent waits for an event of kind after mark that ok accepts.
func (e *edgeRun) waitEvent(ctx context.Context, mark int, kind protocol.EventKind, ok func(protocol.Event) bool) (protocol.Event, error) {
	msgs, err := e.box.wait(ctx, e.cfg.Timeout, mark, string(kind)+" event", func(m []received) bool {
		_, found := first(m, protocol.ChanEvents, func(r received) bool { ev := event(r); return ev.Kind == kind && (ok == nil || ok(ev)) })
		return found
	})
	if err != nil {
		return protocol.Event{}, err
	}
	m, _ := first(msgs, protocol.ChanEvents, func(r received) bool { ev := event(r); return ev.Kind == kind && (ok == nil || ok(ev)) })
	return event(m), nil
}

func (e *edgeRun) checkLoaded(ctx context.Context) (string, error) {
	o := e.orders[0]
	n := o.comp.Number
	mark := e.box.len()
	if _, err := e.kiosk.expect(ctx, 200, "POST", "/api/driver/open", map[string]any{"order": o.id, "compartment": n}, "Authorization", "Bearer "+e.token); err != nil {
		return "", err
	}
	if _, err := e.sim.waitOpen(ctx, n, e.cfg.Timeout); err != nil {
		return "", fmt.Errorf("the kiosk said door %d opened, the simulator disagrees: %w", n, err)
	}
	if err := e.sim.handle(ctx, n, true, e.cfg.Timeout); err != nil {
		return "", err
	}
	ev, err := e.waitEvent(ctx, mark, protocol.EventLoaded, func(ev protocol.Event) bool { return ev.Order == o.id })
	if err != nil {
		return "", err
	}
	var f failures
	if ev.Compartment != n {
		f.add("loaded names compartment %d, want %d", ev.Compartment, n)
	}
	if ev.Credential != protocol.CredDriver {
		f.add("loaded credential %q, want %q", ev.Credential, protocol.CredDriver)
	}
	return fmt.Sprintf("loaded %s in %d", o.id, n), f.err()
}

func (e *edgeRun) checkCode(ctx context.Context) (string, error) {
	o := e.orders[0]
	n := o.comp.Number
	ans, err := e.kiosk.expect(ctx, 200, "POST", "/api/pickup", map[string]string{"code": o.code, "factor": o.factor})
	if err != nil {
		return "", err
	}
	doors, _ := ans.Body["doors"].([]any)
	if len(doors) != 1 {
		return "", fmt.Errorf("pickup answered %d doors, want 1: %s", len(doors), ans.Raw)
	}
	if d, _ := doors[0].(map[string]any); d["number"] != float64(n) {
		return "", fmt.Errorf("pickup opened door %v, want %d", d["number"], n)
	}
	if _, err := e.sim.waitOpen(ctx, n, e.cfg.Timeout); err != nil {
		return "", fmt.Errorf("the kiosk said door %d opened, the simulator disagrees: %w", n, err)
	}
	return fmt.Sprintf("code opened door %d", n), nil
}

func (e *edgeRun) checkPickedUp(ctx context.Context) (string, error) {
	o := e.orders[0]
	mark := e.box.len()
	if err := e.sim.handle(ctx, o.comp.Number, false, e.cfg.Timeout); err != nil {
		return "", err
	}
	if _, err := e.waitEvent(ctx, mark, protocol.EventPickedUp, func(ev protocol.Event) bool { return ev.Order == o.id }); err != nil {
		return "", err
	}
	// A wrong code (for the order B, loaded by nobody) opens nothing.
	before, err := e.pulses(ctx)
	if err != nil {
		return "", err
	}
	wrong := digits(protocol.CodeDigits)
	if ans, err := e.kiosk.call(ctx, "POST", "/api/pickup", map[string]string{"code": wrong, "factor": e.orders[1].factor}); err != nil || ans.Status == 200 {
		return "", fmt.Errorf("a wrong code was answered 200 (%v)", err)
	}
	after, err := e.pulses(ctx)
	if err != nil {
		return "", err
	}
	if !slices.Equal(before, after) {
		return "", errors.New("a wrong code pulsed a latch")
	}
	return "picked_up " + o.id, nil
}

// pulses returns the latch pulses of every compartment the kit uses.
func (e *edgeRun) pulses(ctx context.Context) ([]int, error) {
	var out []int
	for _, c := range e.comps[:6] {
		d, err := e.sim.door(ctx, c.Number)
		if err != nil {
			return nil, err
		}
		out = append(out, d.Pulses)
	}
	return out, nil
}

// opsOpen sends an ops open of compartment n and returns it with its bytes.
func (e *edgeRun) opsOpen(ctx context.Context, n int) (protocol.Command, []byte, error) {
	cmd := protocol.Command{ID: protocol.NewID(), Kind: protocol.CmdOpen, Compartment: n, Purpose: protocol.PurposeOps,
		Reason: "conformance check", ExpiresAt: time.Now().Add(2 * time.Minute).UTC(), Actor: "larder-conform"}
	raw, err := e.command(cmd)
	return cmd, raw, err
}

func (e *edgeRun) checkStates(ctx context.Context, cmd protocol.Command) (string, error) {
	as, err := e.waitFinal(ctx, 0, cmd.ID)
	if err != nil {
		return "", fmt.Errorf("%w (states seen: %v)", err, states(as))
	}
	want := []protocol.CommandState{protocol.StateQueued, protocol.StateInProgress, protocol.StateSucceeded}
	if got := states(as); !slices.Equal(got, want) {
		return "", fmt.Errorf("states %v, want %v", got, want)
	}
	return "QUEUED → IN_PROGRESS → SUCCEEDED", nil
}

func states(as []protocol.CommandAck) []protocol.CommandState {
	var out []protocol.CommandState
	for _, a := range as {
		out = append(out, a.State)
	}
	return out
}

func (e *edgeRun) checkDoorProof(ctx context.Context, cmd protocol.Command) (string, error) {
	n := cmd.Compartment
	// A released latch lets the door spring ajar a moment later.
	d, err := e.sim.waitOpen(ctx, n, e.cfg.Wait)
	var f failures
	if d.Pulses == 0 {
		f.add("SUCCEEDED but the simulator saw no latch pulse on %d", n)
	}
	if err != nil {
		f.add("SUCCEEDED but %v", err)
	}
	ev, err := e.waitEvent(ctx, 0, protocol.EventDoorOpened, func(ev protocol.Event) bool { return ev.Compartment == n })
	if err != nil {
		f.add("%v", err)
	} else if ev.Credential != protocol.CredOpsRemote {
		f.add("door_opened credential %q, want %q", ev.Credential, protocol.CredOpsRemote)
	}
	if err := e.sim.shut(ctx, n, e.cfg.Timeout); err != nil {
		f.add("%v", err)
	}
	// With the latch jammed, the relay clicks and the door stays shut.
	j := e.comps[4].Number
	if err := e.sim.fault(ctx, "jammed_latch", j, false); err != nil {
		return "", err
	}
	defer e.sim.fault(context.WithoutCancel(ctx), "jammed_latch", j, true)
	mark := e.box.len()
	jam, _, err := e.opsOpen(ctx, j)
	if err != nil {
		return "", err
	}
	as, err := e.waitFinal(ctx, mark, jam.ID)
	if err != nil {
		f.add("jammed latch: %v", err)
	} else if last := as[len(as)-1]; last.State != protocol.StateFailed || last.Error != protocol.ErrJammed {
		f.add("open of jammed %d ended %s (%s), want FAILED (jammed)", j, last.State, last.Error)
	}
	return fmt.Sprintf("pulse and open door seen on %d; jammed %d FAILED", n, j), f.err()
}

func (e *edgeRun) checkDedupe(ctx context.Context, cmd protocol.Command, raw []byte) (string, error) {
	n := cmd.Compartment
	if err := e.sim.shut(ctx, n, e.cfg.Timeout); err != nil {
		return "", err
	}
	before, err := e.sim.door(ctx, n)
	if err != nil {
		return "", err
	}
	mark := e.box.len()
	// The same message again, then the same command in a new envelope (as a 1.0 cloud
	// republishes it): the edge deduplicates on the command's id.
	again, err := protocol.Encode(protocol.Header{}, cmd)
	if err != nil {
		return "", err
	}
	for _, p := range [][]byte{raw, again} {
		if err := e.b.publish(protocol.ChanCommands, p); err != nil {
			return "", err
		}
	}
	time.Sleep(e.cfg.Wait)
	after, err := e.sim.door(ctx, n)
	if err != nil {
		return "", err
	}
	var f failures
	if after.Pulses != before.Pulses {
		f.add("the redelivered command pulsed latch %d again (%d pulses, then %d)", n, before.Pulses, after.Pulses)
	}
	for _, a := range acks(e.box.all()[mark:], cmd.ID) {
		if a.State != protocol.StateSucceeded {
			f.add("redelivery answered %s, want nothing or the current state SUCCEEDED", a.State)
		}
	}
	_ = e.sim.shut(ctx, n, e.cfg.Timeout)
	return "no second pulse", f.err()
}

func (e *edgeRun) checkExpired(ctx context.Context) (string, error) {
	n := e.comps[3].Number
	before, err := e.sim.door(ctx, n)
	if err != nil {
		return "", err
	}
	cmd := protocol.Command{ID: protocol.NewID(), Kind: protocol.CmdOpen, Compartment: n, Purpose: protocol.PurposeOps,
		Reason: "conformance check", ExpiresAt: time.Now().Add(-time.Minute).UTC(), Actor: "larder-conform"}
	mark := e.box.len()
	if _, err := e.command(cmd); err != nil {
		return "", err
	}
	as, err := e.waitFinal(ctx, mark, cmd.ID)
	if err != nil {
		return "", err
	}
	var f failures
	if last := as[len(as)-1]; last.State != protocol.StateRejected || last.Error != protocol.ErrExpired {
		f.add("expired command ended %s (%s), want REJECTED (expired)", last.State, last.Error)
	}
	if after, err := e.sim.door(ctx, n); err != nil || after.Pulses != before.Pulses {
		f.add("the expired command pulsed latch %d (%v)", n, err)
	}
	return "REJECTED expired", f.err()
}

// connected reports whether the edge has not logged in again since logins n.
func (e *edgeRun) reconnected(n int) error {
	if got := len(e.logins()); got != n {
		return fmt.Errorf("the edge connected again (%d logins, was %d): it dropped the link or crashed", got, n)
	}
	return nil
}

func (e *edgeRun) checkRejectDesired(ctx context.Context) (string, error) {
	n := len(e.logins())
	v := e.version()
	// A snapshot far ahead, broken four ways: applying any of them would move the version.
	ahead := protocol.Desired{Version: v + 50, Full: true, Reservations: []protocol.Reservation{e.reservation(e.orders[1])}}
	valid, err := protocol.Encode(protocol.Header{Seq: ahead.Version}, ahead)
	if err != nil {
		return "", err
	}
	noVersion := fmt.Appendf(nil, `{"v":1,"id":%q,"seq":%d,"ts":"2026-01-01T00:00:00Z","type":"desired","body":{"full":true}}`, protocol.NewID(), ahead.Version)
	badDigest := regexp.MustCompile(`"code_digest":"[0-9a-f]+"`).ReplaceAll(valid, []byte(`"code_digest":"not-hex"`))
	otherMajor := regexp.MustCompile(`^\{"v":1`).ReplaceAll(valid, []byte(`{"v":2`))
	for _, p := range [][]byte{[]byte("not json"), otherMajor, noVersion, badDigest} {
		if err := e.b.publish(protocol.ChanDesired, p); err != nil {
			return "", err
		}
	}
	var f failures
	time.Sleep(e.cfg.Wait) // what the edge would wrongly apply, it applies by then
	if b, err := e.resync(ctx); err != nil {
		f.add("%v", err)
	} else if b.DesiredVersion != v {
		f.add("desired_version %d after malformed messages, want %d", b.DesiredVersion, v)
	}
	if err := e.reconnected(n); err != nil {
		f.add("%v", err)
	}
	return fmt.Sprintf("4 malformed desired messages ignored; version stays %d", v), f.err()
}

func (e *edgeRun) checkRejectCommand(ctx context.Context) (string, error) {
	n := len(e.logins())
	c := e.comps[3].Number
	_ = e.sim.shut(ctx, c, e.cfg.Timeout)
	before, err := e.sim.door(ctx, c)
	if err != nil {
		return "", err
	}
	noExpiry := []byte(fmt.Sprintf(`{"v":1,"id":"bad-1","seq":1,"ts":"2026-01-01T00:00:00Z","type":"command","body":{"id":"bad-1","kind":"open","compartment":%d,"purpose":"ops","reason":"conformance check"}}`, c))
	unknown := []byte(fmt.Sprintf(`{"v":1,"id":"bad-2","seq":2,"ts":"2026-01-01T00:00:00Z","type":"command","body":{"id":"bad-2","kind":"explode","compartment":%d,"expires_at":"2999-01-01T00:00:00Z"}}`, c))
	for _, p := range [][]byte{noExpiry, unknown, []byte(`{"v":1`)} {
		if err := e.b.publish(protocol.ChanCommands, p); err != nil {
			return "", err
		}
	}
	var f failures
	if _, err := e.resync(ctx); err != nil {
		f.add("the next command was not answered: %v", err)
	}
	if after, err := e.sim.door(ctx, c); err != nil || after.Pulses != before.Pulses {
		f.add("a malformed command pulsed latch %d (%v)", c, err)
	}
	for _, a := range acks(e.box.all(), "bad-1") {
		if a.State != protocol.StateRejected {
			f.add("command without expires_at answered %s; only REJECTED (or nothing) may answer it", a.State)
		}
	}
	if err := e.reconnected(n); err != nil {
		f.add("%v", err)
	}
	return "malformed commands not carried out", f.err()
}

// heldEvents is what the kit left unacknowledged before it restarted the broker.
type heldEvents struct {
	acked   uint64              // the last cumulative ack the edge had
	pending map[uint64]received // events after it, as first received
	mark    int                 // the mailbox length at the restart
	logins  int                 // accepted logins before the restart
}

// holdAndRestart stops acknowledging, has a person force a door open (an event the
// cloud then never acknowledges), and restarts the broker.
func (e *edgeRun) holdAndRestart(ctx context.Context) (heldEvents, error) {
	e.mu.Lock()
	e.holdAcks = true
	acked := e.acked
	e.mu.Unlock()
	mark := e.box.len()
	u := e.comps[5].Number
	if err := e.sim.act(ctx, u, "open", map[string]bool{"force": true}); err != nil {
		return heldEvents{}, err
	}
	if _, err := e.waitEvent(ctx, mark, protocol.EventUncommandedOpen, func(ev protocol.Event) bool { return ev.Compartment == u }); err != nil {
		return heldEvents{}, fmt.Errorf("forcing door %d open: %w", u, err)
	}
	if err := e.sim.shut(ctx, u, e.cfg.Timeout); err != nil {
		return heldEvents{}, err
	}
	time.Sleep(time.Second) // the door_closed
	h := heldEvents{acked: acked, pending: map[uint64]received{}}
	for _, m := range on(e.box.all(), protocol.ChanEvents) {
		if s := m.Msg.Seq; s > acked {
			if _, dup := h.pending[s]; !dup {
				h.pending[s] = m
			}
		}
	}
	h.logins = len(e.logins())
	h.mark = e.box.len()
	e.log.Info("conform: restarting the broker", "acked", acked, "unacked", len(h.pending))
	if err := e.b.restart(); err != nil {
		return h, err
	}
	return h, nil
}

func (e *edgeRun) checkReconnect(ctx context.Context, h heldEvents) (string, error) {
	err := poll(ctx, e.cfg.Timeout, func() error {
		if len(e.logins()) <= h.logins {
			return fmt.Errorf("the edge did not reconnect within %v of the broker's restart", e.cfg.Timeout)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	var f failures
	if _, err := e.checkWill(h.logins); err != nil {
		f.add("after reconnect: %v", err)
	}
	if _, err := e.checkOnline(ctx, h.mark); err != nil {
		f.add("after reconnect: %v", err)
	}
	if _, err := e.box.wait(ctx, e.cfg.Timeout, h.mark, "birth after reconnect", func(m []received) bool {
		_, ok := first(m, protocol.ChanBirth, nil)
		return ok
	}); err != nil {
		f.add("%v", err)
	}
	if _, err := e.resync(ctx); err != nil {
		f.add("not subscribed again: %v", err)
	}
	return "reconnected, online, birth, commands answered", f.err()
}

func (e *edgeRun) checkResend(ctx context.Context, h heldEvents) (string, error) {
	if len(h.pending) == 0 {
		return "", errors.New("no unacknowledged event to watch (the forced door made none)")
	}
	seqs := make([]uint64, 0, len(h.pending))
	for s := range h.pending {
		seqs = append(seqs, s)
	}
	slices.Sort(seqs)
	msgs, err := e.box.wait(ctx, e.cfg.Timeout, h.mark, fmt.Sprintf("resend of events %v", seqs), func(m []received) bool {
		got := map[uint64]bool{}
		for _, r := range on(m, protocol.ChanEvents) {
			got[r.Msg.Seq] = true
		}
		for _, s := range seqs {
			if !got[s] {
				return false
			}
		}
		return true
	})
	if err != nil {
		return "", err
	}
	var f failures
	var order []uint64
	for _, r := range on(msgs, protocol.ChanEvents) {
		s := r.Msg.Seq
		p, ok := h.pending[s]
		if !ok {
			continue
		}
		if len(order) == 0 || order[len(order)-1] != s {
			order = append(order, s)
		}
		if r.Msg.ID != p.Msg.ID {
			f.add("event %d resent with id %s, first sent as %s", s, r.Msg.ID, p.Msg.ID)
		}
	}
	if !slices.IsSorted(order) {
		f.add("resent out of order: %v", order)
	}
	return fmt.Sprintf("events %v resent with their ids", seqs), f.err()
}

func (e *edgeRun) checkNotResent(ctx context.Context, h heldEvents) (string, error) {
	time.Sleep(e.cfg.Wait)
	var again []uint64
	for _, r := range on(e.box.all()[h.mark:], protocol.ChanEvents) {
		if r.Msg.Seq <= h.acked {
			again = append(again, r.Msg.Seq)
		}
	}
	if len(again) > 0 {
		return "", fmt.Errorf("events %v sent again after the cumulative ack %d", again, h.acked)
	}
	return fmt.Sprintf("nothing at or below ack %d sent again", h.acked), nil
}

func (e *edgeRun) checkSequence(context.Context) (string, error) {
	byID := map[string]received{}
	bySeq := map[uint64]string{}
	var f failures
	for _, r := range on(e.box.all(), protocol.ChanEvents) {
		id, s := r.Msg.ID, r.Msg.Seq
		if p, ok := byID[id]; ok {
			if p.Msg.Seq != s {
				f.add("event %s sent with seq %d, then %d", id, p.Msg.Seq, s)
			} else if string(p.Raw) != string(r.Raw) {
				f.add("event %d resent with a different envelope", s)
			}
			continue
		}
		byID[id] = r
		if other, ok := bySeq[s]; ok {
			f.add("seq %d used by two events (%s, %s)", s, other, id)
		}
		bySeq[s] = id
	}
	if len(bySeq) == 0 {
		return "", errors.New("no event arrived")
	}
	seqs := make([]uint64, 0, len(bySeq))
	for s := range bySeq {
		seqs = append(seqs, s)
	}
	slices.Sort(seqs)
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			f.add("no event with seq %d: a gap between %d and %d", seqs[i-1]+1, seqs[i-1], seqs[i])
		}
	}
	return fmt.Sprintf("%d events, seq %d to %d", len(seqs), seqs[0], seqs[len(seqs)-1]), f.err()
}

func (e *edgeRun) checkSeq(context.Context) (string, error) { return checkSeqs(e.box.all()) }

func (e *edgeRun) checkEnvelopes(context.Context) (string, error) {
	var f failures
	n := 0
	for _, r := range e.box.all() {
		if len(r.Raw) == 0 && r.Retained {
			continue // clearing a retained message
		}
		n++
		if r.Err != nil {
			f.add("%s: %v", r.Channel, r.Err)
		}
	}
	if len(f) > 3 {
		f = append(f[:3], fmt.Sprintf("and %d more", len(f)-3))
	}
	return fmt.Sprintf("%d messages decode", n), f.err()
}

func (e *edgeRun) checkTopics(context.Context) (string, error) {
	_, denied, _ := e.b.seen()
	if len(denied) > 0 {
		return "", fmt.Errorf("published on %v", denied)
	}
	return "own edge→cloud channels only", nil
}

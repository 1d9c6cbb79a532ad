package mqtt_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/larder-lockers/larder/cloud/broker"
	cloudmqtt "github.com/larder-lockers/larder/cloud/mqtt"
	"github.com/larder-lockers/larder/protocol"
)

// memFleet is an in-memory domain: it implements every interface the adapter consumes
// with the documented semantics (idempotent events by id, high water, final command
// states sticky, high water reset on an outbox that started over).
type memFleet struct {
	mu        sync.Mutex
	changed   chan struct{}
	statuses  map[string][]cloudmqtt.StatusChange
	births    map[string][]protocol.Birth
	events    map[string][]protocol.Message // ingested, in order
	ids       map[string]bool
	hw        map[string]uint64
	telemetry map[string]int
	version   map[string]uint64
	commands  map[string][]protocol.CommandState // by command id
	calls     map[string][]protocol.CommandState // every CommandProgress, ignored ones too
	pending   []cloudmqtt.PendingCommand
	failEvent func(protocol.Message) error
	batches   []int // runs per SiteEvents call
	// redundant counts events handed to SiteEvents at or below the high water: the
	// adapter should never need the domain's deduplication.
	redundant int
	// commitDelay is what every SiteEvents call costs (a transaction's fsyncs).
	commitDelay time.Duration
	// enter, if set, is called at the start of every SiteEvents call, before anything
	// is locked: a test holds the worker there.
	enter func()
}

func newMemFleet() *memFleet {
	return &memFleet{changed: make(chan struct{}, 1), statuses: map[string][]cloudmqtt.StatusChange{},
		births: map[string][]protocol.Birth{}, events: map[string][]protocol.Message{}, ids: map[string]bool{},
		hw: map[string]uint64{}, telemetry: map[string]int{}, version: map[string]uint64{},
		commands: map[string][]protocol.CommandState{}, calls: map[string][]protocol.CommandState{}}
}

func (f *memFleet) touch() {
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

func (f *memFleet) SiteStatus(_ context.Context, site string, s cloudmqtt.StatusChange) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.statuses[site] = append(f.statuses[site], s)
	f.touch()
	return nil
}

func (f *memFleet) SiteBirth(_ context.Context, site string, b protocol.Birth) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.births[site] = append(f.births[site], b)
	if b.OutboxHighWater < f.hw[site] {
		f.hw[site] = 0
	}
	f.touch()
	return nil
}

// SiteEvents applies each run until its first failure (failEvent), as one
// transaction would: the events before it count, the ones after it do not.
func (f *memFleet) SiteEvents(_ context.Context, runs []cloudmqtt.EventRun) []cloudmqtt.EventResult {
	if f.enter != nil {
		f.enter()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	time.Sleep(f.commitDelay)
	f.batches = append(f.batches, len(runs))
	out := make([]cloudmqtt.EventResult, len(runs))
	for i, r := range runs {
		for _, m := range r.Events {
			if f.failEvent != nil {
				if err := f.failEvent(m); err != nil {
					out[i].Err = err
					break
				}
			}
			if m.Seq != f.hw[r.Site]+1 && m.Seq > f.hw[r.Site] {
				out[i].Err = fmt.Errorf("event %d of %s after %d: a gap", m.Seq, r.Site, f.hw[r.Site])
				break
			}
			if m.Seq <= f.hw[r.Site] {
				f.redundant++
			}
			if _, rejected := m.Body.(protocol.RejectedEvent); rejected || !f.ids[m.ID] {
				f.ids[m.ID] = true
				f.events[r.Site] = append(f.events[r.Site], m)
			}
			f.hw[r.Site] = max(f.hw[r.Site], m.Seq)
		}
		out[i].Ack = f.hw[r.Site]
	}
	f.touch()
	return out
}

func (f *memFleet) EventHighWater(_ context.Context, site string) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hw[site], nil
}

func (f *memFleet) SiteTelemetry(_ context.Context, site string, _ protocol.Telemetry, _ time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.telemetry[site]++
	f.touch()
	return nil
}

func (f *memFleet) DesiredSnapshot(_ context.Context, site string) (protocol.Desired, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := f.version[site]
	if v == 0 {
		v = 1
	}
	return protocol.Desired{Version: v, Full: true}, nil
}

func (f *memFleet) CommandProgress(_ context.Context, _ string, ack protocol.CommandAck, _ time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[ack.CommandID] = append(f.calls[ack.CommandID], ack.State)
	st := f.commands[ack.CommandID]
	if len(st) > 0 && st[len(st)-1].Final() {
		return nil
	}
	f.commands[ack.CommandID] = append(st, ack.State)
	f.touch()
	return nil
}

func (f *memFleet) PendingCommands(_ context.Context, site string) ([]cloudmqtt.PendingCommand, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []cloudmqtt.PendingCommand
	for _, p := range f.pending {
		st := f.commands[p.Command.ID]
		if (site == "" || p.Site == site) && (len(st) == 0 || !st[len(st)-1].Final()) {
			out = append(out, p)
		}
	}
	return out, nil
}

// waitUntil polls cond (under f.mu) until it holds or 5 s pass.
func (f *memFleet) waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		f.mu.Lock()
		ok := cond()
		f.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		select {
		case <-f.changed:
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (f *memFleet) eventSeqs(site string) []uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var seqs []uint64
	for _, m := range f.events[site] {
		seqs = append(seqs, m.Seq)
	}
	return seqs
}

const (
	svcUser = "larder.cloud"
	svcPass = "service-secret-for-tests"
)

// target is a broker to test against: the embedded one or the machine's Mosquitto.
type target struct {
	name  string
	url   string
	creds broker.StaticCredentials // nil for Mosquitto (anonymous)
	user  string
	pass  string
}

func (tg target) edgeLogin(site string) (user, pass string) {
	if tg.creds == nil {
		return "", ""
	}
	pw := "pw-" + site
	tg.creds[site] = broker.PasswordDigest(pw)
	return site, pw
}

func embedded(t testing.TB) target { return embeddedWith(t, nil) }

// embeddedWith starts the embedded broker with its default configuration changed by
// change (if not nil).
func embeddedWith(t testing.TB, change func(*broker.Config)) target {
	t.Helper()
	creds := broker.StaticCredentials{}
	cfg := broker.DefaultConfig()
	if change != nil {
		change(&cfg)
	}
	cfg.Addr = "127.0.0.1:0"
	cfg.Credentials = creds
	cfg.ServiceUser, cfg.ServicePassword = svcUser, svcPass
	b, err := broker.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return target{name: "embedded", url: b.URL(), creds: creds, user: svcUser, pass: svcPass}
}

const mosquittoAddr = "127.0.0.1:1883"

func mosquitto(t testing.TB) target {
	t.Helper()
	c, err := net.DialTimeout("tcp", mosquittoAddr, time.Second)
	if err != nil {
		t.Skipf("no Mosquitto at %s: %v", mosquittoAddr, err)
	}
	c.Close()
	return target{name: "mosquitto", url: "tcp://" + mosquittoAddr}
}

func targets(t *testing.T) []func(testing.TB) target {
	return []func(testing.TB) target{embedded, mosquitto}
}

// uniqueSite is a site id no other test (or other process on a shared Mosquitto) uses.
func uniqueSite(prefix string) string {
	var b [4]byte
	rand.Read(b[:])
	return strings.ToLower(prefix) + "-" + hex.EncodeToString(b[:])
}

type adapterOpt func(*cloudmqtt.Config)

func startAdapter(t testing.TB, tg target, f cloudmqtt.Fleet, sites []string, opts ...adapterOpt) *cloudmqtt.Adapter {
	t.Helper()
	cfg := cloudmqtt.Config{Broker: tg.url, Username: tg.user, Password: tg.pass, Fleet: f, Sites: sites,
		PublishTimeout: 3 * time.Second, ConnectTimeout: 5 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	a, err := cloudmqtt.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// testEdge is a paho client acting as one site's edge.
type testEdge struct {
	t    testing.TB
	site string
	c    paho.Client

	mu       sync.Mutex
	got      map[protocol.Channel][]protocol.Message
	rejected []protocol.Rejection // of every ack received, in order
	acks     chan uint64
	recv     chan struct{}
}

func newEdge(t testing.TB, tg target, site string) *testEdge {
	t.Helper()
	user, pass := tg.edgeLogin(site)
	e := &testEdge{t: t, site: site, got: map[protocol.Channel][]protocol.Message{},
		acks: make(chan uint64, 100000), recv: make(chan struct{}, 1)}
	o := paho.NewClientOptions().AddBroker(tg.url).SetClientID(broker.EdgeClientID(site)).
		SetUsername(user).SetPassword(pass).SetOrderMatters(false).SetAutoReconnect(false).
		SetConnectTimeout(5 * time.Second)
	e.c = paho.NewClient(o)
	if tok := e.c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("edge %s connect: %v", site, tok.Error())
	}
	t.Cleanup(func() { e.c.Disconnect(50) })
	subs := map[string]byte{}
	for _, ch := range []protocol.Channel{protocol.ChanDesired, protocol.ChanCommands, protocol.ChanEventAck} {
		subs[protocol.Topic(site, ch)] = 1
	}
	tok := e.c.SubscribeMultiple(subs, e.handle)
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("edge %s subscribe: %v", site, tok.Error())
	}
	return e
}

func (e *testEdge) handle(_ paho.Client, msg paho.Message) {
	_, ch, err := protocol.ParseTopic(msg.Topic())
	if err != nil {
		return
	}
	m, err := protocol.DecodeOn(ch, msg.Payload())
	if err != nil {
		e.t.Errorf("edge %s: undecodable %s: %v", e.site, ch, err)
		return
	}
	if ch == protocol.ChanEventAck {
		ack := m.Body.(protocol.EventAck)
		e.mu.Lock()
		e.rejected = append(e.rejected, ack.Rejected...)
		e.mu.Unlock()
		e.acks <- ack.Seq
		return
	}
	e.mu.Lock()
	e.got[ch] = append(e.got[ch], m)
	e.mu.Unlock()
	select {
	case e.recv <- struct{}{}:
	default:
	}
}

func (e *testEdge) publish(ch protocol.Channel, h protocol.Header, body protocol.Body) {
	e.t.Helper()
	if err := e.tryPublish(ch, h, body); err != nil {
		e.t.Fatal(err)
	}
}

func (e *testEdge) tryPublish(ch protocol.Channel, h protocol.Header, body protocol.Body) error {
	payload, err := protocol.Encode(h, body)
	if err != nil {
		return err
	}
	tok := e.c.Publish(protocol.Topic(e.site, ch), ch.QoS(), ch.Retained(), payload)
	if !tok.WaitTimeout(5 * time.Second) {
		return errors.New("edge publish: no PUBACK")
	}
	return tok.Error()
}

// event publishes an event with sequence seq and the id "<site>-<seq>" (so a resend
// has the same id), or with a fresh id when fresh is true.
func (e *testEdge) event(seq uint64) {
	e.t.Helper()
	e.publish(protocol.ChanEvents, protocol.Header{ID: fmt.Sprintf("%s-%d", e.site, seq), Seq: seq},
		protocol.Event{Kind: protocol.EventDoorClosed, Credential: protocol.CredNone, Compartment: 1})
}

// waitAck waits for an EventAck of at least seq and returns the last ack seen.
func (e *testEdge) waitAck(seq uint64) uint64 {
	e.t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case got := <-e.acks:
			if got >= seq {
				return got
			}
		case <-deadline:
			e.t.Fatalf("edge %s: no event ack ≥ %d", e.site, seq)
		}
	}
}

// noAckAbove checks that no ack above seq arrives within a short while.
func (e *testEdge) noAckAbove(seq uint64) {
	e.t.Helper()
	deadline := time.After(150 * time.Millisecond)
	for {
		select {
		case got := <-e.acks:
			if got > seq {
				e.t.Fatalf("edge %s: ack %d, want none above %d", e.site, got, seq)
			}
		case <-deadline:
			return
		}
	}
}

// waitMsg waits for n messages on ch and returns them.
func (e *testEdge) waitMsg(ch protocol.Channel, n int) []protocol.Message {
	e.t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		e.mu.Lock()
		got := append([]protocol.Message(nil), e.got[ch]...)
		e.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-e.recv:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			e.t.Fatalf("edge %s: %d messages on %s, want %d", e.site, len(got), ch, n)
		}
	}
}

func birth(hw uint64) protocol.Birth {
	return protocol.Birth{Software: "test", OutboxHighWater: hw,
		Compartments: []protocol.Compartment{{Number: 1, Size: protocol.SizeM, Zone: protocol.ZoneChilled}}}
}

// ackTracker follows one site's cumulative EventAcks as an edge does.
type ackTracker struct {
	acked atomic.Uint64
	done  chan struct{} // closed when the ack reaches last
	last  uint64
	once  sync.Once
	// check, if set, vets every ack (its error is kept, first one wins).
	check func(seq uint64) error
	mu    sync.Mutex
	err   error
}

func newAckTracker(last uint64, check func(uint64) error) *ackTracker {
	return &ackTracker{done: make(chan struct{}), last: last, check: check}
}

func (a *ackTracker) handle(_ paho.Client, msg paho.Message) {
	m, err := protocol.DecodeOn(protocol.ChanEventAck, msg.Payload())
	if err != nil {
		a.fail(err)
		return
	}
	seq := m.Body.(protocol.EventAck).Seq
	if a.check != nil {
		if err := a.check(seq); err != nil {
			a.fail(err)
		}
	}
	for {
		old := a.acked.Load()
		if seq <= old || a.acked.CompareAndSwap(old, seq) {
			break
		}
	}
	if seq >= a.last {
		a.once.Do(func() { close(a.done) })
	}
}

func (a *ackTracker) fail(err error) {
	a.mu.Lock()
	if a.err == nil {
		a.err = err
	}
	a.mu.Unlock()
}

// drainInFlight bounds the publishes of drainLikeAnEdge awaiting their PUBACK, as the
// brokers want (cloud/broker's doc; an unbounded publisher overruns mochi's queues).
const drainInFlight = 100

// drainLikeAnEdge publishes payloads (sequences 1..n) as edge/mqtt's drainer does: in
// order, at most window beyond the cloud's last EventAck, and everything after the last
// ack again when acks stop advancing for ackTimeout. It returns how many events it
// resent; it gives up after deadline.
func drainLikeAnEdge(c paho.Client, topic string, payloads [][]byte, acks *ackTracker, window uint64,
	ackTimeout, deadline time.Duration) (resent int, err error) {
	n := uint64(len(payloads))
	var toks []paho.Token
	next := uint64(1)
	lastAck, lastProgress := uint64(0), time.Now()
	end := time.Now().Add(deadline)
	for acks.acked.Load() < n {
		if time.Now().After(end) {
			return resent, fmt.Errorf("acked %d of %d after %s", acks.acked.Load(), n, deadline)
		}
		if a := acks.acked.Load(); a != lastAck {
			lastAck, lastProgress = a, time.Now()
			next = max(next, a+1)
		}
		if next <= n && next <= lastAck+window {
			if len(toks) >= drainInFlight {
				if !toks[0].WaitTimeout(10 * time.Second) {
					return resent, errors.New("no PUBACK within 10 s")
				}
				toks = toks[1:]
			}
			toks = append(toks, c.Publish(topic, 1, false, payloads[next-1]))
			next++
			continue
		}
		if time.Since(lastProgress) > ackTimeout {
			resent += int(next - (lastAck + 1))
			next, lastProgress = lastAck+1, time.Now()
			continue
		}
		time.Sleep(100 * time.Microsecond)
	}
	return resent, nil
}

// eventPayloads encodes n events of site (sequences 1..n, ids "<site>-<seq>").
func eventPayloads(site string, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		seq := uint64(i + 1)
		p, err := protocol.Encode(protocol.Header{ID: fmt.Sprintf("%s-%d", site, seq), Seq: seq, Time: time.Now()},
			protocol.Event{Kind: protocol.EventDoorClosed, Credential: protocol.CredPickup, Compartment: 1})
		if err != nil {
			panic(err)
		}
		out[i] = p
	}
	return out
}

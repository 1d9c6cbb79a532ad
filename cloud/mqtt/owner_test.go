package mqtt_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/cloud/cloudd"
	cloudmqtt "github.com/larder-lockers/larder/cloud/mqtt"
	edgemqtt "github.com/larder-lockers/larder/edge/mqtt"
	"github.com/larder-lockers/larder/edge/mqtt/mqtttest"
	"github.com/larder-lockers/larder/protocol"
)

// leases is an in-memory lease table: the current fencing token of each site's lease,
// as cloud/lease keeps it in the shared store.
type leases struct {
	mu    sync.Mutex
	token map[string]int64
}

func newLeases() *leases { return &leases{token: map[string]int64{}} }

// move gives site's lease a new token (another replica took it) and returns its fence.
func (l *leases) move(site string) cloud.Fence {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.token[site]++
	return cloud.Fence{Name: "site/" + site, Token: l.token[site]}
}

func (l *leases) holds(f cloud.Fence) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return f.Name != "" && l.token[f.Name[len("site/"):]] == f.Token
}

// owner is a replica's lease manager as the adapter sees it ([cloudmqtt.Ownership]).
type owner struct {
	mu sync.Mutex
	fn func(string, cloud.Fence, bool)
}

func (o *owner) OnChange(fn func(string, cloud.Fence, bool)) {
	o.mu.Lock()
	o.fn = fn
	o.mu.Unlock()
}

func (o *owner) gain(site string, f cloud.Fence) { o.report(site, f, true) }
func (o *owner) lose(site string)                { o.report(site, cloud.Fence{}, false) }

func (o *owner) report(site string, f cloud.Fence, owned bool) {
	o.mu.Lock()
	fn := o.fn
	o.mu.Unlock()
	fn(site, f, owned)
}

// fencingFleet is a domain behind a shared store that fences: every call for a site
// must carry the fence of the site's lease, and fails wrapping [cloud.ErrFenced] (writing
// nothing) when one fence it carries is no longer the lease's, as cloud/pg does for a
// whole transaction. pause, when set, holds SiteEvents (a replica stalled mid-commit).
type fencingFleet struct {
	cloudmqtt.Fleet
	leases   *leases
	unfenced atomic.Int64 // calls for a site without its fence: a bug

	mu         sync.Mutex
	pause      chan struct{} // closed to let held SiteEvents calls go on
	paused     chan struct{} // gets a value when a call is held
	afterwards bool          // hold calls after they committed, not before
}

func (f *fencingFleet) check(ctx context.Context, sites ...string) error {
	fs := cloud.FencesOf(ctx)
	for _, s := range sites {
		if !slices.ContainsFunc(fs, func(x cloud.Fence) bool { return x.Name == "site/"+s }) {
			f.unfenced.Add(1)
		}
	}
	for _, x := range fs {
		if !f.leases.holds(x) {
			return fmt.Errorf("test store: fence %s/%d: %w", x.Name, x.Token, cloud.ErrFenced)
		}
	}
	return nil
}

// holdCommits makes the next SiteEvents calls wait, before committing (or after, when
// afterwards is set), until the returned func is called; paused receives once a call is
// held.
func (f *fencingFleet) holdCommits(afterwards ...bool) (paused <-chan struct{}, release func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pause, f.paused = make(chan struct{}), make(chan struct{}, 1)
	f.afterwards = len(afterwards) > 0 && afterwards[0]
	p := f.pause
	var once sync.Once
	return f.paused, func() {
		once.Do(func() {
			f.mu.Lock()
			f.pause = nil
			f.mu.Unlock()
			close(p)
		})
	}
}

func (f *fencingFleet) SiteEvents(ctx context.Context, runs []cloudmqtt.EventRun) []cloudmqtt.EventResult {
	f.mu.Lock()
	pause, paused, afterwards := f.pause, f.paused, f.afterwards
	f.mu.Unlock()
	hold := func() {
		select {
		case paused <- struct{}{}:
		default:
		}
		select {
		case <-pause:
		case <-ctx.Done(): // the replica closed (crashed) while stalled
		}
	}
	if pause != nil && !afterwards {
		hold()
	}
	if pause != nil && afterwards {
		defer hold()
	}
	var sites []string
	for _, r := range runs {
		sites = append(sites, r.Site)
	}
	if err := f.check(ctx, sites...); err != nil {
		out := make([]cloudmqtt.EventResult, len(runs))
		for i := range out {
			out[i].Err = err
		}
		return out
	}
	return f.Fleet.SiteEvents(ctx, runs)
}

func (f *fencingFleet) SiteStatus(ctx context.Context, site string, s cloudmqtt.StatusChange) error {
	if err := f.check(ctx, site); err != nil {
		return err
	}
	return f.Fleet.SiteStatus(ctx, site, s)
}

func (f *fencingFleet) SiteBirth(ctx context.Context, site string, b protocol.Birth) error {
	if err := f.check(ctx, site); err != nil {
		return err
	}
	return f.Fleet.SiteBirth(ctx, site, b)
}

func (f *fencingFleet) EventHighWater(ctx context.Context, site string) (uint64, error) {
	if err := f.check(ctx, site); err != nil {
		return 0, err
	}
	return f.Fleet.EventHighWater(ctx, site)
}

func (f *fencingFleet) SiteTelemetry(ctx context.Context, site string, t protocol.Telemetry, at time.Time) error {
	if err := f.check(ctx, site); err != nil {
		return err
	}
	return f.Fleet.SiteTelemetry(ctx, site, t, at)
}

func (f *fencingFleet) DesiredSnapshot(ctx context.Context, site string) (protocol.Desired, error) {
	if err := f.check(ctx, site); err != nil {
		return protocol.Desired{}, err
	}
	return f.Fleet.DesiredSnapshot(ctx, site)
}

func (f *fencingFleet) CommandProgress(ctx context.Context, site string, ack protocol.CommandAck, at time.Time) error {
	if err := f.check(ctx, site); err != nil {
		return err
	}
	return f.Fleet.CommandProgress(ctx, site, ack, at)
}

func (f *fencingFleet) PendingCommands(ctx context.Context, site string) ([]cloudmqtt.PendingCommand, error) {
	if site != "" {
		if err := f.check(ctx, site); err != nil {
			return nil, err
		}
	}
	return f.Fleet.PendingCommands(ctx, site)
}

// replica is one cloud replica's fleet adapter with its lease manager and metrics.
type replica struct {
	a     *cloudmqtt.Adapter
	owner *owner
	fleet *fencingFleet
	reg   *prometheus.Registry
}

func startReplica(t testing.TB, tg target, f cloudmqtt.Fleet, l *leases, opts ...adapterOpt) *replica {
	t.Helper()
	r := &replica{owner: &owner{}, fleet: &fencingFleet{Fleet: f, leases: l}, reg: prometheus.NewRegistry()}
	opts = append([]adapterOpt{func(c *cloudmqtt.Config) {
		c.Owner, c.Registry = r.owner, r.reg
		if os.Getenv("LARDER_TEST_LOG") != "" {
			c.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
		}
	}}, opts...)
	r.a = startAdapter(t, tg, r.fleet, nil, opts...)
	return r
}

func (r *replica) metric(t *testing.T, name string) float64 { return metricValue(t, r.reg, name) }

// realEdge runs edge/mqtt's client (protocol 1.1: it resends at once on a
// non-advancing ack) for site until the test ends.
func realEdge(t *testing.T, tg target, site string, ackTimeout time.Duration) *mqtttest.Store {
	t.Helper()
	cfg := edgemqtt.DefaultConfig()
	cfg.Site, cfg.Broker, cfg.Software = site, tg.url, "test-1.1"
	cfg.Username, cfg.Password = tg.edgeLogin(site)
	cfg.KeepAlive, cfg.ConnectTimeout, cfg.OpTimeout = 2*time.Second, 2*time.Second, 3*time.Second
	cfg.BackoffMin, cfg.BackoffMax = 10*time.Millisecond, 100*time.Millisecond
	cfg.PollInterval, cfg.GapGrace = 100*time.Millisecond, 300*time.Millisecond
	cfg.AckTimeout = ackTimeout
	cfg.OutboxWindow = 50
	store := mqtttest.NewStore()
	var log *slog.Logger
	if os.Getenv("LARDER_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil)).With("edge", site)
	}
	c, err := edgemqtt.New(cfg, store.Ports(), log, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	store.Notify = c.Notify
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("edge Run: %v", err)
		}
	})
	return store
}

func waitAcked(t *testing.T, store *mqtttest.Store, seq uint64, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if a, _ := store.Acked(); a >= seq {
			return
		}
		if time.Now().After(deadline) {
			a, _ := store.Acked()
			t.Fatalf("edge outbox acked %d after %v, want %d", a, within, seq)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestTakeoverBetweenReplicas: two replicas on one broker over one real domain (the
// cloud's Service on bbolt behind a fencing store); the site's lease moves from one to
// the other mid-stream, in the three ways a lease moves. Every event is applied exactly
// once and in order, the edge (edge/mqtt's real client) gets its acks from the new
// owner, and what the old owner held is resent well before the edge's AckTimeout.
func TestTakeoverBetweenReplicas(t *testing.T) {
	const (
		perChunk   = 40
		chunks     = 3
		ackTimeout = 20 * time.Second // the fast resend must beat it by far
	)
	for _, mk := range targets(t) {
		tg := mk(t)
		for _, how := range []string{"moved", "crashed", "stalled"} {
			t.Run(tg.name+"/"+how, func(t *testing.T) {
				site := uniqueSite("take")
				svc, _ := benchDomain(t, []string{site})
				domain := cloudd.NewFleet(svc)
				l := newLeases()
				ra, rb := startReplica(t, tg, domain, l), startReplica(t, tg, domain, l)
				ra.owner.gain(site, l.move(site))
				ra.waitOwned(t, 1) // subscribed before the edge's first events: nothing to ack yet
				store := realEdge(t, tg, site, ackTimeout)
				event := protocol.Event{Kind: protocol.EventDoorClosed, Credential: protocol.CredNone, Compartment: 1}
				for range perChunk {
					store.Append(event)
				}
				waitAcked(t, store, perChunk, 10*time.Second)

				// The second chunk goes on the wire to A, which stalls committing it; the
				// lease moves to B meanwhile.
				paused, release := ra.fleet.holdCommits()
				defer release()
				for range perChunk {
					store.Append(event)
				}
				select {
				case <-paused:
				case <-time.After(5 * time.Second):
					t.Fatal("A never committed the second chunk")
				}
				moved := time.Now()
				f := l.move(site)
				switch how {
				case "moved":
					ra.owner.lose(site)
				case "crashed":
					ra.a.Close()
				}
				rb.owner.gain(site, f)
				release() // A wakes up: its commit is fenced ("stalled": it did not know)
				for range perChunk {
					store.Append(event)
				}
				n := uint64(perChunk * chunks)
				waitAcked(t, store, n, ackTimeout/2)
				took := time.Since(moved)
				t.Logf("%s: every event acknowledged %v after the lease moved (AckTimeout %v)", how, took, ackTimeout)

				if hw, err := svc.EventHighWater(context.Background(), site); err != nil || hw != n {
					t.Fatalf("domain high water %d (%v), want %d", hw, err, n)
				}
				if got := svc.Stats().EventsApplied.Load(); got != n {
					t.Fatalf("domain applied %d events, want %d: each exactly once", got, n)
				}
				if got := eventsOf(t, rb.reg, "ingested"); got == 0 {
					t.Error("the new owner ingested nothing")
				}
				if how == "stalled" {
					if got := ra.metric(t, "larder_fleet_leases_fenced_total"); got != 1 {
						t.Errorf("A fenced %v times, want 1", got)
					}
					waitFor(t, "A drops the site", func() bool { return ra.metric(t, "larder_fleet_sites_owned") == 0 })
				}
				for _, r := range []*replica{ra, rb} {
					if n := r.fleet.unfenced.Load(); n != 0 {
						t.Errorf("%d domain calls without the site's fence", n)
					}
				}
			})
		}
	}
}

// TestTakeoverAfterUnacknowledgedCommit: the old owner committed an event and died
// before acknowledging it, with more events queued behind. The new owner's first ack
// advances the edge past the committed event; its repeat, which does not advance, is
// what brings the lost ones back well before AckTimeout.
func TestTakeoverAfterUnacknowledgedCommit(t *testing.T) {
	const ackTimeout = 20 * time.Second
	tg := embedded(t)
	site := uniqueSite("unacked")
	svc, _ := benchDomain(t, []string{site})
	domain := cloudd.NewFleet(svc)
	l := newLeases()
	ra, rb := startReplica(t, tg, domain, l), startReplica(t, tg, domain, l)
	ra.owner.gain(site, l.move(site))
	ra.waitOwned(t, 1) // subscribed before the edge's first events: nothing to ack yet
	store := realEdge(t, tg, site, ackTimeout)
	event := protocol.Event{Kind: protocol.EventDoorClosed, Credential: protocol.CredNone, Compartment: 1}
	store.Append(event)
	waitAcked(t, store, 1, 10*time.Second)

	paused, release := ra.fleet.holdCommits(true)
	defer release()
	store.Append(event) // 2: committed by A, never acknowledged
	<-paused
	for range 20 {
		store.Append(event) // 3..22: queued behind at A, lost with it
	}
	waitFor(t, "A received 22 events", func() bool { return ra.metric(t, "larder_fleet_messages_received_total") >= 22 })
	moved := time.Now()
	f := l.move(site)
	ra.a.Close()
	rb.owner.gain(site, f)
	waitAcked(t, store, 22, ackTimeout/2)
	t.Logf("every event acknowledged %v after the lease moved (AckTimeout %v)", time.Since(moved), ackTimeout)
	if got := svc.Stats().EventsApplied.Load(); got != 22 {
		t.Fatalf("domain applied %d events, want 22: each exactly once", got)
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// drainAcks forgets the acks an edge received so far.
func (e *testEdge) drainAcks() {
	for {
		select {
		case <-e.acks:
		default:
			return
		}
	}
}

func (r *replica) waitOwned(t *testing.T, n float64) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%v sites owned", n), func() bool { return r.metric(t, "larder_fleet_sites_owned") == n })
}

// TestOnlyOwnedSitesConsumed: a replica consumes the sites it owns only; a message of a
// site it lost is ignored unacknowledged and counted; on a gain it reads the high water
// afresh (another replica moved it meanwhile) and acknowledges it at once.
func TestOnlyOwnedSitesConsumed(t *testing.T) {
	tg := embedded(t)
	f := newMemFleet()
	l := newLeases()
	r := startReplica(t, tg, f, l)
	mine, other := uniqueSite("mine"), uniqueSite("other")
	r.owner.gain(mine, l.move(mine))
	r.waitOwned(t, 1)
	em, eo := newEdge(t, tg, mine), newEdge(t, tg, other)
	eo.event(1) // nobody's: not even subscribed
	em.event(1)
	em.waitAck(1)
	eo.noAckAbove(0)

	// A commit of mine stalls while one more event is queued; then the site is lost.
	paused, release := r.fleet.holdCommits()
	defer release()
	em.event(2)
	<-paused
	em.event(3)
	waitFor(t, "event 3 received", func() bool { return r.metric(t, "larder_fleet_messages_received_total") >= 3 })
	r.owner.lose(mine)
	r.waitOwned(t, 0)
	release()
	// 2 committed (the fence still held) but is not acknowledged by a replica that lost
	// the site: the new owner acknowledges it, as a duplicate, when the edge resends it.
	f.waitUntil(t, "event 2 committed", func() bool { return f.hw[mine] == 2 })
	em.noAckAbove(1)
	if got, want := f.eventSeqs(mine), []uint64{1, 2}; !slices.Equal(got, want) {
		t.Fatalf("ingested %v, want %v", got, want)
	}
	if got := r.metric(t, "larder_fleet_messages_unowned_total"); got != 1 {
		t.Errorf("unowned messages = %v, want 1 (event 3)", got)
	}
	em.event(4) // unsubscribed now: not even delivered
	em.noAckAbove(1)

	// Another replica applied 3 and 4 meanwhile; the site comes back.
	f.mu.Lock()
	f.hw[mine] = 4
	f.mu.Unlock()
	em.drainAcks()
	r.owner.gain(mine, l.move(mine))
	if got := em.waitAck(4); got != 4 {
		t.Fatalf("gain ack %d, want the domain's high water 4", got)
	}
	em.event(5)
	em.waitAck(5)
	if got := r.fleet.unfenced.Load(); got != 0 {
		t.Errorf("%d domain calls without the site's fence", got)
	}
}

// TestFencedCommitDropsOnlyTheMovedSite: a shared commit fails when one site's lease
// moved; the adapter retries its runs one by one, applies the site it still owns and
// drops the one that moved, warned once and counted.
func TestFencedCommitDropsOnlyTheMovedSite(t *testing.T) {
	tg := embedded(t)
	f := newMemFleet()
	l := newLeases()
	r := startReplica(t, tg, f, l, func(c *cloudmqtt.Config) { c.Workers = 1 })
	kept, moved := uniqueSite("kept"), uniqueSite("moved")
	r.owner.gain(kept, l.move(kept))
	r.owner.gain(moved, l.move(moved))
	r.waitOwned(t, 2)
	ek, em := newEdge(t, tg, kept), newEdge(t, tg, moved)

	paused, release := r.fleet.holdCommits()
	defer release()
	ek.event(1)
	<-paused
	ek.event(2)
	em.event(1)
	waitFor(t, "3 events received", func() bool { return r.metric(t, "larder_fleet_messages_received_total") >= 3 })
	l.move(moved) // another replica took it; this one has not heard yet
	release()
	ek.waitAck(2)
	em.noAckAbove(0)
	r.waitOwned(t, 1)
	if got, want := f.eventSeqs(kept), []uint64{1, 2}; !slices.Equal(got, want) {
		t.Fatalf("kept site ingested %v, want %v", got, want)
	}
	if got := f.eventSeqs(moved); len(got) != 0 {
		t.Fatalf("moved site ingested %v, want nothing", got)
	}
	if got := r.metric(t, "larder_fleet_leases_fenced_total"); got != 1 {
		t.Errorf("fenced = %v, want 1", got)
	}
	ek.event(3)
	ek.waitAck(3)
}

// TestCommandTimeoutOnlyByOwner: a command published by a replica that does not own the
// site is timed out by the owner, exactly once.
func TestCommandTimeoutOnlyByOwner(t *testing.T) {
	tg := embedded(t)
	f := newMemFleet()
	l := newLeases()
	grace := func(c *cloudmqtt.Config) { c.CommandGrace = 50 * time.Millisecond }
	ra, rb := startReplica(t, tg, f, l, grace), startReplica(t, tg, f, l, grace)
	site := uniqueSite("cmdown")
	ra.owner.gain(site, l.move(site))
	ra.waitOwned(t, 1)
	c := openCmd("cmd-orphan", time.Now().Add(100*time.Millisecond))
	f.mu.Lock()
	f.pending = append(f.pending, cloudmqtt.PendingCommand{Site: site, Command: c})
	f.mu.Unlock()
	if err := rb.a.PublishCommand(context.Background(), site, c); err != nil {
		t.Fatal(err)
	}
	// The owner arms it on its next reload (at most a second here) and it times out then.
	f.waitUntil(t, "cmd-orphan timed out", func() bool { return len(f.commands["cmd-orphan"]) == 1 })
	f.mu.Lock()
	calls := slices.Clone(f.calls["cmd-orphan"])
	f.mu.Unlock()
	if want := []protocol.CommandState{protocol.StateTimedOut}; !slices.Equal(calls, want) {
		t.Fatalf("progress calls %v, want %v: one timeout, by the owner", calls, want)
	}
	if a, b := ra.metric(t, "larder_fleet_commands_total"), rb.metric(t, "larder_fleet_commands_total"); a != 1 || b != 0 {
		t.Fatalf("timeouts recorded by owner %v, by publisher %v; want 1 and 0", a, b)
	}
}

// TestSubscribeManyOwnedSites: a replica subscribes to 5,000 gained sites (six topics
// each) on the embedded broker within 10 s (a takeover must finish within 15 s), and
// logs how long it took.
func TestSubscribeManyOwnedSites(t *testing.T) {
	const n = 5000
	tg := embedded(t)
	f := newMemFleet()
	l := newLeases()
	r := startReplica(t, tg, f, l)
	sites := make([]string, n)
	for i := range sites {
		sites[i] = fmt.Sprintf("many-%05d", i)
	}
	start := time.Now()
	for _, s := range sites {
		r.owner.gain(s, l.move(s))
	}
	for r.metric(t, "larder_fleet_sites_owned") != n && time.Since(start) < 10*time.Second {
		time.Sleep(time.Millisecond)
	}
	took := time.Since(start)
	t.Logf("subscribed %d owned sites in %v (%.0f sites/s)", n, took, n/took.Seconds())
	if took > 10*time.Second {
		t.Fatalf("subscribing %d sites took %v, want under 10 s", n, took)
	}
	e := newEdge(t, tg, sites[n-1])
	e.event(1)
	e.waitAck(1)
}

// TestSeveralBrokers: Broker may list several URLs; paho tries them in order, so a dead
// first node is passed over.
func TestSeveralBrokers(t *testing.T) {
	tg := embedded(t)
	dead := "tcp://" + mqtttest.FreeAddr(t)
	f := newMemFleet()
	site := uniqueSite("multi")
	startAdapter(t, tg, f, []string{site}, func(c *cloudmqtt.Config) { c.Broker = dead + " , " + tg.url })
	e := newEdge(t, tg, site)
	e.event(1)
	e.waitAck(1)

	for _, tc := range []struct {
		broker string
		ok     bool
	}{
		{"tcp://127.0.0.1:1883", true},
		{"tcp://127.0.0.1:1883,tcp://127.0.0.1:1884", true},
		{"tcp://127.0.0.1:1883,", false},
		{"tcp://127.0.0.1:1883,ftp://127.0.0.1:21", false},
		{"", false},
	} {
		err := cloudmqtt.Config{Broker: tc.broker, Fleet: f}.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("Validate(%q) = %v, want ok %v", tc.broker, err, tc.ok)
		}
	}
	if err := (cloudmqtt.Config{Broker: tg.url, Fleet: f, Sites: []string{site}, Owner: &owner{}}).Validate(); err == nil {
		t.Error("Validate accepted Sites and Owner together")
	}
}

package e2e_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/cloud/pg"
	"github.com/larder-lockers/larder/demo"
	"github.com/larder-lockers/larder/internal/pgtest"
	"github.com/larder-lockers/larder/loadgen"
)

// The replicated cloud's scale in TestReplicaKilledMidFlow: haReplicas larder-cloud
// processes over one PostgreSQL, haSites real courtyards (larder-sim + larder-edge),
// haOrdersPerSite orders walked at each through the kiosk (driver loads, resident picks
// up). Raise them to stress the takeover; the defaults finish well within 3 minutes on
// two cores.
const (
	haReplicas      = 3
	haSites         = 3
	haOrdersPerSite = 20
	// haTakeover is the bound on a killed replica's sites being served again.
	haTakeover = 15 * time.Second
	// haOpenCompartment is the door the takeover probe opens remotely: a frozen one,
	// which the walked orders (ambient parcels) never use.
	haOpenCompartment = 17
)

// haSite is one courtyard of the test and the people at it.
type haSite struct {
	id     string
	sim    *demo.Sim
	edge   *demo.Edge
	people *demo.People
	token  string // the driver's kiosk session
}

// TestReplicaKilledMidFlow runs haReplicas clouds over one PostgreSQL database and a
// private Mosquitto, haSites courtyards with real edges, and walks orders through every
// replica round-robin. Once a third of the orders are done it SIGKILLs the replica that
// owns the most sites, and measures how long until one of those sites is served again
// (a remote open through a surviving replica reaches SUCCEEDED: the command went out
// and the edge's acks and door event were applied). Afterwards every order must be
// picked up exactly once, every webhook delivered once, and cloud.CheckInvariants must
// find nothing wrong in PostgreSQL. Seeded: LARDER_SEED=<seed> replays the choices.
func TestReplicaKilledMidFlow(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("LARDER_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("LARDER_SEED=%q: %v", s, err)
		}
	}
	t.Logf("seed %d (LARDER_SEED=%d to replay)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0x4a11))
	ctx := t.Context()
	dir := t.TempDir()
	l := &demo.Launcher{BinDir: binDir, LogDir: filepath.Join(dir, "logs"), StopTimeout: 10 * time.Second}
	t.Cleanup(func() {
		l.StopAll()
		if t.Failed() {
			dumpLogs(t, l.LogDir)
		}
	})
	pgURL := pgtest.DB(t)
	mq := startMosquitto(t)
	c := startCluster(t, l, pgURL, mq, haReplicas)
	hooks := newHookCounter(t)
	secret, err := c.as("platform").SetWebhook(ctx, platformID, hooks.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if err := hooks.setSecret(secret); err != nil {
		t.Fatal(err)
	}
	sites := make([]*haSite, haSites)
	for i := range sites {
		sites[i] = startHASite(t, c, l, mq, fmt.Sprintf("e2e-ha-%d-%s", i, randHex(3)))
	}

	// Walk the orders, one worker per site (a kiosk serves one person at a time).
	var (
		done     atomic.Int64
		killAt   = int64(haSites*haOrdersPerSite/3) + rng.Int64N(3)
		killed   = make(chan struct{})
		mu       sync.Mutex
		orderIDs []string
		wg       sync.WaitGroup
		phones   = make([][]string, haSites)
	)
	for i := range sites {
		for range haOrdersPerSite {
			phones[i] = append(phones[i], fmt.Sprintf("+86138%08d", rng.IntN(100000000)))
		}
	}
	walkErr := make(chan error, haSites)
	for i, s := range sites {
		wg.Go(func() {
			for n, phone := range phones[i] {
				id, err := walkHAOrder(ctx, c, s, fmt.Sprintf("ha-%s-%d", s.id, n), phone)
				if err != nil {
					walkErr <- fmt.Errorf("site %s order %d: %w", s.id, n, err)
					return
				}
				mu.Lock()
				orderIDs = append(orderIDs, id)
				mu.Unlock()
				if done.Add(1) == killAt {
					close(killed)
				}
			}
		})
	}

	// The kill, mid-flow, and the takeover.
	select {
	case <-killed:
	case err := <-walkErr:
		t.Fatal(err)
	case <-time.After(2 * time.Minute):
		t.Fatal("the first third of the orders did not finish within 2 minutes")
	}
	owners, err := loadgen.LeaseOwners(ctx, pgURL)
	if err != nil {
		t.Fatal(err)
	}
	victim, owned := mostSites(c.ids, owners, sites)
	if len(owned) == 0 {
		t.Fatalf("no replica holds a site lease (larder_leases: %v)", owners)
	}
	t.Logf("killing %s (owns %v) after %d orders", c.ids[victim], owned, done.Load())
	killedAt := time.Now()
	c.kill(victim)
	probe := owned[rng.IntN(len(owned))]
	took, err := remoteOpenServed(ctx, c, siteByID(sites, probe), killedAt, 2*haTakeover)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("takeover: site %s served again %s after the SIGKILL", probe, took.Round(time.Millisecond))
	if took > haTakeover {
		t.Errorf("takeover took %s, want at most %s", took.Round(time.Millisecond), haTakeover)
	}
	// Every site the victim held is leased by a survivor within the same bound: the
	// probe may be served a renewal round before the last of them is claimed.
	if err := demo.Eventually(ctx, max(haTakeover-time.Since(killedAt), time.Second), "every killed replica's site leased by a survivor", func() error {
		after, err := loadgen.LeaseOwners(ctx, pgURL)
		if err != nil {
			return err
		}
		for _, s := range owned {
			if after[s] == c.ids[victim] || after[s] == "" {
				return fmt.Errorf("site %s: lease held by %q %s after the SIGKILL", s, after[s], time.Since(killedAt).Round(time.Millisecond))
			}
		}
		return nil
	}); err != nil {
		t.Error(err)
	}

	wg.Wait()
	close(walkErr)
	for err := range walkErr {
		t.Fatal(err)
	}
	if len(orderIDs) != haSites*haOrdersPerSite {
		t.Fatalf("%d orders walked, want %d", len(orderIDs), haSites*haOrdersPerSite)
	}

	// Every order picked up, and told once.
	plat := c.as("platform")
	for _, id := range orderIDs {
		if _, err := plat.WaitOrderState(ctx, id, "picked_up", 30*time.Second); err != nil {
			t.Fatalf("order %s: %v", id, err)
		}
	}
	// Every webhook notice in the outbox delivered, each received once; notices a killed
	// replica had claimed wait for its claim to lapse (PGQueue: a minute).
	var notices map[string]string
	if err := demo.Eventually(ctx, 90*time.Second, "every webhook notice delivered", func() error {
		if notices, err = webhookNotices(ctx, pgURL); err != nil {
			return err
		}
		for id, state := range notices {
			if state != "delivered" || hooks.received(id) == 0 {
				return fmt.Errorf("notice %s %s, received %d times", id, state, hooks.received(id))
			}
		}
		for _, id := range orderIDs {
			if hooks.count(id, "picked_up") == 0 {
				return fmt.Errorf("no picked_up webhook yet for %s", id)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, id := range hooks.ids() {
		if _, ok := notices[id]; !ok {
			t.Errorf("webhook %s received, not in the outbox", id)
		}
	}
	for _, id := range orderIDs {
		for _, kind := range []string{"created", "loaded", "picked_up"} {
			if n := hooks.count(id, kind); n != 1 {
				t.Errorf("order %s: %d %s webhooks, want 1", id, n, kind)
			}
		}
	}
	if d := hooks.duplicates(); len(d) > 0 {
		t.Errorf("notices delivered more than once: %v", d)
	}
	if hooks.badSig > 0 {
		t.Errorf("%d webhooks with a bad signature", hooks.badSig)
	}

	// The store itself, read from PostgreSQL.
	store, err := pg.Open(ctx, pgURL, pg.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	vs, err := cloud.CheckInvariants(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		t.Errorf("invariant broken in PostgreSQL: %s", v)
	}
}

// startHASite creates and provisions a site through the cluster, and starts its
// simulator and edge on the private broker; it returns once the cloud sees the edge
// online with its compartments and the driver is logged in at the kiosk.
func startHASite(t *testing.T, c *cluster, l *demo.Launcher, mq *mosquitto, id string) *haSite {
	t.Helper()
	ctx := t.Context()
	s := &haSite{id: id}
	var err error
	if s.sim, err = l.StartSim(ctx, demo.SimOptions{Name: "sim-" + id, Boards: 2, Zones: zones}); err != nil {
		t.Fatal(err)
	}
	admin := c.api(c.adminKey)
	if err := admin.CreateSite(ctx, id, "HA courtyard", "1 Test Lane"); err != nil {
		t.Fatal(err)
	}
	prov, err := c.api(c.adminKey).Provision(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	s.edge, err = l.StartEdge(ctx, demo.EdgeOptions{Name: "edge-" + id, Site: id, SiteKey: prov.SiteKey,
		DataDir: filepath.Join(t.TempDir(), "edge"), Broker: mq.URL(), BrokerUser: prov.MQTTUsername,
		BrokerPassword: prov.MQTTPassword, Bus: s.sim.Bus, Zones: zones, Thermometer: s.sim.Control.URL,
		PollInterval: 100 * time.Millisecond, TempInterval: time.Second, LogLevel: "info"})
	if err != nil {
		t.Fatal(err)
	}
	s.people = &demo.People{Kiosk: s.edge.Kiosk, Sim: s.sim.Control, Dwell: 300 * time.Millisecond}
	if err := demo.Eventually(ctx, 30*time.Second, "site "+id+" online with compartments", func() error {
		st, err := c.as("ops").Site(ctx, id)
		if err == nil && (!st.Online || len(st.CompartmentList) == 0) {
			err = fmt.Errorf("online %v, %d compartments", st.Online, len(st.CompartmentList))
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	cred, err := c.as("driver").LoadingCredential(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := demo.Eventually(ctx, 20*time.Second, "driver login at "+id, func() (err error) {
		s.token, err = s.edge.Kiosk.DriverLogin(ctx, cred)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return s
}

// walkHAOrder creates an order through the next replica, and has the driver load it
// and the resident pick it up at the kiosk once its reservation reached the edge. It
// returns the order's id.
func walkHAOrder(ctx context.Context, c *cluster, s *haSite, ext, phone string) (string, error) {
	// A create cut off by the kill is sent again to the next replica with the same
	// idempotency key, as a platform behind a load balancer would.
	var rc demo.Receipt
	var err error
	for range haReplicas {
		rc, err = c.as("platform").CreateOrder(ctx, ext, demo.OrderSpec(s.id, ext, phone, 4*time.Hour, "platform",
			demo.Parcel{Size: "S", Zone: "ambient"}))
		if err == nil || demo.StatusOf(err) != 0 {
			break
		}
	}
	if err != nil {
		return "", fmt.Errorf("create: %w", err)
	}
	if rc.Pickup == nil || len(rc.Order.Slots) == 0 {
		return rc.Order.ID, fmt.Errorf("order %s: receipt without a code or a compartment", rc.Order.ID)
	}
	o := rc.Order
	// The reservation reaches the edge from the site's owner; across a takeover that
	// waits for the lease to move.
	if err := demo.Eventually(ctx, 2*haTakeover, "order "+o.ID+" reserved on the kiosk", func() error {
		m, err := s.edge.Kiosk.Manifest(ctx, s.token)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(m, func(mo demo.ManifestOrder) bool { return mo.Order == o.ID && mo.State == "reserved" }) {
			return fmt.Errorf("not on the manifest")
		}
		return nil
	}); err != nil {
		return o.ID, err
	}
	if err := s.people.Load(ctx, s.token, o.ID, o.Compartments()); err != nil {
		return o.ID, err
	}
	if _, err := s.people.PickUp(ctx, rc.Pickup.Code, lastFour(phone)); err != nil {
		return o.ID, err
	}
	// The next order needs the compartment back: the cloud frees it when the site's
	// owner applies the pickup (across a takeover, after the edge resends it).
	if _, err := c.as("platform").WaitOrderState(ctx, o.ID, "picked_up", 2*haTakeover); err != nil {
		return o.ID, err
	}
	return o.ID, nil
}

// mostSites picks the replica that owns the most of the test's sites.
func mostSites(ids []string, owners map[string]string, sites []*haSite) (int, []string) {
	best, bestSites := 0, []string(nil)
	for i, id := range ids {
		var mine []string
		for _, s := range sites {
			if owners[s.id] == id {
				mine = append(mine, s.id)
			}
		}
		if len(mine) > len(bestSites) {
			best, bestSites = i, mine
		}
	}
	return best, bestSites
}

func siteByID(sites []*haSite, id string) *haSite {
	for _, s := range sites {
		if s.id == id {
			return s
		}
	}
	return nil
}

// remoteOpenServed asks a surviving replica to open the probe door of s and returns the
// time from since until the command is SUCCEEDED (the edge got it from the site's new
// owner, and its acks were applied); the door is shut again afterwards.
func remoteOpenServed(ctx context.Context, c *cluster, s *haSite, since time.Time, timeout time.Duration) (time.Duration, error) {
	cmd, err := c.as("ops").OpenCompartment(ctx, s.id, haOpenCompartment, "takeover probe")
	if err != nil {
		return 0, fmt.Errorf("remote open: %w", err)
	}
	var took time.Duration
	var final error // a final state other than SUCCEEDED: no use waiting
	err = demo.Eventually(ctx, timeout, "remote open of "+s.id+" SUCCEEDED", func() error {
		got, err := c.as("ops").Command(ctx, cmd.ID)
		if err != nil {
			return err
		}
		switch got.State {
		case "SUCCEEDED":
			took = time.Since(since)
			return nil
		case "FAILED", "REJECTED", "TIMED_OUT":
			final = fmt.Errorf("command %s %s (%s)", cmd.ID, got.State, got.Error)
			return nil
		}
		return fmt.Errorf("command %s %s", cmd.ID, got.State)
	})
	if err == nil {
		err = final
	}
	if err != nil {
		return 0, err
	}
	if err := s.sim.Control.Close(ctx, haOpenCompartment); err != nil {
		return took, fmt.Errorf("shut the probe door: %w", err)
	}
	return took, nil
}

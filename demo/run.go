package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Config configures the demo (larder-demo).
type Config struct {
	// Dir holds every piece of state: cloud/, edge/, logs/ and demo.json. Default "data".
	Dir string
	// BinDir holds the built binaries. Default "bin".
	BinDir string
	// Host and BasePort: the cloud's HTTP on BasePort, its embedded MQTT broker on +1,
	// the kiosk on +2, the simulator's control API on +3, the demo's inbox (SMS gateway
	// and platform webhook endpoint) on +4, the cloud's /metrics on +5 and the edge's on
	// +6. Default 127.0.0.1 and 7400
	// (clear of Mosquitto 1883, PostgreSQL 5432, Redis 6379, NATS 4222, RabbitMQ 5672,
	// MariaDB 3306).
	Host     string
	BasePort int
	// Site is the simulated courtyard's id. Default "courtyard-1".
	Site string
	// Out receives the banner and progress; nil means os.Stdout.
	Out io.Writer
	// Follow streams every child's log lines to Out, prefixed [sim] [cloud] [edge];
	// otherwise they go only to Dir/logs/NAME.log.
	Follow bool
}

// The demo courtyard: two kerong-cu16 boards, 32 compartments in three zones.
const (
	demoBoards = 2
	demoZones  = "chilled:1-16,frozen:17-24,ambient:25-32"
)

func (c *Config) defaults() {
	if c.Dir == "" {
		c.Dir = "data"
	}
	if c.BinDir == "" {
		c.BinDir = "bin"
	}
	if c.Host == "" {
		c.Host = "127.0.0.1"
	}
	if c.BasePort == 0 {
		c.BasePort = 7400
	}
	if c.Site == "" {
		c.Site = "courtyard-1"
	}
	if c.Out == nil {
		c.Out = os.Stdout
	}
}

func (c Config) addr(offset int) string {
	return c.Host + ":" + strconv.Itoa(c.BasePort+offset)
}

// Run starts the whole system, provisions and seeds it on the first run, prints the
// URLs and credentials, and serves until ctx ends (Ctrl-C); then it stops the children
// in reverse order (edge, cloud, simulator) and returns nil. It fails early and clearly
// when a port is taken or a child does not become healthy.
func Run(ctx context.Context, cfg Config) (err error) {
	cfg.defaults()
	out := cfg.Out
	say := func(format string, args ...any) { fmt.Fprintf(out, "larder-demo: "+format+"\n", args...) }

	httpAddr, mqttAddr, kioskAddr, ctlAddr, inboxAddr := cfg.addr(0), cfg.addr(1), cfg.addr(2), cfg.addr(3), cfg.addr(4)
	cloudMetrics, edgeMetrics := cfg.addr(5), cfg.addr(6)
	if err := CheckFree(httpAddr, mqttAddr, kioskAddr, ctlAddr, inboxAddr, cloudMetrics, edgeMetrics); err != nil {
		return fmt.Errorf("%w\nlarder-demo: choose other ports with -port BASE (it uses BASE..BASE+6)", err)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	st, err := LoadState(cfg.Dir)
	if err != nil {
		return err
	}
	if st.Site != "" && st.Site != cfg.Site {
		return fmt.Errorf("demo: %s holds site %q, not %q: use -site %s or another -data directory", cfg.Dir, st.Site, cfg.Site, st.Site)
	}
	l := &Launcher{BinDir: cfg.BinDir, LogDir: filepath.Join(cfg.Dir, "logs"), StopTimeout: 15 * time.Second}
	if err := os.MkdirAll(l.LogDir, 0o700); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	inbox, err := StartInbox(inboxAddr, filepath.Join(l.LogDir, "inbox.log"), out)
	if err != nil {
		return err
	}
	defer inbox.Close()
	if cfg.Follow {
		l.Console = out
	}
	// The simulator's contents are snapshot every 5 s while the demo runs and once more
	// on the way out, whatever the way out (Ctrl-C during seeding included), before the
	// simulator stops: see the package doc.
	var sim *Sim
	snap := func() {
		if sim == nil || sim.Exited() {
			return
		}
		if items, err := sim.Control.Items(context.Background()); err == nil {
			st.Items = itemsToJSON(items)
			_ = st.Save(cfg.Dir)
		}
	}
	defer func() {
		if ctx.Err() != nil {
			say("interrupted")
			err = nil // Ctrl-C, even during start-up, is a clean stop
		}
		snap()
		say("stopping edge, cloud, simulator")
		if e := l.StopAll(); e != nil && err == nil {
			err = e
		}
	}()

	// The simulator first: the edge needs its serial line.
	say("starting larder-sim (2 boards, 32 compartments: chilled 1-16, frozen 17-24, ambient 25-32)")
	sim, err = l.StartSim(ctx, SimOptions{Boards: demoBoards, Zones: demoZones, Control: ctlAddr})
	if err != nil {
		return err
	}
	if items := itemsFromJSON(st.Items); len(items) > 0 {
		// larder-sim keeps its world in memory: put back what the edge believes is in
		// its compartments before the edge starts, so it sees no door move.
		if err := sim.Control.Restore(ctx, items); err != nil {
			return err
		}
		say("put back the contents of %d compartments from the last run", len(items))
	}

	say("starting larder-cloud (embedded broker on %s, data in %s)", mqttAddr, filepath.Join(cfg.Dir, "cloud"))
	if st.Keys == nil {
		st.Keys = map[string]string{}
	}
	if st.Keys["admin"] == "" {
		st.Keys["admin"] = newAdminKey()
	}
	cloud, err := l.StartCloud(ctx, CloudOptions{DataDir: filepath.Join(cfg.Dir, "cloud"), HTTP: httpAddr, Metrics: cloudMetrics,
		MQTTListen: mqttAddr, AdminKey: st.Keys["admin"], SMSURL: inbox.SMSURL()})
	if err != nil {
		return err
	}
	admin := cloud.API(st.Keys["admin"])
	if st.Provisioning.SiteKey != "" {
		if _, err := admin.Site(ctx, cfg.Site); StatusOf(err) == 404 {
			return fmt.Errorf("demo: %s says site %s is provisioned but the cloud's data in %s does not know it: delete %s to start afresh",
				filepath.Join(cfg.Dir, "demo.json"), cfg.Site, filepath.Join(cfg.Dir, "cloud"), cfg.Dir)
		}
	}
	if st.Provisioning.SiteKey == "" {
		if err := provision(ctx, admin, &st, cfg.Site); err != nil {
			return err
		}
		if err := st.Save(cfg.Dir); err != nil {
			return err
		}
		say("provisioned site %s and created the demo API keys", cfg.Site)
	}

	// The platform's webhook endpoint is the demo's inbox; registering again each run
	// draws a fresh secret the inbox checks signatures with.
	secret, err := cloud.API(st.Keys["platform"]).SetWebhook(ctx, "demo-grocer", inbox.WebhookURL())
	if err != nil {
		return fmt.Errorf("demo: webhook: %w", err)
	}
	inbox.SetSecret(secret)

	say("starting larder-edge (kiosk on %s, data in %s)", kioskAddr, filepath.Join(cfg.Dir, "edge"))
	p := st.Provisioning
	broker := cloud.BrokerURL
	edge, err := l.StartEdge(ctx, EdgeOptions{Site: cfg.Site, SiteKey: p.SiteKey, DataDir: filepath.Join(cfg.Dir, "edge"),
		Kiosk: kioskAddr, Metrics: edgeMetrics, Broker: broker, BrokerUser: p.MQTTUsername, BrokerPassword: p.MQTTPassword, Bus: sim.Bus,
		Boards: []int{0, 1}, Zones: demoZones, Thermometer: sim.Control.URL})
	if err != nil {
		return err
	}
	ops := cloud.API(st.Keys["ops"])
	if err := Eventually(ctx, 30*time.Second, "the cloud sees the edge online with its compartments", func() error {
		s, err := ops.Site(ctx, cfg.Site)
		if err == nil && (!s.Online || len(s.CompartmentList) == 0) {
			err = fmt.Errorf("online %v, %d compartments", s.Online, len(s.CompartmentList))
		}
		return err
	}); err != nil {
		return fmt.Errorf("demo: %w (see %s)", err, l.LogDir)
	}

	if !st.Seeded {
		// No duration is promised: the driver's loads wait on the simulated doors and
		// sensors, and how long that takes depends on the machine.
		say("seeding demo orders (three are loaded by a simulated driver at the kiosk)")
		people := &People{Kiosk: edge.Kiosk, Sim: sim.Control}
		if err := seed(ctx, cloud, &st, people); err != nil {
			return err
		}
		st.Seeded = true
		if err := st.Save(cfg.Dir); err != nil {
			return err
		}
	}
	cred, err := cloud.API(st.Keys["driver"]).LoadingCredential(ctx, cfg.Site)
	if err != nil {
		return fmt.Errorf("demo: driver credential: %w", err)
	}
	banner(ctx, out, cfg, cloud, edge, sim, st, cred)

	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			snap()
		case <-sim.Done():
			return childDied(sim.Proc)
		case <-cloud.Done():
			return childDied(cloud.Proc)
		case <-edge.Done():
			return childDied(edge.Proc)
		}
	}
}

func childDied(p *Proc) error {
	return p.failure("it to keep running", errors.New("it exited"))
}

func newAdminKey() string {
	b := make([]byte, 24)
	rand.Read(b)
	return "lk_demo_admin_" + hex.EncodeToString(b)
}

// provision creates the site, hands out its edge credentials and creates the demo keys.
func provision(ctx context.Context, admin *API, st *State, site string) error {
	if err := admin.CreateSite(ctx, site, "Building 3 courtyard", "3 Garden Lane"); err != nil && StatusOf(err) != 409 {
		return fmt.Errorf("demo: create site: %w", err)
	}
	p, err := admin.Provision(ctx, site)
	if err != nil {
		return fmt.Errorf("demo: provision %s: %w (if the cloud's data survived but %s did not, delete both to start afresh)", site, err, "demo.json")
	}
	st.Site, st.Provisioning = site, p
	for _, k := range []struct{ role, subject string }{{"ops", "demo-ops"}, {"driver", "demo-driver"}, {"platform", "demo-grocer"}} {
		if st.Keys[k.role] != "" {
			continue
		}
		key, err := admin.CreateKey(ctx, k.role, k.subject)
		if err != nil {
			return fmt.Errorf("demo: create %s key: %w", k.role, err)
		}
		st.Keys[k.role] = key
	}
	return nil
}

// seed places the demo orders: two loaded by a driver at the kiosk with codes the
// platform hands out (printed for the kiosk), one loaded whose code the cloud's notifier
// sends, and three waiting for a driver.
func seed(ctx context.Context, cloud *Cloud, st *State, people *People) error {
	platform := cloud.API(st.Keys["platform"])
	type spec struct {
		ext, phone, delivery string
		load                 bool
		parcels              []Parcel
	}
	specs := []spec{
		{"demo-1001", "+8613800001234", "platform", true, []Parcel{{"M", "chilled"}}},
		{"demo-1002", "+8613900005678", "platform", true, []Parcel{{"M", "frozen"}, {"M", "chilled"}}},
		{"demo-1003", "+8613700002468", "notifier", true, []Parcel{{"M", "ambient"}}},
		{"demo-1004", "+8613600001357", "notifier", false, []Parcel{{"M", "chilled"}}},
		{"demo-1005", "+8613500009999", "platform", false, []Parcel{{"S", "frozen"}}},
		{"demo-1006", "+8613400004321", "notifier", false, []Parcel{{"M", "ambient"}, {"S", "chilled"}}},
	}
	// Seeding may have been interrupted: the idempotency keys make a second create
	// return the same order (without its code, handed out once: reissue it), and orders
	// already loaded are not loaded again.
	st.Pickups = nil
	if st.SeedStart.IsZero() {
		st.SeedStart = time.Now().Add(-time.Minute)
	}
	var toLoad []Order
	codes := map[string]string{}
	phones := map[string]string{}
	for _, s := range specs {
		rc, err := platform.CreateOrder(ctx, st.Site+"-"+s.ext, OrderSpecAt(st.Site, s.ext, s.phone, st.SeedStart, 8*time.Hour, s.delivery, s.parcels...))
		if err != nil {
			return fmt.Errorf("demo: order %s: %w", s.ext, err)
		}
		if rc.Pickup == nil && s.delivery == "platform" && (rc.Order.State == "assigned" || rc.Order.State == "loaded") {
			if rc, err = platform.ReissueCode(ctx, rc.Order.ID); err != nil {
				return fmt.Errorf("demo: reissue the code of %s: %w", s.ext, err)
			}
		}
		if rc.Pickup != nil {
			codes[rc.Order.ID] = rc.Pickup.Code
		}
		phones[rc.Order.ID] = s.phone[len(s.phone)-4:]
		if s.load {
			toLoad = append(toLoad, rc.Order)
		}
	}
	cred, err := cloud.API(st.Keys["driver"]).LoadingCredential(ctx, st.Site)
	if err != nil {
		return fmt.Errorf("demo: driver credential: %w", err)
	}
	var token string
	if err := Eventually(ctx, 20*time.Second, "driver login at the kiosk", func() error {
		token, err = people.Kiosk.DriverLogin(ctx, cred)
		return err
	}); err != nil {
		return err
	}
	for _, o := range toLoad {
		// Code is empty for the order whose code the cloud texts: the banner points to the
		// SMS in the inbox log instead.
		st.Pickups = append(st.Pickups, Pickup{Order: o.ID, Code: codes[o.ID], Factor: phones[o.ID], Doors: o.Compartments()})
		if o.State != "assigned" {
			continue // loaded by an interrupted earlier run
		}
		// The reservation reaches the edge as desired state; wait for it in the manifest.
		if err := Eventually(ctx, 20*time.Second, "order "+o.ID+" on the kiosk's manifest", func() error {
			m, err := people.Kiosk.Manifest(ctx, token)
			if err != nil {
				return err
			}
			for _, mo := range m {
				if mo.Order == o.ID {
					return nil
				}
			}
			return errors.New("not yet")
		}); err != nil {
			return err
		}
		// Only the compartments not yet loaded (an interrupted run may have filled some).
		fresh, err := platform.Order(ctx, o.ID)
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		var todo []int
		for _, sl := range fresh.Slots {
			if !sl.Loaded {
				todo = append(todo, sl.Compartment)
			}
		}
		if err := people.Load(ctx, token, o.ID, todo); err != nil {
			return err
		}
		if _, err := platform.WaitOrderState(ctx, o.ID, "loaded", 30*time.Second); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
	}
	return nil
}

func banner(ctx context.Context, w io.Writer, cfg Config, cloud *Cloud, edge *Edge, sim *Sim, st State, cred string) {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("")
	line("  Larder demo is running — site %s (32 compartments: chilled 1-16, frozen 17-24, ambient 25-32)", cfg.Site)
	line("")
	line("  Ops dashboard   %s/ops/        (sign in with the ops key)%s", cloud.URL, served(ctx, cloud.URL+"/ops/"))
	line("  Driver page     %s/driver/     (driver key)%s", cloud.URL, served(ctx, cloud.URL+"/driver/"))
	line("  Kiosk           %s/            (resident pickup; driver login with the credential below)", edge.Kiosk.URL)
	// /v1/ itself is no resource (it answers 404): the OpenAPI document is the API's
	// front page.
	line("  REST API        %s/v1/openapi.json   (the OpenAPI document; calls take Authorization: Bearer KEY)%s",
		cloud.URL, served(ctx, cloud.URL+"/v1/openapi.json"))
	// Metrics have addresses of their own: the API and the kiosk answer 404 for them.
	line("  Metrics         %s/metrics (cloud)   %s/metrics (edge)", cloud.MetricsURL, edge.MetricsURL)
	line("  Simulator       %s/v1/state   (control API: open/close/put/take, faults)", sim.Control.URL)
	line("  MQTT broker     %s (embedded)", cloud.BrokerURL)
	line("  Inbox           SMS to residents and the platform's webhooks are shown here and in %s", filepath.Join(cfg.Dir, "logs", "inbox.log"))
	line("")
	line("  API keys (Authorization: Bearer KEY)")
	for _, r := range []string{"admin", "ops", "driver", "platform"} {
		line("    %-9s %s", r, st.Keys[r])
	}
	line("  Driver credential for the kiosk (2 h): %s", cred)
	line("")
	platform := cloud.API(st.Keys["platform"])
	shown := 0
	for _, p := range st.Pickups {
		o, err := platform.Order(ctx, p.Order)
		if err != nil || o.State != "loaded" {
			continue
		}
		if shown == 0 {
			line("  Pickup at the kiosk (code + last 4 digits of the phone):")
		}
		shown++
		if p.Code == "" {
			// The cloud texted this resident: the code is in the SMS the inbox logged.
			line("    code in the SMS: grep %s %s  phone %s  → doors %v", p.Order, filepath.Join(cfg.Dir, "logs", "inbox.log"), p.Factor, p.Doors)
			continue
		}
		line("    code %s  phone %s  → doors %v (order %s)", p.Code, p.Factor, p.Doors, p.Order)
	}
	if shown == 0 && len(st.Pickups) > 0 {
		line("  The demo's pickups are done. Reissue a code: POST %s/v1/orders/{id}/reissue-code with the platform key.", cloud.URL)
	}
	line("")
	line("  Act as people in the courtyard through the simulator, e.g. after a pickup opened door N:")
	line("    curl -X POST %s/v1/compartments/N/take; curl -X POST %s/v1/compartments/N/close", sim.Control.URL, sim.Control.URL)
	line("  Logs: %s/*.log   State: %s (delete it to start afresh)", filepath.Join(cfg.Dir, "logs"), cfg.Dir)
	line("  Ctrl-C stops everything; the next run resumes with the same data.")
	line("")
	fmt.Fprint(w, b.String())
}

// served returns "" when url answers, else a note for the banner: the pages are optional
// parts of a larder-cloud build, and a printed URL that 404s would only confuse.
func served(ctx context.Context, url string) string {
	err := doJSON(ctx, "GET", url, "", nil, nil)
	if err != nil && StatusOf(err) != 0 && StatusOf(err)/100 != 3 {
		return fmt.Sprintf("  [not served by this larder-cloud: %d]", StatusOf(err))
	}
	return ""
}

package edged_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/larder-lockers/larder/edge/edged"
	"github.com/larder-lockers/larder/edge/mqtt/mqtttest"
	sim "github.com/larder-lockers/larder/firmware-sim"
	"github.com/larder-lockers/larder/protocol"
	"github.com/larder-lockers/larder/protocol/board"
)

// TestMain doubles as the larder-edge child process of the kill -9 test.
func TestMain(m *testing.M) {
	if os.Getenv("LARDER_BENCH_CHILD") == "rss" {
		rssChild()
	}
	if os.Getenv("LARDER_E2E_CHILD") == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		code := edged.Exec(ctx, strings.Split(os.Getenv("LARDER_E2E_ARGS"), "\x1f"), os.Getenv, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

var key = bytes.Repeat([]byte{0x5a}, 32)

// rig is one courtyard: larder-sim in-process on TCP, larder-edge (edged.Main, or a child
// process), a broker and the cloud's side played by mqtttest.Cloud.
type rig struct {
	t      *testing.T
	site   string
	broker string
	sim    *sim.Main
	world  *sim.World
	cloud  *mqtttest.Cloud
	m      *edged.Main
	kiosk  string
	cfg    edged.Config
	stop   context.CancelFunc
	done   chan struct{}
	ver    uint64
}

const zones = "chilled:1-8,frozen:9-12,ambient:13-16"

func newRig(t *testing.T, broker string, tune func(*edged.Config)) *rig {
	t.Helper()
	r := &rig{t: t, site: "edged-e2e-" + protocol.NewID()[:10], broker: broker}
	cfg := edged.DefaultConfig()
	cfg.Site, cfg.SiteKey, cfg.DataDir, cfg.KioskAddr = r.site, hex.EncodeToString(key), t.TempDir(), "127.0.0.1:0"
	cfg.MetricsAddr = "127.0.0.1:0"
	cfg.Broker, cfg.Boards, cfg.Zones = broker, []int{0}, zones
	cfg.PollInterval, cfg.TempInterval = edged.Duration(100*time.Millisecond), edged.Duration(200*time.Millisecond)
	cfg.LogLevel = "error"
	if tune != nil {
		tune(&cfg)
	}
	// The simulator has the configured profile's boards, from its lowest address.
	sm, err := sim.NewMain(sim.Config{Profile: board.Profile(cfg.Profile), Boards: len(cfg.Boards), Listen: "tcp://127.0.0.1:0",
		Control: "127.0.0.1:0", Zones: zones, OutsideC: 25, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := sm.Open(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go sm.Run(ctx)
	t.Cleanup(func() { cancel(); sm.Close() })
	r.sim, r.world = sm, sm.World()
	t.Cleanup(func() { forgetSite(broker, r.site) })
	r.cloud = mqtttest.NewCloud(t, broker, r.site)
	t.Cleanup(r.cloud.Close)
	cfg.Bus, cfg.Thermometer = "tcp://"+sm.SerialAddr(), "sim:"+sm.ControlURL()
	r.cfg = cfg
	return r
}

// forgetSite leaves the shared broker as the test found it: it drops the edge's
// persistent session (a clean connect with its client id) and the retained status.
func forgetSite(broker, site string) {
	cli := paho.NewClient(paho.NewClientOptions().AddBroker(broker).SetClientID("larder-edge-" + site).SetCleanSession(true))
	if tok := cli.Connect(); !tok.WaitTimeout(2*time.Second) || tok.Error() != nil {
		return
	}
	cli.Publish(protocol.Topic(site, protocol.ChanStatus), 1, true, []byte{}).WaitTimeout(2 * time.Second)
	cli.Disconnect(100)
}

// start runs edged.Main in-process.
func (r *rig) start() {
	r.t.Helper()
	m, err := edged.NewMain(r.cfg, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := m.Open(context.Background()); err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.m, r.kiosk, r.stop, r.done = m, m.KioskURL(), cancel, make(chan struct{})
	births := len(r.cloud.Seen().Births)
	go func() { defer close(r.done); m.Run(ctx) }()
	r.t.Cleanup(r.shutdown)
	r.waitBirth(births)
}

// waitBirth waits for a birth beyond the first n: the edge is subscribed (the fake cloud
// does not answer snapshot requests, so desired state sent earlier would be lost).
func (r *rig) waitBirth(n int) {
	r.t.Helper()
	r.cloud.Wait(r.t, 20*time.Second, "birth", func(s mqtttest.Snapshot) bool { return len(s.Births) > n })
}

func (r *rig) shutdown() {
	if r.stop != nil {
		r.stop()
		<-r.done
		r.m.Close()
		r.stop = nil
	}
}

func (r *rig) waitDesired(v uint64) {
	r.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if have, _ := r.m.Locker().DesiredVersion(); have >= v {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("desired version %d never applied", v)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type ord struct {
	id, code, factor string
	slots            []int
	zone             protocol.Zone
	budget           int
}

// publish sends a full desired snapshot with the orders and a driver credential.
func (r *rig) publish(orders ...ord) uint64 {
	r.t.Helper()
	r.ver++
	d := protocol.Desired{Version: r.ver, Full: true, Credentials: []protocol.LoadingCredential{{ID: "cred-1",
		Digest: protocol.CredentialDigest(key, "driver-token"), Driver: "drv-1", ExpiresAt: time.Now().Add(time.Hour)}}}
	for _, o := range orders {
		z := o.zone
		if z == "" {
			z = protocol.ZoneChilled
		}
		res := protocol.Reservation{Order: o.id, CodeDigest: protocol.CodeDigest(key, o.code),
			SecondFactorDigest: protocol.SecondFactorDigest(key, o.id, o.factor), ExpiresAt: time.Now().Add(24 * time.Hour),
			Zone: z, BudgetSeconds: o.budget}
		for _, c := range o.slots {
			res.Slots = append(res.Slots, protocol.Slot{Compartment: c, Generation: 1, Size: protocol.SizeM})
		}
		d.Reservations = append(d.Reservations, res)
	}
	r.cloud.Publish(r.t, protocol.Header{}, d)
	return r.ver
}

func (r *rig) call(method, path, body, token string) (int, map[string]any) {
	r.t.Helper()
	req, _ := http.NewRequest(method, r.kiosk+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

func (r *rig) login() string {
	r.t.Helper()
	st, body := r.call("POST", "/api/driver/login", `{"credential":"driver-token"}`, "")
	if st != 200 {
		r.t.Fatalf("driver login %d %v", st, body)
	}
	return body["token"].(string)
}

// load has the driver open, fill and close each slot of o through the kiosk and the sim.
func (r *rig) load(tok string, o ord) {
	r.t.Helper()
	for _, c := range o.slots {
		st, body := r.call("POST", "/api/driver/open", fmt.Sprintf(`{"order":%q,"compartment":%d}`, o.id, c), tok)
		if st != 200 {
			r.t.Fatalf("driver open %d: %d %v", c, st, body)
		}
		r.fill(c)
	}
}

func (r *rig) fill(c int) {
	r.t.Helper()
	r.eventually(fmt.Sprintf("put into %d", c), func() error { return r.world.Put(c, 2) })
	time.Sleep(250 * time.Millisecond) // the infrared is polled
	r.shut(c)
}

// shut closes door c until it stays shut: closed while the latch is still released (the
// pulse lasts 300 ms), the spring pushes a door ajar again, as a real one would.
func (r *rig) shut(c int) {
	r.t.Helper()
	r.eventually(fmt.Sprintf("shut %d", c), func() error {
		_ = r.world.Close(c)
		time.Sleep(50 * time.Millisecond)
		if st := r.world.Snapshot().Compartments[c-1]; !st.HookClosed {
			return fmt.Errorf("door %d still open (latched %v)", c, st.Latched)
		}
		return nil
	})
}

func (r *rig) empty(c int) {
	r.t.Helper()
	r.eventually(fmt.Sprintf("take from %d", c), func() error { return r.world.Take(c, 0) })
	time.Sleep(250 * time.Millisecond)
	r.shut(c)
}

func (r *rig) eventually(what string, f func() error) {
	r.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func count(s mqtttest.Snapshot, kind protocol.EventKind, order string) int {
	n := 0
	for _, m := range s.Processed {
		if e, ok := m.Body.(protocol.Event); ok && e.Kind == kind && (order == "" || e.Order == order) {
			n++
		}
	}
	return n
}

func (r *rig) waitEvent(kind protocol.EventKind, order string, timeout time.Duration) mqtttest.Snapshot {
	r.t.Helper()
	return r.cloud.Wait(r.t, timeout, string(kind)+" "+order, func(s mqtttest.Snapshot) bool { return count(s, kind, order) > 0 })
}

// eachBroker runs f against the machine's Mosquitto and an in-process mochi broker.
func eachBroker(t *testing.T, f func(t *testing.T, broker string)) {
	t.Run("mosquitto", func(t *testing.T) { f(t, mqtttest.Mosquitto(t)) })
	t.Run("mochi", func(t *testing.T) { f(t, mqtttest.StartMochi(t).URL()) })
}

func TestE2ELoadThenPickup(t *testing.T) {
	eachBroker(t, func(t *testing.T, url string) {
		{
			r := newRig(t, url, nil)
			r.start()
			o := ord{id: "ord_e2e_0001", code: "12345678", factor: "4321", slots: []int{2, 3}}
			r.waitDesired(r.publish(o))
			tok := r.login()
			r.load(tok, o)
			r.cloud.Wait(t, 15*time.Second, "two loaded", func(s mqtttest.Snapshot) bool { return count(s, protocol.EventLoaded, o.id) == 2 })

			st, body := r.call("POST", "/api/pickup", `{"code":"12345678","factor":"4321"}`, "")
			if st != 200 {
				t.Fatalf("pickup %d %v", st, body)
			}
			doors := body["doors"].([]any)
			if len(doors) != 2 || doors[0].(map[string]any)["where_en"] != "door 2, row 2 from the bottom, left" {
				t.Fatalf("doors %v", doors)
			}
			r.empty(2)
			r.empty(3)
			s := r.waitEvent(protocol.EventPickedUp, o.id, 15*time.Second)
			st, body = r.call("GET", "/api/sessions/"+body["session"].(string), "", "")
			if st != 200 || body["done"] != true {
				t.Fatalf("session %d %v", st, body)
			}
			time.Sleep(300 * time.Millisecond)
			if n := count(r.cloud.Seen(), protocol.EventPickedUp, o.id); n != 1 {
				t.Fatalf("%d picked_up", n)
			}
			if len(s.Births) == 0 {
				t.Fatal("no birth")
			}
			// Health on the kiosk address; metrics (fleet data) only on their own.
			if st, _ := r.call("GET", "/metrics", "", ""); st != 404 {
				t.Errorf("kiosk /metrics %d, want 404", st)
			}
			resp, err := http.Get(r.m.MetricsURL() + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, name := range []string{"larder_unlock_total", "larder_outbox_depth", "larder_broker_connected",
				"larder_compartments", "larder_zone_temperature_celsius", "larder_board_online", "larder_unlock_duration_seconds"} {
				if !bytes.Contains(raw, []byte(name)) {
					t.Errorf("metric %s missing", name)
				}
			}
			if st, _ := r.call("GET", "/healthz", "", ""); st != 200 {
				t.Fatalf("healthz %d", st)
			}
		}
	})
}

// TestE2EWrongCodesThrottle: through the real daemon, four wrong codes are answered at
// once; the fifth makes the keypad wait (1 s), during which even the right code is not
// checked; after the wait the resident is served.
func TestE2EWrongCodesThrottle(t *testing.T) {
	eachBroker(t, func(t *testing.T, broker string) {
		r := newRig(t, broker, nil)
		r.start()
		o := ord{id: "ord_e2e_lock", code: "11112222", factor: "3333", slots: []int{4}}
		r.waitDesired(r.publish(o))
		r.load(r.login(), o)
		for i := 1; i <= 4; i++ {
			if st, body := r.call("POST", "/api/pickup", `{"code":"99999999","factor":"0000"}`, ""); st != 401 || body["attempts_left"] != float64(5-i) {
				t.Fatalf("wrong code %d: %d %v", i, st, body)
			}
		}
		if st, body := r.call("POST", "/api/pickup", `{"code":"99999999","factor":"0000"}`, ""); st != 401 || body["retry_after_seconds"] != 1.0 {
			t.Fatalf("5th: %d %v", st, body)
		}
		if st, _ := r.call("POST", "/api/pickup", `{"code":"11112222","factor":"3333"}`, ""); st != 423 {
			t.Fatalf("right code during the wait: %d", st)
		}
		time.Sleep(1100 * time.Millisecond)
		if st, body := r.call("POST", "/api/pickup", `{"code":"11112222","factor":"3333"}`, ""); st != 200 {
			t.Fatalf("right code after the wait: %d %v", st, body)
		}
	})
}

func TestE2EBrokerDownWholeFlow(t *testing.T) {
	eachBroker(t, testBrokerDown)
}

func testBrokerDown(t *testing.T, broker string) {
	proxy := mqtttest.NewProxy(t, strings.TrimPrefix(broker, "tcp://"))
	r := newRig(t, broker, func(c *edged.Config) { c.Broker = proxy.URL() })
	r.start()
	o := ord{id: "ord_e2e_off", code: "55556666", factor: "7777", slots: []int{5}}
	r.waitDesired(r.publish(o))
	proxy.Cut() // the link goes down for the whole flow
	tok := r.login()
	r.load(tok, o)
	time.Sleep(500 * time.Millisecond)
	if st, body := r.call("POST", "/api/pickup", `{"code":"55556666","factor":"7777"}`, ""); st != 200 {
		t.Fatalf("pickup offline %d %v", st, body)
	}
	r.empty(5)
	deadline := time.Now().Add(10 * time.Second)
	for {
		d, _ := r.m.Store().Depth()
		hw, _ := r.m.Store().HighWater()
		var picked bool
		es, _ := r.m.Store().Pending(0, 1000)
		for _, e := range es {
			if m, err := protocol.Decode(e.Payload); err == nil && m.Body.(protocol.Event).Kind == protocol.EventPickedUp {
				picked = true
			}
		}
		if picked && d > 0 && hw > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("offline pickup never recorded (depth %d)", d)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := count(r.cloud.Seen(), protocol.EventPickedUp, o.id); n != 0 {
		t.Fatal("the cloud heard of the pickup through a cut link")
	}
	proxy.Resume(t)
	r.waitEvent(protocol.EventPickedUp, o.id, 60*time.Second)
	deadline = time.Now().Add(20 * time.Second)
	for {
		if d, _ := r.m.Store().Depth(); d == 0 {
			break
		}
		if time.Now().After(deadline) {
			d, _ := r.m.Store().Depth()
			t.Fatalf("outbox did not drain: depth %d", d)
		}
		time.Sleep(50 * time.Millisecond)
	}
	s := r.cloud.Seen()
	if count(s, protocol.EventLoaded, o.id) != 1 || count(s, protocol.EventPickedUp, o.id) != 1 {
		t.Fatalf("cloud saw %d loaded, %d picked_up", count(s, protocol.EventLoaded, o.id), count(s, protocol.EventPickedUp, o.id))
	}
}

func TestE2EJammedAtLoadingReassigns(t *testing.T) {
	eachBroker(t, func(t *testing.T, broker string) {
		r := newRig(t, broker, nil)
		r.start()
		o := ord{id: "ord_e2e_jam", code: "24682468", factor: "1357", slots: []int{6}}
		r.waitDesired(r.publish(o))
		if err := r.world.ApplyFault(sim.Fault{Kind: sim.FaultJammedLatch, Compartment: 6}); err != nil {
			t.Fatal(err)
		}
		tok := r.login()
		if st, body := r.call("POST", "/api/driver/open", `{"order":"ord_e2e_jam","compartment":6}`, tok); st != 503 || body["error"] != "hardware" {
			t.Fatalf("open jammed: %d %v", st, body)
		}
		st, body := r.call("POST", "/api/driver/problem", `{"order":"ord_e2e_jam","compartment":6,"reason":"jammed"}`, tok)
		if st != 200 {
			t.Fatalf("problem %d %v", st, body)
		}
		to := int(body["door"].(map[string]any)["number"].(float64))
		if to == 6 || to > 8 {
			t.Fatalf("reassigned to %d: not another chilled compartment", to)
		}
		r.fill(to)
		s := r.waitEvent(protocol.EventLoaded, o.id, 15*time.Second)
		var re *protocol.Event
		for _, m := range s.Processed {
			if e := m.Body.(protocol.Event); e.Kind == protocol.EventReassigned {
				re = &e
			}
		}
		if re == nil || re.Compartment != 6 || re.To != to {
			t.Fatalf("reassigned event %+v", re)
		}
		r.waitEvent(protocol.EventLockJammed, "", 5*time.Second)
		// The code follows the order.
		if st, body := r.call("POST", "/api/pickup", `{"code":"24682468","factor":"1357"}`, ""); st != 200 ||
			int(body["doors"].([]any)[0].(map[string]any)["number"].(float64)) != to {
			t.Fatalf("pickup %d %v", st, body)
		}
	})
}

func TestE2ETemperatureExcursionCompromises(t *testing.T) {
	eachBroker(t, func(t *testing.T, broker string) {
		r := newRig(t, broker, func(c *edged.Config) {
			// Tight limits so the sim's physics crosses them in seconds, not minutes.
			c.Limits = map[protocol.Zone]edged.ZoneLimits{protocol.ZoneChilled: {AlarmAboveC: 5, AlarmAfterSeconds: 1, LimitC: 5}}
		})
		r.start()
		o := ord{id: "ord_e2e_warm", code: "13572468", factor: "2468", slots: []int{7}, budget: 2}
		r.waitDesired(r.publish(o))
		r.load(r.login(), o)
		r.waitEvent(protocol.EventLoaded, o.id, 15*time.Second)
		// A hot day and three chilled doors held open.
		if err := r.world.SetOutside(70); err != nil {
			t.Fatal(err)
		}
		for _, c := range []int{1, 4, 8} {
			if err := r.world.ApplyFault(sim.Fault{Kind: sim.FaultDoorLeftOpen, Compartment: c}); err != nil {
				t.Fatal(err)
			}
		}
		r.waitEvent(protocol.EventTempExcursion, "", 60*time.Second)
		r.waitEvent(protocol.EventOrderCompromised, o.id, 60*time.Second)
		st, body := r.call("POST", "/api/pickup", `{"code":"13572468","factor":"2468"}`, "")
		if st != 409 || body["error"] != "compromised" {
			t.Fatalf("pickup of a compromised order: %d %v", st, body)
		}
	})
}

// TestE2EKillDuringPickup kills a real larder-edge process with SIGKILL while a pickup's
// doors are open, restarts it on the same data directory, and checks the cloud hears of
// exactly one pickup.
func TestE2EKillDuringPickup(t *testing.T) {
	eachBroker(t, func(t *testing.T, broker string) {
		r := newRig(t, broker, nil)
		r.cfg.KioskAddr = mqtttest.FreeAddr(t)
		r.kiosk = "http://" + r.cfg.KioskAddr
		o := ord{id: "ord_e2e_kill", code: "97531864", factor: "1122", slots: []int{2, 3}}

		child := r.spawn()
		r.waitHealthy()
		r.waitBirth(0)
		r.publish(o)
		r.cloud.Wait(t, 20*time.Second, "desired applied", func(mqtttest.Snapshot) bool {
			st, _ := r.call("POST", "/api/driver/login", `{"credential":"driver-token"}`, "")
			return st == 200
		})
		r.load(r.login(), o)
		r.cloud.Wait(t, 15*time.Second, "loaded", func(s mqtttest.Snapshot) bool { return count(s, protocol.EventLoaded, o.id) == 2 })
		if st, body := r.call("POST", "/api/pickup", `{"code":"97531864","factor":"1122"}`, ""); st != 200 {
			t.Fatalf("pickup %d %v", st, body)
		}
		// kill -9 with both doors open, then the resident empties them while the edge is down.
		if err := child.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		child.Wait()
		r.empty(2)
		r.empty(3)

		child = r.spawn()
		r.waitHealthy()
		r.waitEvent(protocol.EventPickedUp, o.id, 30*time.Second)
		// The code is single use, and a second restart counts nothing again.
		if st, body := r.call("POST", "/api/pickup", `{"code":"97531864","factor":"1122"}`, ""); st != 409 || body["error"] != "already_picked_up" {
			t.Fatalf("code after pickup: %d %v", st, body)
		}
		child.Process.Signal(syscall.SIGTERM)
		child.Wait()
		child = r.spawn()
		r.waitHealthy()
		time.Sleep(time.Second)
		if n := count(r.cloud.Seen(), protocol.EventPickedUp, o.id); n != 1 {
			t.Fatalf("%d picked_up after kill -9 and restarts", n)
		}
		child.Process.Signal(syscall.SIGTERM)
		child.Wait()
	})
}

func (r *rig) spawn() *exec.Cmd {
	r.t.Helper()
	c := r.cfg
	args := []string{"-site", c.Site, "-data", c.DataDir, "-kiosk", c.KioskAddr, "-metrics", c.MetricsAddr, "-broker", c.Broker, "-bus", c.Bus,
		"-profile", c.Profile, "-boards", "0", "-zones", c.Zones, "-log-level", "error"}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LARDER_E2E_CHILD=1", "LARDER_E2E_ARGS="+strings.Join(args, "\x1f"),
		"LARDER_EDGE_SITE_KEY="+c.SiteKey)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

func (r *rig) waitHealthy() {
	r.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(r.kiosk + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("larder-edge never became healthy: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestE2EOpsAndAlarms: a remote ops open through the broker (acks, attribution, no second
// pulse on redelivery), an uncommanded opening, and a board that goes offline.
func TestE2EOpsAndAlarms(t *testing.T) {
	eachBroker(t, func(t *testing.T, broker string) {
		r := newRig(t, broker, nil)
		r.start()
		cmd := protocol.Command{ID: "cmd-e2e-1", Kind: protocol.CmdOpen, Compartment: 9, Purpose: protocol.PurposeOps,
			Reason: "cleaning", ExpiresAt: time.Now().Add(time.Minute), Actor: "ops-1"}
		r.cloud.Publish(t, protocol.Header{}, cmd)
		r.cloud.Wait(t, 15*time.Second, "open succeeded", func(s mqtttest.Snapshot) bool {
			for _, a := range s.CmdAcks {
				if a.CommandID == cmd.ID && a.State == protocol.StateSucceeded {
					return true
				}
			}
			return false
		})
		s := r.waitEvent(protocol.EventDoorOpened, "", 10*time.Second)
		for _, m := range s.Processed {
			if e := m.Body.(protocol.Event); e.Kind == protocol.EventDoorOpened && e.Compartment == 9 && e.Credential != protocol.CredOpsRemote {
				t.Fatalf("ops opening attributed to %q", e.Credential)
			}
		}
		r.shut(9)
		// Redelivery: the final state again, and no second pulse.
		acks := len(r.cloud.Seen().CmdAcks)
		r.cloud.Publish(t, protocol.Header{}, cmd)
		r.cloud.Wait(t, 10*time.Second, "re-ack", func(s mqtttest.Snapshot) bool { return len(s.CmdAcks) > acks })
		time.Sleep(500 * time.Millisecond)
		if p := r.world.Snapshot().Compartments[8].Pulses; p != 1 {
			t.Fatalf("latch 9 pulsed %d times", p)
		}
		// Somebody forces door 10.
		if err := r.world.Open(10, true); err != nil {
			t.Fatal(err)
		}
		r.waitEvent(protocol.EventUncommandedOpen, "", 10*time.Second)
		// The only board goes dead: board_offline, and /healthz says so.
		if err := r.world.ApplyFault(sim.Fault{Kind: sim.FaultBoardUnplugged, Board: new(int)}); err != nil {
			t.Fatal(err)
		}
		r.waitEvent(protocol.EventBoardOffline, "", 15*time.Second)
		if st, _ := r.call("GET", "/healthz", "", ""); st != 503 {
			t.Fatalf("healthz with no board: %d", st)
		}
	})
}

// TestE2EModbusLoadThenPickup: the daemon drives a simulated Modbus RTU relay board
// (profile modbus-rtu, board address 1): a relay left on before start-up is switched off
// by the start-up halt, an order is loaded and picked up through the kiosk, every relay
// ends off after its pulse, and one left on at shutdown is switched off by the halt.
func TestE2EModbusLoadThenPickup(t *testing.T) {
	r := newRig(t, mqtttest.StartMochi(t).URL(), func(c *edged.Config) {
		c.Profile, c.Boards = string(board.ModbusRTU), []int{1}
		c.Modbus.Pulse = edged.Duration(200 * time.Millisecond)
	})
	strayOn := func(lock uint16) {
		if _, _, ok := r.world.ExecuteModbus(board.ModbusFrame{Slave: 1, Function: board.FuncWriteSingleCoil, Addr: lock - 1, On: true}); !ok {
			t.Fatal("sim board did not take the coil")
		}
	}
	relaysOn := func() (on []int) {
		for _, c := range r.world.Snapshot().Compartments {
			if c.Relay {
				on = append(on, c.N)
			}
		}
		return on
	}
	strayOn(9)
	r.start()
	if on := relaysOn(); len(on) != 0 {
		t.Fatalf("relays %v on after start-up", on)
	}
	o := ord{id: "ord_e2e_mb01", code: "23456789", factor: "1234", slots: []int{2}}
	r.waitDesired(r.publish(o))
	r.load(r.login(), o)
	r.cloud.Wait(t, 15*time.Second, "loaded", func(s mqtttest.Snapshot) bool { return count(s, protocol.EventLoaded, o.id) == 1 })
	st, body := r.call("POST", "/api/pickup", `{"code":"23456789","factor":"1234"}`, "")
	if st != 200 {
		t.Fatalf("pickup %d %v", st, body)
	}
	r.empty(2)
	r.waitEvent(protocol.EventPickedUp, o.id, 15*time.Second)
	if c := r.world.Snapshot().Compartments[1]; c.Pulses != 2 || c.Relay {
		t.Errorf("compartment 2: %d pulses, relay on=%v; want 2 (load, pickup), off", c.Pulses, c.Relay)
	}
	if on := relaysOn(); len(on) != 0 {
		t.Errorf("relays %v on after the pickup", on)
	}
	resp, err := http.Get(r.m.MetricsURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, line := range []string{"larder_relay_release_failed_total 0", "larder_board_exceptions_total 0"} {
		if !bytes.Contains(raw, []byte("\n"+line+"\n")) {
			t.Errorf("metrics lack %q", line)
		}
	}
	strayOn(16)
	r.shutdown()
	if on := relaysOn(); len(on) != 0 {
		t.Errorf("relays %v on after shutdown", on)
	}
}

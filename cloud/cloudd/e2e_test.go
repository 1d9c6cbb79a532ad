package cloudd_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/larder-lockers/larder/cloud/broker"
	"github.com/larder-lockers/larder/cloud/cloudd"
	"github.com/larder-lockers/larder/cloud/notify"
	"github.com/larder-lockers/larder/cloud/web"
	"github.com/larder-lockers/larder/protocol"
)

const adminKey = "lk_e2e0000000000000000000000000000000000000000"

func startCloud(t *testing.T, tune func(*cloudd.Config)) *cloudd.Main {
	t.Helper()
	cfg := cloudd.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.MetricsAddr = "127.0.0.1:0"
	cfg.MQTTListen = "127.0.0.1:0"
	cfg.AdminKey = adminKey
	if tune != nil {
		tune(&cfg)
	}
	m, err := cloudd.NewMain(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := m.Open(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return m
}

type client struct {
	t    *testing.T
	base string
	key  string
}

func (c client) do(method, path string, body any, hdr ...string) (int, map[string]any) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.base+path, rd)
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out
}

// edge is a minimal protocol-speaking edge over paho, enough to drive the cloud.
type edge struct {
	t       *testing.T
	site    string
	c       paho.Client
	mu      sync.Mutex
	desired []protocol.Desired
	acks    []uint64
	cmds    []protocol.Command
	seq     uint64
}

func newEdge(t *testing.T, url, site, password string) *edge {
	e := &edge{t: t, site: site}
	o := paho.NewClientOptions().AddBroker(url).SetClientID(broker.EdgeClientID(site)).SetUsername(site).SetPassword(password).
		SetOrderMatters(false).SetConnectTimeout(5 * time.Second).SetAutoReconnect(false)
	e.c = paho.NewClient(o)
	if tok := e.c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("edge connect: %v", tok.Error())
	}
	t.Cleanup(func() { e.c.Disconnect(50) })
	handle := func(_ paho.Client, msg paho.Message) {
		_, ch, _ := protocol.ParseTopic(msg.Topic())
		m, err := protocol.DecodeOn(ch, msg.Payload())
		if err != nil {
			t.Errorf("edge got bad message on %s: %v", msg.Topic(), err)
			return
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		switch b := m.Body.(type) {
		case protocol.Desired:
			e.desired = append(e.desired, b)
		case protocol.EventAck:
			e.acks = append(e.acks, b.Seq)
		case protocol.Command:
			e.cmds = append(e.cmds, b)
		}
	}
	for _, ch := range []protocol.Channel{protocol.ChanDesired, protocol.ChanEventAck, protocol.ChanCommands} {
		if tok := e.c.Subscribe(protocol.Topic(site, ch), 1, handle); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe: %v", tok.Error())
		}
	}
	return e
}

func (e *edge) publish(ch protocol.Channel, seq uint64, body protocol.Body) {
	e.t.Helper()
	data, err := protocol.Encode(protocol.Header{Seq: seq}, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if tok := e.c.Publish(protocol.Topic(e.site, ch), ch.QoS(), ch.Retained(), data); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		e.t.Fatalf("publish: %v", tok.Error())
	}
}

func (e *edge) event(ev protocol.Event) {
	e.seq++
	e.publish(protocol.ChanEvents, e.seq, ev)
}

// createOrder creates the order ext (one small parcel of zone, a window of the next two
// hours, ext as its idempotency key) at yard-1 over the REST API and returns its id and
// compartment.
func createOrder(t *testing.T, platform client, ext, zone string) (id string, compartment int) {
	t.Helper()
	now := time.Now().UTC()
	st, rc := platform.do("POST", "/v1/orders", map[string]any{"external_id": ext, "site": "yard-1",
		"recipient": map[string]any{"phone": "+8613800138000"}, "parcels": []map[string]any{{"size": "S", "zone": zone}},
		"window": map[string]any{"start": now.Format(time.RFC3339), "end": now.Add(2 * time.Hour).Format(time.RFC3339)}}, "Idempotency-Key", ext)
	if st != 201 {
		t.Fatalf("create order: %d %v", st, rc)
	}
	order := rc["order"].(map[string]any)
	return order["id"].(string), int(order["slots"].([]any)[0].(map[string]any)["compartment"].(float64))
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestEndToEnd starts the whole cloud (embedded broker, bbolt, API), provisions a site,
// connects an edge with the provisioned credentials and walks an order through its
// lifecycle: reservation delivered as desired state, loaded and picked up by edge
// events, acknowledged, visible through the API and the metrics.
func TestEndToEnd(t *testing.T) {
	var hookMu sync.Mutex
	var hooks []map[string]any
	var secret []byte
	platformSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		hookMu.Lock()
		defer hookMu.Unlock()
		if err := notify.Verify(secret, r.Header.Get("Larder-Signature"), body, time.Now(), time.Minute); err != nil {
			t.Errorf("webhook signature: %v", err)
		}
		var ev map[string]any
		json.Unmarshal(body, &ev)
		hooks = append(hooks, ev)
	}))
	defer platformSrv.Close()
	var smsMu sync.Mutex
	var texts []string
	smsSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var msg struct{ To, Text string }
		json.NewDecoder(r.Body).Decode(&msg)
		smsMu.Lock()
		texts = append(texts, msg.To+" "+msg.Text)
		smsMu.Unlock()
	}))
	defer smsSrv.Close()
	m := startCloud(t, func(c *cloudd.Config) { c.SMSURL = smsSrv.URL; c.DefaultTimeZone = "Asia/Shanghai" })
	admin := client{t, m.HTTPURL(), adminKey}
	if st, _ := admin.do("POST", "/v1/sites", map[string]any{"id": "bad-zone", "time_zone": "Mars/Olympus"}); st != 400 {
		t.Errorf("site with an unknown time zone: %d, want 400", st)
	}
	if st, _ := admin.do("POST", "/v1/sites", map[string]any{"id": "yard-1", "name": "Yard 1", "location": map[string]float64{"lat": 31.23, "lon": 121.47}}); st != 201 {
		t.Fatalf("create site: %d", st)
	}
	st, prov := admin.do("POST", "/v1/sites/yard-1/provision", nil)
	if st != 200 || prov["mqtt_url"] != m.BrokerURL() {
		t.Fatalf("provision: %d %v", st, prov)
	}
	_, k := admin.do("POST", "/v1/keys", map[string]any{"role": "platform", "subject": "veggie"})
	platform := client{t, m.HTTPURL(), k["key"].(string)}
	_, k = admin.do("POST", "/v1/keys", map[string]any{"role": "ops", "subject": "olga"})
	ops := client{t, m.HTTPURL(), k["key"].(string)}
	st, wh := platform.do("PUT", "/v1/platforms/veggie/webhook", map[string]any{"url": platformSrv.URL})
	if st != 200 {
		t.Fatalf("webhook: %d %v", st, wh)
	}
	hookMu.Lock()
	secret, _ = hex.DecodeString(wh["secret"].(string))
	hookMu.Unlock()

	// A wrong password is refused by the broker.
	o := paho.NewClientOptions().AddBroker(m.BrokerURL()).SetClientID(broker.EdgeClientID("yard-1")).SetUsername("yard-1").SetPassword("wrong").SetAutoReconnect(false)
	if tok := paho.NewClient(o).Connect(); tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
		t.Fatal("wrong edge password accepted")
	}

	e := newEdge(t, m.BrokerURL(), "yard-1", prov["mqtt_password"].(string))
	e.publish(protocol.ChanStatus, 0, protocol.Status{Online: true, Software: "e2e"})
	var comps []protocol.Compartment
	for i := 1; i <= 6; i++ {
		comps = append(comps, protocol.Compartment{Number: i, Size: protocol.SizeM, Zone: protocol.ZoneChilled, HeightCM: 30 * i, Lock: i})
	}
	e.publish(protocol.ChanBirth, 0, protocol.Birth{Software: "e2e", Compartments: comps})
	waitFor(t, "desired snapshot", func() bool { e.mu.Lock(); defer e.mu.Unlock(); return len(e.desired) > 0 && e.desired[0].Full })
	// The kiosk learns its site's name and zone: in the snapshot, and in a delta when ops
	// rename the site.
	e.mu.Lock()
	if got, want := e.desired[0].Site, (protocol.SiteProfile{Name: "Yard 1", TimeZone: "Asia/Shanghai"}); got == nil || *got != want {
		t.Errorf("snapshot's site %+v, want %+v", got, want)
	}
	e.mu.Unlock()
	if st, _ := admin.do("PATCH", "/v1/sites/yard-1", map[string]any{"name": "Yard One"}); st != 200 {
		t.Fatalf("rename site: %d", st)
	}
	waitFor(t, "the rename's delta", func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		d := e.desired[len(e.desired)-1]
		return !d.Full && d.Site != nil && d.Site.Name == "Yard One" && d.Site.TimeZone == "Asia/Shanghai"
	})

	id, comp := createOrder(t, platform, "A-1", "chilled")
	waitFor(t, "reservation delta", func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		for _, d := range e.desired {
			for _, r := range d.Reservations {
				if r.Order == id && !d.Full {
					return true
				}
			}
		}
		return false
	})

	e.event(protocol.Event{Kind: protocol.EventLoaded, Credential: protocol.CredDriver, Order: id, Compartment: comp})
	waitFor(t, "ack of event 1", func() bool { e.mu.Lock(); defer e.mu.Unlock(); return len(e.acks) > 0 && slices.Max(e.acks) >= 1 })
	if _, o := platform.do("GET", "/v1/orders/"+id, nil); o["state"] != "loaded" {
		t.Fatalf("after loaded: %v", o["state"])
	}
	// Ops open: the edge receives the command.
	if st, _ := ops.do("POST", "/v1/sites/yard-1/compartments/6/open", map[string]any{"reason": "e2e check"}); st != 202 {
		t.Fatalf("ops open: %d", st)
	}
	waitFor(t, "ops command", func() bool { e.mu.Lock(); defer e.mu.Unlock(); return len(e.cmds) == 1 })

	e.event(protocol.Event{Kind: protocol.EventPickedUp, Credential: protocol.CredPickup, Order: id})
	waitFor(t, "picked up", func() bool {
		_, o := platform.do("GET", "/v1/orders/"+id, nil)
		return o["state"] == "picked_up"
	})
	// The platform heard of it by signed CloudEvents, the resident by SMS with the code.
	waitFor(t, "webhooks created, loaded, picked_up", func() bool {
		hookMu.Lock()
		defer hookMu.Unlock()
		seen := map[string]bool{}
		for _, h := range hooks {
			seen[fmt.Sprint(h["type"])] = true
		}
		return seen["com.larder.order.created"] && seen["com.larder.order.loaded"] && seen["com.larder.order.picked_up"]
	})
	waitFor(t, "arrival SMS", func() bool {
		smsMu.Lock()
		defer smsMu.Unlock()
		return len(texts) > 0
	})
	smsMu.Lock()
	if !strings.HasPrefix(texts[0], "+8613800138000 ") || !regexp.MustCompile(`\b\d{8}\b`).MatchString(texts[0]) {
		t.Errorf("arrival SMS without a code: %q", texts[0])
	}
	// The link to the resident page follows the code; the public URL defaults to the
	// listener's real address.
	if m.PublicURL() != m.HTTPURL() {
		t.Errorf("default public URL %q, want the API's %q", m.PublicURL(), m.HTTPURL())
	}
	if code := regexp.MustCompile(`\b\d{8}\b`).FindString(texts[0]); !strings.Contains(texts[0], web.ResidentLink(m.PublicURL(), id, code)) {
		t.Errorf("arrival SMS lacks the resident link %s: %q", web.ResidentLink(m.PublicURL(), id, code), texts[0])
	}
	// The deadline is told in the site's zone (the cloud's default, Asia/Shanghai), named.
	_, ord := platform.do("GET", "/v1/orders/"+id, nil)
	exp, _ := time.Parse(time.RFC3339, fmt.Sprint(ord["expires_at"]))
	sh, _ := time.LoadLocation("Asia/Shanghai")
	if want := exp.In(sh).Format("15:04") + "（北京时间）"; !strings.Contains(texts[0], want) {
		t.Errorf("arrival SMS lacks the local deadline %q: %q", want, texts[0])
	}
	smsMu.Unlock()
	_, site := ops.do("GET", "/v1/sites/yard-1", nil)
	if site["online"] != true || site["software"] != "e2e" {
		t.Errorf("site detail %v", site)
	}
	res, err := http.Get(m.MetricsURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{`larder_site_up{site="yard-1"} 1`, "larder_orders_created_total 1", "larder_http_request_duration_seconds", "larder_store_commits_total", "larder_webhook_backlog"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	for path, want := range map[string]int{"/healthz": 200, "/ops/": 200, "/driver/": 200, "/v1/openapi.json": 200, "/nope": 404,
		"/metrics": 404} { // fleet data: only on the metrics address
		res, err := http.Get(m.HTTPURL() + path)
		if err != nil || res.StatusCode != want {
			t.Errorf("GET %s: %v %v, want %d", path, res.StatusCode, err, want)
		}
		if err == nil {
			res.Body.Close()
		}
	}
	// The driver's problem report (web page endpoint) moves an unloaded order's door.
	id2, c2 := createOrder(t, platform, "A-2", "chilled")
	_, k = admin.do("POST", "/v1/keys", map[string]any{"role": "driver", "subject": "dave"})
	driver := client{t, m.HTTPURL(), k["key"].(string)}
	st, moved := driver.do("POST", "/driver/api/orders/"+id2+"/problem", map[string]any{"compartment": c2, "reason": "jammed"})
	if st != 200 {
		t.Fatalf("problem report: %d %v", st, moved)
	}
}

func TestFirstStartWritesAdminKey(t *testing.T) {
	var dir string
	m := startCloud(t, func(c *cloudd.Config) { c.AdminKey = ""; dir = c.DataDir })
	b, err := os.ReadFile(filepath.Join(dir, "admin.key"))
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(filepath.Join(dir, "admin.key"))
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("admin.key mode %v", fi.Mode())
	}
	admin := client{t, m.HTTPURL(), strings.TrimSpace(string(b))}
	if st, _ := admin.do("GET", "/v1/keys", nil); st != 200 {
		t.Fatalf("bootstrap key refused: %d", st)
	}
}

// TestExternalMosquitto runs the cloud against the machine's Mosquitto (--mqtt) instead
// of the embedded broker; skipped when none listens on 127.0.0.1:1883.
func TestExternalMosquitto(t *testing.T) {
	c, err := net.DialTimeout("tcp", "127.0.0.1:1883", time.Second)
	if err != nil {
		t.Skip("no Mosquitto on 127.0.0.1:1883")
	}
	c.Close()
	m := startCloud(t, func(c *cloudd.Config) { c.MQTTURL = "tcp://127.0.0.1:1883"; c.MQTTUsername = "" })
	admin := client{t, m.HTTPURL(), adminKey}
	site := fmt.Sprintf("e2e-%d", time.Now().UnixNano())
	if st, _ := admin.do("POST", "/v1/sites", map[string]any{"id": site}); st != 201 {
		t.Fatalf("create site: %d", st)
	}
	_, prov := admin.do("POST", "/v1/sites/"+site+"/provision", nil)
	e := newEdge(t, "tcp://127.0.0.1:1883", site, prov["mqtt_password"].(string))
	e.publish(protocol.ChanBirth, 0, protocol.Birth{Software: "e2e", Compartments: []protocol.Compartment{{Number: 1, Size: protocol.SizeS, Zone: protocol.ZoneAmbient}}})
	waitFor(t, "desired snapshot over Mosquitto", func() bool { e.mu.Lock(); defer e.mu.Unlock(); return len(e.desired) > 0 })
	// Clear the retained status this test may leave behind.
	e.c.Publish(protocol.Topic(site, protocol.ChanStatus), 1, true, []byte{}).WaitTimeout(time.Second)
}

func TestConfiguredPublicURL(t *testing.T) {
	m := startCloud(t, func(c *cloudd.Config) { c.PublicURL = "https://lockers.example/" })
	if got := m.PublicURL(); got != "https://lockers.example" {
		t.Errorf("PublicURL %q", got)
	}
}

func TestLoadPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.json")
	os.WriteFile(file, []byte(`{"http_addr":"127.0.0.1:9001","data_dir":"/from-file","sweep_every":"30s"}`), 0o600)
	env := map[string]string{"LARDER_CLOUD_CONFIG": file, "LARDER_CLOUD_HTTP_ADDR": "127.0.0.1:9002", "LARDER_CLOUD_MQTT_URL": "tcp://127.0.0.1:1883"}
	c, err := cloudd.Load([]string{"--http", "127.0.0.1:9003"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "127.0.0.1:9003" || c.DataDir != "/from-file" || c.MQTTURL != "tcp://127.0.0.1:1883" || time.Duration(c.SweepEvery) != 30*time.Second {
		t.Errorf("config %+v", c)
	}
	for _, bad := range [][]string{{"--http", "nonsense"}, {"--mqtt", "::"}, {"--log-level", "loud"}, {"extra"}} {
		if _, err := cloudd.Load(bad, func(string) string { return "" }, io.Discard); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	if c.PublicURL != "" {
		t.Errorf("public_url %q, want empty (derived at open)", c.PublicURL)
	}
	// public_url: flag over environment over file; checked.
	os.WriteFile(file, []byte(`{"public_url":"https://file.example"}`), 0o600)
	for _, tc := range []struct {
		args []string
		env  string
		want string
	}{
		{nil, "", "https://file.example"},
		{nil, "https://env.example/larder", "https://env.example/larder"},
		{[]string{"--public-url", "https://flag.example"}, "https://env.example", "https://flag.example"},
	} {
		env := map[string]string{"LARDER_CLOUD_CONFIG": file, "LARDER_CLOUD_PUBLIC_URL": tc.env}
		c, err := cloudd.Load(tc.args, func(k string) string { return env[k] }, io.Discard)
		if err != nil || c.PublicURL != tc.want {
			t.Errorf("args %v env %q: public_url %q (%v), want %q", tc.args, tc.env, c.PublicURL, err, tc.want)
		}
	}
	for _, bad := range []string{"lockers.example", "ftp://lockers.example", "https://lockers.example/?x=1", "https://lockers.example/#c", "https://u:p@lockers.example"} {
		if _, err := cloudd.Load([]string{"--public-url", bad}, func(string) string { return "" }, io.Discard); err == nil {
			t.Errorf("public_url %q accepted", bad)
		}
	}
	os.WriteFile(file, []byte(`{"http_adr":"x"}`), 0o600)
	if _, err := cloudd.Load(nil, func(k string) string { return env[k] }, io.Discard); err == nil {
		t.Error("unknown file field accepted")
	}
	if _, err := cloudd.Load(nil, func(k string) string {
		return map[string]string{"LARDER_CLOUD_ADMIN_KEY": "short"}[k]
	}, io.Discard); err == nil {
		t.Error("short admin key accepted")
	}
}

func TestExecHelpAndBadFlags(t *testing.T) {
	var out strings.Builder
	if code := cloudd.Exec(context.Background(), []string{"-h"}, func(string) string { return "" }, &out); code != 0 {
		t.Errorf("-h exit %d", code)
	}
	if !strings.Contains(out.String(), "-mqtt") {
		t.Errorf("usage lacks -mqtt: %s", out.String())
	}
	if code := cloudd.Exec(context.Background(), []string{"--http", "nonsense"}, func(string) string { return "" }, io.Discard); code != 2 {
		t.Errorf("bad flag exit %d", code)
	}
}

package e2e_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/larder-lockers/larder/cloud/notify"
	"github.com/larder-lockers/larder/demo"
	"github.com/larder-lockers/larder/protocol"
)

// zones of the test courtyard: two kerong boards, 32 compartments.
const zones = "chilled:1-16,frozen:17-24,ambient:25-32"

// platformID is the API-key subject of the test's grocery platform; its webhook
// endpoint is the test's receiver.
const platformID = "e2e-grocer"

// system is one cloud, one courtyard (sim + edge) and the people around them.
type system struct {
	t      *testing.T
	ctx    context.Context
	l      *demo.Launcher
	site   string
	broker string // tcp://host:port the cloud uses
	sim    *demo.Sim
	cloud  *demo.Cloud
	edge   *demo.Edge
	proxy  *proxy // the edge's uplink

	admin, ops, driver, platform *demo.API
	hooks                        *webhooks
	sms                          *smsGateway
	people                       *demo.People
	prov                         demo.Provisioning
}

type sysOpts struct {
	broker string        // host:port of the MQTT broker; default the shared Mosquitto
	hold   time.Duration // the cloud's hold after loading; zero keeps its default
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func newSystem(t *testing.T, o sysOpts) *system {
	t.Helper()
	if o.broker == "" {
		o.broker = sharedBroker
	}
	dir := t.TempDir()
	s := &system{t: t, ctx: t.Context(), site: "e2e-sys-" + randHex(5), broker: "tcp://" + o.broker, hooks: newWebhooks(t),
		sms: newSMSGateway(t)}
	s.l = &demo.Launcher{BinDir: binDir, LogDir: filepath.Join(dir, "logs"), StopTimeout: 10 * time.Second}
	// Cleanups run last-registered first: this one after every process has stopped.
	t.Cleanup(func() { forgetSite(s.broker, s.site) })
	t.Cleanup(func() {
		s.l.StopAll()
		if t.Failed() {
			dumpLogs(t, s.l.LogDir)
		}
	})
	var err error
	s.sim, err = s.l.StartSim(s.ctx, demo.SimOptions{Boards: 2, Zones: zones})
	if err != nil {
		t.Fatal(err)
	}
	adminKey := "lk_e2e_admin_" + randHex(16)
	co := demo.CloudOptions{DataDir: filepath.Join(dir, "cloud"), Broker: s.broker, Sites: []string{s.site},
		AdminKey: adminKey, Hold: o.hold, LogLevel: "debug", SMSURL: s.sms.srv.URL}
	if o.hold > 0 {
		co.SweepEvery = time.Second
	}
	s.cloud, err = s.l.StartCloud(s.ctx, co)
	if err != nil {
		t.Fatal(err)
	}
	s.admin = s.cloud.API(adminKey)
	s.ops = s.admin.As(s.key("ops", "e2e-ops"))
	s.driver = s.admin.As(s.key("driver", "e2e-driver"))
	s.platform = s.admin.As(s.key("platform", platformID))
	secret, err := s.platform.SetWebhook(s.ctx, platformID, s.hooks.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if s.hooks.secret, err = hex.DecodeString(secret); err != nil {
		t.Fatalf("webhook secret %q: %v", secret, err)
	}
	if err := s.admin.CreateSite(s.ctx, s.site, "E2E courtyard", "1 Test Lane"); err != nil {
		t.Fatal(err)
	}
	if s.prov, err = s.admin.Provision(s.ctx, s.site); err != nil {
		t.Fatal(err)
	}
	s.proxy = newProxy(t, o.broker)
	s.startEdge()
	s.people = &demo.People{Kiosk: s.edge.Kiosk, Sim: s.sim.Control, Dwell: 400 * time.Millisecond}
	return s
}

func (s *system) key(role, subject string) string {
	s.t.Helper()
	k, err := s.admin.CreateKey(s.ctx, role, subject)
	if err != nil {
		s.t.Fatal(err)
	}
	return k
}

// startEdge starts larder-edge (again) on its data directory and waits until the cloud
// sees it online with its compartments.
func (s *system) startEdge() {
	s.t.Helper()
	var err error
	if s.edge != nil {
		s.edge, err = s.l.Restart(s.ctx, s.edge)
	} else {
		s.edge, err = s.l.StartEdge(s.ctx, demo.EdgeOptions{Site: s.site, SiteKey: s.prov.SiteKey,
			DataDir: filepath.Join(s.t.TempDir(), "edge"), Broker: s.proxy.URL(), BrokerUser: s.prov.MQTTUsername,
			BrokerPassword: s.prov.MQTTPassword, Bus: s.sim.Bus, Zones: zones, Thermometer: s.sim.Control.URL,
			PollInterval: 100 * time.Millisecond, TempInterval: time.Second, LogLevel: "debug"})
	}
	if err != nil {
		s.t.Fatal(err)
	}
	if s.people != nil {
		s.people.Kiosk = s.edge.Kiosk
	}
	s.waitOnline(true, 30*time.Second)
}

func (s *system) waitOnline(want bool, timeout time.Duration) {
	s.t.Helper()
	err := demo.Eventually(s.ctx, timeout, fmt.Sprintf("site online=%v with compartments", want), func() error {
		st, err := s.ops.Site(s.ctx, s.site)
		if err != nil {
			return err
		}
		if st.Online != want || (want && len(st.CompartmentList) == 0) {
			return fmt.Errorf("online %v, %d compartments", st.Online, len(st.CompartmentList))
		}
		return nil
	})
	if err != nil {
		s.t.Fatal(err)
	}
}

// order places an order for the platform; delivery "platform" returns the code.
func (s *system) order(ext, phone, delivery string, parcels ...demo.Parcel) demo.Receipt {
	s.t.Helper()
	rc, err := s.platform.CreateOrder(s.ctx, ext, demo.OrderSpec(s.site, ext, phone, 4*time.Hour, delivery, parcels...))
	if err != nil {
		s.t.Fatal(err)
	}
	if len(rc.Order.Slots) == 0 {
		s.t.Fatalf("order %s has no compartments: %+v", ext, rc.Order)
	}
	return rc
}

// driverToken issues a loading credential and logs the driver in at the kiosk (the
// credential reaches the edge as desired state).
func (s *system) driverToken() string {
	s.t.Helper()
	cred, err := s.driver.LoadingCredential(s.ctx, s.site)
	if err != nil {
		s.t.Fatal(err)
	}
	var tok string
	if err := demo.Eventually(s.ctx, 20*time.Second, "driver login at the kiosk", func() (err error) {
		tok, err = s.edge.Kiosk.DriverLogin(s.ctx, cred)
		return err
	}); err != nil {
		s.t.Fatal(err)
	}
	return tok
}

// waitManifest waits until the kiosk's manifest lists order in state.
func (s *system) waitManifest(tok, order, state string) {
	s.t.Helper()
	if err := demo.Eventually(s.ctx, 20*time.Second, "order "+order+" "+state+" on the kiosk", func() error {
		m, err := s.edge.Kiosk.Manifest(s.ctx, tok)
		if err != nil {
			return err
		}
		for _, mo := range m {
			if mo.Order == order && mo.State == state {
				return nil
			}
		}
		return fmt.Errorf("manifest %+v", m)
	}); err != nil {
		s.t.Fatal(err)
	}
}

func (s *system) load(tok string, o demo.Order) {
	s.t.Helper()
	s.waitManifest(tok, o.ID, "reserved")
	if err := s.people.Load(s.ctx, tok, o.ID, o.Compartments()); err != nil {
		s.t.Fatal(err)
	}
}

func (s *system) waitState(order, state string, timeout time.Duration) demo.Order {
	s.t.Helper()
	o, err := s.platform.WaitOrderState(s.ctx, order, state, timeout)
	if err != nil {
		s.t.Fatal(err)
	}
	return o
}

// waitDrained waits until the edge's outbox is empty as the cloud sees it.
func (s *system) waitDrained(timeout time.Duration) {
	s.t.Helper()
	if err := demo.Eventually(s.ctx, timeout, "edge outbox drained", func() error {
		st, err := s.ops.Site(s.ctx, s.site)
		if err == nil && st.OutboxDepth != 0 {
			err = fmt.Errorf("outbox depth %d", st.OutboxDepth)
		}
		return err
	}); err != nil {
		s.t.Fatal(err)
	}
}

// waitEdgeDesired waits until the edge has applied the desired state the cloud has for
// the site (its larder_desired_version gauge against the site's desired_version), so that
// what the edge holds (a deadline, a digest) can be compared with the cloud's.
func (s *system) waitEdgeDesired(timeout time.Duration) {
	s.t.Helper()
	if err := demo.Eventually(s.ctx, timeout, "edge applied the cloud's desired state", func() error {
		st, err := s.ops.Site(s.ctx, s.site)
		if err != nil {
			return err
		}
		have, err := edgeDesiredVersion(s.ctx, s.edge.MetricsURL+"/metrics")
		if err == nil && have < st.DesiredVersion {
			err = fmt.Errorf("edge at desired version %d, cloud at %d", have, st.DesiredVersion)
		}
		return err
	}); err != nil {
		s.t.Fatal(err)
	}
}

func edgeDesiredVersion(ctx context.Context, metricsURL string) (uint64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", metricsURL, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "larder_desired_version "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return uint64(f), err
		}
	}
	return 0, errors.New("edge metrics lack larder_desired_version")
}

func lastFour(phone string) string { return phone[len(phone)-4:] }

// webhooks is the platform's endpoint: it records every CloudEvent it is sent and
// checks each signature with the secret the cloud handed out.
type webhooks struct {
	srv    *httptest.Server
	secret []byte

	mu     sync.Mutex
	events []event
}

type event struct {
	Type    string          `json:"type"`
	ID      string          `json:"id"`
	Subject string          `json:"subject"`
	Data    json.RawMessage `json:"data"`
	SigErr  error           `json:"-"`
	Raw     string          `json:"-"`
}

func newWebhooks(t *testing.T) *webhooks {
	w := &webhooks{}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var e event
		if err := json.Unmarshal(raw, &e); err != nil {
			http.Error(rw, "not JSON", 400)
			return
		}
		w.mu.Lock()
		e.SigErr = notify.Verify(w.secret, r.Header.Get("Larder-Signature"), raw, time.Now(), 0)
		e.Raw = string(raw)
		w.events = append(w.events, e)
		w.mu.Unlock()
		rw.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(w.srv.Close)
	return w
}

// wait returns the first event of type "com.larder.order.<kind>" about order.
func (w *webhooks) wait(t *testing.T, kind, order string, timeout time.Duration) event {
	t.Helper()
	var found event
	err := demo.Eventually(t.Context(), timeout, "webhook "+kind+" for "+order, func() error {
		w.mu.Lock()
		defer w.mu.Unlock()
		var types []string
		for _, e := range w.events {
			if e.Type == notify.TypePrefix+kind && e.Subject == order {
				found = e
				return nil
			}
			types = append(types, e.Type)
		}
		return fmt.Errorf("received %v", types)
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// code is the pickup code in an event's data, if any.
func (e event) code() string {
	var data notify.EventData
	json.Unmarshal(e.Data, &data)
	return data.Code
}

// smsGateway is the SMS gateway: it records every text and answers 200.
type smsGateway struct {
	srv *httptest.Server

	mu    sync.Mutex
	texts []sms
}

type sms struct {
	To   string `json:"to"`
	Text string `json:"text"`
}

func newSMSGateway(t *testing.T) *smsGateway {
	g := &smsGateway{}
	g.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var m sms
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			http.Error(rw, "not JSON", 400)
			return
		}
		g.mu.Lock()
		g.texts = append(g.texts, m)
		g.mu.Unlock()
	}))
	t.Cleanup(g.srv.Close)
	return g
}

var eightDigits = regexp.MustCompile(`\b\d{8}\b`)

// waitCode waits for a text to phone carrying an 8-digit code and returns the code.
func (g *smsGateway) waitCode(t *testing.T, phone string, timeout time.Duration) string {
	t.Helper()
	return g.waitNewCode(t, phone, nil, timeout)
}

// waitNewCode waits for a text to phone carrying an 8-digit code other than the known
// ones and returns the code.
func (g *smsGateway) waitNewCode(t *testing.T, phone string, known []string, timeout time.Duration) string {
	t.Helper()
	var code string
	err := demo.Eventually(t.Context(), timeout, "an SMS with a new code to the resident", func() error {
		codes := g.codes(phone)
		for _, c := range codes {
			if !slices.Contains(known, c) {
				code = c
				return nil
			}
		}
		return fmt.Errorf("codes texted so far %d, none new", len(codes))
	})
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// codes are the codes of the texts sent to phone so far, in order.
func (g *smsGateway) codes(phone string) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	for _, m := range g.texts {
		if c := eightDigits.FindString(m.Text); m.To == phone && c != "" {
			out = append(out, c)
		}
	}
	return out
}

// forgetSite leaves a shared broker as the test found it: it drops the edge's persistent
// session (a clean connect with its client id) and its retained status.
func forgetSite(broker, site string) {
	cli := paho.NewClient(paho.NewClientOptions().AddBroker(broker).SetClientID("larder-edge-" + site).SetCleanSession(true))
	if tok := cli.Connect(); !tok.WaitTimeout(2*time.Second) || tok.Error() != nil {
		return
	}
	for _, ch := range protocol.Channels() {
		if ch.Retained() {
			cli.Publish(protocol.Topic(site, ch), 1, true, []byte{}).WaitTimeout(2 * time.Second)
		}
	}
	cli.Disconnect(100)
}

// dumpLogs prints the end of every child's log of a failed test.
func dumpLogs(t *testing.T, dir string) {
	files, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
		if len(lines) > 60 {
			lines = lines[len(lines)-60:]
		}
		t.Logf("---- %s (last %d lines)\n%s", filepath.Base(f), len(lines), strings.Join(lines, "\n"))
	}
}

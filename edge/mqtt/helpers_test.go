package mqtt_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/larder-lockers/larder/edge/mqtt"
	"github.com/larder-lockers/larder/edge/mqtt/mqtttest"
	"github.com/larder-lockers/larder/protocol"
)

// broker is one broker the integration tests run against.
type broker struct {
	name  string
	url   string
	addr  string
	mochi *mqtttest.Mochi // nil for Mosquitto
}

// eachBroker runs f against the local Mosquitto and an in-process mochi broker.
func eachBroker(t *testing.T, f func(t *testing.T, b broker)) {
	t.Run("mosquitto", func(t *testing.T) {
		url := mqtttest.Mosquitto(t)
		f(t, broker{name: "mosquitto", url: url, addr: mqtttest.MosquittoAddr})
	})
	t.Run("mochi", func(t *testing.T) {
		m := mqtttest.StartMochi(t)
		f(t, broker{name: "mochi", url: m.URL(), addr: m.Addr, mochi: m})
	})
}

// newSite returns a site id unique to this run, so parallel runs against the shared
// Mosquitto never see each other's messages. It clears the site's retained status at
// the end of the test.
func newSite(t testing.TB, brokerURL string) string {
	var b [4]byte
	rand.Read(b[:])
	name := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	site := "t" + hex.EncodeToString(b[:]) + "-" + strings.Trim(name, "-")
	t.Cleanup(func() { clearRetained(t, brokerURL, site) })
	return site
}

// clearRetained publishes an empty retained message on the site's status topic, which
// deletes the retained status, and connects once with the edge's client id and a clean
// session, which makes the broker drop the edge's persistent session.
func clearRetained(t testing.TB, brokerURL, site string) {
	cli := paho.NewClient(paho.NewClientOptions().AddBroker(brokerURL).SetClientID("larder-edge-" + site).SetCleanSession(true))
	if tok := cli.Connect(); !tok.WaitTimeout(2*time.Second) || tok.Error() != nil {
		return // broker already gone (mochi stopped): nothing retained survives it
	}
	defer cli.Disconnect(50)
	cli.Publish(protocol.Topic(site, protocol.ChanStatus), 1, true, []byte{}).WaitTimeout(2 * time.Second)
}

// retainedStatus subscribes afresh to the site's status topic and returns the retained
// Status, or false if none arrives within a second.
func retainedStatus(t testing.TB, brokerURL, site string) (protocol.Status, bool) {
	t.Helper()
	got := make(chan protocol.Status, 1)
	cli := paho.NewClient(paho.NewClientOptions().AddBroker(brokerURL).SetClientID("larder-probe-" + protocol.NewID()))
	if tok := cli.Connect(); !tok.WaitTimeout(2*time.Second) || tok.Error() != nil {
		t.Fatalf("probe connect: %v", tok.Error())
	}
	defer cli.Disconnect(50)
	cli.Subscribe(protocol.Topic(site, protocol.ChanStatus), 1, func(_ paho.Client, m paho.Message) {
		if !m.Retained() || len(m.Payload()) == 0 {
			return
		}
		msg, err := protocol.DecodeOn(protocol.ChanStatus, m.Payload())
		if err != nil {
			t.Errorf("retained status does not decode: %v", err)
			return
		}
		select {
		case got <- msg.Body.(protocol.Status):
		default:
		}
	}).WaitTimeout(2 * time.Second)
	select {
	case s := <-got:
		return s, true
	case <-time.After(time.Second):
		return protocol.Status{}, false
	}
}

// testConfig is a config with timings short enough for tests.
func testConfig(site, brokerURL string) mqtt.Config {
	cfg := mqtt.DefaultConfig()
	cfg.Site = site
	cfg.Broker = brokerURL
	cfg.Software = "test-1.0"
	cfg.KeepAlive = 2 * time.Second
	cfg.ConnectTimeout = 2 * time.Second
	cfg.OpTimeout = 3 * time.Second
	cfg.TelemetryInterval = 50 * time.Millisecond
	cfg.BackoffMin = 10 * time.Millisecond
	cfg.BackoffMax = 100 * time.Millisecond
	cfg.AckTimeout = 300 * time.Millisecond
	cfg.GapGrace = 300 * time.Millisecond
	cfg.PollInterval = 100 * time.Millisecond
	return cfg
}

// edge is a running Client.
type edge struct {
	*mqtt.Client
	store *mqtttest.Store
	reg   *prometheus.Registry
	stop  func()
}

// startEdge runs a Client over store until the test ends (or stop is called).
func startEdge(t testing.TB, cfg mqtt.Config, store *mqtttest.Store) *edge {
	t.Helper()
	reg := prometheus.NewRegistry()
	var log *slog.Logger
	if os.Getenv("LARDER_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	c, err := mqtt.New(cfg, store.Ports(), log, reg)
	if err != nil {
		t.Fatalf("mqtt.New: %v", err)
	}
	if store.Notify == nil {
		store.Notify = c.Notify
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return 10s after cancel")
		}
	}
	t.Cleanup(stop)
	return &edge{Client: c, store: store, reg: reg, stop: stop}
}

// waitFor polls cond until it holds or fails t after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// metric returns the value of a gauge or counter (with the given label values, in
// label order) from reg, or -1 when absent.
func metric(t testing.TB, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if !labelsMatch(m, labels) {
				continue
			}
			switch {
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Counter != nil:
				return m.Counter.GetValue()
			}
		}
	}
	return -1
}

func labelsMatch(m *dto.Metric, want []string) bool {
	if len(want) == 0 {
		return true
	}
	if len(m.GetLabel()) != len(want) {
		return false
	}
	for i, l := range m.GetLabel() {
		if l.GetValue() != want[i] {
			return false
		}
	}
	return true
}

func doorEvent(n int) protocol.Event {
	return protocol.Event{Kind: protocol.EventDoorClosed, Credential: protocol.CredNone, Compartment: 1 + n%16}
}

func processedIDs(s mqtttest.Snapshot) []string {
	ids := make([]string, len(s.Processed))
	for i, m := range s.Processed {
		ids[i] = m.ID
	}
	return ids
}

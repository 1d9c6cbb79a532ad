package mqtt_test

import (
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/larder-lockers/larder/edge/mqtt"
	"github.com/larder-lockers/larder/edge/mqtt/mqtttest"
)

func TestBrokerList(t *testing.T) {
	cfg := mqtt.DefaultConfig()
	cfg.Site = "courtyard-7"
	for _, c := range []struct {
		in   string
		want []string
		err  string
	}{
		{in: "tcp://a:1883", want: []string{"tcp://a:1883"}},
		{in: "tcp://a:1883,ssl://b:8883", want: []string{"tcp://a:1883", "ssl://b:8883"}},
		{in: " tcp://a:1883 , tcp://b:1883 ", want: []string{"tcp://a:1883", "tcp://b:1883"}},
		{in: "", err: "no broker"},
		{in: "tcp://a:1883,", err: "empty entry"},
		{in: "tcp://a:1883,,tcp://b:1883", err: "empty entry"},
		{in: "tcp://a:1883,http://b:1", err: `"http://b:1": scheme`},
		{in: "tcp://a:1883,tcp://", err: "no host"},
		{in: "tcp://a:1883,tcp://a:1883", err: "listed twice"},
	} {
		cfg.Broker = c.in
		got, err := cfg.Brokers()
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("Brokers(%q): %v, want an error with %q", c.in, err, c.err)
			}
			if verr := cfg.Validate(); verr == nil {
				t.Errorf("Validate accepted broker %q", c.in)
			}
			continue
		}
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("Brokers(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

// TestBrokerFailover: with several broker URLs the edge connects to the first that
// takes it, in order (a dead one is skipped), and when that broker dies it reconnects
// to the next, where it says it is online again.
func TestBrokerFailover(t *testing.T) {
	dead := "tcp://" + mqtttest.FreeAddr(t)
	a, b := mqtttest.StartMochi(t), mqtttest.StartMochi(t)
	site := newSite(t, b.URL())
	cfg := testConfig(site, strings.Join([]string{dead, a.URL(), b.URL()}, ","))
	startEdge(t, cfg, mqtttest.NewStore())

	online := func(url string) func() bool {
		return func() bool { st, ok := retainedStatus(t, url, site); return ok && st.Online }
	}
	waitFor(t, 10*time.Second, "online on the first live broker", online(a.URL()))
	if _, ok := retainedStatus(t, b.URL(), site); ok {
		t.Fatal("the edge also spoke to the second live broker")
	}
	a.Stop()
	waitFor(t, 10*time.Second, "online on the next broker after the first died", online(b.URL()))
}

// refuseDesired is a mochi hook that admits everyone and refuses subscriptions to the
// desired channel until allowed.
type refuseDesired struct {
	mochi.HookBase
	allow atomic.Bool
}

func (h *refuseDesired) ID() string { return "refuse-desired" }
func (h *refuseDesired) Provides(b byte) bool {
	return b == mochi.OnConnectAuthenticate || b == mochi.OnACLCheck
}
func (h *refuseDesired) OnConnectAuthenticate(*mochi.Client, packets.Packet) bool { return true }
func (h *refuseDesired) OnACLCheck(_ *mochi.Client, topic string, write bool) bool {
	return write || h.allow.Load() || !strings.HasSuffix(topic, "/desired")
}

// TestRefusedSubscriptionReconnects: a broker that refuses one of the edge's
// subscriptions (SUBACK 0x80) does not get a half-subscribed edge: the connection is
// dropped and retried until the broker grants all of them.
func TestRefusedSubscriptionReconnects(t *testing.T) {
	addr := mqtttest.FreeAddr(t)
	srv := mochi.New(&mochi.Options{Logger: slog.New(slog.DiscardHandler)})
	hook := &refuseDesired{}
	if err := srv.AddHook(hook, nil); err != nil {
		t.Fatal(err)
	}
	if err := srv.AddListener(listeners.NewTCP(listeners.Config{ID: "tcp", Address: addr})); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	url := "tcp://" + addr
	e := startEdge(t, testConfig(newSite(t, url), url), mqtttest.NewStore())
	waitFor(t, 10*time.Second, "three connection attempts", func() bool {
		return metric(t, e.reg, "larder_mqtt_connect_attempts_total") >= 3
	})
	if e.Connected() {
		t.Fatal("edge counts itself connected with its desired subscription refused")
	}
	hook.allow.Store(true)
	waitFor(t, 10*time.Second, "connected once the broker grants every subscription", e.Connected)
}

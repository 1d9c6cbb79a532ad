package mqtt_test

import (
	"slices"
	"strings"
	"testing"
	"time"

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

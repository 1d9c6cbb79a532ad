package loadgen

import (
	"log/slog"
	"testing"
	"time"

	"github.com/larder-lockers/larder/cloud/broker"
	"github.com/larder-lockers/larder/edge/mqtt/mqtttest"
)

// TestDialTriesEveryBroker: with a broker list whose first node accepts TCP and never
// answers (a cluster node busy electing), a simulated edge still connects through the
// second within one dial, as larder-edge does. A dial that gave up after one node's
// timeout left paho connecting in the background: that stray connection later took the
// session from the edge's next one and started a second redial loop (two connections
// of one client id replacing each other, seen as thousands of lost connections in the
// NATS node-kill test).
func TestDialTriesEveryBroker(t *testing.T) {
	const site, password = "dial-0001", "pw-dial-0001"
	cfg := broker.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Credentials = broker.StaticCredentials{site: broker.PasswordDigest(password)}
	cfg.ServiceUser, cfg.ServicePassword = "larder.cloud", "svc-password"
	b, err := broker.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	o := &edgeOptions{broker: mqtttest.Silent(t) + "," + b.URL(), window: 10, compartments: compartments(4),
		opTimeout: 300 * time.Millisecond, backoffMin: 10 * time.Millisecond, backoffMax: 100 * time.Millisecond,
		ackTimeout: time.Second, gapGrace: time.Second, telemetry: time.Hour,
		counters: &edgeCounters{}, log: slog.New(slog.DiscardHandler)}
	e := newEdge(provisioning{Site: site, MQTTUsername: site, MQTTPassword: password}, make([]byte, 32), o)
	e.ctx = t.Context()
	if err := e.dial(); err != nil {
		t.Fatalf("dial over [silent, broker]: %v", err)
	}
	defer e.close()
}

package e2e_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/larder-lockers/larder/cloud/broker"
	"github.com/larder-lockers/larder/cloud/notify"
	"github.com/larder-lockers/larder/demo"
	"github.com/larder-lockers/larder/protocol"
)

// connectedTo matches the edge's (JSON) log line of a new MQTT connection and captures
// the broker it is to.
var connectedTo = regexp.MustCompile(`"msg":"mqtt: connected",.*"broker":"([^"]+)"`)

// TestNATSClusterFailover runs the whole lifecycle over a 3-node NATS cluster (MQTT and
// JetStream, per-site users from cloud/broker's generator): the cloud on node 3, the
// edge given all three nodes' URLs and so on node 1. An order is created; while the
// driver loads it, node 1 is killed with SIGKILL; the edge reconnects to a surviving
// node, the retained status on the cloud's node says online, the resident picks up, and
// the cloud records picked_up with the edge's outbox drained. Then the edge is killed,
// and the cloud hears its Last Will through the cluster; restarted, it is online again.
// At the end the platform has heard loaded and picked_up exactly once.
func TestNATSClusterFailover(t *testing.T) {
	svc := broker.NATSLogin{User: "larder.cloud", Password: randHex(16)}
	nats := startNATSCluster(t, broker.DefaultNATSNodes, svc)
	const cloudNode = 2 // never killed: the cloud's own failover is tested elsewhere

	dir := t.TempDir()
	s := &system{t: t, ctx: t.Context(), site: "e2e-nats-" + randHex(5), broker: nats.url(cloudNode),
		hooks: newWebhooks(t), sms: newSMSGateway(t)}
	t.Logf("site %s; nats nodes %s", s.site, nats.MQTTURLs())
	s.l = &demo.Launcher{BinDir: binDir, LogDir: filepath.Join(dir, "logs"), StopTimeout: 10 * time.Second}
	t.Cleanup(func() {
		s.l.StopAll()
		if t.Failed() {
			dumpLogs(t, s.l.LogDir)
		}
	})
	var err error
	if s.sim, err = s.l.StartSim(s.ctx, demo.SimOptions{Boards: 2, Zones: zones}); err != nil {
		t.Fatal(err)
	}
	// The service password goes by file, never by flag.
	cloudConf := filepath.Join(dir, "cloud.json")
	raw, _ := json.Marshal(map[string]string{"mqtt_password": svc.Password})
	if err := os.WriteFile(cloudConf, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	adminKey := "lk_e2e_admin_" + randHex(16)
	s.cloud, err = s.l.StartCloud(s.ctx, demo.CloudOptions{DataDir: filepath.Join(dir, "cloud"), Broker: s.broker,
		AdminKey: adminKey, LogLevel: "debug", SMSURL: s.sms.srv.URL,
		Extra: []string{"-config", cloudConf, "-mqtt-user", svc.User}})
	if err != nil {
		t.Fatal(err)
	}
	s.admin = s.cloud.API(adminKey)
	s.ops = s.admin.As(s.key("ops", "e2e-ops"))
	s.driver = s.admin.As(s.key("driver", "e2e-driver"))
	s.platform = s.admin.As(s.key("platform", platformID))
	if _, err := s.platform.SetWebhook(s.ctx, platformID, s.hooks.srv.URL); err != nil {
		t.Fatal(err)
	}
	if err := s.admin.CreateSite(s.ctx, s.site, "NATS courtyard", "3 Cluster Lane"); err != nil {
		t.Fatal(err)
	}
	if s.prov, err = s.admin.Provision(s.ctx, s.site); err != nil {
		t.Fatal(err)
	}
	// The operator adds the provisioned site's login to the cluster. The password is
	// the one provisioning handed out, as it is (a deployment stores its bcrypt hash;
	// see deploy/nats/README.md): the cloud keeps only a SHA-256 digest.
	nats.addSites([]broker.NATSLogin{{User: s.prov.MQTTUsername, Password: s.prov.MQTTPassword}})

	s.edge, err = s.l.StartEdge(s.ctx, demo.EdgeOptions{Site: s.site, SiteKey: s.prov.SiteKey,
		DataDir: filepath.Join(dir, "edge"), Broker: nats.MQTTURLs(), BrokerUser: s.prov.MQTTUsername,
		BrokerPassword: s.prov.MQTTPassword, Bus: s.sim.Bus, Zones: zones, Thermometer: s.sim.Control.URL,
		PollInterval: 100 * time.Millisecond, TempInterval: time.Second, LogLevel: "debug"})
	if err != nil {
		t.Fatal(err)
	}
	s.people = &demo.People{Kiosk: s.edge.Kiosk, Sim: s.sim.Control, Dwell: 400 * time.Millisecond}
	s.waitOnline(true, 60*time.Second)
	if got := s.edgeBroker(0, 10*time.Second); got != nats.url(0) {
		t.Fatalf("edge connected to %s, want the first URL %s", got, nats.url(0))
	}

	const phone = "+8613700137000"
	rc := s.order("ext-nats-1", phone, "platform", demo.Parcel{Size: "M", Zone: "chilled"})
	// Node 1 dies with the edge's session on it while the driver is loading: the door
	// has opened, so its closing and the loading's end reach the edge's outbox while it
	// has no broker, and the cloud gets them through another node.
	tok := s.driverToken()
	var killed time.Time
	killedc := make(chan error, 1)
	go func() {
		_, err := s.edge.WaitLine(s.ctx, 30*time.Second, "a door opened for loading", func(line string) string {
			if strings.Contains(line, `"event":"door_opened"`) {
				return line
			}
			return ""
		})
		if err == nil {
			killed = time.Now()
			nats.kill(0)
		}
		killedc <- err
	}()
	s.load(tok, rc.Order)
	if err := <-killedc; err != nil {
		t.Fatal(err)
	}
	// The edge tries node 2 first, but nats-server 2.9 turns MQTT logins away while
	// JetStream elects new leaders for the streams node 1 led (a 4 s timeout looking
	// up the sessions stream), so it may land on node 3: either survivor will do.
	got := s.edgeBroker(1, 45*time.Second)
	if got != nats.url(1) && got != nats.url(2) {
		t.Fatalf("edge reconnected to %s, want a surviving node (%s or %s)", got, nats.url(1), nats.url(2))
	}
	node := nats.Nodes[1].Name
	if got == nats.url(2) {
		node = nats.Nodes[2].Name
	}
	t.Logf("edge back on node %s %v after node 1 was killed", node, time.Since(killed).Round(time.Millisecond))
	s.waitOnline(true, 30*time.Second)
	s.waitRetainedStatus(nats.url(cloudNode), svc, true, 20*time.Second)
	s.waitState(rc.Order.ID, "loaded", 30*time.Second)

	// The pickup after the failover, through the surviving nodes to the cloud.
	res, err := s.people.PickUp(s.ctx, rc.Pickup.Code, lastFour(phone))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Doors) != 1 {
		t.Fatalf("pickup opened %+v", res.Doors)
	}
	s.waitState(rc.Order.ID, "picked_up", 45*time.Second)
	s.waitDrained(45 * time.Second)
	s.hooks.wait(t, "picked_up", rc.Order.ID, 20*time.Second)

	// Last Will through the cluster: the edge's link dies with the edge, its node
	// publishes the retained offline status, the cloud on node 3 hears it.
	s.edge.Kill()
	s.waitOnline(false, 30*time.Second)
	// The retained copy lives in a JetStream stream whose leader may still be re-elected
	// after node 1's death (refused QoS 1 subscriptions took up to 47 s to be granted in
	// the replicas' test): the live Will reached the cloud above, the stored one may lag.
	s.waitRetainedStatus(nats.url(cloudNode), svc, false, 60*time.Second)
	if s.edge, err = s.l.Restart(s.ctx, s.edge); err != nil {
		t.Fatal(err)
	}
	s.waitOnline(true, 60*time.Second)
	s.waitDrained(30 * time.Second)

	// Applied once across the node's death and the edge's: the platform heard each step
	// of the order once (counted at the end, long after any duplicate would have gone).
	for _, kind := range []string{"loaded", "picked_up"} {
		if n := s.hooks.count(kind, rc.Order.ID); n != 1 {
			t.Errorf("platform heard %s %d times, want once", kind, n)
		}
	}
	if o, err := s.platform.Order(s.ctx, rc.Order.ID); err != nil || o.State != "picked_up" {
		t.Errorf("order at the end: %+v, %v", o, err)
	}
}

// edgeBroker waits until the edge has logged its (n+1)-th MQTT connection and returns
// the broker URL that connection is to.
func (s *system) edgeBroker(n int, timeout time.Duration) string {
	s.t.Helper()
	seen := 0
	url, err := s.edge.WaitLine(s.ctx, timeout, fmt.Sprintf("MQTT connection %d", n+1), func(line string) string {
		m := connectedTo.FindStringSubmatch(line)
		if m == nil {
			return ""
		}
		if seen++; seen <= n {
			return ""
		}
		return m[1]
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return url
}

// waitRetainedStatus waits until a fresh subscriber on url reads the site's retained
// status with Online want.
func (s *system) waitRetainedStatus(url string, svc broker.NATSLogin, want bool, timeout time.Duration) {
	s.t.Helper()
	err := demo.Eventually(s.ctx, timeout, fmt.Sprintf("retained status online=%v on %s", want, url), func() error {
		cli := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("e2e-probe-" + randHex(4)).
			SetUsername(svc.User).SetPassword(svc.Password).SetProtocolVersion(4).SetCleanSession(true))
		if tok := cli.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			return fmt.Errorf("probe connect: %v", tok.Error())
		}
		defer cli.Disconnect(50)
		got := make(chan protocol.Status, 1)
		tok := cli.Subscribe(protocol.Topic(s.site, protocol.ChanStatus), 1, func(_ paho.Client, m paho.Message) {
			if msg, err := protocol.DecodeOn(protocol.ChanStatus, m.Payload()); err == nil && m.Retained() {
				select {
				case got <- msg.Body.(protocol.Status):
				default:
				}
			}
		})
		if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			return fmt.Errorf("probe subscribe: %v", tok.Error())
		}
		select {
		case st := <-got:
			if st.Online != want {
				return fmt.Errorf("retained status online=%v", st.Online)
			}
			return nil
		case <-time.After(2 * time.Second):
			return fmt.Errorf("no retained status")
		}
	})
	if err != nil {
		s.t.Fatal(err)
	}
}

// count is how many events of type "com.larder.order.<kind>" about order arrived.
func (w *webhooks) count(kind, order string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, e := range w.events {
		if e.Type == notify.TypePrefix+kind && e.Subject == order {
			n++
		}
	}
	return n
}

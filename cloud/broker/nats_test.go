package broker_test

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/larder-lockers/larder/cloud/broker"
	"github.com/larder-lockers/larder/protocol"
)

// natsServer is Debian's nats-server (tools/setup.sh installs it).
const natsServer = "/usr/sbin/nats-server"

// hashedPassword and its bcrypt hash (htpasswd -bnBC 10 "" hashedPassword), so that a
// hashed login is checked by the real server, not only plain ones.
const (
	hashedPassword = "pw-hashed-0123456789abcdef"
	hashedBcrypt   = "$2y$10$Fzsdg9tN6HUc1c1x7kIPs.LR09w/OPVROC01OYZyi8qKp5.46BMIe"
)

func TestNATSSubject(t *testing.T) {
	for _, c := range []struct{ topic, want string }{
		{protocol.Topic("site-a", protocol.ChanEvents), "larder.v1.site-a.events"},
		{protocol.Topic("s_1", protocol.ChanCommandAck), "larder.v1.s_1.commands.ack"},
		{protocol.AllSites(protocol.ChanEvents), "larder.v1.*.events"},
		{protocol.SiteFilter("site-a"), "larder.v1.site-a.>"},
	} {
		if got := broker.NATSSubject(c.topic); got != c.want {
			t.Errorf("NATSSubject(%q) = %q, want %q", c.topic, got, c.want)
		}
	}
}

func TestNATSAccountsRefuses(t *testing.T) {
	svc := broker.NATSLogin{User: svcUser, Password: svcPass}
	site := func(u, p string) []broker.NATSLogin { return []broker.NATSLogin{{User: u, Password: p}} }
	for _, c := range []struct {
		name    string
		service broker.NATSLogin
		sites   []broker.NATSLogin
		want    string
	}{
		{"service user a site id", broker.NATSLogin{User: "cloud", Password: "x"}, nil, "could be a site id"},
		{"service without password", broker.NATSLogin{User: svcUser}, nil, "no password"},
		{"site id with a dot", svc, site("a.b", "x"), "not a site id"},
		{"site id with a wildcard", svc, site("a*", "x"), "not a site id"},
		{"site twice", svc, append(site("a", "x"), site("a", "y")...), "listed twice"},
		{"broken hash", svc, site("a", "$2a$10$short"), "not one"},
		{"quote in password", svc, site("a", `x"y`), "quote"},
	} {
		_, err := broker.NATSAccounts(c.service, c.sites)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one with %q", c.name, err, c.want)
		}
	}
	if !(broker.NATSLogin{Password: hashedBcrypt}).Hashed() || (broker.NATSLogin{Password: hashedPassword}).Hashed() {
		t.Error("Hashed tells a bcrypt hash from a plain password wrongly")
	}
}

func TestNATSClusterValidate(t *testing.T) {
	ok := broker.LocalNATSCluster("127.0.0.1", "/var/lib/nats", 3)
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	two := broker.LocalNATSCluster("127.0.0.1", "/d", 2)
	clash := broker.LocalNATSCluster("127.0.0.1", "/d", 3)
	clash.Nodes[1].MQTTPort = clash.Nodes[0].MQTTPort
	dup := broker.LocalNATSCluster("127.0.0.1", "/d", 3)
	dup.Nodes[2].Name = "n1"
	spaced := broker.LocalNATSCluster("127.0.0.1", "/d", 3)
	spaced.Name = "my cluster"
	quoted := broker.LocalNATSCluster("127.0.0.1", `/d"`, 3)
	tooMany := broker.LocalNATSCluster("127.0.0.1", "/d", 3)
	tooMany.MaxAckPending = 65536
	for name, c := range map[string]broker.NATSCluster{"two nodes": two, "port twice": clash, "name twice": dup, "empty": {},
		"cluster name with a space": spaced, "store dir with a quote": quoted, "max ack pending beyond 65535": tooMany} {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: valid", name)
		}
	}
	if _, err := broker.NATSServerConfig(ok, 3); err == nil {
		t.Error("config of node 3 of 0..2")
	}
	if got, want := ok.MQTTURLs(), "tcp://127.0.0.1:1883,tcp://127.0.0.1:1884,tcp://127.0.0.1:1885"; got != want {
		t.Errorf("MQTTURLs = %q, want %q", got, want)
	}
}

var updateNATS = flag.Bool("update-nats", false, "rewrite deploy/nats/")

// TestDeployNATS keeps deploy/nats/ equal to what the generator writes: the three nodes
// of LocalNATSCluster and an accounts file with the service account and one example site.
func TestDeployNATS(t *testing.T) {
	const dir = "../../deploy/nats"
	c := broker.LocalNATSCluster("127.0.0.1", "/var/lib/nats", broker.DefaultNATSNodes)
	files := map[string]string{}
	for i, n := range c.Nodes {
		conf, err := broker.NATSServerConfig(c, i)
		if err != nil {
			t.Fatal(err)
		}
		files[n.Name+".conf"] = conf
	}
	// Hashes of random throwaway passwords nobody knows: an operator replaces both
	// (see deploy/nats/README.md).
	acc, err := broker.NATSAccounts(broker.NATSLogin{User: "larder.cloud", Password: "$2y$11$a9Gv5A8Df5YwwE0phSczjuizhl9zKM4fyJqVTQjwTUc2F1vcVhlgW"},
		[]broker.NATSLogin{{User: "courtyard-1", Password: "$2y$11$lTahPPfgqe6J7.KgQoum8OABh30uB2UoeHR5vZkqCx5FYN3MpOF.a"}})
	if err != nil {
		t.Fatal(err)
	}
	files[broker.NATSAccountsFile] = acc
	for name, want := range files {
		path := filepath.Join(dir, name)
		if *updateNATS {
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("%s differs from the generator; run go test ./cloud/broker -run TestDeployNATS -update-nats", path)
		}
	}
}

// natsCluster is a running cluster of our own nats-server children.
type natsCluster struct {
	broker.NATSCluster
	cmds []*exec.Cmd
	logs []string
}

// startNATSCluster starts n nodes on free loopback ports with the generated
// configuration, each with its own store, and waits until every node is healthy
// (JetStream current) and MQTT takes logins.
func startNATSCluster(t *testing.T, n int, service broker.NATSLogin, sites []broker.NATSLogin, opts ...func(*broker.NATSCluster)) *natsCluster {
	t.Helper()
	if _, err := os.Stat(natsServer); err != nil {
		t.Fatalf("%s missing (tools/setup.sh installs nats-server): %v", natsServer, err)
	}
	dir := t.TempDir()
	c := &natsCluster{NATSCluster: broker.LocalNATSCluster("127.0.0.1", dir, n)}
	for _, o := range opts {
		o(&c.NATSCluster)
	}
	for i := range c.Nodes {
		nd := &c.Nodes[i]
		nd.ClientPort, nd.ClusterPort, nd.MQTTPort, nd.MonitorPort = freePort(t), freePort(t), freePort(t), freePort(t)
	}
	acc, err := broker.NATSAccounts(service, sites)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, broker.NATSAccountsFile), []byte(acc), 0o600); err != nil {
		t.Fatal(err)
	}
	for i, nd := range c.Nodes {
		conf, err := broker.NATSServerConfig(c.NATSCluster, i)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, nd.Name+".conf")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		log := filepath.Join(dir, nd.Name+".log")
		cmd := exec.Command(natsServer, "-c", path, "-l", log)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		c.cmds, c.logs = append(c.cmds, cmd), append(c.logs, log)
	}
	t.Cleanup(func() {
		for _, cmd := range c.cmds {
			cmd.Process.Kill() // our own children, by pid
			cmd.Wait()
		}
		if t.Failed() {
			for _, l := range c.logs {
				raw, _ := os.ReadFile(l)
				t.Logf("---- %s\n%s", filepath.Base(l), tail(string(raw), 40))
			}
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for _, nd := range c.Nodes {
		url := fmt.Sprintf("http://%s:%d/healthz", nd.Host, nd.MonitorPort)
		for {
			resp, err := http.Get(url)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("nats node %s not healthy within 30 s: %v", nd.Name, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return c
}

func (c *natsCluster) url(i int) string {
	return fmt.Sprintf("tcp://%s:%d", c.Nodes[i].Host, c.Nodes[i].MQTTPort)
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// natsConnect logs in over MQTT, retrying while the cluster's JetStream is still
// electing leaders (the first logins of an account create its MQTT streams), at most 20 s.
func natsConnect(t *testing.T, url, id, user, pass string, opts ...func(*paho.ClientOptions)) (paho.Client, error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		// Protocol 4 only: paho would retry a refusal as MQTT 3.1, which nats-server refuses.
		o := paho.NewClientOptions().AddBroker(url).SetClientID(id).SetUsername(user).SetPassword(pass).
			SetProtocolVersion(4).SetAutoReconnect(false).SetOrderMatters(false).SetConnectTimeout(5 * time.Second)
		for _, f := range opts {
			f(o)
		}
		c := paho.NewClient(o)
		tok := c.Connect()
		ok := tok.WaitTimeout(10 * time.Second)
		if ok && tok.Error() == nil {
			t.Cleanup(func() { c.Disconnect(50) })
			return c, nil
		}
		err := tok.Error()
		if !ok {
			err = fmt.Errorf("no CONNACK")
		}
		// A refused login is final; anything else may be the cluster still starting.
		if strings.Contains(fmt.Sprint(err), "not Authorized") || strings.Contains(fmt.Sprint(err), "bad user name or password") || time.Now().After(deadline) {
			return nil, fmt.Errorf("connect %s to %s: %w", id, url, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestNATSCluster runs the generated configuration on a real 3-node cluster: logins,
// each edge confined to its own site across nodes, retained status and Last Will.
func TestNATSCluster(t *testing.T) {
	sites := []broker.NATSLogin{{User: "site-a", Password: hashedBcrypt}, {User: "site-b", Password: passwords["site-b"]}}
	c := startNATSCluster(t, 3, broker.NATSLogin{User: svcUser, Password: svcPass}, sites)

	cloud, err := natsConnect(t, c.url(0), "larder-cloud-1", svcUser, svcPass)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := natsConnect(t, c.url(1), broker.EdgeClientID("site-a"), "site-a", "wrong"); err == nil {
		t.Fatal("wrong password accepted")
	}
	// Over NATS's own protocol nobody logs in, not even with a right password: the
	// "$MQTT.sub.>" grant must not reach a NATS client.
	for _, l := range []broker.NATSLogin{{User: svcUser, Password: svcPass}, {User: "site-b", Password: passwords["site-b"]}} {
		if reply := natsProtocolLogin(t, c.Nodes[0], l); !strings.HasPrefix(reply, "-ERR") {
			t.Errorf("NATS protocol login of %s answered %q, want -ERR", l.User, reply)
		}
	}
	in := newInbox()
	for _, ch := range protocol.Channels() {
		if ch.FromEdge() {
			subscribeGranted(t, cloud, protocol.AllSites(ch), in.handler)
		}
	}

	a, err := natsConnect(t, c.url(1), broker.EdgeClientID("site-a"), "site-a", hashedPassword)
	if err != nil {
		t.Fatal(err)
	}
	if err := publish(a, protocol.Topic("site-a", protocol.ChanEvents), "own"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, in, 1)

	// Subscriptions: its own cloud→edge channels granted, anything else refused. A
	// probe with site-a's login asks (nats-server does not bind client ids to logins);
	// the edge itself subscribes only to its own channels, as edge/mqtt does.
	probe, err := natsConnect(t, c.url(1), "probe-a", "site-a", hashedPassword)
	if err != nil {
		t.Fatal(err)
	}
	pin := newInbox()
	for f, granted := range map[string]bool{
		protocol.Topic("site-a", protocol.ChanEventAck): true,
		protocol.Topic("site-b", protocol.ChanCommands): false,
		protocol.AllSites(protocol.ChanCommands):        false,
		protocol.Topic("site-a", protocol.ChanEvents):   false,
		"$MQTT/sub/#": false,
		"#":           false,
	} {
		code := subscribe(t, probe, f, pin.handler)
		if got := code < 0x80; got != granted {
			t.Errorf("site-a subscribing to %s: SUBACK %#x, want granted %v", f, code, granted)
		}
	}
	ain := newInbox()
	for _, ch := range []protocol.Channel{protocol.ChanCommands, protocol.ChanDesired, protocol.ChanEventAck} {
		subscribeGranted(t, a, protocol.Topic("site-a", ch), ain.handler)
	}
	b, err := natsConnect(t, c.url(2), broker.EdgeClientID("site-b"), "site-b", passwords["site-b"])
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{protocol.Topic("site-b", protocol.ChanCommands), protocol.Topic("site-a", protocol.ChanCommands)} {
		if err := publish(cloud, topic, "cmd"); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, ain, 1)
	time.Sleep(300 * time.Millisecond) // anything wrongly delivered would have arrived by now
	if got := ain.all(); len(got) != 1 || got[0] != protocol.Topic("site-a", protocol.ChanCommands)+" cmd" {
		t.Fatalf("site-a received %q", got)
	}
	for _, m := range pin.all() {
		if !strings.HasPrefix(m, protocol.Root+"/site-a/") {
			t.Errorf("site-a's probe received %q", m)
		}
	}

	// A forged publish never reaches the cloud; nats-server acknowledges and drops it
	// (logging a "Publish Violation") and keeps the link, like Mosquitto.
	for _, topic := range []string{protocol.Topic("site-a", protocol.ChanEvents), protocol.Topic("site-b", protocol.ChanCommands)} {
		if err := publish(b, topic, "forged"); err != nil {
			t.Errorf("forged publish on %s: %v, want it acknowledged and dropped", topic, err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	if !b.IsConnectionOpen() {
		t.Error("nats-server closed the link of a client that published on a topic it may not")
	}
	if got := in.all(); len(got) != 1 {
		t.Fatalf("cloud received %q, want only site-a's own event", got)
	}

	// Retained status and Last Will: the edge's will fires when its link dies, and a
	// cloud that connects later to another node reads the retained offline status.
	// nats-server 2.9 accepts a Will on a topic the user may not publish to, but never
	// publishes it: a forger cannot have the broker say another site is offline.
	forgedURL, cutForged := cuttable(t, c.url(2))
	if _, err := natsConnect(t, forgedURL, "forger", "site-b", passwords["site-b"], func(o *paho.ClientOptions) {
		o.SetBinaryWill(protocol.Topic("site-a", protocol.ChanStatus), []byte("forged-offline"), 1, true)
	}); err != nil {
		t.Fatal(err)
	}
	ownURL, cutOwn := cuttable(t, c.url(2))
	bw, err := natsConnect(t, ownURL, "larder-edge-site-b-2", "site-b", passwords["site-b"], func(o *paho.ClientOptions) {
		o.SetBinaryWill(protocol.Topic("site-b", protocol.ChanStatus), []byte("offline"), 1, true)
	})
	if err != nil {
		t.Fatal(err)
	}
	if tok := bw.Publish(protocol.Topic("site-b", protocol.ChanStatus), 1, true, "online"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("retained status: %v", tok.Error())
	}
	cutForged()
	cutOwn()
	want := protocol.Topic("site-b", protocol.ChanStatus) + " offline"
	var got []string
	for deadline := time.Now().Add(15 * time.Second); ; {
		// A fresh subscriber each round reads the retained messages as they are now.
		late, err := natsConnect(t, c.url(1), "larder-cloud-late", svcUser, svcPass)
		if err != nil {
			t.Fatal(err)
		}
		lin := newInbox()
		subscribe(t, late, protocol.AllSites(protocol.ChanStatus), lin.handler)
		time.Sleep(300 * time.Millisecond)
		late.Disconnect(50)
		got = lin.all()
		// The Will may land while a round reads: then it sees the old status, then the
		// Will; the next round's fresh subscriber sees the retained state alone.
		if slices.Equal(got, []string{want}) || time.Now().After(deadline) {
			break
		}
	}
	if !slices.Equal(got, []string{want}) {
		t.Fatalf("late cloud read retained %q, want only site-b's Last Will %q", got, want)
	}
}

// cuttable is a loopback TCP relay to target for one connection; cut closes both ends,
// so the broker sees the client vanish without a DISCONNECT.
func cuttable(t *testing.T, target string) (url string, cut func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	done := make(chan struct{})
	var once sync.Once
	go func() {
		down, err := ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", strings.TrimPrefix(target, "tcp://"))
		if err != nil {
			down.Close()
			return
		}
		go pipe(up, down)
		go pipe(down, up)
		<-done
		down.Close()
		up.Close()
	}()
	t.Cleanup(func() { once.Do(func() { close(done) }) })
	return "tcp://" + ln.Addr().String(), func() { once.Do(func() { close(done) }) }
}

// subscribeGranted subscribes to a filter the login may read and fails the test if
// nats-server refuses it.
func subscribeGranted(t *testing.T, c paho.Client, filter string, h paho.MessageHandler) {
	t.Helper()
	if code := subscribe(t, c, filter, h); code >= 0x80 {
		t.Fatalf("subscription to %s refused (SUBACK %#x)", filter, code)
	}
}

// natsProtocolLogin logs in with l over the NATS client protocol and returns the
// server's first answer after CONNECT and PING: "PONG" when admitted, "-ERR …" when not.
func natsProtocolLogin(t *testing.T, n broker.NATSNode, l broker.NATSLogin) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("%s:%d", n.Host, n.ClientPort), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	if info, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(info, "INFO ") {
		t.Fatalf("NATS greeting %q: %v", info, err)
	}
	creds, _ := json.Marshal(map[string]any{"user": l.User, "pass": l.Password, "verbose": false, "protocol": 1})
	fmt.Fprintf(conn, "CONNECT %s\r\nPING\r\n", creds)
	reply, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("NATS login of %s: %v", l.User, err)
	}
	return strings.TrimSpace(reply)
}

// TestNATSSubscriptionBudget: one MQTT session's QoS 1 subscriptions share 65535
// packet ids, MaxAckPending each, and nats-server refuses the one that would overdraw
// them; the cloud's subscriptions (5 with wildcards, 5 per site without) must fit.
func TestNATSSubscriptionBudget(t *testing.T) {
	const maxAck = 4096
	c := startNATSCluster(t, 1, broker.NATSLogin{User: svcUser, Password: svcPass}, nil,
		func(c *broker.NATSCluster) { c.MaxAckPending = maxAck })
	cloud, err := natsConnect(t, c.url(0), "larder-cloud-1", svcUser, svcPass)
	if err != nil {
		t.Fatal(err)
	}
	in := newInbox()
	want := 65535 / maxAck
	for i := range want + 1 {
		filter := protocol.Topic(fmt.Sprintf("s%d", i), protocol.ChanEvents)
		granted := subscribe(t, cloud, filter, in.handler) < 0x80
		if granted != (i < want) {
			t.Fatalf("QoS 1 subscription %d of the session (max_ack_pending %d): granted %v, want %v", i+1, maxAck, granted, i < want)
		}
	}
}

func pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

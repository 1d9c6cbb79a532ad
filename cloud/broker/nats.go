package broker

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/larder-lockers/larder/protocol"
)

// NATS as the clustered broker: nats-server (2.9 and later) speaks MQTT 3.1.1 itself and
// keeps MQTT sessions, QoS 1 messages and retained messages in JetStream, so a cluster of
// three nodes survives the loss of one. The configuration is generated here, like the
// Mosquitto ACL ([MosquittoACL]), from the same rules as the embedded broker's
// ([MayPublish], [MaySubscribe]): [NATSServerConfig] writes one node's file, which
// includes the accounts file [NATSAccounts] writes, the same on every node.

// NATSAccount is the NATS account that holds the cloud's and the edges' logins. MQTT
// clients see only their own account's subjects, sessions and retained messages.
const NATSAccount = "LARDER"

// NATSAccountsFile is the name under which each node's configuration includes the
// accounts file (a path relative to the node's configuration file).
const NATSAccountsFile = "larder-accounts.conf"

// natsMQTTInternal is the prefix of the subjects nats-server 2.9 delivers QoS 1
// subscriptions on (JetStream consumers push to "$MQTT.sub.<id>" inside the client's own
// connection): a user with subscribe permissions must be allowed it, or every QoS 1
// SUBSCRIBE is refused (checked on 2.9.10). Later releases grant it implicitly
// (nats-server pull request 7637). No MQTT client can abuse it: the server refuses MQTT
// subscriptions to topics under "$MQTT" (TestNATSCluster checks it), and the users may
// not log in over NATS's own protocol.
const natsMQTTInternal = "$MQTT.sub.>"

// NATSSubject is the NATS subject nats-server maps an MQTT topic or filter to: '/'
// becomes '.', '+' becomes '*' and a trailing '#' becomes '>'. A site id never contains
// '.', '*', '>' or a space ([protocol.ValidSite]), so every Larder topic maps one to one.
func NATSSubject(topic string) string {
	levels := strings.Split(topic, "/")
	for i, l := range levels {
		switch l {
		case "+":
			levels[i] = "*"
		case "#":
			levels[i] = ">"
		}
	}
	return strings.Join(levels, ".")
}

// NATSLogin is one user of the Larder account. Password is what nats-server compares
// the MQTT CONNECT's password with: a bcrypt hash ("$2a$", "$2b$" or "$2y$", e.g. from
// `htpasswd -bnBC 11 "" PASSWORD | tr -d ':\n'`), which is what belongs in a
// deployment, or the plain password, which nats-server accepts with a warning and which
// suits only throwaway test clusters.
type NATSLogin struct {
	User     string
	Password string
}

// bcryptHash is the shape of a bcrypt hash as nats-server recognises it: "$2" and a minor
// version, a two-digit cost, 53 characters of salt and digest.
var bcryptHash = regexp.MustCompile(`^\$2[abxy]\$[0-9]{2}\$[./A-Za-z0-9]{53}$`)

// Hashed reports whether l.Password is a bcrypt hash (else nats-server takes it as the
// plain password).
func (l NATSLogin) Hashed() bool { return bcryptHash.MatchString(l.Password) }

func (l NATSLogin) validate() error {
	switch {
	case l.Password == "":
		return fmt.Errorf("broker: nats: user %q has no password", l.User)
	case strings.HasPrefix(l.Password, "$2") && !l.Hashed():
		// nats-server takes a password starting so for a bcrypt hash: a broken one admits
		// nobody.
		return fmt.Errorf("broker: nats: password of %q starts like a bcrypt hash but is not one", l.User)
	case strings.ContainsAny(l.Password, "\"\\\n\r"):
		return fmt.Errorf("broker: nats: password of %q has a quote, backslash or line break", l.User)
	}
	return nil
}

// NATSAccounts returns the accounts file every node includes: the [NATSAccount] account
// with JetStream (MQTT needs it), the cloud's service account, allowed every Larder
// subject, and one user per site (username = site id, as at provisioning), allowed to
// publish only its own site's edge→cloud channels and to subscribe only to its own
// cloud→edge ones: what [MosquittoACL] grants on Mosquitto. Every user may log in over
// MQTT only, so nobody reaches the subjects with a NATS client, where the internal
// "$MQTT.sub.>" grant is not confined to one client's deliveries.
//
// Like Mosquitto, and unlike the embedded broker, nats-server does not bind an edge's
// client id to its login: an edge that borrows another's client id can kick it off,
// though never read or write its topics. A publish the user may not make is
// acknowledged, dropped and logged ("Publish Violation"), the link stays up; a Last Will
// on such a topic is accepted at CONNECT and never published; a subscription it may not
// make gets SUBACK failure (0x80).
func NATSAccounts(service NATSLogin, sites []NATSLogin) (string, error) {
	if err := service.validate(); err != nil {
		return "", err
	}
	if protocol.ValidSite(service.User) {
		return "", fmt.Errorf("broker: nats: service user %q could be a site id: use a name with a character sites cannot have (e.g. %q)", service.User, "larder.cloud")
	}
	if strings.ContainsAny(service.User, "\"\\\n\r") {
		return "", fmt.Errorf("broker: nats: service user %q has a quote, backslash or line break", service.User)
	}
	seen := map[string]bool{}
	for _, s := range sites {
		if !protocol.ValidSite(s.User) {
			return "", fmt.Errorf("broker: nats: %q is not a site id", s.User)
		}
		if seen[s.User] {
			return "", fmt.Errorf("broker: nats: site %s listed twice", s.User)
		}
		seen[s.User] = true
		if err := s.validate(); err != nil {
			return "", err
		}
	}

	var b strings.Builder
	b.WriteString("# Larder's NATS account (generated by cloud/broker.NATSAccounts); included by every node.\n")
	b.WriteString("# Edges log in with username = site id and the MQTT password handed out at provisioning.\n")
	fmt.Fprintf(&b, "%s {\n  jetstream: enabled\n  users: [\n", NATSAccount)
	all := NATSSubject(protocol.Root)
	// "larder/v1/#" also matches "larder/v1" itself, hence both subjects.
	writeUser(&b, "the cloud's service account: every Larder subject", service,
		[]string{all, all + ".>"}, []string{all, all + ".>", natsMQTTInternal})
	for _, s := range sites {
		var pub, sub []string
		for _, c := range protocol.Channels() {
			subj := NATSSubject(protocol.Topic(s.User, c))
			if c.FromEdge() {
				pub = append(pub, subj)
			} else {
				sub = append(sub, subj)
			}
		}
		writeUser(&b, "", s, pub, append(sub, natsMQTTInternal))
	}
	b.WriteString("  ]\n}\n")
	return b.String(), nil
}

func writeUser(b *strings.Builder, comment string, l NATSLogin, pub, sub []string) {
	if comment != "" {
		fmt.Fprintf(b, "    # %s\n", comment)
	}
	fmt.Fprintf(b, "    {user: %s, password: %s, allowed_connection_types: [\"MQTT\"],\n", natsQuote(l.User), natsQuote(l.Password))
	fmt.Fprintf(b, "     permissions: {publish: {allow: %s}, subscribe: {allow: %s}}}\n", natsList(pub), natsList(sub))
}

// natsQuote quotes s for a NATS configuration file, which knows no escapes: callers
// have refused '"', '\\' and line breaks.
func natsQuote(s string) string { return `"` + s + `"` }

func natsList(subjects []string) string {
	q := make([]string, len(subjects))
	for i, s := range subjects {
		q[i] = natsQuote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// NATSNode is one nats-server of the cluster. Host is the address its listeners bind to
// and the other nodes reach it at.
type NATSNode struct {
	// Name is the node's server_name, unique in the cluster (JetStream requires one).
	Name string
	Host string
	// ClientPort is NATS's own protocol (4222), ClusterPort the routes between nodes
	// (6222), MQTTPort the edges' and the cloud's (1883), MonitorPort the HTTP
	// monitoring endpoint (8222; 0: none). Monitoring has no authentication: keep it on
	// an internal address.
	ClientPort, ClusterPort, MQTTPort, MonitorPort int
	// StoreDir is the JetStream store: MQTT sessions, QoS 1 messages and retained
	// messages. It must survive restarts.
	StoreDir string
}

// NATSCluster is the nodes of one cluster.
type NATSCluster struct {
	// Name is the cluster's name (every node the same; default "larder").
	Name  string
	Nodes []NATSNode
	// MaxAckPending bounds the unacknowledged QoS 1 messages of each MQTT subscription
	// (default [DefaultNATSMaxAckPending]). The QoS 1 subscriptions of one session share
	// MQTT's 65535 packet ids, so a session holds at most 65535/MaxAckPending of them:
	// nats-server refuses the next with SUBACK 0x80. An edge holds 3; a cloud that
	// subscribes with wildcards 5; one that subscribes per site 5 per site, so a cloud
	// replica serving n sites on one session needs MaxAckPending ≤ 65535/(5n), and each
	// subscription must still let an edge's whole outbox window through.
	MaxAckPending int
}

// DefaultNATSMaxAckPending is nats-server's own default: 1024 unacknowledged messages per
// subscription, 63 QoS 1 subscriptions per session.
const DefaultNATSMaxAckPending = 1024

func (c NATSCluster) maxAckPending() int {
	if c.MaxAckPending == 0 {
		return DefaultNATSMaxAckPending
	}
	return c.MaxAckPending
}

// DefaultNATSNodes is the usual cluster size: JetStream keeps its streams on three
// replicas and stays available while one node is down.
const DefaultNATSNodes = 3

// LocalNATSCluster returns an n-node cluster on one host, node i (from 1) named "n<i>"
// with ports 4221+i, 6221+i, 1882+i and 8221+i and the store dir/n<i>: a trial on one
// machine. A production cluster puts each node on its own host with the standard ports.
func LocalNATSCluster(host, dir string, n int) NATSCluster {
	c := NATSCluster{Name: "larder"}
	for i := 1; i <= n; i++ {
		c.Nodes = append(c.Nodes, NATSNode{Name: fmt.Sprintf("n%d", i), Host: host,
			ClientPort: 4221 + i, ClusterPort: 6221 + i, MQTTPort: 1882 + i, MonitorPort: 8221 + i,
			StoreDir: fmt.Sprintf("%s/n%d", strings.TrimRight(dir, "/"), i)})
	}
	return c
}

// Validate reports the first invalid field.
func (c NATSCluster) Validate() error {
	if len(c.Nodes) == 0 {
		return errors.New("broker: nats: a cluster needs nodes")
	}
	if len(c.Nodes) == 2 {
		// JetStream needs a majority: with two nodes, losing either stops MQTT.
		return errors.New("broker: nats: 2 nodes cannot lose one and keep JetStream's quorum: use 1 or at least 3")
	}
	if strings.ContainsAny(c.Name, " \t\"\\\n") {
		return fmt.Errorf("broker: nats: cluster name %q: want one word", c.Name)
	}
	if c.MaxAckPending < 0 || c.MaxAckPending > 65535 {
		return fmt.Errorf("broker: nats: max ack pending %d: want 1-65535 (0: %d)", c.MaxAckPending, DefaultNATSMaxAckPending)
	}
	names, addrs := map[string]bool{}, map[string]bool{}
	for _, n := range c.Nodes {
		if n.Name == "" || strings.ContainsAny(n.Name, " \t\"\\\n") {
			return fmt.Errorf("broker: nats: node name %q: want a non-empty word", n.Name)
		}
		if names[n.Name] {
			return fmt.Errorf("broker: nats: node name %s used twice", n.Name)
		}
		names[n.Name] = true
		if n.Host == "" || strings.ContainsAny(n.Host, " \t\"\\\n/") {
			return fmt.Errorf("broker: nats: node %s: host %q", n.Name, n.Host)
		}
		if n.StoreDir == "" || strings.ContainsAny(n.StoreDir, "\"\\\n") {
			return fmt.Errorf("broker: nats: node %s: store dir %q", n.Name, n.StoreDir)
		}
		for _, p := range []struct {
			what string
			port int
		}{{"client", n.ClientPort}, {"cluster", n.ClusterPort}, {"mqtt", n.MQTTPort}, {"monitor", n.MonitorPort}} {
			if p.what == "monitor" && p.port == 0 {
				continue
			}
			if p.port < 1 || p.port > 65535 {
				return fmt.Errorf("broker: nats: node %s: %s port %d", n.Name, p.what, p.port)
			}
			a := n.Host + ":" + strconv.Itoa(p.port)
			if addrs[a] {
				return fmt.Errorf("broker: nats: node %s: %s address %s used twice", n.Name, p.what, a)
			}
			addrs[a] = true
		}
	}
	return nil
}

// MQTTURLs are the nodes' MQTT addresses as the comma-separated broker list edges and
// the cloud take (tcp://host:port,…), in node order.
func (c NATSCluster) MQTTURLs() string {
	u := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		u[i] = fmt.Sprintf("tcp://%s:%d", n.Host, n.MQTTPort)
	}
	return strings.Join(u, ",")
}

// NATSServerConfig returns the configuration file of node i of c: its server_name,
// listeners, JetStream store, the routes to every other node, MQTT, and the Larder
// account from [NATSAccountsFile] beside it. MQTT's streams (sessions, QoS 1 messages,
// retained messages) get min(3, nodes) replicas, so they outlive one dead node.
func NATSServerConfig(c NATSCluster, i int) (string, error) {
	if err := c.Validate(); err != nil {
		return "", err
	}
	if i < 0 || i >= len(c.Nodes) {
		return "", fmt.Errorf("broker: nats: no node %d in a cluster of %d", i, len(c.Nodes))
	}
	name := c.Name
	if name == "" {
		name = "larder"
	}
	n := c.Nodes[i]
	var b strings.Builder
	fmt.Fprintf(&b, "# NATS node %s of cluster %s for Larder (generated by cloud/broker.NATSServerConfig).\n", n.Name, name)
	fmt.Fprintf(&b, "server_name: %s\nlisten: \"%s:%d\"\n", natsQuote(n.Name), n.Host, n.ClientPort)
	if n.MonitorPort != 0 {
		fmt.Fprintf(&b, "http: \"%s:%d\"\n", n.Host, n.MonitorPort)
	}
	fmt.Fprintf(&b, "\njetstream {\n  store_dir: %s\n}\n", natsQuote(n.StoreDir))
	if len(c.Nodes) > 1 {
		fmt.Fprintf(&b, "\ncluster {\n  name: %s\n  listen: \"%s:%d\"\n  routes: [\n", natsQuote(name), n.Host, n.ClusterPort)
		for j, o := range c.Nodes {
			if j != i {
				fmt.Fprintf(&b, "    \"nats-route://%s:%d\"\n", o.Host, o.ClusterPort)
			}
		}
		b.WriteString("  ]\n}\n")
	}
	replicas := min(3, len(c.Nodes))
	fmt.Fprintf(&b, "\nmqtt {\n  listen: \"%s:%d\"\n", n.Host, n.MQTTPort)
	fmt.Fprintf(&b, "  # Sessions, QoS 1 messages and retained messages live in JetStream streams.\n  stream_replicas: %d\n", replicas)
	b.WriteString("  # An unacknowledged QoS 1 message is sent again after ack_wait; edge/mqtt and the cloud\n")
	b.WriteString("  # deduplicate by sequence, so this only bounds how long a lost PUBACK holds a message back.\n")
	b.WriteString("  ack_wait: \"30s\"\n")
	b.WriteString("  # Unacknowledged QoS 1 messages per subscription. A session's QoS 1 subscriptions share\n")
	b.WriteString("  # MQTT's 65535 packet ids: one more than 65535/max_ack_pending is refused (SUBACK 0x80).\n")
	fmt.Fprintf(&b, "  max_ack_pending: %d\n}\n", c.maxAckPending())
	fmt.Fprintf(&b, "\naccounts {\n  include %s\n}\n", natsQuote(NATSAccountsFile))
	return b.String(), nil
}

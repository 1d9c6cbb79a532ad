package e2e_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/larder-lockers/larder/cloud/broker"
	"github.com/larder-lockers/larder/demo"
)

// natsServer is Debian's nats-server (tools/setup.sh installs it).
const natsServer = "/usr/sbin/nats-server"

// natsCluster is a cluster of nats-server children on free loopback ports, configured
// by cloud/broker's generator (MQTT, JetStream, the Larder account), each node with its
// own store.
type natsCluster struct {
	t   *testing.T
	dir string
	broker.NATSCluster
	service broker.NATSLogin
	nodes   []*exec.Cmd
	done    []chan struct{}
	// admitted are the sites' logins admit has added so far.
	admitted []broker.NATSLogin
}

// startNATSCluster starts n nodes with the cloud's service account and no site yet
// (see addSites), and waits until every node is healthy.
func startNATSCluster(t *testing.T, n int, service broker.NATSLogin) *natsCluster {
	t.Helper()
	if _, err := os.Stat(natsServer); err != nil {
		t.Fatalf("%s missing (tools/setup.sh installs nats-server): %v", natsServer, err)
	}
	dir := t.TempDir()
	c := &natsCluster{t: t, dir: dir, NATSCluster: broker.LocalNATSCluster("127.0.0.1", dir, n), service: service}
	// A port freed by demo.FreeAddr may be handed out again at the next call: every
	// listener of the cluster gets one of its own.
	used := map[int]bool{}
	for i := range c.Nodes {
		nd := &c.Nodes[i]
		ports := make([]int, 4)
		for j := range ports {
			for ports[j] == 0 || used[ports[j]] {
				addr, err := demo.FreeAddr()
				if err != nil {
					t.Fatal(err)
				}
				fmt.Sscanf(addr[strings.LastIndex(addr, ":")+1:], "%d", &ports[j])
			}
			used[ports[j]] = true
		}
		nd.ClientPort, nd.ClusterPort, nd.MQTTPort, nd.MonitorPort = ports[0], ports[1], ports[2], ports[3]
	}
	c.writeAccounts(nil)
	for i, nd := range c.Nodes {
		conf, err := broker.NATSServerConfig(c.NATSCluster, i)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, nd.Name+".conf")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(natsServer, "-c", path, "-l", c.log(i))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		c.nodes, c.done = append(c.nodes, cmd), append(c.done, done)
	}
	t.Cleanup(func() {
		for i := range c.nodes {
			c.kill(i)
		}
		if t.Failed() {
			for i, nd := range c.Nodes {
				raw, _ := os.ReadFile(c.log(i))
				lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
				if len(lines) > 40 {
					lines = lines[len(lines)-40:]
				}
				t.Logf("---- nats %s (last %d lines)\n%s", nd.Name, len(lines), strings.Join(lines, "\n"))
			}
		}
	})
	for i := range c.Nodes {
		c.waitHealthy(i, 30*time.Second)
	}
	return c
}

func (c *natsCluster) log(i int) string { return filepath.Join(c.dir, c.Nodes[i].Name+".log") }

// url is node i's MQTT URL.
func (c *natsCluster) url(i int) string {
	return fmt.Sprintf("tcp://%s:%d", c.Nodes[i].Host, c.Nodes[i].MQTTPort)
}

func (c *natsCluster) waitHealthy(i int, timeout time.Duration) {
	c.t.Helper()
	nd := c.Nodes[i]
	url := fmt.Sprintf("http://%s:%d/healthz", nd.Host, nd.MonitorPort)
	err := demo.Eventually(c.t.Context(), timeout, "nats node "+nd.Name+" healthy", func() error {
		resp, err := http.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("healthz %s", resp.Status)
		}
		return nil
	})
	if err != nil {
		c.t.Fatal(err)
	}
}

func (c *natsCluster) writeAccounts(sites []broker.NATSLogin) {
	c.t.Helper()
	acc, err := broker.NATSAccounts(c.service, sites)
	if err != nil {
		c.t.Fatal(err)
	}
	tmp := filepath.Join(c.dir, broker.NATSAccountsFile+".new")
	if err := os.WriteFile(tmp, []byte(acc), 0o600); err != nil {
		c.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(c.dir, broker.NATSAccountsFile)); err != nil {
		c.t.Fatal(err)
	}
}

// addSites regenerates the accounts file with these sites' logins and has every live
// node reload it (SIGHUP), as an operator does after provisioning; it waits until
// each node has logged the reload.
func (c *natsCluster) addSites(sites []broker.NATSLogin) {
	c.t.Helper()
	before := make([]int, len(c.nodes))
	for i := range c.nodes {
		before[i] = c.reloads(i)
	}
	c.writeAccounts(sites)
	for i, cmd := range c.nodes {
		if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
			c.t.Fatalf("reload nats %s: %v", c.Nodes[i].Name, err)
		}
	}
	for i := range c.nodes {
		err := demo.Eventually(c.t.Context(), 10*time.Second, "nats "+c.Nodes[i].Name+" reloaded", func() error {
			if c.reloads(i) > before[i] {
				return nil
			}
			return fmt.Errorf("no reload logged")
		})
		if err != nil {
			c.t.Fatal(err)
		}
	}
}

// admit adds sites' logins to those admitted before (addSites with all of them).
func (c *natsCluster) admit(sites []broker.NATSLogin) {
	c.t.Helper()
	c.admitted = append(c.admitted, sites...)
	c.addSites(c.admitted)
}

// mqttClients are the client ids of the MQTT connections node i holds now, from its
// monitoring endpoint (/connz).
func (c *natsCluster) mqttClients(i int) (map[string]bool, error) {
	nd := c.Nodes[i]
	resp, err := http.Get(fmt.Sprintf("http://%s:%d/connz?limit=100000", nd.Host, nd.MonitorPort))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var connz struct {
		Connections []struct {
			MQTTClient string `json:"mqtt_client"`
		} `json:"connections"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&connz); err != nil {
		return nil, fmt.Errorf("nats %s connz: %w", nd.Name, err)
	}
	out := map[string]bool{}
	for _, cn := range connz.Connections {
		if cn.MQTTClient != "" {
			out[cn.MQTTClient] = true
		}
	}
	return out, nil
}

// reloads counts the configuration reloads node i has logged.
func (c *natsCluster) reloads(i int) int {
	raw, _ := os.ReadFile(c.log(i))
	return strings.Count(string(raw), "Reloaded server configuration")
}

// kill ends node i with SIGKILL, like a power cut, and waits for it. Idempotent.
func (c *natsCluster) kill(i int) {
	c.nodes[i].Process.Signal(syscall.SIGKILL) // our own child, by pid
	<-c.done[i]
}

package broker_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/larder-lockers/larder/cloud/broker"
	"github.com/larder-lockers/larder/protocol"
)

// privateMosquitto starts a Mosquitto of our own (not the machine's shared one) with
// the generated ACL, a password file and a free loopback port.
func privateMosquitto(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/mosquitto"); err != nil {
			t.Skip("mosquitto not installed")
		}
	}
	passwd, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		t.Skip("mosquitto_passwd not installed")
	}
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "passwd")
	users := map[string]string{svcUser: svcPass}
	for s, p := range passwords {
		users[s] = p
	}
	first := true
	for u, p := range users {
		args := []string{"-b", pwFile, u, p}
		if first {
			args = append([]string{"-c"}, args...)
			first = false
		}
		if out, err := exec.Command(passwd, args...).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd: %v: %s", err, out)
		}
	}
	aclFile := filepath.Join(dir, "acl")
	if err := os.WriteFile(aclFile, []byte(broker.MosquittoACL(svcUser)), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	conf := filepath.Join(dir, "mosquitto.conf")
	cfg := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous false\npassword_file %s\nacl_file %s\npersistence false\n",
		port, pwFile, aclFile)
	if os.Getuid() == 0 {
		// Started as root, Mosquitto drops to user "mosquitto", who cannot read our
		// private temporary directory.
		cfg += "user root\n"
	}
	os.WriteFile(conf, []byte(cfg), 0o600)
	cmd := exec.Command(bin, "-c", conf)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill() // our own child, by its pid
		cmd.Wait()
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for deadline := time.Now().Add(5 * time.Second); ; {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return "tcp://" + addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto did not start: %s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func mqttConnect(t *testing.T, url, id, user, pass string) (paho.Client, error) {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(id).SetUsername(user).SetPassword(pass).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second))
	tok := c.Connect()
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("connect %s: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c, nil
}

func TestMosquittoACL(t *testing.T) {
	url := privateMosquitto(t)
	if _, err := mqttConnect(t, url, "x", "site-a", "wrong"); err == nil {
		t.Fatal("wrong password accepted")
	}
	cloud, err := mqttConnect(t, url, "larder-cloud-1", svcUser, svcPass)
	if err != nil {
		t.Fatal(err)
	}
	in := newInbox()
	subscribe(t, cloud, protocol.Root+"/#", in.handler)
	a, err := mqttConnect(t, url, broker.EdgeClientID("site-a"), "site-a", passwords["site-a"])
	if err != nil {
		t.Fatal(err)
	}
	publish(a, protocol.Topic("site-b", protocol.ChanEvents), "forged") // Mosquitto acks and drops it
	publish(a, protocol.Topic("site-a", protocol.ChanCommands), "forged")
	if err := publish(a, protocol.Topic("site-a", protocol.ChanEvents), "own"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, in, 1)
	time.Sleep(50 * time.Millisecond)
	if got := in.all(); len(got) != 1 || got[0] != protocol.Topic("site-a", protocol.ChanEvents)+" own" {
		t.Fatalf("cloud received %q", got)
	}
	// Mosquitto 2.0 grants any subscription and applies the read ACL to each delivery:
	// the edge must receive its own site's commands and nothing of another site's.
	ain := newInbox()
	for _, f := range []string{protocol.Topic("site-a", protocol.ChanCommands), protocol.Topic("site-b", protocol.ChanCommands),
		protocol.AllSites(protocol.ChanDesired)} {
		subscribe(t, a, f, ain.handler)
	}
	for _, topic := range []string{protocol.Topic("site-b", protocol.ChanCommands), protocol.Topic("site-b", protocol.ChanDesired),
		protocol.Topic("site-a", protocol.ChanCommands)} {
		if err := publish(cloud, topic, "x"); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, ain, 1)
	time.Sleep(50 * time.Millisecond)
	if got := ain.all(); len(got) != 1 || got[0] != protocol.Topic("site-a", protocol.ChanCommands)+" x" {
		t.Fatalf("edge received %q", got)
	}
}

package loadgen

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// mosquittoCloudUser is the cloud's account in deploy/mosquitto/larder.acl.
const mosquittoCloudUser = "larder.cloud"

// mosquitto is a private Mosquitto the run starts with the deployment's settings: the
// lines of conf (deploy/mosquitto/larder.conf) as they are, except that the TLS listener
// becomes a plain loopback one on a free port and the password file, the ACL (conf's
// sibling larder.acl) and the persistence directory get paths of the run's own.
type mosquitto struct {
	bin, conf string // the binary and the run's settings file, for a restart
	cmd       *exec.Cmd
	dir       string
	url       string
	passwd    string
	cloudPass string
	done      chan error
}

// skipped are the settings the private broker replaces.
var skipped = []string{"user", "listener", "certfile", "keyfile", "tls_version", "password_file", "acl_file", "persistence_location"}

func startMosquitto(bin, conf string) (*mosquitto, error) {
	if conf == "" {
		conf = "deploy/mosquitto/larder.conf"
	}
	data, err := os.ReadFile(conf)
	if err != nil {
		return nil, fmt.Errorf("loadgen: mosquitto settings: %w", err)
	}
	dir, err := os.MkdirTemp("", "larder-load-mosquitto-")
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	host, port, _ := net.SplitHostPort(addr)
	m := &mosquitto{dir: dir, url: "tcp://" + addr, passwd: filepath.Join(dir, "passwd"), cloudPass: secret("")}
	var out strings.Builder
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		line := sc.Text()
		if f := strings.Fields(line); len(f) > 0 && contains(skipped, f[0]) {
			continue
		}
		out.WriteString(line + "\n")
	}
	fmt.Fprintf(&out, "listener %s %s\npassword_file %s\nacl_file %s\npersistence_location %s/\nlog_dest file %s/mosquitto.log\n",
		port, host, m.passwd, filepath.Join(filepath.Dir(conf), "larder.acl"), dir, dir)
	if os.Geteuid() == 0 {
		out.WriteString("user root\n") // as root Mosquitto would switch to its own user, who cannot read the run's files
	}
	cfgPath := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(cfgPath, []byte(out.String()), 0o600); err != nil {
		return nil, err
	}
	if err := m.writePasswords(nil); err != nil {
		return nil, err
	}
	m.bin, m.conf = bin, cfgPath
	if err := m.start(); err != nil {
		m.stop()
		return nil, err
	}
	return m, nil
}

// start runs the broker with the run's settings and waits until it listens.
func (m *mosquitto) start() error {
	m.cmd = exec.Command(m.bin, "-c", m.conf)
	if err := m.cmd.Start(); err != nil {
		return fmt.Errorf("loadgen: start mosquitto: %w", err)
	}
	done := make(chan error, 1)
	m.done = done
	go func() { done <- m.cmd.Wait() }()
	addr := strings.TrimPrefix(m.url, "tcp://")
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(m.dir, "mosquitto.log"))
			return fmt.Errorf("loadgen: mosquitto does not listen on %s: %s", addr, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill ends the broker at once (SIGKILL): what it had not saved of its persistent
// sessions is lost, as in a crash.
func (m *mosquitto) kill() {
	_ = m.cmd.Process.Kill()
	<-m.done
	m.cmd = nil
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// writePasswords writes the cloud's and the sites' logins, hashed by mosquitto_passwd.
func (m *mosquitto) writePasswords(provs []provisioning) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:%s\n", mosquittoCloudUser, m.cloudPass)
	for _, p := range provs {
		fmt.Fprintf(&b, "%s:%s\n", p.MQTTUsername, p.MQTTPassword)
	}
	tmp := m.passwd + ".new"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return err
	}
	if out, err := exec.Command("mosquitto_passwd", "-U", tmp).CombinedOutput(); err != nil {
		return fmt.Errorf("loadgen: mosquitto_passwd -U: %v: %s", err, out)
	}
	return os.Rename(tmp, m.passwd)
}

// addUsers adds the provisioned sites' logins and has the broker reload them (SIGHUP).
func (m *mosquitto) addUsers(provs []provisioning) error {
	if err := m.writePasswords(provs); err != nil {
		return err
	}
	if err := m.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		return err
	}
	time.Sleep(500 * time.Millisecond) // the reload is asynchronous and says nothing
	return nil
}

func (m *mosquitto) stop() {
	defer os.RemoveAll(m.dir)
	if m.cmd == nil {
		return // killed and not started again
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(5 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.done
	}
}

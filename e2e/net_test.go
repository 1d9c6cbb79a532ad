package e2e_test

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/larder-lockers/larder/demo"
)

// proxy is a TCP relay between an edge and its broker that a test cuts and resumes: the
// edge's uplink going down (a cut cable, a dead 4G modem) while its locker keeps working.
type proxy struct {
	Addr   string
	target string

	mu    sync.Mutex
	ln    net.Listener
	conns []net.Conn
	// down, when set, drops every byte from the broker to the edge (HoldDown).
	down atomic.Bool
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	p := &proxy{target: target}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.Addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.Cut)
	return p
}

// URL is the broker URL the edge uses.
func (p *proxy) URL() string { return "tcp://" + p.Addr }

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.DialTimeout("tcp", p.target, 2*time.Second)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { io.Copy(up, c); up.Close(); c.Close() }()
			go func() { p.copyDown(c, up); up.Close(); c.Close() }()
		}
	}()
}

// copyDown relays the broker's bytes to the edge, dropping them while down is set.
func (p *proxy) copyDown(edge, broker net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := broker.Read(buf)
		if n > 0 && !p.down.Load() {
			if _, werr := edge.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// HoldDown makes the link one-way: from now on nothing the broker sends reaches the edge
// (desired deltas, acknowledgements, even a new connection's CONNACK), while what the
// edge sends still arrives. Cut ends it; Resume starts afresh with both ways open.
func (p *proxy) HoldDown() { p.down.Store(true) }

// Cut closes the listener and every relayed connection: the edge can neither stay
// connected nor reconnect.
func (p *proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// Resume listens again on the same address.
func (p *proxy) Resume(t *testing.T) {
	t.Helper()
	var ln net.Listener
	err := demo.Eventually(t.Context(), 5*time.Second, "proxy listens again on "+p.Addr, func() (err error) {
		ln, err = net.Listen("tcp", p.Addr)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	p.down.Store(false)
	p.serve(ln)
}

// mosquitto is a private Mosquitto broker on a loopback port, with persistence, that a
// test stops and starts again on the same port and persistence file.
type mosquitto struct {
	Addr string
	bin  string
	conf string
	cmd  *exec.Cmd
	log  *os.File
}

func startMosquitto(t *testing.T) *mosquitto {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
			if _, e := os.Stat(p); e == nil {
				bin, err = p, nil
			}
		}
	}
	if err != nil {
		t.Fatal("the broker-restart test needs the mosquitto binary (apt-get install mosquitto)")
	}
	dir := t.TempDir()
	addr, err := demo.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(addr)
	m := &mosquitto{Addr: addr, bin: bin, conf: filepath.Join(dir, "mosquitto.conf")}
	conf := fmt.Sprintf("listener %s 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location %s/\nautosave_interval 1\nmax_queued_messages 10000\nlog_dest stderr\n", port, dir)
	if err := os.WriteFile(m.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	m.log, err = os.Create(filepath.Join(dir, "mosquitto.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Stop(); m.log.Close() })
	m.start(t)
	return m
}

func (m *mosquitto) URL() string { return "tcp://" + m.Addr }

func (m *mosquitto) start(t *testing.T) {
	t.Helper()
	m.cmd = exec.Command(m.bin, "-c", m.conf)
	m.cmd.Stdout, m.cmd.Stderr = m.log, m.log
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := demo.Eventually(t.Context(), 10*time.Second, "mosquitto listens on "+m.Addr, func() error {
		c, err := net.DialTimeout("tcp", m.Addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// Stop ends the broker (SIGTERM: it saves its persistence file).
func (m *mosquitto) Stop() {
	if m.cmd == nil {
		return
	}
	m.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { m.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		m.cmd.Process.Kill()
		<-done
	}
	m.cmd = nil
}

// Start starts the stopped broker again on the same port and persistence file.
func (m *mosquitto) Start(t *testing.T) {
	t.Helper()
	m.start(t)
}

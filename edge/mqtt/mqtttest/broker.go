package mqtttest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// MosquittoAddr is where the machine's Mosquitto listens (anonymous access).
const MosquittoAddr = "127.0.0.1:1883"

// Mosquitto returns the paho URL of the local Mosquitto, or skips tb when it does not
// answer.
func Mosquitto(tb testing.TB) string {
	tb.Helper()
	conn, err := net.DialTimeout("tcp", MosquittoAddr, time.Second)
	if err != nil {
		tb.Skipf("mqtttest: no Mosquitto on %s: %v", MosquittoAddr, err)
	}
	conn.Close()
	return "tcp://" + MosquittoAddr
}

// FreeAddr returns a loopback address with a port that was free a moment ago.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("mqtttest: free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Silent starts a loopback listener that accepts connections and never answers (a
// broker that hangs, a cluster node busy electing) and returns its tcp:// URL; it and
// its connections are closed when tb ends.
func Silent(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("mqtttest: listen: %v", err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	tb.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	return "tcp://" + ln.Addr().String()
}

// Mochi is an in-process mochi-mqtt broker on a loopback port, allowing everyone.
type Mochi struct {
	Addr string
	srv  *mochi.Server
}

// StartMochi starts a broker on a free loopback port; it is closed when tb ends.
func StartMochi(tb testing.TB) *Mochi {
	tb.Helper()
	m := &Mochi{Addr: FreeAddr(tb)}
	m.Start(tb)
	tb.Cleanup(m.Stop)
	return m
}

// URL is the paho broker URL.
func (m *Mochi) URL() string { return "tcp://" + m.Addr }

// Start (re)starts the broker on m.Addr with empty state, as a broker without
// persistence comes back after a restart.
func (m *Mochi) Start(tb testing.TB) {
	tb.Helper()
	srv := mochi.New(&mochi.Options{Logger: slog.New(slog.DiscardHandler)})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		tb.Fatalf("mqtttest: mochi hook: %v", err)
	}
	var err error
	for range 50 { // the old listener's port may take a moment to free up
		if err = srv.AddListener(listeners.NewTCP(listeners.Config{ID: "tcp", Address: m.Addr})); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		tb.Fatalf("mqtttest: mochi listen on %s: %v", m.Addr, err)
	}
	if err := srv.Serve(); err != nil {
		tb.Fatalf("mqtttest: mochi serve: %v", err)
	}
	m.srv = srv
}

// StartMochiWebsocket starts a broker that listens for MQTT over WebSocket only, on a
// free loopback port; it returns the ws:// URL. It is closed when tb ends.
func StartMochiWebsocket(tb testing.TB) string {
	tb.Helper()
	addr := FreeAddr(tb)
	srv := mochi.New(&mochi.Options{Logger: slog.New(slog.DiscardHandler)})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		tb.Fatalf("mqtttest: mochi hook: %v", err)
	}
	if err := srv.AddListener(listeners.NewWebsocket(listeners.Config{ID: "ws", Address: addr})); err != nil {
		tb.Fatalf("mqtttest: mochi websocket listen on %s: %v", addr, err)
	}
	if err := srv.Serve(); err != nil {
		tb.Fatalf("mqtttest: mochi serve: %v", err)
	}
	tb.Cleanup(func() { srv.Close() })
	return "ws://" + addr + "/"
}

// StartMochiTLS starts a broker with two listeners on free loopback ports: MQTT over TLS
// (ssl:// URL, with a fresh self-signed certificate for 127.0.0.1) and plain TCP (tcp://
// URL, for a test's cloud). roots trusts the certificate. It is closed when tb ends.
func StartMochiTLS(tb testing.TB) (tlsURL, plainURL string, roots *x509.CertPool) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "mqtttest broker"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	srvTLS := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}

	tlsAddr, plainAddr := FreeAddr(tb), FreeAddr(tb)
	srv := mochi.New(&mochi.Options{Logger: slog.New(slog.DiscardHandler)})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		tb.Fatalf("mqtttest: mochi hook: %v", err)
	}
	if err := srv.AddListener(listeners.NewTCP(listeners.Config{ID: "tls", Address: tlsAddr, TLSConfig: srvTLS})); err != nil {
		tb.Fatalf("mqtttest: mochi tls listen: %v", err)
	}
	if err := srv.AddListener(listeners.NewTCP(listeners.Config{ID: "tcp", Address: plainAddr})); err != nil {
		tb.Fatalf("mqtttest: mochi listen: %v", err)
	}
	if err := srv.Serve(); err != nil {
		tb.Fatalf("mqtttest: mochi serve: %v", err)
	}
	tb.Cleanup(func() { srv.Close() })
	return "ssl://" + tlsAddr, "tcp://" + plainAddr, roots
}

// Stop closes the broker and every client connection. Idempotent.
func (m *Mochi) Stop() {
	if m.srv != nil {
		m.srv.Close()
		m.srv = nil
	}
}

// Proxy forwards TCP connections to a target, and can cut them all abruptly (no MQTT
// DISCONNECT, so the broker publishes the Last Will) and refuse new ones until Resume.
type Proxy struct {
	Addr   string
	target string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

// NewProxy listens on a free loopback port and forwards to target (host:port). It is
// closed when tb ends.
func NewProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	p := &Proxy{Addr: FreeAddr(tb), target: target, conns: map[net.Conn]bool{}}
	p.Resume(tb)
	tb.Cleanup(p.Close)
	return p
}

// URL is the paho broker URL of the proxy.
func (p *Proxy) URL() string { return "tcp://" + p.Addr }

// Resume accepts connections again on p.Addr.
func (p *Proxy) Resume(tb testing.TB) {
	tb.Helper()
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", p.Addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		tb.Fatalf("mqtttest: proxy listen on %s: %v", p.Addr, err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go p.accept(ln)
}

func (p *Proxy) accept(ln net.Listener) {
	defer p.wg.Done()
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
		p.conns[c], p.conns[up] = true, true
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			defer p.wg.Done()
			_, _ = io.Copy(dst, src)
			dst.Close()
			src.Close()
		}
		p.wg.Add(2)
		go pipe(up, c)
		go pipe(c, up)
	}
}

// Cut stops accepting and closes every forwarded connection at once.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // RST, like a pulled cable on the far side
		}
		c.Close()
		delete(p.conns, c)
	}
}

// Close cuts everything and waits for the proxy's goroutines.
func (p *Proxy) Close() {
	p.Cut()
	p.wg.Wait()
}

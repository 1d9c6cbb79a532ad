package broker_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	mochipackets "github.com/mochi-mqtt/server/v2/packets"

	"github.com/larder-lockers/larder/cloud/broker"
	"github.com/larder-lockers/larder/protocol"
)

// TestConnectionMemory bounds the heap the embedded broker holds for one idle edge
// connection with the shipped sizes: the write queue (allocated whole), the read
// buffer, the session and its subscriptions in the topic tree. Issue 10's budget is
// 50 KB of cloud memory per edge, of which the domain needs a few and the stacks of
// mochi's two goroutines per connection about 20 KiB (logged, not bounded: how far the
// runtime has shrunk them depends on the garbage collections so far); a write queue of
// 8192 packets (mochi's default, 64 KiB) fails this on its own. The clients are raw TCP
// connections speaking MQTT 3.1.1, so that no client goroutine is counted.
func TestConnectionMemory(t *testing.T) {
	const n = 1000
	creds := broker.StaticCredentials{}
	site := func(i int) string { return fmt.Sprintf("mem-%04d", i) }
	for i := range n {
		creds[site(i)] = broker.PasswordDigest("pw-" + site(i))
	}
	b := startBrokerWith(t, creds, nil)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range n {
		c, err := net.Dial("tcp", b.Addr())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if err := edgeHello(c, site(i), "pw-"+site(i)); err != nil {
			t.Fatalf("%s: %v", site(i), err)
		}
	}
	for range 3 { // let the stacks shrink towards what the idle connections use
		runtime.GC()
	}
	runtime.ReadMemStats(&after)
	stack := float64(after.StackInuse-before.StackInuse) / n / 1024
	heap := float64(after.HeapAlloc-before.HeapAlloc) / n / 1024
	t.Logf("per connection: stacks %.1f KiB, heap %.1f KiB (%d goroutines)", stack, heap, runtime.NumGoroutine())
	if heap > 20 {
		t.Errorf("per connection: heap %.1f KiB, want ≤ 20 KiB", heap)
	}
}

// edgeHello logs in as site's edge with a persistent session and subscribes to its
// three cloud→edge channels, as larder-edge does, and waits for CONNACK and SUBACK.
func edgeHello(c net.Conn, site, password string) error {
	var buf bytes.Buffer
	connect := mochipackets.Packet{FixedHeader: mochipackets.FixedHeader{Type: mochipackets.Connect}, ProtocolVersion: 4,
		Connect: mochipackets.ConnectParams{ProtocolName: []byte("MQTT"), Keepalive: 60,
			ClientIdentifier: broker.EdgeClientID(site), UsernameFlag: true, PasswordFlag: true,
			Username: []byte(site), Password: []byte(password)}}
	if err := connect.ConnectEncode(&buf); err != nil {
		return err
	}
	var filters mochipackets.Subscriptions
	for _, ch := range []protocol.Channel{protocol.ChanDesired, protocol.ChanCommands, protocol.ChanEventAck} {
		filters = append(filters, mochipackets.Subscription{Filter: protocol.Topic(site, ch), Qos: 1})
	}
	subscribe := mochipackets.Packet{FixedHeader: mochipackets.FixedHeader{Type: mochipackets.Subscribe, Qos: 1},
		PacketID: 1, Filters: filters}
	if err := subscribe.SubscribeEncode(&buf); err != nil {
		return err
	}
	if _, err := c.Write(buf.Bytes()); err != nil {
		return err
	}
	// CONNACK (4 bytes) then SUBACK (4 + one code a filter).
	got := make([]byte, 4+4+len(filters))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if got[0] != 0x20 || got[3] != 0 || got[4] != 0x90 || !bytes.Equal(got[8:], []byte{1, 1, 1}) {
		return fmt.Errorf("CONNACK/SUBACK % x", got)
	}
	return nil
}

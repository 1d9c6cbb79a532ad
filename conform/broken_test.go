package conform_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/larder-lockers/larder/conform"
)

// TestEdgeModeBrokenEdge runs the kit against a deliberately broken edge: Larder's edge
// behind an MQTT proxy that breaks three rules of the contract, each in a way the edge
// itself cannot see. It numbers events with a gap (the edge's 2 becomes 3, and acks are
// translated back), never lets a resent event through (answering the edge's PUBACK
// itself), and gives every delivery of a command a fresh id, so the edge carries out a
// redelivered command again. Exactly the three clauses those break must fail, each
// with its message; every other clause passes.
func TestEdgeModeBrokenEdge(t *testing.T) {
	rep := runEdgeMode(t, func(brokerURL string) string {
		return startProxy(t, strings.TrimPrefix(brokerURL, "tcp://"), &brokenEdge{forwarded: map[string]bool{}})
	}, 20*time.Second)
	var failed []string
	for _, r := range rep.Results {
		if r.Outcome == conform.Fail {
			failed = append(failed, r.ID)
		}
	}
	want := []string{"edge.commands.dedupe", "edge.events.resend", "edge.events.sequence"}
	slices.Sort(failed)
	if !slices.Equal(failed, want) {
		t.Fatalf("failed %v, want exactly %v", failed, want)
	}
	for id, words := range map[string]string{
		"edge.commands.dedupe": "pulsed latch", "edge.events.resend": "no resend", "edge.events.sequence": "a gap between 1 and 3",
	} {
		if r, _ := rep.Outcome(id); !strings.Contains(r.Message, words) {
			t.Errorf("%s: message %q lacks %q", id, r.Message, words)
		}
	}
}

// tamper is what a proxy does to the publishes it relays.
type tamper interface {
	// up changes a publish of the client; false drops it (the proxy acknowledges it).
	up(pub *packets.PublishPacket) bool
	// down changes a publish to the client.
	down(pub *packets.PublishPacket)
}

// startProxy listens on a loopback port and relays MQTT between each client and the
// broker at upstream through tm; it returns its URL.
func startProxy(t *testing.T, upstream string, tm tamper) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			down, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.DialTimeout("tcp", upstream, 5*time.Second)
			if err != nil {
				down.Close()
				continue
			}
			go relay(down, up, tm)
		}
	}()
	return "tcp://" + ln.Addr().String()
}

// brokenEdge is the tampering that makes Larder's edge a broken one.
type brokenEdge struct {
	mu        sync.Mutex
	forwarded map[string]bool // ids of the events passed on once
	delivery  int             // commands delivered
}

func relay(down, up net.Conn, tm tamper) {
	defer down.Close()
	defer up.Close()
	var downMu sync.Mutex // the PUBACKs the proxy answers itself share the edge's connection
	writeDown := func(cp packets.ControlPacket) error {
		downMu.Lock()
		defer downMu.Unlock()
		return cp.Write(down)
	}
	done := make(chan struct{}, 2)
	go func() { // broker → edge
		defer func() { done <- struct{}{} }()
		for {
			cp, err := packets.ReadPacket(up)
			if err != nil {
				return
			}
			if pub, ok := cp.(*packets.PublishPacket); ok {
				tm.down(pub)
			}
			if writeDown(cp) != nil {
				return
			}
		}
	}()
	go func() { // edge → broker
		defer func() { done <- struct{}{} }()
		for {
			cp, err := packets.ReadPacket(down)
			if err != nil {
				return
			}
			if pub, ok := cp.(*packets.PublishPacket); ok && !tm.up(pub) {
				if pub.Qos == 1 {
					ack := packets.NewControlPacket(packets.Puback).(*packets.PubackPacket)
					ack.MessageID = pub.MessageID
					if writeDown(ack) != nil {
						return
					}
				}
				continue
			}
			if err := cp.Write(up); err != nil && !errors.Is(err, io.EOF) {
				return
			}
		}
	}()
	<-done // either side gone: drop both, as a broker restart does
}

// up: no resend ever reaches the cloud, events skip seq 2, command acks name the
// command's real id.
func (p *brokenEdge) up(pub *packets.PublishPacket) bool {
	switch {
	case strings.HasSuffix(pub.TopicName, "/events"):
		env := envelope(pub.Payload)
		var id string
		json.Unmarshal(env["id"], &id)
		p.mu.Lock()
		again := p.forwarded[id]
		p.forwarded[id] = true
		p.mu.Unlock()
		if again {
			return false // no resend ever reaches the cloud
		}
		var seq uint64
		json.Unmarshal(env["seq"], &seq)
		if seq >= 2 {
			env["seq"], _ = json.Marshal(seq + 1) // a gap: there is no 2
		}
		pub.Payload, _ = json.Marshal(env)
	case strings.HasSuffix(pub.TopicName, "/commands/ack"):
		rewriteBody(pub, "command_id", func(id string) string { id, _, _ = strings.Cut(id, "~"); return id })
	}
	return true
}

// down: acks translated back past the gap; every delivery of a command a fresh id.
func (p *brokenEdge) down(pub *packets.PublishPacket) {
	switch {
	case strings.HasSuffix(pub.TopicName, "/events/ack"):
		env := envelope(pub.Payload)
		var body map[string]json.RawMessage
		json.Unmarshal(env["body"], &body)
		var seq uint64
		json.Unmarshal(body["seq"], &seq)
		if seq >= 3 {
			body["seq"], _ = json.Marshal(seq - 1)
		}
		env["body"], _ = json.Marshal(body)
		pub.Payload, _ = json.Marshal(env)
	case strings.HasSuffix(pub.TopicName, "/commands"):
		p.mu.Lock()
		p.delivery++
		n := p.delivery
		p.mu.Unlock()
		fresh := func(id string) string { return fmt.Sprintf("%s~%d", id, n) }
		rewriteBody(pub, "id", fresh)
		env := envelope(pub.Payload)
		var id string
		json.Unmarshal(env["id"], &id)
		env["id"], _ = json.Marshal(fresh(id))
		pub.Payload, _ = json.Marshal(env)
	}
}

func envelope(payload []byte) map[string]json.RawMessage {
	var env map[string]json.RawMessage
	json.Unmarshal(payload, &env)
	if env == nil {
		env = map[string]json.RawMessage{}
	}
	return env
}

// rewriteBody replaces the string field of the envelope's body with f of it.
func rewriteBody(pub *packets.PublishPacket, field string, f func(string) string) {
	env := envelope(pub.Payload)
	var body map[string]json.RawMessage
	if json.Unmarshal(env["body"], &body) != nil {
		return // not an object: let the edge judge it
	}
	var s string
	if json.Unmarshal(body[field], &s) != nil {
		return
	}
	body[field], _ = json.Marshal(f(s))
	env["body"], _ = json.Marshal(body)
	pub.Payload, _ = json.Marshal(env)
}

// TestCloudModeBrokenCloud runs cloud mode against Larder's cloud behind a proxy that
// breaks three rules on the cloud's behalf: event acks lose their rejected list, desired
// messages carry seq 0 instead of their version, and commands come in envelopes with
// an id of their own. Exactly the three clauses those break fail.
func TestCloudModeBrokenCloud(t *testing.T) {
	m, adminKey := startCloud(t)
	proxy := startProxy(t, strings.TrimPrefix(m.BrokerURL(), "tcp://"), brokenCloud{})
	rep := runCloudMode(t, conform.CloudConfig{API: m.HTTPURL(), AdminKey: adminKey, Broker: proxy})
	var failed []string
	for _, r := range rep.Results {
		if r.Outcome == conform.Fail {
			failed = append(failed, r.ID)
		}
	}
	want := []string{"cloud.commands.round-trip", "cloud.envelope.seq", "cloud.events.reject"}
	slices.Sort(failed)
	if !slices.Equal(failed, want) {
		t.Fatalf("failed %v, want exactly %v", failed, want)
	}
	for id, words := range map[string]string{
		"cloud.commands.round-trip": "want the command id", "cloud.envelope.seq": "sent with seq 0", "cloud.events.reject": "no event_ack names it",
	} {
		if r, _ := rep.Outcome(id); !strings.Contains(r.Message, words) {
			t.Errorf("%s: message %q lacks %q", id, r.Message, words)
		}
	}
}

// brokenCloud is the tampering that makes Larder's cloud a broken one.
type brokenCloud struct{}

func (brokenCloud) up(*packets.PublishPacket) bool { return true }

func (brokenCloud) down(pub *packets.PublishPacket) {
	env := envelope(pub.Payload)
	switch {
	case strings.HasSuffix(pub.TopicName, "/events/ack"):
		var body map[string]json.RawMessage
		json.Unmarshal(env["body"], &body)
		delete(body, "rejected")
		env["body"], _ = json.Marshal(body)
	case strings.HasSuffix(pub.TopicName, "/desired"):
		env["seq"] = json.RawMessage("0")
	case strings.HasSuffix(pub.TopicName, "/commands"):
		env["id"], _ = json.Marshal("envelope-" + fmt.Sprint(time.Now().UnixNano()))
	default:
		return
	}
	pub.Payload, _ = json.Marshal(env)
}

package sim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	sim "github.com/larder-lockers/larder/firmware-sim"
	"github.com/larder-lockers/larder/protocol/board"
	"golang.org/x/sys/unix"
)

// deadliner is a line the test can time out on (pty file or TCP conn).
type deadliner interface {
	io.ReadWriter
	SetReadDeadline(time.Time) error
}

// master is a minimal bus master: the edge's side of the line.
type master struct {
	t     testing.TB
	line  deadliner
	codec board.Codec
	dec   *board.ReplyDecoder
}

func newMaster(t testing.TB, line deadliner, c board.Codec) *master {
	return &master{t: t, line: line, codec: c, dec: board.NewReplyDecoder(c)}
}

// do sends cmd and waits up to timeout for a reply; ok false on timeout.
func (m *master) do(cmd board.Command, timeout time.Duration) (board.Reply, bool) {
	m.t.Helper()
	f, err := m.codec.EncodeCommand(cmd)
	if err != nil {
		m.t.Fatal(err)
	}
	m.dec.Reset()
	if _, err := m.line.Write(f); err != nil {
		m.t.Fatal(err)
	}
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 64)
	for {
		if r, _, ok := m.dec.Next(); ok {
			return r, true
		}
		m.line.SetReadDeadline(deadline)
		n, err := m.line.Read(buf)
		m.dec.Feed(buf[:n])
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if r, _, ok := m.dec.Next(); ok {
					return r, true
				}
				return board.Reply{}, false
			}
			m.t.Fatal(err)
		}
	}
}

func (m *master) status(b int) board.Status {
	m.t.Helper()
	r, ok := m.do(board.Command{Op: board.OpStatus, Board: b}, time.Second)
	if !ok || r.Kind != board.ReplyStatus {
		m.t.Fatalf("status of board %d: %+v %v", b, r, ok)
	}
	return r.Status
}

func startMain(t *testing.T, cfg sim.Config) *sim.Main {
	t.Helper()
	cfg.Control = "127.0.0.1:0"
	m, err := sim.NewMain(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Open(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	<-m.Ready()
	return m
}

func post(t *testing.T, m *sim.Main, path, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(m.ControlURL()+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func mustPost(t *testing.T, m *sim.Main, path, body string) {
	t.Helper()
	if code, b := post(t, m, path, body); code != http.StatusOK {
		t.Fatalf("POST %s %s: %d %s", path, body, code, b)
	}
}

func openPTYLine(t testing.TB, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// exerciseBus walks the behaviours the edge depends on, over any line.
func exerciseBus(t *testing.T, m *sim.Main, line deadliner) {
	codec := board.Codec{Profile: board.KerongCU16}
	ms := newMaster(t, line, codec)

	// Status read, with the reply no faster than the wire allows.
	start := time.Now()
	st := ms.status(1)
	if took, floor := time.Since(start), m.Bus().TransactionFloor(5, 9); took < floor {
		t.Errorf("status exchange took %v, below the wire floor %v", took, floor)
	}
	if len(st.Closed) != 16 || !st.Closed[0] || st.Occupied[0] {
		t.Fatalf("initial status %+v", st)
	}

	// Unlock lock 2 of board 1 (compartment 18) → door springs ajar.
	r, ok := ms.do(board.Command{Op: board.OpUnlock, Board: 1, Lock: 2}, time.Second)
	if !ok || r.Kind != board.ReplyUnlock || r.Lock != 2 || r.Board != 1 {
		t.Fatalf("unlock ack %+v %v", r, ok)
	}
	waitFor(t, "hook 18 open", func() bool { return !ms.status(1).Closed[1] })
	waitFor(t, "door 18 ajar", func() bool { return m.World().Snapshot().Compartments[17].DoorOpen })
	mustPost(t, m, "/v1/compartments/18/put", `{"items":2}`)
	// Closing before the pulse ends would spring it open again.
	waitFor(t, "latch 18 engaged", func() bool { return m.World().Snapshot().Compartments[17].Latched })
	mustPost(t, m, "/v1/compartments/18/close", ``)
	if st := ms.status(1); !st.Closed[1] || !st.Occupied[1] {
		t.Fatalf("after put and close: closed %v occupied %v", st.Closed[1], st.Occupied[1])
	}

	// Jammed latch: acknowledged, never opens.
	mustPost(t, m, "/v1/faults", `{"kind":"jammed_latch","compartment":3}`)
	if _, ok := ms.do(board.Command{Op: board.OpUnlock, Board: 0, Lock: 3}, time.Second); !ok {
		t.Fatal("no ack for unlock of a jammed latch")
	}
	time.Sleep(400 * time.Millisecond)
	if !ms.status(0).Closed[2] {
		t.Fatal("jammed latch opened")
	}

	// Unplugged board: silent; the other board still answers.
	mustPost(t, m, "/v1/faults", `{"kind":"board_unplugged","board":0}`)
	if r, ok := ms.do(board.Command{Op: board.OpStatus, Board: 0}, 200*time.Millisecond); ok {
		t.Fatalf("unplugged board answered %+v", r)
	}
	ms.status(1)

	// An address with no board is silent too.
	if _, ok := ms.do(board.Command{Op: board.OpStatus, Board: 9}, 100*time.Millisecond); ok {
		t.Fatal("absent board 9 answered")
	}

	// Garbled bytes: every byte corrupted, the master finds no valid frame.
	mustPost(t, m, "/v1/faults", `{"kind":"garble","rate":1}`)
	before := m.Bus().Info().GarbledBytes
	if r, ok := ms.do(board.Command{Op: board.OpStatus, Board: 1}, 200*time.Millisecond); ok {
		t.Fatalf("garbled line delivered %+v", r)
	}
	if m.Bus().Info().GarbledBytes == before {
		t.Fatal("no bytes garbled")
	}
	req, _ := http.NewRequest(http.MethodDelete, m.ControlURL()+"/v1/faults", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE /v1/faults: %v %v", resp, err)
	}
	resp.Body.Close()
	// After garbage the master resynchronises.
	ms.status(0)
	ms.status(1)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestBusOverPTY(t *testing.T) {
	cfg := sim.DefaultConfig()
	cfg.Boards = 2
	var out bytes.Buffer
	cfg.Stdout = &out
	m := startMain(t, cfg)
	if !strings.HasPrefix(m.SerialPath(), "/dev/") || !strings.Contains(out.String(), "larder-sim: serial on "+m.SerialPath()) {
		t.Fatalf("path %q, announced %q", m.SerialPath(), out.String())
	}
	exerciseBus(t, m, openPTYLine(t, m.SerialPath()))
}

func TestBusOverTCP(t *testing.T) {
	cfg := sim.DefaultConfig()
	cfg.PTY, cfg.Listen, cfg.Boards = false, "tcp://127.0.0.1:0", 2
	m := startMain(t, cfg)
	conn, err := net.Dial("tcp", m.SerialAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	exerciseBus(t, m, conn.(*net.TCPConn))

	// A second connection replaces the first, as a converter would.
	conn2, err := net.Dial("tcp", m.SerialAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	newMaster(t, conn2.(*net.TCPConn), board.Codec{Profile: board.KerongCU16}).status(0)
	conn.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := conn.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("old connection read: %v, want EOF", err)
	}
}

// TestBusTiming checks the wire emulation exactly, in a synctest bubble.
func TestBusTiming(t *testing.T) {
	for _, tc := range []struct {
		profile    board.Profile
		cmd        board.Command
		replyBytes int
	}{
		{board.KerongCU16, board.Command{Op: board.OpStatus, Board: 0}, 9},
		{board.BCC8A, board.Command{Op: board.OpStatus, Board: 1}, 8},
		{board.BCC8A, board.Command{Op: board.OpQuery, Board: 1, Lock: 1}, 5},
	} {
		t.Run(fmt.Sprint(tc.profile, tc.cmd.Op), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w, err := sim.NewWorld(sim.WorldConfig{Profile: tc.profile, Boards: 1, Outside: 25}, sim.RealClock)
				if err != nil {
					t.Fatal(err)
				}
				bus := sim.NewBus(w, sim.BusConfig{})
				w.ApplyFault(sim.Fault{Kind: sim.FaultSlowReplies, MS: 40})
				a, b := net.Pipe()
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan error)
				go func() { done <- bus.Serve(ctx, a) }()
				codec := board.Codec{Profile: tc.profile}
				f, _ := codec.EncodeCommand(tc.cmd)
				start := time.Now()
				if _, err := b.Write(f); err != nil {
					t.Fatal(err)
				}
				dec := board.NewReplyDecoder(codec)
				r, err := dec.Read(b)
				if err != nil {
					t.Fatal(err)
				}
				took := time.Since(start)
				want := bus.WireTime(5+tc.replyBytes) + sim.DefaultTurnaround + 40*time.Millisecond
				if took != want {
					t.Errorf("reply %+v after %v, want exactly %v", r.Kind, took, want)
				}
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Serve: %v", err)
				}
			})
		})
	}
}

// TestBCC8AEventsAndPolarity: unsolicited 0x82 frames under inverted polarity.
func TestBCC8AEventsAndPolarity(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, err := sim.NewWorld(sim.WorldConfig{Profile: board.BCC8A, Boards: 2, Outside: 25}, sim.RealClock)
		if err != nil {
			t.Fatal(err)
		}
		bus := sim.NewBus(w, sim.BusConfig{Polarity: board.PolarityInverted, Events: true})
		a, b := net.Pipe()
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- bus.Serve(ctx, a) }()
		codec := board.Codec{Profile: board.BCC8A, Polarity: board.PolarityInverted}
		dec := board.NewReplyDecoder(codec)

		// Query lock 1 of board 2 (compartment 25): closed under inverted polarity.
		f, _ := codec.EncodeCommand(board.Command{Op: board.OpQuery, Board: 2, Lock: 1})
		b.Write(f)
		r, err := dec.Read(b)
		if err != nil || r.Kind != board.ReplyLock || !r.Closed {
			t.Fatalf("query: %+v %v", r, err)
		}
		// The wire byte is 0x00 for closed when inverted.
		raw, _ := (board.Codec{Profile: board.BCC8A}).DecodeReply(mustEncode(t, codec, r))
		if raw.Closed {
			t.Fatal("inverted polarity not applied on the wire")
		}

		// A person forces the door: an unsolicited event follows.
		if err := w.Open(25, true); err != nil {
			t.Fatal(err)
		}
		r, err = dec.Read(b)
		if err != nil || r.Kind != board.ReplyEvent || r.Board != 2 || r.Lock != 1 || r.Closed {
			t.Fatalf("event: %+v %v", r, err)
		}
		cancel()
		<-done
	})
}

func mustEncode(t *testing.T, c board.Codec, r board.Reply) []byte {
	t.Helper()
	f, err := c.EncodeReply(r)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestControlAPI(t *testing.T) {
	cfg := sim.DefaultConfig()
	cfg.PTY, cfg.Listen = false, "tcp://127.0.0.1:0"
	cfg.Zones = "chilled:1-8,frozen:9-12,ambient:13-16"
	m := startMain(t, cfg)
	tests := []struct {
		method, path, body string
		want               int
	}{
		{"GET", "/v1/state", "", 200},
		{"GET", "/v1/zones", "", 200},
		{"GET", "/v1/bus", "", 200},
		{"GET", "/v1/zones/chilled", "", 200},
		{"GET", "/v1/zones/cool", "", 404},
		{"POST", "/v1/compartments/1/open", `{"force":false}`, 409},
		{"POST", "/v1/compartments/1/put", ``, 409},
		{"POST", "/v1/compartments/1/open", `{"force":true}`, 200},
		{"POST", "/v1/compartments/1/put", `{"items":3}`, 200},
		{"POST", "/v1/compartments/1/take", `{"items":1}`, 200},
		{"POST", "/v1/compartments/1/close", ``, 200},
		{"POST", "/v1/compartments/17/open", ``, 404},
		{"POST", "/v1/compartments/x/open", ``, 400},
		{"POST", "/v1/compartments/1/dance", ``, 404},
		{"POST", "/v1/compartments/1/open", `{"force":`, 400},
		{"POST", "/v1/world", `{"outside_c":31.5}`, 200},
		{"POST", "/v1/world", `{}`, 400},
		{"POST", "/v1/world", `{"outside_c":500}`, 400},
		{"POST", "/v1/power", `{"on":false}`, 200},
		{"POST", "/v1/power", `{"on":true}`, 200},
		{"POST", "/v1/power", `{"on":"yes"}`, 400},
		{"POST", "/v1/faults", `{"kind":"probe_failure","zone":"frozen"}`, 200},
		{"POST", "/v1/faults", `{"kind":"probe_failure","zone":"cool"}`, 404},
		{"POST", "/v1/faults", `{"kind":"garble","rate":2}`, 400},
		{"POST", "/v1/faults", ``, 400},
		{"DELETE", "/v1/faults", ``, 200},
		{"POST", "/v1/scenario", `{"actions":[{"at":"10ms","do":"outside","outside_c":12}]}`, 202},
		{"POST", "/v1/scenario", `{"actions":[{"do":"explode"}]}`, 400},
		{"GET", "/v1/nothing", ``, 404},
	}
	for _, tc := range tests {
		req, _ := http.NewRequest(tc.method, m.ControlURL()+tc.path, strings.NewReader(tc.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s %s = %d %s, want %d", tc.method, tc.path, tc.body, resp.StatusCode, raw, tc.want)
			continue
		}
		if resp.StatusCode >= 400 {
			if err := json.Unmarshal(raw, &body); err != nil || body["error"] == "" {
				t.Errorf("%s %s: error body %s", tc.method, tc.path, raw)
			}
		}
	}
	// Effects are visible in the state.
	var st sim.State
	resp, err := http.Get(m.ControlURL() + "/v1/state")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if c := st.Compartments[0]; c.DoorOpen || c.Items != 2 || c.Zone != "chilled" {
		t.Errorf("compartment 1 %+v", c)
	}
	waitFor(t, "scenario sets outside 12", func() bool { return m.World().Snapshot().OutsideC == 12 })
	var zones []sim.ZoneState
	resp, _ = http.Get(m.ControlURL() + "/v1/zones")
	json.NewDecoder(resp.Body).Decode(&zones)
	resp.Body.Close()
	if len(zones) != 3 || zones[0].Name != "frozen" || zones[0].TempC == nil {
		t.Errorf("zones %+v", zones)
	}
}

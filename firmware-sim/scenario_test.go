package sim_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	sim "github.com/larder-lockers/larder/firmware-sim"
	"github.com/larder-lockers/larder/protocol/board"
)

// replay runs the scenario against a polling master in a synctest bubble
// and returns the transcript the master saw.
func replay(t *testing.T, sc sim.Scenario) []string {
	var log []string
	synctest.Test(t, func(t *testing.T) {
		w, err := sim.NewWorld(sim.WorldConfig{Profile: board.KerongCU16, Boards: 2, Outside: 25}, sim.RealClock)
		if err != nil {
			t.Fatal(err)
		}
		bus := sim.NewBus(w, sim.BusConfig{Seed: 42})
		a, b := net.Pipe()
		ctx, cancel := context.WithCancel(t.Context())
		served := make(chan error)
		go func() { served <- bus.Serve(ctx, a) }()
		ran := make(chan int)
		go func() { n, _ := sc.Run(ctx, w, nil); ran <- n }()

		codec := board.Codec{Profile: board.KerongCU16}
		dec := board.NewReplyDecoder(codec)
		start := time.Now()
		buf := make([]byte, 64)
		for i := 0; i < 40; i++ {
			for _, addr := range []int{0, 1} {
				f, _ := codec.EncodeCommand(board.Command{Op: board.OpStatus, Board: addr})
				dec.Reset()
				b.Write(f)
				b.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
				got := "silent"
				for {
					if r, _, ok := dec.Next(); ok {
						got = fmt.Sprintf("closed=%v occ=%v", bits(r.Status.Closed), bits(r.Status.Occupied))
						break
					}
					n, err := b.Read(buf)
					dec.Feed(buf[:n])
					if err != nil {
						break
					}
				}
				log = append(log, fmt.Sprintf("%v b%d %s", time.Since(start).Round(time.Millisecond), addr, got))
			}
			time.Sleep(200 * time.Millisecond)
		}
		if failed := <-ran; failed != 1 {
			t.Errorf("%d actions failed, want 1 (opening a locked door without force)", failed)
		}
		s := w.Snapshot()
		if c := s.Compartments[1]; c.DoorOpen || c.Items != 1 || !c.HookClosed {
			t.Errorf("compartment 2 at the end: %+v", c)
		}
		if s.OutsideC != 34 || !s.Powered || s.GarbleRate != 0 {
			t.Errorf("world at the end: outside %v powered %v garble %v", s.OutsideC, s.Powered, s.GarbleRate)
		}
		cancel()
		<-served
	})
	return log
}

func bits(b []bool) string {
	var s strings.Builder
	for _, v := range b {
		if v {
			s.WriteByte('1')
		} else {
			s.WriteByte('0')
		}
	}
	return s.String()
}

func TestScenarioReplay(t *testing.T) {
	data, err := os.ReadFile("testdata/night-shift.json")
	if err != nil {
		t.Fatal(err)
	}
	sc, err := sim.ParseScenario(data)
	if err != nil {
		t.Fatal(err)
	}
	first := replay(t, sc)
	second := replay(t, sc)
	if diff := cmp.Diff(first, second); diff != "" {
		t.Fatalf("replay differs (-first +second):\n%s", diff)
	}
	// What the master saw follows the scenario.
	has := func(prefix, want string) {
		t.Helper()
		for _, l := range first {
			if strings.HasPrefix(l, prefix) {
				if !strings.Contains(l, want) {
					t.Errorf("%s: %q, want %q", prefix, l, want)
				}
				return
			}
		}
		t.Errorf("no poll at %s in %q", prefix, first)
	}
	has("12ms b0", "closed=1111111111111111 occ=0000000000000000")
	has("1.135s b0", "closed=1011111111111111 occ=0100000000000000") // open with an item in, before close
	var silentUnplugged, garbled, silentPower bool
	for _, l := range first {
		switch {
		case strings.Contains(l, "b1 silent") && strings.HasPrefix(l, "4."):
			silentUnplugged = true
		case strings.Contains(l, "silent") && strings.HasPrefix(l, "2."):
			garbled = true
		case strings.Contains(l, "b0 silent") && strings.HasPrefix(l, "5."):
			silentPower = true
		}
	}
	if !silentUnplugged || !garbled || !silentPower {
		t.Errorf("unplugged %v garbled %v power cut %v in\n%s", silentUnplugged, garbled, silentPower, strings.Join(first, "\n"))
	}
}

func TestParseScenarioErrors(t *testing.T) {
	for _, s := range []string{
		`{"actions":[{"do":"open","at":"-1s"}]}`,
		`{"actions":[{"do":"fly"}]}`,
		`{"actions":[{"do":"open","at":"soon"}]}`,
		`{"actions":[{"do":"open","whom":1}]}`,
		`[`,
	} {
		if _, err := sim.ParseScenario([]byte(s)); err == nil {
			t.Errorf("%s: no error", s)
		}
	}
	sc, err := sim.ParseScenario([]byte(`{"actions":[{"do":"close","at":2},{"do":"open","at":"1s"}]}`))
	if err != nil || sc.Actions[0].Do != "open" || time.Duration(sc.Actions[1].At) != 2*time.Second {
		t.Errorf("ordering / numeric seconds: %+v %v", sc, err)
	}
}

func TestParseFlags(t *testing.T) {
	var stderr strings.Builder
	cfg, err := sim.ParseFlags([]string{"--profile", "bcc8a", "--boards", "3", "--listen", "tcp://127.0.0.1:0",
		"--control", "127.0.0.1:0", "--zones", "frozen:1-24", "--polarity", "inverted", "--turnaround", "2ms"}, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Profile != board.BCC8A || cfg.Boards != 3 || cfg.Polarity != board.PolarityInverted || cfg.Turnaround != 2*time.Millisecond {
		t.Errorf("cfg %+v", cfg)
	}
	for _, args := range [][]string{
		{"--profile", "x", "--pty"},
		{"--boards", "17", "--pty"},
		{},
		{"--pty", "--listen", "tcp://127.0.0.1:0"},
		{"--listen", "127.0.0.1:0"},
		{"--pty", "--control", "0.0.0.0:80"},
		{"--pty", "--zones", "chilled:1-99"},
	} {
		if _, err := sim.ParseFlags(args, &stderr); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}

func TestMainScenarioFile(t *testing.T) {
	cfg := sim.DefaultConfig()
	cfg.PTY, cfg.Listen = false, "tcp://127.0.0.1:0"
	cfg.Scenario = "testdata/night-shift.json"
	m := startMain(t, cfg)
	waitFor(t, "scenario forces door 2 open", func() bool { return m.World().Snapshot().Compartments[1].DoorOpen })
}

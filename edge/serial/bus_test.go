package serial_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/larder-lockers/larder/edge/hw"
	"github.com/larder-lockers/larder/edge/serial"
	"github.com/larder-lockers/larder/protocol/board"
)

// fastConfig shortens every timing so that the logic tests take
// milliseconds; the proportions stay those of the defaults.
func fastConfig(p board.Profile, boards ...int) serial.Config {
	return serial.Config{
		Profile:         p,
		Boards:          boards,
		CommandTimeout:  150 * time.Millisecond,
		ConfirmInterval: 20 * time.Millisecond,
		ConfirmTimeout:  200 * time.Millisecond,
		OfflineAfter:    250 * time.Millisecond,
		Stagger:         &hw.Stagger{Gap: -1},
	}
}

func openBus(t *testing.T, addr string, cfg serial.Config) *serial.Bus {
	t.Helper()
	b, err := serial.Open(addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestBusUnlockConfirmed(t *testing.T) {
	for _, p := range board.Profiles {
		t.Run(string(p), func(t *testing.T) {
			lo, _ := p.BoardRange()
			r := newResponder(t, p, lo, lo+1)
			b := openBus(t, r.addr(), fastConfig(p, lo, lo+1))
			c, _ := p.Compartment(lo+1, 3)
			if err := b.Unlock(context.Background(), c); err != nil {
				t.Fatalf("Unlock(%d) = %v", c, err)
			}
			snap, err := b.Snapshot(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if got := snap.Compartments[c].Door; got != hw.DoorOpen {
				t.Errorf("door %d = %v, want open", c, got)
			}
			if got := snap.Compartments[c-1].Door; got != hw.DoorClosed {
				t.Errorf("door %d = %v, want closed", c-1, got)
			}
			wantOcc := hw.OccupancyUnknown
			if p.HasOccupancy() {
				wantOcc = hw.Empty
			}
			if got := snap.Compartments[c].Occupancy; got != wantOcc {
				t.Errorf("occupancy = %v, want %v", got, wantOcc)
			}
			if !snap.Boards[lo].Online || !snap.Boards[lo+1].Online {
				t.Errorf("boards = %+v", snap.Boards)
			}
			if s := b.Stats(); s.Unlocks != 1 || s.Retries != 0 {
				t.Errorf("stats = %+v", s)
			}
		})
	}
}

func TestBusJammedNeverOpened(t *testing.T) {
	r := newResponder(t, board.KerongCU16, 0)
	r.set(func(r *responder) { r.jammed[[2]int{0, 5}] = true })
	b := openBus(t, r.addr(), fastConfig(board.KerongCU16, 0))
	t0 := time.Now()
	err := b.Unlock(context.Background(), 5)
	if !errors.Is(err, hw.ErrJammed) {
		t.Fatalf("Unlock = %v, want ErrJammed", err)
	}
	if el := time.Since(t0); el < 180*time.Millisecond || el > time.Second {
		t.Errorf("jam reported after %v, want about ConfirmTimeout (200 ms)", el)
	}
	snap, _ := b.Snapshot(context.Background())
	if snap.Compartments[5].Door != hw.DoorClosed {
		t.Errorf("jammed door reads %v", snap.Compartments[5].Door)
	}
	if s := b.Stats(); s.Jammed != 1 || s.Unlocks != 0 {
		t.Errorf("stats = %+v", s)
	}
}

func TestBusLostAckDoesNotPulseTwice(t *testing.T) {
	r := newResponder(t, board.BCC8A, 1)
	r.set(func(r *responder) { r.dropAcks = 1 })
	b := openBus(t, r.addr(), fastConfig(board.BCC8A, 1))
	if err := b.Unlock(context.Background(), 2); err != nil {
		t.Fatalf("Unlock = %v", err)
	}
	r.set(func(r *responder) {
		if n := r.unlocks[[2]int{1, 2}]; n != 1 {
			t.Errorf("latch pulsed %d times, want 1", n)
		}
	})
}

func TestBusGarbageCostsARetry(t *testing.T) {
	for _, p := range board.Profiles {
		t.Run(string(p), func(t *testing.T) {
			lo, _ := p.BoardRange()
			r := newResponder(t, p, lo)
			b := openBus(t, r.addr(), fastConfig(p, lo))
			if _, err := b.Snapshot(context.Background()); err != nil { // board online
				t.Fatal(err)
			}
			r.set(func(r *responder) { r.garble = 2 })
			snap, err := b.Snapshot(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for c := 1; c <= p.LocksPerBoard(); c++ {
				if snap.Compartments[c].Door != hw.DoorClosed {
					t.Fatalf("door %d = %v after garbage, want closed", c, snap.Compartments[c].Door)
				}
			}
			s := b.Stats()
			if s.Retries != 2 || s.BadReplies != 2 || s.Discarded == 0 {
				t.Errorf("stats = %+v, want 2 retries for 2 garbled replies", s)
			}
			// Garbage is detected by the silence after it, not by waiting
			// out the command timeout.
			if s.Timeouts != 0 {
				t.Errorf("garbage counted as %d timeouts", s.Timeouts)
			}
			// Garbage in the unlock path too.
			r.set(func(r *responder) { r.garble = 3 })
			c, _ := p.Compartment(lo, 1)
			if err := b.Unlock(context.Background(), c); err != nil {
				t.Errorf("Unlock through garbage = %v", err)
			}
			r.set(func(r *responder) {
				if n := r.unlocks[[2]int{lo, 1}]; n != 1 {
					t.Errorf("latch pulsed %d times, want 1", n)
				}
			})
		})
	}
}

func TestBusSilentBoardOfflineAndBack(t *testing.T) {
	r := newResponder(t, board.KerongCU16, 0, 1)
	b := openBus(t, r.addr(), fastConfig(board.KerongCU16, 0, 1))
	var events []hw.Event
	p := hw.NewPoller(hw.PollerConfig{Sensors: b, Emit: func(e hw.Event) { events = append(events, e) }})
	ctx := context.Background()
	if _, err := p.Step(ctx); err != nil {
		t.Fatal(err)
	}
	r.set(func(r *responder) { r.silent[1] = true })
	deadline := time.Now().Add(2 * time.Second)
	for !hasEvent(events, hw.EventBoardOffline, 1) {
		if time.Now().After(deadline) {
			t.Fatalf("board 1 never went offline; events %v", events)
		}
		p.Step(ctx)
		if snap := p.Last(); snap.Compartments[1].Door != hw.DoorClosed {
			t.Fatalf("board 0 not served while board 1 is silent")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Once offline, a silent board costs one timeout per poll, not 1+Retries.
	before := b.Stats().Timeouts
	p.Step(ctx)
	if n := b.Stats().Timeouts - before; n != 1 {
		t.Errorf("a poll with an offline board cost %d timeouts, want 1", n)
	}
	if snap, _ := b.Snapshot(ctx); snap.Compartments[17].Door != hw.DoorUnknown || !snap.Boards[0].Online {
		t.Errorf("silent board's compartment %v, board 0 %+v", snap.Compartments[17], snap.Boards[0])
	}
	if err := b.Unlock(ctx, 17); !errors.Is(err, hw.ErrBoardOffline) {
		t.Errorf("Unlock on silent board = %v, want ErrBoardOffline", err)
	}
	r.set(func(r *responder) { r.silent[1] = false })
	p.Step(ctx)
	if !hasEvent(events, hw.EventBoardOnline, 1) {
		t.Errorf("board 1 not back online; events %v", events)
	}
	for _, e := range events {
		if e.Board == 0 {
			t.Errorf("board 0 event %+v", e)
		}
	}
}

func hasEvent(evs []hw.Event, k hw.EventKind, board int) bool {
	for _, e := range evs {
		if e.Kind == k && e.Board == board {
			return true
		}
	}
	return false
}

func TestBusStaggersOpenings(t *testing.T) {
	r := newResponder(t, board.KerongCU16, 0)
	cfg := fastConfig(board.KerongCU16, 0)
	cfg.Stagger = nil // default 100 ms
	b := openBus(t, r.addr(), cfg)
	var wg sync.WaitGroup
	for c := 1; c <= 3; c++ {
		wg.Go(func() {
			if err := b.Unlock(context.Background(), c); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	r.set(func(r *responder) {
		if len(r.unlockAt) != 3 {
			t.Fatalf("%d unlock commands", len(r.unlockAt))
		}
		for i := 1; i < 3; i++ {
			if gap := r.unlockAt[i].Sub(r.unlockAt[i-1]); gap < 95*time.Millisecond {
				t.Errorf("unlock commands %d and %d %v apart, want ≥ 100 ms", i-1, i, gap)
			}
		}
	})
}

func TestBusReconnects(t *testing.T) {
	r := newResponder(t, board.KerongCU16, 0)
	b := openBus(t, r.addr(), fastConfig(board.KerongCU16, 0))
	ctx := context.Background()
	if _, err := b.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	r.dropConn()
	time.Sleep(10 * time.Millisecond)
	var snap hw.Snapshot
	for range 3 { // the first exchange after the drop finds the dead stream
		snap, _ = b.Snapshot(ctx)
	}
	if snap.Compartments[1].Door != hw.DoorClosed {
		t.Errorf("after reconnect door = %v", snap.Compartments[1].Door)
	}
	if s := b.Stats(); s.Reopens < 2 {
		t.Errorf("stats = %+v, want a reopen", s)
	}
}

func TestBusErrors(t *testing.T) {
	if _, err := serial.New(serial.Config{Profile: "nope"}); err == nil {
		t.Error("bad profile accepted")
	}
	if _, err := serial.Open("tcp://127.0.0.1:1", serial.Config{Profile: board.KerongCU16, Boards: []int{16}}); err == nil {
		t.Error("board 16 accepted on kerong")
	}
	// A transport that cannot be opened: the bus still comes up, offline.
	b, err := serial.Open("tcp://127.0.0.1:1", fastConfig(board.KerongCU16, 0))
	if err != nil {
		t.Fatalf("Open with a dead transport = %v", err)
	}
	snap, err := b.Snapshot(context.Background())
	if err != nil || snap.Boards[0].Online || snap.Compartments[1].Door != hw.DoorUnknown {
		t.Errorf("snapshot on dead transport = %+v, %v", snap.Boards, err)
	}
	if err := b.Unlock(context.Background(), 99); !errors.Is(err, hw.ErrUnknownCompartment) {
		t.Errorf("Unlock(99) = %v", err)
	}
	if err := b.Unlock(context.Background(), 1); !errors.Is(err, hw.ErrBoardOffline) {
		t.Errorf("Unlock on dead transport = %v", err)
	}
	b.Close()
	if err := b.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if _, err := b.Snapshot(context.Background()); !errors.Is(err, hw.ErrClosed) {
		t.Errorf("Snapshot after Close = %v", err)
	}
}

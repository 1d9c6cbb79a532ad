package gpio_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/larder-lockers/larder/edge/gpio"
	"github.com/larder-lockers/larder/edge/hw"
	pgpio "periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// relayPin is a gpiotest.Pin that records every Out call with its time
// (relative to the bubble's start) and can be told to fail.
type relayPin struct {
	*gpiotest.Pin
	start time.Time

	mu      sync.Mutex
	outs    []out
	failOut pgpio.Level // Out(failOut) fails when failing is set
	failing bool
}

type out struct {
	At time.Duration
	L  pgpio.Level
}

func newRelay(name string, initial pgpio.Level) *relayPin {
	return &relayPin{Pin: &gpiotest.Pin{N: name, L: initial}, start: time.Now()}
}

func (r *relayPin) Out(l pgpio.Level) error {
	r.mu.Lock()
	r.outs = append(r.outs, out{time.Since(r.start), l})
	fail := r.failing && l == r.failOut
	r.mu.Unlock()
	if fail {
		return errors.New("sysfs write failed")
	}
	return r.Pin.Out(l)
}

func (r *relayPin) log() []out {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]out(nil), r.outs...)
}

func newDoor(name string) *gpiotest.Pin {
	return &gpiotest.Pin{N: name, EdgesChan: make(chan pgpio.Level, 16)}
}

const ms = time.Millisecond

func TestNewSwitchesRelaysOff(t *testing.T) {
	for _, activeLow := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			on := pgpio.Level(!activeLow)
			r1, r2 := newRelay("R1", on), newRelay("R2", on) // left energised by a crash
			d, err := gpio.New(gpio.Config{Relays: map[int]pgpio.PinOut{1: r1, 2: r2}, RelayActiveLow: activeLow})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			for _, r := range []*relayPin{r1, r2} {
				if got := r.Read(); got != !on {
					t.Errorf("activeLow=%v: %s = %v after New, want off (%v)", activeLow, r, got, !on)
				}
			}
		})
	}
}

func TestUnlockPulseAndConfirm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRelay("R1", pgpio.Low)
		sw := newDoor("D1")
		d, err := gpio.New(gpio.Config{
			Relays:      map[int]pgpio.PinOut{1: r},
			Doors:       map[int]pgpio.PinIn{1: sw},
			DoorOpenLow: true, // pull-up High = closed
		})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		go func() { // the latch pops the door 60 ms into the pulse
			time.Sleep(60 * ms)
			sw.EdgesChan <- pgpio.Low
		}()
		if err := d.Unlock(context.Background(), 1); err != nil {
			t.Fatalf("Unlock = %v", err)
		}
		want := []out{{0, pgpio.Low}, {0, pgpio.High}, {300 * ms, pgpio.Low}}
		if diff := cmp.Diff(want, r.log()); diff != "" {
			t.Errorf("relay outputs (-want +got):\n%s", diff)
		}
		snap, _ := d.Snapshot(context.Background())
		if got := snap.Compartments[1].Door; got != hw.DoorOpen {
			t.Errorf("door after unlock = %v", got)
		}
	})
}

func TestUnlockJammed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRelay("R1", pgpio.Low)
		d, _ := gpio.New(gpio.Config{
			Relays:      map[int]pgpio.PinOut{1: r},
			Doors:       map[int]pgpio.PinIn{1: newDoor("D1")},
			DoorOpenLow: true,
		})
		defer d.Close()
		t0 := time.Now()
		err := d.Unlock(context.Background(), 1)
		if !errors.Is(err, hw.ErrJammed) {
			t.Fatalf("Unlock = %v, want ErrJammed", err)
		}
		if el := time.Since(t0); el != 300*ms+gpio.DefaultConfirmTimeout {
			t.Errorf("jam reported after %v", el)
		}
		if r.Read() != pgpio.Low {
			t.Error("relay left on")
		}
	})
}

func TestPulseEndsOffOnCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRelay("R1", pgpio.High)
		d, _ := gpio.New(gpio.Config{Relays: map[int]pgpio.PinOut{1: r}, RelayActiveLow: true, Pulse: 500 * ms})
		defer d.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 120*ms)
		defer cancel()
		err := d.Unlock(ctx, 1)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Unlock = %v", err)
		}
		want := []out{{0, pgpio.High}, {0, pgpio.Low}, {120 * ms, pgpio.High}}
		if diff := cmp.Diff(want, r.log()); diff != "" {
			t.Errorf("relay outputs (-want +got):\n%s", diff)
		}
	})
}

func TestPulseCappedAndOffAfterFailedOn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRelay("R1", pgpio.Low)
		d, _ := gpio.New(gpio.Config{Relays: map[int]pgpio.PinOut{1: r}, Pulse: 10 * time.Second})
		defer d.Close()
		if err := d.Unlock(context.Background(), 1); err != nil {
			t.Fatal(err)
		}
		if got := r.log()[2]; got != (out{gpio.MaxPulse, pgpio.Low}) {
			t.Errorf("pulse ended with %+v, want off at MaxPulse", got)
		}

		r.mu.Lock()
		r.failing, r.failOut, r.outs = true, pgpio.High, nil
		r.mu.Unlock()
		if err := d.Unlock(context.Background(), 1); err == nil {
			t.Fatal("Unlock with a failing relay = nil")
		}
		lg := r.log()
		if last := lg[len(lg)-1]; last.L != pgpio.Low {
			t.Errorf("after failed on, last output %+v, want off", last)
		}
	})
}

func TestStaggeredOpenings(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		relays := map[int]*relayPin{}
		pins := map[int]pgpio.PinOut{}
		for c := 1; c <= 3; c++ {
			relays[c] = newRelay("R", pgpio.Low)
			pins[c] = relays[c]
		}
		d, _ := gpio.New(gpio.Config{Relays: pins})
		defer d.Close()
		var wg sync.WaitGroup
		for c := 1; c <= 3; c++ {
			wg.Go(func() { d.Unlock(context.Background(), c) })
		}
		wg.Wait()
		var starts []time.Duration
		for c := 1; c <= 3; c++ {
			starts = append(starts, relays[c].log()[1].At)
		}
		// The order among the three is the scheduler's; the spacing is not.
		seen := map[time.Duration]bool{}
		for _, s := range starts {
			seen[s] = true
		}
		if !seen[0] || !seen[100*ms] || !seen[200*ms] {
			t.Errorf("pulse starts %v, want 0, 100 ms, 200 ms in some order", starts)
		}
	})
}

func TestDoorDebounce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sw := newDoor("D1")
		d, _ := gpio.New(gpio.Config{
			Relays: map[int]pgpio.PinOut{1: newRelay("R1", pgpio.Low)},
			Doors:  map[int]pgpio.PinIn{1: sw},
		}) // default wiring: open reads High, and the pull-up reads High
		defer d.Close()
		door := func() hw.Door {
			s, _ := d.Snapshot(context.Background())
			return s.Compartments[1].Door
		}
		if got := door(); got != hw.DoorOpen {
			t.Fatalf("initial door = %v, want open (pull-up, open reads High)", got)
		}
		// Closing bounces for 15 ms.
		for _, l := range []pgpio.Level{pgpio.Low, pgpio.High, pgpio.Low, pgpio.High, pgpio.Low} {
			sw.EdgesChan <- l
			time.Sleep(3 * ms)
		}
		if got := door(); got != hw.DoorOpen {
			t.Errorf("door while bouncing = %v, want still open", got)
		}
		time.Sleep(gpio.DefaultDebounce + ms)
		synctest.Wait()
		if got := door(); got != hw.DoorClosed {
			t.Errorf("door after settling = %v, want closed", got)
		}
		// A 5 ms glitch is not an opening.
		sw.EdgesChan <- pgpio.High
		time.Sleep(5 * ms)
		sw.EdgesChan <- pgpio.Low
		time.Sleep(100 * ms)
		synctest.Wait()
		if got := door(); got != hw.DoorClosed {
			t.Errorf("door after glitch = %v, want closed", got)
		}
	})
}

func TestMisc(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		if _, err := gpio.New(gpio.Config{}); err == nil {
			t.Error("New without relays succeeded")
		}
		if _, err := gpio.New(gpio.Config{
			Relays: map[int]pgpio.PinOut{1: newRelay("R", pgpio.Low)},
			Doors:  map[int]pgpio.PinIn{2: newDoor("D")},
		}); err == nil {
			t.Error("door without relay accepted")
		}
		d, _ := gpio.New(gpio.Config{Relays: map[int]pgpio.PinOut{1: newRelay("R", pgpio.Low)}})
		if err := d.Unlock(context.Background(), 7); !errors.Is(err, hw.ErrUnknownCompartment) {
			t.Errorf("Unlock(7) = %v", err)
		}
		s, _ := d.Snapshot(context.Background())
		if s.Compartments[1].Door != hw.DoorUnknown || !s.Boards[0].Online {
			t.Errorf("snapshot without switches = %+v", s)
		}
		d.Close()
		if err := d.Close(); err != nil {
			t.Errorf("second Close = %v", err)
		}
		if err := d.Unlock(context.Background(), 1); !errors.Is(err, hw.ErrClosed) {
			t.Errorf("Unlock after Close = %v", err)
		}
	})
}

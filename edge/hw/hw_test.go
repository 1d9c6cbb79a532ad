package hw_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/larder-lockers/larder/edge/hw"
)

func TestSequentialMap(t *testing.T) {
	m := hw.Sequential([]int{3, 1}, 2)
	want := hw.Map{1: {3, 1}, 2: {3, 2}, 3: {1, 1}, 4: {1, 2}}
	if diff := cmp.Diff(want, m); diff != "" {
		t.Fatalf("Sequential (-want +got):\n%s", diff)
	}
	if got := m.Boards(); !cmp.Equal(got, []int{1, 3}) {
		t.Errorf("Boards = %v", got)
	}
	if got := m.Compartments(); !cmp.Equal(got, []int{1, 2, 3, 4}) {
		t.Errorf("Compartments = %v", got)
	}
	if c, ok := m.Find(1, 2); !ok || c != 4 {
		t.Errorf("Find(1,2) = %d,%v", c, ok)
	}
	if _, err := m.Lookup(9); !errors.Is(err, hw.ErrUnknownCompartment) {
		t.Errorf("Lookup(9) err = %v", err)
	}
}

func TestMapValidate(t *testing.T) {
	tests := []struct {
		name string
		m    hw.Map
		ok   bool
	}{
		{"good", hw.Sequential([]int{0, 1}, 16), true},
		{"empty", hw.Map{}, false},
		{"zero compartment", hw.Map{0: {0, 1}}, false},
		{"board too high", hw.Map{1: {16, 1}}, false},
		{"lock zero", hw.Map{1: {0, 0}}, false},
		{"lock too high", hw.Map{1: {0, 17}}, false},
		{"duplicate lock", hw.Map{1: {0, 1}, 2: {0, 1}}, false},
	}
	for _, tt := range tests {
		err := tt.m.Validate(0, 15, 16)
		if (err == nil) != tt.ok {
			t.Errorf("%s: Validate = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func TestStaggerSpacesPulses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var s hw.Stagger // default 100 ms
		start := time.Now()
		got := make(chan time.Duration, 3)
		for range 3 {
			go func() {
				if err := s.Wait(context.Background()); err != nil {
					t.Error(err)
				}
				got <- time.Since(start)
			}()
		}
		var ds []time.Duration
		for range 3 {
			ds = append(ds, <-got)
		}
		want := []time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond}
		if !cmp.Equal(ds, want) {
			t.Errorf("pulse starts %v, want %v", ds, want)
		}
		// After a quiet period the next pulse starts at once.
		time.Sleep(time.Second)
		t0 := time.Now()
		s.Wait(context.Background())
		if d := time.Since(t0); d != 0 {
			t.Errorf("after idle waited %v", d)
		}
	})
}

func TestStaggerCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := hw.Stagger{Gap: time.Second}
		s.Wait(context.Background())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		if err := s.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Wait = %v, want deadline exceeded", err)
		}
	})
}

func TestExpected(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var e hw.Expected
		if e.Take(1, time.Now()) {
			t.Fatal("Take without Expect = true")
		}
		e.Expect(1)
		time.Sleep(time.Second)
		if e.Take(2, time.Now()) {
			t.Error("other compartment explained")
		}
		if !e.Take(1, time.Now()) {
			t.Error("opening 1 s after unlock not explained")
		}
		if e.Take(1, time.Now()) {
			t.Error("one unlock explained two openings")
		}
		e.Expect(1)
		time.Sleep(hw.DefaultExpectWindow + time.Second)
		if e.Take(1, time.Now()) {
			t.Error("opening after the window explained")
		}
	})
}

// fakeLatch returns err for every unlock and counts calls.
type fakeLatch struct {
	err   error
	calls []int
}

func (f *fakeLatch) Unlock(_ context.Context, c int) error {
	f.calls = append(f.calls, c)
	return f.err
}

func TestTrackedEmitsJammed(t *testing.T) {
	var evs []hw.Event
	e := &hw.Expected{}
	l := &hw.Tracked{
		Latch:    &fakeLatch{err: fmt.Errorf("serial: unlock 5: %w", hw.ErrJammed)},
		Expected: e,
		Map:      hw.Map{5: {Board: 2, Lock: 1}},
		Emit:     func(ev hw.Event) { evs = append(evs, ev) },
	}
	if err := l.Unlock(context.Background(), 5); !errors.Is(err, hw.ErrJammed) {
		t.Fatalf("Unlock = %v", err)
	}
	if len(evs) != 1 || evs[0].Kind != hw.EventLockJammed || evs[0].Compartment != 5 || evs[0].Board != 2 {
		t.Errorf("events = %+v", evs)
	}
	if !e.Take(5, time.Now()) {
		t.Error("unlock not recorded in Expected")
	}

	evs = nil
	ok := &hw.Tracked{Latch: &fakeLatch{}, Emit: func(ev hw.Event) { evs = append(evs, ev) }}
	if err := ok.Unlock(context.Background(), 1); err != nil || len(evs) != 0 {
		t.Errorf("successful unlock: err %v events %v", err, evs)
	}
}

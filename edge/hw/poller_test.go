package hw_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/larder-lockers/larder/edge/hw"
)

// script is a Sensors that returns its snapshots in turn, then repeats the
// last one; an entry with nil maps is returned as an error.
type script struct {
	snaps []hw.Snapshot
	i     int
}

func (s *script) Snapshot(ctx context.Context) (hw.Snapshot, error) {
	sn := s.snaps[min(s.i, len(s.snaps)-1)]
	s.i++
	if sn.Boards == nil {
		return hw.Snapshot{}, errors.New("bus gone")
	}
	return sn, nil
}

// snap builds a two-compartment, one-board snapshot.
func snap(online bool, d1, d2 hw.Door, o1 hw.Occupancy) hw.Snapshot {
	return hw.Snapshot{
		Compartments: map[int]hw.CompartmentState{
			1: {Board: 0, Door: d1, Occupancy: o1},
			2: {Board: 0, Door: d2},
		},
		Boards: map[int]hw.BoardState{0: {Online: online}},
	}
}

var (
	U   = hw.DoorUnknown
	C   = hw.DoorClosed
	O   = hw.DoorOpen
	OU  = hw.OccupancyUnknown
	OE  = hw.Empty
	OCC = hw.Occupied
)

type ev struct {
	Kind hw.EventKind
	C    int
	Occ  hw.Occupancy
}

func TestPollerEvents(t *testing.T) {
	tests := []struct {
		name     string
		snaps    []hw.Snapshot
		expected []int // compartments unlocked (recorded in Expected) before the run
		want     [][]ev
	}{
		{
			name:  "baseline is silent",
			snaps: []hw.Snapshot{snap(true, O, C, OCC)},
			want:  [][]ev{nil},
		},
		{
			name:  "board offline at start",
			snaps: []hw.Snapshot{snap(false, U, U, OU), snap(true, C, C, OE)},
			want:  [][]ev{{{hw.EventBoardOffline, 0, OU}}, {{hw.EventBoardOnline, 0, OU}}},
		},
		{
			name:     "commanded open then close",
			snaps:    []hw.Snapshot{snap(true, C, C, OE), snap(true, O, C, OE), snap(true, C, C, OCC)},
			expected: []int{1},
			want: [][]ev{nil, {{hw.EventDoorOpened, 1, OU}},
				{{hw.EventDoorClosed, 1, OU}, {hw.EventOccupancyChanged, 1, OCC}}},
		},
		{
			name:  "uncommanded open",
			snaps: []hw.Snapshot{snap(true, C, C, OE), snap(true, C, O, OE)},
			want:  [][]ev{nil, {{hw.EventDoorOpened, 2, OU}, {hw.EventUncommandedOpen, 2, OU}}},
		},
		{
			name: "unknown keeps last known, change seen when board returns",
			snaps: []hw.Snapshot{
				snap(true, C, C, OCC),
				snap(true, U, U, OU),  // one missed poll: still online
				snap(false, U, U, OU), // down
				snap(true, C, O, OE),  // back; door 2 opened meanwhile, item gone
			},
			want: [][]ev{nil, nil, {{hw.EventBoardOffline, 0, OU}},
				{{hw.EventBoardOnline, 0, OU}, {hw.EventOccupancyChanged, 1, OE}, {hw.EventDoorOpened, 2, OU}, {hw.EventUncommandedOpen, 2, OU}}},
		},
		{
			name:  "snapshot error emits nothing",
			snaps: []hw.Snapshot{snap(true, C, C, OE), {}, snap(true, C, C, OE)},
			want:  [][]ev{nil, nil, nil},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exp := &hw.Expected{}
			for _, c := range tt.expected {
				exp.Expect(c)
			}
			var emitted []hw.Event
			p := hw.NewPoller(hw.PollerConfig{
				Sensors:  &script{snaps: tt.snaps},
				Expected: exp,
				Emit:     func(e hw.Event) { emitted = append(emitted, e) },
			})
			var all []hw.Event
			for i, want := range tt.want {
				evs, _ := p.Step(context.Background())
				all = append(all, evs...)
				var got []ev
				for _, e := range evs {
					got = append(got, ev{e.Kind, e.Compartment, e.Occupancy})
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("step %d (-want +got):\n%s", i, diff)
				}
			}
			if diff := cmp.Diff(all, emitted, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Emit differs from returned events:\n%s", diff)
			}
		})
	}
}

func TestPollerLast(t *testing.T) {
	p := hw.NewPoller(hw.PollerConfig{Sensors: &script{snaps: []hw.Snapshot{
		snap(true, O, C, OCC), snap(true, U, U, OU),
	}}})
	p.Step(context.Background())
	p.Step(context.Background())
	last := p.Last()
	if got := last.Compartments[1]; got.Door != O || got.Occupancy != OCC {
		t.Errorf("Last()[1] = %+v, want open/occupied kept through an unknown poll", got)
	}
}

func TestPollerRunInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{snaps: []hw.Snapshot{snap(true, C, C, OE)}}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second+time.Millisecond)
		defer cancel()
		err := hw.NewPoller(hw.PollerConfig{Sensors: s}).Run(ctx)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Run = %v", err)
		}
		if s.i != 5 { // t=0, 0.5, 1, 1.5, 2 s
			t.Errorf("%d snapshots in 2 s, want 5", s.i)
		}
	})
}

func TestPollerRateLimitsFlappingLogs(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var snaps []hw.Snapshot
	for i := range 21 { // a door flapping every 100 ms for 2 s, then once more after 12 s
		d := C
		if i%2 == 1 {
			d = O
		}
		s := snap(true, d, C, OE)
		s.At = t0.Add(time.Duration(i) * 100 * time.Millisecond)
		snaps = append(snaps, s)
	}
	last := snap(true, O, C, OE)
	last.At = t0.Add(14 * time.Second)
	snaps = append(snaps, last)

	var buf bytes.Buffer
	p := hw.NewPoller(hw.PollerConfig{Sensors: &script{snaps: snaps}, Expected: &hw.Expected{},
		Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	events := 0
	for range snaps {
		evs, _ := p.Step(context.Background())
		events += len(evs)
	}
	// 10 openings (each also uncommanded) and 10 closings, then one more opening.
	if events != 10*2+10+2 {
		t.Errorf("%d events, want every one emitted (32)", events)
	}
	out := buf.String()
	if n := strings.Count(out, "event=door_opened"); n != 2 {
		t.Errorf("door_opened logged %d times, want 2 (first, and after the quiet period):\n%s", n, out)
	}
	if !strings.Contains(out, "suppressed=9") {
		t.Errorf("second door_opened line does not count the 9 suppressed:\n%s", out)
	}
}

package hwtest_test

import (
	"context"
	"errors"
	"testing"

	"github.com/larder-lockers/larder/edge/hw"
	"github.com/larder-lockers/larder/edge/hw/hwtest"
)

func TestBankWithPoller(t *testing.T) {
	ctx := context.Background()
	b := hwtest.NewBank(4)
	exp := &hw.Expected{}
	var evs []hw.EventKind
	p := hw.NewPoller(hw.PollerConfig{Sensors: b, Expected: exp, Emit: func(e hw.Event) { evs = append(evs, e.Kind) }})
	p.Step(ctx)
	l := &hw.Tracked{Latch: b, Expected: exp}
	if err := l.Unlock(ctx, 1); err != nil {
		t.Fatal(err)
	}
	b.Jam(2, true)
	if err := l.Unlock(ctx, 2); !errors.Is(err, hw.ErrJammed) {
		t.Errorf("jammed Unlock = %v", err)
	}
	b.SetDoor(3, hw.DoorOpen)
	p.Step(ctx)
	b.SetOnline(false)
	if err := b.Unlock(ctx, 4); !errors.Is(err, hw.ErrBoardOffline) {
		t.Errorf("offline Unlock = %v", err)
	}
	p.Step(ctx)
	want := []hw.EventKind{hw.EventDoorOpened, hw.EventDoorOpened, hw.EventUncommandedOpen, hw.EventBoardOffline}
	if len(evs) != len(want) {
		t.Fatalf("events %v, want %v", evs, want)
	}
	for i := range want {
		if evs[i] != want[i] {
			t.Errorf("event %d = %v, want %v", i, evs[i], want[i])
		}
	}
	if b.Unlocks(1) != 1 || b.Unlocks(2) != 1 || b.Unlocks(4) != 0 {
		t.Error("unlock counts")
	}
}

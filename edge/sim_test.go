package edge_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/larder-lockers/larder/edge"
	"github.com/larder-lockers/larder/edge/hw"
	"github.com/larder-lockers/larder/protocol"
)

// TestRandomLifecycle drives random orders through reservation, loading, pickups (right
// and wrong), returns, cancellations, jams and crashes, checking the store's invariants
// after every step and, at the end, that no order was picked up twice and every loaded
// order ended picked up, removed or still held. Set LARDER_SEED to replay a run.
func TestRandomLifecycle(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("LARDER_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (LARDER_SEED=%d replays it)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	h := newHarness(t)
	h.reserve() // credential
	type info struct {
		o      order
		loaded bool
	}
	orders := map[string]*info{}
	next := 0
	ver, _ := h.l.DesiredVersion()
	for step := range 400 {
		switch k := rng.IntN(10); {
		case k < 2: // the cloud reserves a free compartment
			var free []int
			_ = h.store.View(func(tx edge.Tx) error {
				cs, err := tx.Compartments()
				for _, c := range cs {
					if c.State == edge.StateFree {
						free = append(free, c.Number)
					}
				}
				return err
			})
			if len(free) == 0 {
				continue
			}
			c := free[rng.IntN(len(free))]
			next++
			o := order{id: fmt.Sprintf("ord_%04d", next), code: fmt.Sprintf("%08d", 20000000+next), factor: "1234", slots: []int{c},
				zone: specs()[c-1].Zone, expires: h.clock.Now().Add(time.Duration(1+rng.IntN(6)) * time.Hour)}
			ver++
			r := o.reservation()
			r.Slots[0].Generation = uint64(step + 1)
			if h.desired(protocol.Desired{Version: ver, Reservations: []protocol.Reservation{r}}) == edge.DesiredApplied {
				orders[o.id] = &info{o: o}
			}
		case k < 4: // a driver loads an order
			for _, in := range orders {
				rsv := h.reservation(in.o.id)
				if rsv.State != edge.OrderReserved {
					continue
				}
				c := rsv.Slots[0].Compartment
				if rng.IntN(8) == 0 {
					h.latch.Jam(c)
					if _, err := h.l.DriverOpen(h.ctx, "drv-7", in.o.id, c); err == nil {
						t.Fatal("jammed door opened")
					}
					h.latch.jammed = nil
					if d, err := h.l.DriverProblem(h.ctx, "drv-7", in.o.id, c, "jammed"); err == nil {
						h.doorCycle(d.Number, hw.Occupied)
						in.loaded = true
					}
					break
				}
				if _, err := h.l.DriverOpen(h.ctx, "drv-7", in.o.id, c); err != nil {
					t.Fatalf("step %d: driver open: %v", step, err)
				}
				h.doorCycle(c, hw.Occupied)
				in.loaded = true
				break
			}
		case k < 6: // a resident comes (sometimes with a wrong factor)
			for _, in := range orders {
				factor := in.o.factor
				if rng.IntN(4) == 0 {
					factor = "0000"
				}
				res, err := h.l.Pickup(h.ctx, in.o.code, factor, rng.IntN(2) == 0)
				if err == nil {
					for _, d := range res.Doors {
						if rng.IntN(5) > 0 {
							h.doorCycle(d.Number, hw.Empty)
						}
					}
				}
				break
			}
		case k < 7: // the clock moves; expired orders are returned
			h.clock.Advance(time.Duration(rng.IntN(90)) * time.Minute)
			h.l.Tick(h.ctx)
			m, _ := h.l.Manifest()
			for _, mo := range m {
				if mo.State == "expired" && rng.IntN(2) == 0 {
					if doors, err := h.l.DriverReturn(h.ctx, "drv-7", mo.Order); err == nil {
						for _, d := range doors {
							h.doorCycle(d.Number, hw.Empty)
						}
					}
				}
			}
		case k < 8: // the cloud cancels one
			for id := range orders {
				ver++
				h.desired(protocol.Desired{Version: ver, Cancel: []string{id}})
				break
			}
		case k < 9: // crash and restart with the doors as they are
			snap := &hw.Snapshot{Compartments: map[int]hw.CompartmentState{}, Boards: map[int]hw.BoardState{0: {Online: true}}}
			for _, s := range specs() {
				snap.Compartments[s.Number] = h.l.Physical(s.Number)
			}
			h.restart(snap)
		default:
			h.clock.Advance(6 * time.Minute)
			h.l.Tick(h.ctx)
		}
		if err := h.store.Check(); err != nil {
			t.Fatalf("step %d (seed %d): %v", step, seed, err)
		}
	}
	picked := map[string]int{}
	for _, e := range h.events() {
		if e.Kind == protocol.EventPickedUp {
			picked[e.Order]++
		}
	}
	for id, n := range picked {
		if n > 1 {
			t.Fatalf("order %s picked up %d times (seed %d)", id, n, seed)
		}
	}
	for id, in := range orders {
		r := h.reservation(id)
		if in.loaded && r.Order != "" && !r.State.Holds() && r.State != edge.OrderPickedUp && r.State != edge.OrderRemoved {
			t.Fatalf("loaded order %s ended %s (seed %d)", id, r.State, seed)
		}
	}
}

package cloud_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/protocol"
)

// TestSimulation drives random order lifecycles through the service (creates, loads,
// pickups, cancels, reassignments, lockouts, out-of-service, expiry sweeps) and checks
// the invariants after every step. The seed is printed; rerun one with
// LARDER_SEED=<seed> go test -run TestSimulation ./cloud/.
func TestSimulation(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("LARDER_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (LARDER_SEED=%d to replay)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	e := newEnv(t)
	sites := []string{"s1", "s2"}
	for i, s := range sites {
		e.site(s, &cloud.Location{Lat: 51.5 + float64(i)*0.01, Lon: 0}, bank(2, []protocol.Zone{protocol.ZoneChilled, protocol.ZoneAmbient, protocol.ZoneFrozen},
			[]protocol.Size{protocol.SizeS, protocol.SizeM, protocol.SizeL}))
	}
	everLoaded := map[string]bool{}
	lastGen := map[string]uint64{} // site/compartment → highest generation seen in a slot
	zones := []protocol.Zone{protocol.ZoneChilled, protocol.ZoneAmbient, protocol.ZoneFrozen}
	sizes := []protocol.Size{protocol.SizeS, protocol.SizeM, protocol.SizeL}
	steps := 600
	if testing.Short() {
		steps = 200
	}
	for step := range steps {
		live := liveOrders(t, e)
		site := sites[rng.IntN(len(sites))]
		switch op := rng.IntN(10); {
		case op < 4: // create
			var ps []cloud.Parcel
			for range 1 + rng.IntN(3) {
				ps = append(ps, cloud.Parcel{Size: sizes[rng.IntN(3)], Zone: zones[rng.IntN(3)]})
			}
			req := e.orderReq(site, fmt.Sprintf("x%d", step), ps...)
			req.Accessible = rng.IntN(5) == 0
			_, err := e.svc.CreateOrder(e.ctx, e.plat, fmt.Sprintf("k%d", step), req)
			if err != nil && cloud.ErrorCode(err) != cloud.ENoCapacity {
				t.Fatalf("step %d create: %v", step, err)
			}
		case op < 6 && len(live) > 0: // load a slot
			o := live[rng.IntN(len(live))]
			if o.State == cloud.StateAssigned {
				sl := o.Slots[rng.IntN(len(o.Slots))]
				e.mustEvent(o.Site, protocol.Event{Kind: protocol.EventLoaded, Credential: protocol.CredDriver, Order: o.ID, Compartment: sl.Compartment})
				if got, _ := e.svc.GetOrder(e.ctx, e.ops, o.ID); got.State == cloud.StateLoaded {
					everLoaded[o.ID] = true
				}
			}
		case op < 7 && len(live) > 0: // pickup or removal
			o := live[rng.IntN(len(live))]
			switch o.State {
			case cloud.StateLoaded, cloud.StateCompromised:
				e.mustEvent(o.Site, protocol.Event{Kind: protocol.EventPickedUp, Credential: protocol.CredPickup, Order: o.ID})
			case cloud.StateExpired:
				e.mustEvent(o.Site, protocol.Event{Kind: protocol.EventExpiredRemoved, Credential: protocol.CredDriver, Order: o.ID})
			}
		case op < 8 && len(live) > 0: // cancel, lockout, compromise, reissue, driver's problem report
			o := live[rng.IntN(len(live))]
			switch rng.IntN(5) {
			case 4:
				sl := o.Slots[rng.IntN(len(o.Slots))]
				_, err := e.svc.ReassignSlot(e.ctx, e.drv, o.ID, sl.Compartment, []string{"jammed", "full"}[rng.IntN(2)])
				if c := cloud.ErrorCode(err); err != nil && c != cloud.EConflict && c != cloud.ENoCapacity {
					t.Fatalf("step %d reassign slot: %v", step, err)
				}
			case 0:
				_, err := e.svc.CancelOrder(e.ctx, e.plat, o.ID, "")
				if err != nil && cloud.ErrorCode(err) != cloud.EConflict {
					t.Fatalf("step %d cancel: %v", step, err)
				}
			case 1:
				e.mustEvent(o.Site, protocol.Event{Kind: protocol.EventCodeLockout, Credential: protocol.CredNone, Order: o.ID})
			case 2:
				if o.State == cloud.StateLoaded {
					e.mustEvent(o.Site, protocol.Event{Kind: protocol.EventOrderCompromised, Credential: protocol.CredNone, Order: o.ID, Seconds: 2000})
				}
			case 3:
				_, err := e.svc.ReissueCode(e.ctx, e.plat, o.ID)
				if err != nil && cloud.ErrorCode(err) != cloud.EConflict {
					t.Fatalf("step %d reissue: %v", step, err)
				}
			}
		case op < 9 && len(live) > 0: // the edge reassigns to some other compartment of the zone
			o := live[rng.IntN(len(live))]
			sl := o.Slots[rng.IntN(len(o.Slots))]
			to := 1 + rng.IntN(18)
			if to != sl.Compartment {
				e.mustEvent(o.Site, protocol.Event{Kind: protocol.EventReassigned, Credential: protocol.CredDriver, Order: o.ID,
					Compartment: sl.Compartment, To: to, Reason: []string{"full", "jammed"}[rng.IntN(2)]})
			}
		default: // time passes; ops toggle service; the edge reports the desired version it applied
			e.clock.Add(time.Duration(rng.IntN(180)) * time.Minute)
			if d, err := e.svc.GetSite(e.ctx, e.ops, site); err == nil && rng.IntN(2) == 0 {
				if err := e.svc.ApplyTelemetry(e.ctx, site, e.clock.Now(), protocol.Telemetry{DesiredVersion: d.DesiredVersion}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := e.svc.Sweep(e.ctx); err != nil {
				t.Fatal(err)
			}
			n := 1 + rng.IntN(18)
			if _, err := e.svc.SetInService(e.ctx, e.ops, site, n, rng.IntN(3) > 0, "sim"); err != nil {
				t.Fatal(err)
			}
		}
		checkInvariants(t, e, step, lastGen)
	}
	for id := range everLoaded {
		o, err := e.svc.GetOrder(e.ctx, e.ops, id)
		if err != nil {
			t.Fatal(err)
		}
		switch o.State {
		case cloud.StatePickedUp, cloud.StateReturned, cloud.StateLoaded, cloud.StateExpired, cloud.StateCompromised:
		default:
			t.Errorf("loaded order %s ended %s", id, o.State)
		}
	}
	e.svc.Flush(e.ctx)
	for site, ds := range e.rec.desired {
		for i, d := range ds {
			if d.Version != uint64(i+1) {
				t.Fatalf("site %s: desired delta %d has version %d: versions must be consecutive", site, i, d.Version)
			}
			if err := d.Validate(); err != nil {
				t.Fatalf("site %s: desired v%d invalid: %v", site, d.Version, err)
			}
		}
		snap, err := e.svc.DesiredSnapshot(e.ctx, site)
		if err != nil || snap.Validate() != nil || snap.Version != uint64(len(ds)) {
			t.Fatalf("snapshot of %s: v%d (%d deltas) %v", site, snap.Version, len(ds), err)
		}
	}
}

func liveOrders(t *testing.T, e *env) []cloud.Order {
	var out []cloud.Order
	e.db.View(e.ctx, func(tx cloud.Tx) error {
		return tx.Scan("orders", "", func(_ string, v []byte) bool {
			var o cloud.Order
			if err := json.Unmarshal(v, &o); err != nil {
				t.Fatal(err)
			}
			if o.State.Live() {
				out = append(out, o)
			}
			return true
		})
	})
	// Order ids are random: sort by external id (made from the step) so that a seed
	// replays the same choices.
	sort.Slice(out, func(i, j int) bool { return out[i].ExternalID < out[j].ExternalID })
	return out
}

// checkInvariants runs cloud.CheckInvariants over the store and, across steps, checks
// that no compartment's generation ever goes back (what one snapshot cannot see).
func checkInvariants(t *testing.T, e *env, step int, lastGen map[string]uint64) {
	t.Helper()
	vs, err := cloud.CheckInvariants(e.ctx, e.db)
	if err != nil {
		t.Fatalf("step %d: %v", step, err)
	}
	for _, v := range vs {
		t.Errorf("step %d: invariant broken: %s", step, v)
	}
	if len(vs) > 0 {
		t.FailNow()
	}
	for _, o := range liveOrders(t, e) {
		for _, sl := range o.Slots {
			k := fmt.Sprintf("%s/%d", o.Site, sl.Compartment)
			if sl.Generation < lastGen[k] {
				t.Fatalf("step %d: compartment %s generation went back from %d to %d", step, k, lastGen[k], sl.Generation)
			}
			lastGen[k] = sl.Generation
		}
	}
}

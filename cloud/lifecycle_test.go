package cloud_test

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/protocol"
)

// The lifecycle table, walked: every happening is applied to an order in every
// situation, and the outcome is compared with a statement of the lifecycle written here
// independently of the table; then that statement is checked against the table itself
// (every row is exercised; refusals happen only where no row applies).

var coolS = cloud.Parcel{Size: protocol.SizeS, Zone: protocol.ZoneCool}

// situation is an order brought into a state through the service's public operations.
type situation struct {
	name  string
	state cloud.OrderState
	make  func(e *env) string
}

func lcOrder(e *env) string {
	e.t.Helper()
	rc, err := e.svc.CreateOrder(e.ctx, e.plat, "k-lc", e.orderReq("t1", "lc", ambientS, coolS))
	if err != nil {
		e.t.Fatal(err)
	}
	if len(rc.Order.Slots) != 2 {
		e.t.Fatalf("want an order of two slots, got %+v", rc.Order.Slots)
	}
	return rc.Order.ID
}

func lcLoad(e *env, id string, slots ...int) string {
	e.t.Helper()
	o, _ := e.svc.GetOrder(e.ctx, e.ops, id)
	for _, i := range slots {
		e.mustEvent("t1", protocol.Event{Kind: protocol.EventLoaded, Credential: protocol.CredDriver, Order: id, Compartment: o.Slots[i].Compartment})
	}
	return id
}

func lcEvent(e *env, id string, kind protocol.EventKind) string {
	e.t.Helper()
	e.mustEvent("t1", protocol.Event{Kind: kind, Credential: protocol.CredDriver, Order: id, Seconds: 2000})
	return id
}

func lcExpired(e *env) string {
	e.t.Helper()
	id := lcLoad(e, lcOrder(e), 0, 1)
	e.clock.Add(13 * time.Hour)
	if _, err := e.svc.Sweep(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	return id
}

var situations = []situation{
	{"assigned", cloud.StateAssigned, lcOrder},
	{"assigned, partly loaded", cloud.StateAssigned, func(e *env) string { return lcLoad(e, lcOrder(e), 0) }},
	{"loaded", cloud.StateLoaded, func(e *env) string { return lcLoad(e, lcOrder(e), 0, 1) }},
	{"expired", cloud.StateExpired, lcExpired},
	{"compromised", cloud.StateCompromised, func(e *env) string {
		return lcEvent(e, lcLoad(e, lcOrder(e), 0, 1), protocol.EventOrderCompromised)
	}},
	{"compromised, never loaded", cloud.StateCompromised, func(e *env) string { return lcEvent(e, lcOrder(e), protocol.EventOrderCompromised) }},
	{"picked_up", cloud.StatePickedUp, func(e *env) string { return lcEvent(e, lcLoad(e, lcOrder(e), 0, 1), protocol.EventPickedUp) }},
	{"picked_up, compromised", cloud.StatePickedUp, func(e *env) string {
		return lcEvent(e, lcEvent(e, lcLoad(e, lcOrder(e), 0, 1), protocol.EventOrderCompromised), protocol.EventPickedUp)
	}},
	{"returned", cloud.StateReturned, func(e *env) string { return lcEvent(e, lcExpired(e), protocol.EventExpiredRemoved) }},
	{"cancelled", cloud.StateCancelled, func(e *env) string {
		id := lcOrder(e)
		if _, err := e.svc.CancelOrder(e.ctx, e.plat, id, ""); err != nil {
			e.t.Fatal(err)
		}
		return id
	}},
}

// Outcomes other than a state.
const (
	ignored  = "ignored"
	conflict = "conflict"
)

// firstUnloaded is the compartment of o's first unloaded slot (its first slot if all are
// loaded).
func firstUnloaded(o cloud.Order) int {
	for _, sl := range o.Slots {
		if !sl.Loaded {
			return sl.Compartment
		}
	}
	return o.Slots[0].Compartment
}

// freeLike is a free compartment of o's site in the zone and size of o's first slot.
func freeLike(e *env, o cloud.Order) int {
	e.t.Helper()
	d, err := e.svc.GetSite(e.ctx, e.ops, o.Site)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, c := range d.CompartmentList {
		if c.State == cloud.CompFree && c.Zone == o.Slots[0].Zone && c.Size == o.Slots[0].Size {
			return c.Number
		}
	}
	e.t.Fatal("no free compartment")
	return 0
}

type lcCase struct {
	on   string
	with func(e *env, o cloud.Order) cloud.Particulars
	// api is the REST operation of an API happening, to check its refusals too.
	api func(e *env, o cloud.Order) error
	// want maps a situation to its outcome: the next state, ignored, or (absent) conflict.
	want map[string]string
}

func edgeFact(kind protocol.EventKind) func(e *env, o cloud.Order) cloud.Particulars {
	return func(e *env, o cloud.Order) cloud.Particulars {
		return cloud.Particulars{Event: protocol.Event{Kind: kind, Order: o.ID, Compartment: firstUnloaded(o), Seconds: 2000}}
	}
}

func noParticulars(*env, cloud.Order) cloud.Particulars { return cloud.Particulars{By: cloud.System} }

// everyLive maps the live situations to their own state, the final ones to ignored.
func everyLive() map[string]string {
	return map[string]string{"assigned": "assigned", "assigned, partly loaded": "assigned", "loaded": "loaded",
		"expired": "expired", "compromised": "compromised", "compromised, never loaded": "compromised",
		"picked_up": ignored, "picked_up, compromised": ignored, "returned": ignored, "cancelled": ignored}
}

// redelivery is a redeliver request that is valid now.
func redelivery(e *env) cloud.RedeliverRequest {
	now := e.clock.Now()
	return cloud.RedeliverRequest{Window: cloud.Window{Start: now.Add(time.Hour), End: now.Add(3 * time.Hour)}}
}

var lcCases = []lcCase{
	{on: "loaded", with: edgeFact(protocol.EventLoaded), want: map[string]string{
		"assigned": "assigned", "assigned, partly loaded": "loaded", "loaded": ignored, "expired": ignored,
		"compromised": ignored, "compromised, never loaded": ignored, "picked_up": ignored, "picked_up, compromised": ignored, "returned": ignored, "cancelled": ignored}},
	{on: "picked_up", with: edgeFact(protocol.EventPickedUp), want: map[string]string{
		"assigned": "picked_up", "assigned, partly loaded": "picked_up", "loaded": "picked_up", "expired": "picked_up",
		"compromised": "picked_up", "compromised, never loaded": "picked_up", "picked_up": ignored, "picked_up, compromised": ignored, "returned": ignored, "cancelled": ignored}},
	{on: "returned", with: edgeFact(protocol.EventExpiredRemoved), want: map[string]string{
		"assigned": "returned", "assigned, partly loaded": "returned", "loaded": "returned", "expired": "returned",
		"compromised": "returned", "compromised, never loaded": "returned", "picked_up": ignored, "picked_up, compromised": ignored, "returned": ignored, "cancelled": ignored}},
	{on: "compromised", with: edgeFact(protocol.EventOrderCompromised), want: map[string]string{
		"assigned": "compromised", "assigned, partly loaded": "compromised", "loaded": "compromised", "expired": "compromised",
		"compromised": ignored, "compromised, never loaded": ignored, "picked_up": ignored, "picked_up, compromised": ignored, "returned": ignored, "cancelled": ignored}},
	{on: "reassigned", with: func(e *env, o cloud.Order) cloud.Particulars {
		return cloud.Particulars{Event: protocol.Event{Kind: protocol.EventReassigned, Order: o.ID, Compartment: o.Slots[0].Compartment,
			To: freeLike(e, o), Reason: "full"}}
	}, want: everyLive()},
	{on: "code_lockout", with: edgeFact(protocol.EventCodeLockout), want: everyLive()},
	{on: "cancel", with: func(e *env, o cloud.Order) cloud.Particulars { return cloud.Particulars{By: e.plat, Reason: "test"} },
		api: func(e *env, o cloud.Order) error {
			_, err := e.svc.CancelOrder(e.ctx, e.plat, o.ID, "test")
			return err
		},
		want: map[string]string{"assigned": "cancelled"}},
	{on: "lapse", with: noParticulars, want: map[string]string{"assigned": "cancelled"}},
	{on: "expire", with: noParticulars, want: map[string]string{"assigned, partly loaded": "expired", "loaded": "expired"}},
	{on: "reminder", with: noParticulars, want: map[string]string{"loaded": "loaded"}},
	{on: "extend", with: func(e *env, o cloud.Order) cloud.Particulars { return cloud.Particulars{By: e.plat, Extend: time.Hour} },
		api: func(e *env, o cloud.Order) error {
			_, err := e.svc.ExtendOrder(e.ctx, e.plat, o.ID, time.Hour)
			return err
		},
		want: map[string]string{"assigned": "assigned", "assigned, partly loaded": "assigned", "loaded": "loaded"}},
	{on: "outage", with: func(e *env, o cloud.Order) cloud.Particulars {
		return cloud.Particulars{By: cloud.System, Extend: time.Hour}
	},
		want: map[string]string{"assigned": "assigned", "assigned, partly loaded": "assigned", "loaded": "loaded", "expired": ignored,
			"compromised": ignored, "compromised, never loaded": ignored, "picked_up": ignored, "picked_up, compromised": ignored, "returned": ignored, "cancelled": ignored}},
	{on: "reissue", with: func(e *env, o cloud.Order) cloud.Particulars { return cloud.Particulars{By: e.ops} },
		api: func(e *env, o cloud.Order) error { _, err := e.svc.ReissueCode(e.ctx, e.ops, o.ID); return err },
		want: map[string]string{"assigned": "assigned", "assigned, partly loaded": "assigned", "loaded": "loaded",
			"compromised": "compromised", "compromised, never loaded": "compromised"}},
	{on: "slot_reassigned", with: func(e *env, o cloud.Order) cloud.Particulars {
		return cloud.Particulars{By: e.drv, Compartment: firstUnloaded(o), Reason: "full"}
	}, api: func(e *env, o cloud.Order) error {
		_, err := e.svc.ReassignSlot(e.ctx, e.drv, o.ID, firstUnloaded(o), "full")
		return err
	}, want: map[string]string{"assigned": "assigned", "assigned, partly loaded": "assigned"}},
	{on: "redeliver", with: func(e *env, o cloud.Order) cloud.Particulars {
		r := redelivery(e)
		r.ExternalID = "redelivery"
		return cloud.Particulars{By: e.plat, Redeliver: &r}
	}, api: func(e *env, o cloud.Order) error {
		_, err := e.svc.RedeliverOrder(e.ctx, e.plat, o.ID, "k-redeliver", redelivery(e))
		return err
	}, want: map[string]string{"expired": "expired", "compromised": "compromised", "compromised, never loaded": "compromised",
		"picked_up, compromised": "picked_up", "returned": "returned"}},
	// No situation has a code waiting for the edge (only a reissue makes one): every
	// report of an applied version changes nothing (see TestReissuedCodeWaitsForTheEdge).
	{on: "code_applied", with: func(e *env, o cloud.Order) cloud.Particulars {
		return cloud.Particulars{By: cloud.System, Applied: 1 << 40}
	}, want: map[string]string{"assigned": ignored, "assigned, partly loaded": ignored, "loaded": ignored, "expired": ignored,
		"compromised": ignored, "compromised, never loaded": ignored, "picked_up": ignored, "picked_up, compromised": ignored, "returned": ignored, "cancelled": ignored}},
	// Straight through the table: in service, only an order with nothing loaded is
	// displaced (see TestDisplacedWithoutRoomIsCancelled for the eviction).
	{on: "displaced", with: noParticulars, want: map[string]string{"assigned": "assigned", "assigned, partly loaded": "assigned",
		"compromised": "compromised", "compromised, never loaded": "compromised"}},
}

func lcEnv(t *testing.T) *env {
	e := newEnv(t)
	e.site("t1", nil, bank(2, []protocol.Zone{protocol.ZoneAmbient, protocol.ZoneCool}, []protocol.Size{protocol.SizeS, protocol.SizeM}))
	return e
}

// observe is what "changes nothing" compares: the order, the site's desired version and
// the notices sent.
func observe(e *env, id string) (cloud.Order, uint64, int) {
	e.t.Helper()
	o, err := e.svc.GetOrder(e.ctx, e.ops, id)
	if err != nil {
		e.t.Fatal(err)
	}
	d, err := e.svc.GetSite(e.ctx, e.ops, o.Site)
	if err != nil {
		e.t.Fatal(err)
	}
	e.svc.Flush(e.ctx)
	e.rec.mu.Lock()
	defer e.rec.mu.Unlock()
	return o, d.DesiredVersion, len(e.rec.notes)
}

func TestLifecycleTableWalk(t *testing.T) {
	for _, lc := range lcCases {
		for _, sit := range situations {
			t.Run(lc.on+" from "+sit.name, func(t *testing.T) {
				e := lcEnv(t)
				id := sit.make(e)
				before, version, notes := observe(e, id)
				if before.State != sit.state {
					t.Fatalf("situation %q: state %s, want %s", sit.name, before.State, sit.state)
				}
				want, ok := lc.want[sit.name]
				if !ok {
					want = conflict
				}
				err := e.svc.Happen(e.ctx, id, lc.on, lc.with(e, before))
				after, afterVersion, afterNotes := observe(e, id)
				switch want {
				case conflict, ignored:
					if want == conflict {
						wantCode(t, err, cloud.EConflict)
					} else if err != nil {
						t.Fatalf("ignored happening failed: %v", err)
					}
					if !reflect.DeepEqual(after, before) || afterVersion != version || afterNotes != notes {
						t.Fatalf("%s changed something:\nbefore %+v (v%d, %d notices)\nafter  %+v (v%d, %d notices)",
							want, before, version, notes, after, afterVersion, afterNotes)
					}
					if lc.api != nil {
						wantCode(t, lc.api(e, before), cloud.EConflict)
						if again, _, _ := observe(e, id); !reflect.DeepEqual(again, before) {
							t.Fatalf("refused API call changed the order: %+v", again)
						}
					}
				default:
					if err != nil {
						t.Fatalf("want %s, got %v", want, err)
					}
					if after.State != cloud.OrderState(want) {
						t.Fatalf("state %s, want %s", after.State, want)
					}
					if reflect.DeepEqual(after, before) {
						t.Fatal("the transition left the order as it was")
					}
				}
			})
		}
	}
}

func TestCreateLandsInAssigned(t *testing.T) {
	e := lcEnv(t)
	o, _, _ := observe(e, lcOrder(e))
	if o.State != cloud.StateAssigned {
		t.Fatalf("state %s", o.State)
	}
	for _, r := range cloud.LifecycleRows() {
		if r.On == "create" && (!slices.Equal(r.From, []cloud.OrderState{""}) || r.To != cloud.StateAssigned) {
			t.Fatalf("create row %+v, want from a new order to assigned", r)
		}
	}
}

// The statement of the lifecycle above and the table agree: each expected outcome has
// its row, refusals happen only where no unguarded row applies, and every row's
// (happening, from-state) pair is exercised.
func TestLifecycleTableMatchesTheWalk(t *testing.T) {
	rows := cloud.LifecycleRows()
	rowsFor := func(on string, s cloud.OrderState) []cloud.Row {
		var out []cloud.Row
		for _, r := range rows {
			if r.On == on && slices.Contains(r.From, s) {
				out = append(out, r)
			}
		}
		return out
	}
	type pair struct {
		on string
		s  cloud.OrderState
	}
	exercised := map[pair]bool{{"create", ""}: true}
	for _, lc := range lcCases {
		for _, sit := range situations {
			want, ok := lc.want[sit.name]
			if !ok {
				want = conflict
			}
			rs := rowsFor(lc.on, sit.state)
			switch want {
			case conflict:
				for _, r := range rs {
					if !r.Guarded {
						t.Errorf("%s from %s: the walk expects a refusal, but row %+v always applies", lc.on, sit.name, r)
					}
				}
				continue
			case ignored:
				if !slices.ContainsFunc(rs, func(r cloud.Row) bool { return r.Ignore }) {
					t.Errorf("%s from %s: the walk expects it ignored, the table has no ignore row", lc.on, sit.name)
				}
			default:
				if !slices.ContainsFunc(rs, func(r cloud.Row) bool {
					return !r.Ignore && (r.To == cloud.OrderState(want) || r.To == "" && sit.state == cloud.OrderState(want))
				}) {
					t.Errorf("%s from %s: the walk expects %s, the table has no such row", lc.on, sit.name, want)
				}
			}
			exercised[pair{lc.on, sit.state}] = true
		}
	}
	for _, r := range rows {
		for _, s := range r.From {
			if !exercised[pair{r.On, s}] {
				t.Errorf("row %s from %q is not exercised by the walk", r.On, s)
			}
		}
	}
}

// The edge reports facts, which the cloud cannot refuse: every happening an edge event
// dispatches to has a row that always applies, for every state.
func TestEdgeHappeningsCoverEveryState(t *testing.T) {
	rows := cloud.LifecycleRows()
	for _, on := range cloud.EdgeHappenings() {
		for _, s := range cloud.OrderStates() {
			if !slices.ContainsFunc(rows, func(r cloud.Row) bool { return r.On == on && !r.Guarded && slices.Contains(r.From, s) }) {
				t.Errorf("%s from %s: no row always applies, so the edge's fact would be refused", on, s)
			}
		}
	}
}

// An order the edge displaces when nothing else is free is cancelled, through the real
// path: the edge moves another order into its compartment.
func TestDisplacedWithoutRoomIsCancelled(t *testing.T) {
	e := newEnv(t)
	e.site("t1", nil, bank(1, []protocol.Zone{protocol.ZoneAmbient}, []protocol.Size{protocol.SizeS, protocol.SizeM}))
	a, err := e.svc.CreateOrder(e.ctx, e.plat, "k1", e.orderReq("t1", "a", ambientS))
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.svc.CreateOrder(e.ctx, e.plat, "k2", e.orderReq("t1", "b", ambientS))
	if err != nil {
		t.Fatal(err)
	}
	from, to := a.Order.Slots[0].Compartment, b.Order.Slots[0].Compartment
	e.mustEvent("t1", protocol.Event{Kind: protocol.EventReassigned, Credential: protocol.CredDriver, Order: a.Order.ID,
		Compartment: from, To: to, Reason: "jammed"})
	ob, _ := e.svc.GetOrder(e.ctx, e.ops, b.Order.ID)
	if ob.State != cloud.StateCancelled || ob.Reason != "displaced: no compartment free" {
		t.Fatalf("b: %s (%s), want cancelled for want of room", ob.State, ob.Reason)
	}
	if oa, _ := e.svc.GetOrder(e.ctx, e.ops, a.Order.ID); oa.Slots[0].Compartment != to {
		t.Fatalf("a slots %+v, want compartment %d", oa.Slots, to)
	}
	e.svc.Flush(e.ctx)
	if n := e.rec.notesOf(cloud.NoteCancelled); len(n) != 1 || n[0].Order != b.Order.ID {
		t.Fatalf("cancel notices %+v", n)
	}
}

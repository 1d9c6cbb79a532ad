package cloud_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/protocol"
)

// A batch of runs from several sites, with duplicates, a gap, an invalid event and an
// unknown site, must leave the store exactly as the same events applied one by one
// with ApplyEdgeEvent, and report the acks the single applies returned.
func TestApplyEdgeEventsMatchesSingleApplies(t *testing.T) {
	comps := bank(1, []protocol.Zone{protocol.ZoneChilled}, []protocol.Size{protocol.SizeM})
	setup := func() (*env, []string) {
		e := newEnv(t)
		var orders []string
		for _, site := range []string{"yard-1", "yard-2"} {
			e.site(site, nil, comps)
			rc, err := e.svc.CreateOrder(e.ctx, e.plat, "k-"+site, e.orderReq(site, "e-"+site, chilledS))
			if err != nil {
				t.Fatal(err)
			}
			orders = append(orders, rc.Order.ID)
		}
		return e, orders
	}
	single, orders := setup()
	batch, orders2 := setup()

	msg := func(id string, seq uint64, ev protocol.Event) protocol.Message {
		return protocol.Message{Header: protocol.Header{ID: id, Seq: seq, Time: single.clock.Now()}, Type: protocol.TypeEvent, Body: ev}
	}
	runsFor := func(orders []string) []cloud.EdgeEvents {
		loaded := func(o string) protocol.Event {
			return protocol.Event{Kind: protocol.EventLoaded, Credential: protocol.CredDriver, Order: o, Compartment: 1}
		}
		picked := func(o string) protocol.Event {
			return protocol.Event{Kind: protocol.EventPickedUp, Credential: protocol.CredPickup, Order: o, Compartment: 1}
		}
		opened := protocol.Event{Kind: protocol.EventDoorOpened, Credential: protocol.CredPickup, Compartment: 1}
		return []cloud.EdgeEvents{
			{Site: "yard-1", Events: []protocol.Message{
				msg("a1", 1, loaded(orders[0])),
				msg("a1", 1, loaded(orders[0])), // duplicate
				msg("a3", 3, picked(orders[0])), // ahead of 2: refused
				msg("a2", 2, opened),
				msg("a3", 3, picked(orders[0])), // the resend after the gap
			}},
			{Site: "nowhere", Events: []protocol.Message{msg("n1", 1, opened)}},
			{Site: "yard-2", Events: []protocol.Message{
				msg("b1", 1, loaded(orders[1])),
				{Header: protocol.Header{ID: "b0", Seq: 0}, Type: protocol.TypeEvent, Body: opened}, // unsequenced
				msg("b2", 2, protocol.Event{Kind: protocol.EventLockJammed, Credential: protocol.CredPickup, Compartment: 1}),
			}},
		}
	}

	var want []cloud.EdgeAck
	for _, r := range runsFor(orders) {
		res := cloud.EdgeAck{Site: r.Site}
		for _, m := range r.Events {
			ack, err := single.svc.ApplyEdgeEvent(single.ctx, r.Site, m)
			if err == nil && ack > res.Ack {
				res.Applied++
			}
			res.Ack = max(res.Ack, ack)
			if err != nil && res.Err == nil {
				res.Err = err
			}
		}
		want = append(want, res)
	}
	got := batch.svc.ApplyEdgeEvents(batch.ctx, runsFor(orders2))

	if len(got) != len(want) {
		t.Fatalf("got %d results, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Site != w.Site || g.Ack != w.Ack || g.Applied != w.Applied || cloud.ErrorCode(g.Err) != cloud.ErrorCode(w.Err) {
			t.Errorf("run %s: got ack %d applied %d err %v; single applies: ack %d applied %d err %v",
				w.Site, g.Ack, g.Applied, g.Err, w.Ack, w.Applied, w.Err)
		}
	}
	if want[0].Ack != 3 || want[0].Applied != 3 || cloud.ErrorCode(want[0].Err) != cloud.ErrEventGap {
		t.Errorf("yard-1 by single applies: %+v, want ack 3, 3 applied, a gap", want[0])
	}
	if cloud.ErrorCode(want[1].Err) != cloud.ENotFound || cloud.ErrorCode(want[2].Err) != cloud.EInvalid {
		t.Errorf("single applies: nowhere %v, yard-2 %v; want not found and invalid", want[1].Err, want[2].Err)
	}

	for i, site := range []string{"yard-1", "yard-2"} {
		hs, _ := single.svc.EventHighWater(single.ctx, site)
		hb, _ := batch.svc.EventHighWater(batch.ctx, site)
		if hs != hb {
			t.Errorf("%s high water: batch %d, single %d", site, hb, hs)
		}
		os, _ := single.svc.GetOrder(single.ctx, single.plat, orders[i])
		ob, _ := batch.svc.GetOrder(batch.ctx, batch.plat, orders2[i])
		if os.State != ob.State {
			t.Errorf("%s order: batch %s, single %s", site, ob.State, os.State)
		}
	}
	if o, _ := batch.svc.GetOrder(batch.ctx, batch.plat, orders2[0]); o.State != cloud.StatePickedUp {
		t.Errorf("yard-1 order after the batch: %s, want picked up", o.State)
	}
	ss, sb := single.svc.Stats(), batch.svc.Stats()
	if ss.EventsApplied.Load() != sb.EventsApplied.Load() || ss.AlarmsRaised.Load() != sb.AlarmsRaised.Load() ||
		ss.UnlockFailures.Load() != sb.UnlockFailures.Load() {
		t.Errorf("stats: batch applied %d raised %d jams %d; single %d %d %d", sb.EventsApplied.Load(), sb.AlarmsRaised.Load(),
			sb.UnlockFailures.Load(), ss.EventsApplied.Load(), ss.AlarmsRaised.Load(), ss.UnlockFailures.Load())
	}
	if n := sb.EventsApplied.Load(); n != 5 {
		t.Errorf("events applied: %d, want 5 (duplicates and refused events do not count)", n)
	}
	as, _ := single.svc.Audit(single.ctx, single.ops, cloud.AuditFilter{Limit: 1000})
	ab, _ := batch.svc.Audit(batch.ctx, batch.ops, cloud.AuditFilter{Limit: 1000})
	if actions(as) != actions(ab) {
		t.Errorf("audit: batch %s, single %s", actions(ab), actions(as))
	}

	// Applying the same runs again changes nothing: every event is a duplicate now.
	again := batch.svc.ApplyEdgeEvents(batch.ctx, runsFor(orders2))
	if again[0].Applied != 0 || again[0].Ack != 3 || again[2].Applied != 0 || again[2].Ack != 2 {
		t.Errorf("replayed batch: %+v", again)
	}
	if n := sb.EventsApplied.Load(); n != 5 {
		t.Errorf("events applied after the replay: %d, want 5", n)
	}
}

// actions lists the audit entries' sites and actions, sorted: entries of one instant
// come back in no particular order.
func actions(es []cloud.AuditEntry) string {
	var out []string
	for _, e := range es {
		out = append(out, e.Site+":"+e.Action)
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

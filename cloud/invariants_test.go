package cloud_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/protocol"
)

// healthy is a store with an order in each of the common states, a command and a
// loading credential: the checker must find nothing wrong with it.
type healthy struct {
	*env
	assigned, loaded, picked string // order ids
	cmd                      string
}

func newHealthy(t *testing.T) *healthy {
	t.Helper()
	e := newEnv(t)
	e.site("s1", nil, bank(2, []protocol.Zone{protocol.ZoneChilled, protocol.ZoneAmbient}, []protocol.Size{protocol.SizeS, protocol.SizeM}))
	h := &healthy{env: e}
	create := func(ext string) cloud.Order {
		t.Helper()
		rc, err := e.svc.CreateOrder(e.ctx, e.plat, "k-"+ext, e.orderReq("s1", ext, cloud.Parcel{Size: protocol.SizeS, Zone: protocol.ZoneChilled}))
		if err != nil {
			t.Fatal(err)
		}
		return rc.Order
	}
	h.assigned = create("a").ID
	lo := create("l")
	e.mustEvent("s1", protocol.Event{Kind: protocol.EventLoaded, Credential: protocol.CredDriver, Order: lo.ID, Compartment: lo.Slots[0].Compartment})
	h.loaded = lo.ID
	po := create("p")
	e.mustEvent("s1", protocol.Event{Kind: protocol.EventLoaded, Credential: protocol.CredDriver, Order: po.ID, Compartment: po.Slots[0].Compartment})
	e.mustEvent("s1", protocol.Event{Kind: protocol.EventPickedUp, Credential: protocol.CredPickup, Order: po.ID})
	h.picked = po.ID
	cmd, err := e.svc.OpenCompartment(e.ctx, e.ops, "s1", 8, "test")
	if err != nil {
		t.Fatal(err)
	}
	h.cmd = cmd.Command.ID
	if _, err := e.svc.IssueLoadingCredential(e.ctx, e.drv, "s1"); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]cloud.OrderState{h.assigned: cloud.StateAssigned, h.loaded: cloud.StateLoaded, h.picked: cloud.StatePickedUp} {
		if got := h.order(t, id).State; got != want {
			t.Fatalf("order %s is %s, want %s", id, got, want)
		}
	}
	return h
}

func (h *healthy) order(t *testing.T, id string) cloud.Order {
	t.Helper()
	o, err := h.svc.GetOrder(h.ctx, h.ops, id)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// edit rewrites the JSON record bucket/key through fn, as a bug (or a second writer
// without a fence) might.
func edit(t *testing.T, tx cloud.Tx, bucket, key string, fn func(m map[string]any)) {
	t.Helper()
	raw := tx.Get(bucket, key)
	if raw == nil {
		t.Fatalf("no record %s/%s", bucket, key)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	fn(m)
	b, _ := json.Marshal(m)
	if err := tx.Put(bucket, key, b); err != nil {
		t.Fatal(err)
	}
}

// firstKey is the first key of bucket with prefix.
func firstKey(t *testing.T, tx cloud.Tx, bucket, prefix string, match func(k string, v []byte) bool) string {
	t.Helper()
	var found string
	tx.Scan(bucket, prefix, func(k string, v []byte) bool {
		if match == nil || match(k, v) {
			found = k
			return false
		}
		return true
	})
	if found == "" {
		t.Fatalf("no key in %s with prefix %q", bucket, prefix)
	}
	return found
}

func TestCheckInvariantsHealthy(t *testing.T) {
	h := newHealthy(t)
	vs, err := cloud.CheckInvariants(h.ctx, h.db)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 0 {
		t.Fatalf("a healthy store has violations: %v", vs)
	}
}

// TestCheckInvariantsCatches corrupts a healthy store one way at a time and wants the
// checker to name the broken rule.
func TestCheckInvariantsCatches(t *testing.T) {
	tests := []struct {
		name    string
		rule    string
		corrupt func(t *testing.T, h *healthy, tx cloud.Tx)
	}{
		{"two live orders in one compartment", cloud.RuleDoubleBooked, func(t *testing.T, h *healthy, tx cloud.Tx) {
			other := h.order(t, h.loaded).Slots[0]
			edit(t, tx, "orders", h.assigned, func(m map[string]any) {
				m["slots"].([]any)[0].(map[string]any)["compartment"] = other.Compartment
			})
		}},
		{"a compartment naming a final order", cloud.RuleCompartmentOrder, func(t *testing.T, h *healthy, tx cloud.Tx) {
			n := h.order(t, h.picked).Slots[0].Compartment
			key := firstKey(t, tx, "comps", "s1/", func(_ string, v []byte) bool {
				var c cloud.Compartment
				json.Unmarshal(v, &c)
				return c.Number == n
			})
			edit(t, tx, "comps", key, func(m map[string]any) { m["order"] = h.picked })
		}},
		{"a slot's generation ahead of its compartment", cloud.RuleGeneration, func(t *testing.T, h *healthy, tx cloud.Tx) {
			edit(t, tx, "orders", h.picked, func(m map[string]any) {
				m["slots"].([]any)[0].(map[string]any)["generation"] = 1e6
			})
		}},
		{"a free compartment missing from the free index", cloud.RuleFreeIndex, func(t *testing.T, h *healthy, tx cloud.Tx) {
			tx.Delete("free", firstKey(t, tx, "free", "s1/", nil))
		}},
		{"a live code missing from the codes index", cloud.RuleCodeIndex, func(t *testing.T, h *healthy, tx cloud.Tx) {
			tx.Delete("codes", "s1/"+h.order(t, h.loaded).CodeDigest)
		}},
		{"a live order's deadline missing from the due index", cloud.RuleDueIndex, func(t *testing.T, h *healthy, tx cloud.Tx) {
			tx.Delete("due", firstKey(t, tx, "due", "", func(k string, _ []byte) bool { return strings.HasSuffix(k, "/"+h.assigned) }))
		}},
		{"an order picked up twice", cloud.RuleEffectTwice, func(t *testing.T, h *healthy, tx cloud.Tx) {
			key := firstKey(t, tx, "audit", "", func(_ string, v []byte) bool {
				var e cloud.AuditEntry
				json.Unmarshal(v, &e)
				return e.Action == "picked_up" && e.Order == h.picked
			})
			dup := key + "x"
			tx.Put("audit", dup, tx.Get("audit", key))
			edit(t, tx, "audit", dup, func(m map[string]any) { m["id"] = dup })
			tx.Put("audit_site", "s1/"+dup, []byte{})
		}},
		{"a live order marked cancelled without closing", cloud.RuleOrderState, func(t *testing.T, h *healthy, tx cloud.Tx) {
			edit(t, tx, "orders", h.loaded, func(m map[string]any) { m["state"] = "cancelled" })
		}},
		{"a live order missing from the live index", cloud.RuleOrderIndex, func(t *testing.T, h *healthy, tx cloud.Tx) {
			tx.Delete("live", "s1/"+h.assigned)
		}},
		{"a failed command without an error", cloud.RuleCommand, func(t *testing.T, h *healthy, tx cloud.Tx) {
			edit(t, tx, "cmds", h.cmd, func(m map[string]any) { m["state"] = "FAILED"; delete(m, "error") })
		}},
		{"an edge ahead of the cloud's desired version", cloud.RuleDesiredVersion, func(t *testing.T, h *healthy, tx cloud.Tx) {
			edit(t, tx, "sites", "s1", func(m map[string]any) { m["edge_desired_version"] = m["desired_version"].(float64) + 1 })
		}},
		{"a record filed under another key", cloud.RuleBadRecord, func(t *testing.T, h *healthy, tx cloud.Tx) {
			tx.Put("orders", "ord_elsewhere", tx.Get("orders", h.picked))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHealthy(t)
			if err := h.db.Update(h.ctx, func(tx cloud.Tx) error { tc.corrupt(t, h, tx); return nil }); err != nil {
				t.Fatal(err)
			}
			vs, err := cloud.CheckInvariants(h.ctx, h.db)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(vs, func(v cloud.Violation) bool { return v.Rule == tc.rule }) {
				t.Fatalf("want a %s violation, got %v", tc.rule, vs)
			}
			for _, v := range vs {
				t.Logf("found %s", v)
			}
		})
	}
}

func TestCheckInvariantsUndecodable(t *testing.T) {
	h := newHealthy(t)
	if err := h.db.Update(h.ctx, func(tx cloud.Tx) error { return tx.Put("orders", h.loaded, []byte("{not json")) }); err != nil {
		t.Fatal(err)
	}
	if _, err := cloud.CheckInvariants(h.ctx, h.db); err == nil || !strings.Contains(err.Error(), "orders/"+h.loaded) {
		t.Fatalf("got %v, want a decode error naming the record", err)
	}
}

package cloudd_test

import (
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/larder-lockers/larder/cloud/notify"
	"github.com/larder-lockers/larder/protocol"
)

// hookSink is a platform's webhook endpoint that keeps every verified CloudEvent.
type hookSink struct {
	t      *testing.T
	mu     sync.Mutex
	secret []byte
	events []map[string]any
}

func (h *hookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := notify.Verify(h.secret, r.Header.Get("Larder-Signature"), body, time.Now(), time.Minute); err != nil {
		h.t.Errorf("webhook signature: %v", err)
	}
	var ev map[string]any
	json.Unmarshal(body, &ev)
	h.events = append(h.events, ev)
}

// data waits for the CloudEvent typ about order and returns its data.
func (h *hookSink) data(typ, order string) map[string]any {
	h.t.Helper()
	var found map[string]any
	waitFor(h.t, typ+" of "+order, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, ev := range h.events {
			if ev["type"] == "com.larder.order."+typ && ev["subject"] == order {
				found = ev["data"].(map[string]any)
				return true
			}
		}
		return false
	})
	return found
}

// yard starts a cloud with one provisioned site (yard-1, six chilled compartments) and
// its edge connected, a platform ("veggie") with its webhook at hooks, and ops.
func yard(t *testing.T, hooks *hookSink) (edge *edge, platform, ops client) {
	t.Helper()
	srv := httptest.NewServer(hooks)
	t.Cleanup(srv.Close)
	m := startCloud(t, nil)
	admin := client{t, m.HTTPURL(), adminKey}
	if st, _ := admin.do("POST", "/v1/sites", map[string]any{"id": "yard-1", "name": "Yard 1"}); st != 201 {
		t.Fatalf("create site: %d", st)
	}
	_, prov := admin.do("POST", "/v1/sites/yard-1/provision", nil)
	_, k := admin.do("POST", "/v1/keys", map[string]any{"role": "platform", "subject": "veggie"})
	platform = client{t, m.HTTPURL(), k["key"].(string)}
	_, k = admin.do("POST", "/v1/keys", map[string]any{"role": "ops", "subject": "olga"})
	ops = client{t, m.HTTPURL(), k["key"].(string)}
	st, wh := platform.do("PUT", "/v1/platforms/veggie/webhook", map[string]any{"url": srv.URL})
	if st != 200 {
		t.Fatalf("webhook: %d %v", st, wh)
	}
	hooks.mu.Lock()
	hooks.secret, _ = hex.DecodeString(wh["secret"].(string))
	hooks.mu.Unlock()
	edge = newEdge(t, m.BrokerURL(), "yard-1", prov["mqtt_password"].(string))
	edge.publish(protocol.ChanStatus, 0, protocol.Status{Online: true, Software: "e2e"})
	var comps []protocol.Compartment
	for i := 1; i <= 6; i++ {
		comps = append(comps, protocol.Compartment{Number: i, Size: protocol.SizeM, Zone: protocol.ZoneChilled, HeightCM: 30 * i, Lock: i})
	}
	edge.publish(protocol.ChanBirth, 0, protocol.Birth{Software: "e2e", Compartments: comps})
	waitFor(t, "desired snapshot", func() bool { edge.mu.Lock(); defer edge.mu.Unlock(); return len(edge.desired) > 0 })
	return edge, platform, ops
}

// settled waits until the cloud acknowledged every event the edge sent.
func (e *edge) settled() {
	e.t.Helper()
	waitFor(e.t, "acks", func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		// The highest ack, not the last appended: with OrderMatters false paho runs
		// the handlers concurrently, so acks may be appended out of order.
		return len(e.acks) > 0 && slices.Max(e.acks) >= e.seq
	})
}

// jsonOf is v as the generic JSON a client decodes.
func jsonOf(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	json.Unmarshal(b, &out)
	return out
}

// An edge's cold-chain record, over MQTT, reaches the order's REST representation and
// the platform's webhook; an edge of protocol 1.0 leaves it unknown, never zero.
func TestColdChainReachesThePlatform(t *testing.T) {
	hooks := &hookSink{t: t}
	e, platform, _ := yard(t, hooks)

	kept, comp := createOrder(t, platform, "CC-1", "chilled")
	e.event(protocol.Event{Kind: protocol.EventLoaded, Credential: protocol.CredDriver, Order: kept, Compartment: comp})
	loaded := time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC)
	peak := 9.5
	rec := protocol.ColdChain{From: loaded, To: loaded.Add(3 * time.Hour), LimitC: 8, AboveSeconds: 420, PeakC: &peak, MissingSeconds: 130}
	e.event(protocol.Event{Kind: protocol.EventPickedUp, Credential: protocol.CredPickup, Order: kept, ColdChain: &rec})

	old, comp := createOrder(t, platform, "CC-2", "chilled")
	e.event(protocol.Event{Kind: protocol.EventLoaded, Credential: protocol.CredDriver, Order: old, Compartment: comp})
	e.event(protocol.Event{Kind: protocol.EventPickedUp, Credential: protocol.CredPickup, Order: old})
	e.settled()

	want := map[string]any{"known": true, "from": "2026-05-04T09:00:00Z", "to": "2026-05-04T12:00:00Z", "limit_c": 8.0,
		"above_seconds": 420.0, "peak_c": 9.5, "missing_seconds": 130.0}
	unknown := map[string]any{"known": false}
	for id, want := range map[string]map[string]any{kept: want, old: unknown} {
		_, o := platform.do("GET", "/v1/orders/"+id, nil)
		if diff := cmp.Diff(jsonOf(t, want), o["cold_chain"]); o["state"] != "picked_up" || diff != "" {
			t.Errorf("order %s (%v): cold_chain (-want +got):\n%s", id, o["state"], diff)
		}
		if diff := cmp.Diff(jsonOf(t, want), hooks.data("picked_up", id)["cold_chain"]); diff != "" {
			t.Errorf("webhook order.picked_up of %s: cold_chain (-want +got):\n%s", id, diff)
		}
	}
	// The list reports carry it too, for the reports to add up.
	_, list := platform.do("GET", "/v1/orders?state=picked_up", nil)
	if n := len(list["orders"].([]any)); n != 2 {
		t.Fatalf("%d picked-up orders listed", n)
	}
	for _, o := range list["orders"].([]any) {
		if _, ok := o.(map[string]any)["cold_chain"]; !ok {
			t.Errorf("listed order without cold_chain: %v", o)
		}
	}
}

// A compromised order is redelivered over REST: the replacement is a new order, linked
// both ways, with the refund recorded and the redelivery audited; a replay returns the
// same replacement; a second redelivery, another platform, ops and an order in good
// order are refused.
func TestRedeliverOverHTTP(t *testing.T) {
	hooks := &hookSink{t: t}
	e, platform, ops := yard(t, hooks)
	bad, comp := createOrder(t, platform, "RD-1", "chilled")
	e.event(protocol.Event{Kind: protocol.EventLoaded, Credential: protocol.CredDriver, Order: bad, Compartment: comp})
	e.event(protocol.Event{Kind: protocol.EventOrderCompromised, Credential: protocol.CredNone, Order: bad, Seconds: 2400})
	good, comp := createOrder(t, platform, "RD-2", "chilled")
	e.event(protocol.Event{Kind: protocol.EventLoaded, Credential: protocol.CredDriver, Order: good, Compartment: comp})
	warm, comp := createOrder(t, platform, "RD-3", "chilled")
	e.event(protocol.Event{Kind: protocol.EventLoaded, Credential: protocol.CredDriver, Order: warm, Compartment: comp})
	e.event(protocol.Event{Kind: protocol.EventOrderCompromised, Credential: protocol.CredNone, Order: warm, Seconds: 1900})
	e.settled()

	now := time.Now().UTC()
	body := map[string]any{"window": map[string]any{"start": now.Add(time.Hour).Format(time.RFC3339), "end": now.Add(3 * time.Hour).Format(time.RFC3339)},
		"refund": map[string]any{"amount_cents": 1290, "currency": "CNY", "reference": "pay-77", "note": "too warm"}}
	st, rc := platform.do("POST", "/v1/orders/"+bad+"/redeliver", body, "Idempotency-Key", "rd-1")
	if st != 201 {
		t.Fatalf("redeliver: %d %v", st, rc)
	}
	repl := rc["order"].(map[string]any)
	id := repl["id"].(string)
	if id == bad || repl["replaces"] != bad || repl["state"] != "assigned" || repl["external_id"] != "RD-1/redelivery" || len(repl["slots"].([]any)) != 1 {
		t.Fatalf("replacement %v", repl)
	}
	_, orig := platform.do("GET", "/v1/orders/"+bad, nil)
	wantRefund := map[string]any{"amount_cents": 1290.0, "currency": "CNY", "reference": "pay-77", "note": "too warm"}
	if orig["replaced_by"] != id || orig["state"] != "compromised" || orig["compromised"] != true || !cmp.Equal(orig["refund"], wantRefund) {
		t.Fatalf("original after redelivery %v", orig)
	}
	if d := hooks.data("created", id); d["replaces"] != bad {
		t.Errorf("order.created of the replacement: %v", d)
	}
	// The same key and request: the same replacement, not a second one.
	st, again := platform.do("POST", "/v1/orders/"+bad+"/redeliver", body, "Idempotency-Key", "rd-1")
	if st != 200 || again["order"].(map[string]any)["id"] != id {
		t.Fatalf("replay: %d %v", st, again)
	}
	body["refund"] = nil
	for _, tc := range []struct {
		name   string
		c      client
		order  string
		key    string
		status int
		code   string
	}{
		{"the same key, another request", platform, bad, "rd-1", 422, "idempotency_mismatch"},
		{"redelivered already", platform, bad, "rd-2", 409, "conflict"},
		{"an order in good order", platform, good, "rd-3", 409, "conflict"},
		{"ops", ops, bad, "rd-4", 403, "forbidden"},
		{"no idempotency key", platform, bad, "", 400, "invalid"},
		{"an unknown order", platform, "ord_nope", "rd-5", 404, "not_found"},
	} {
		st, out := tc.c.do("POST", "/v1/orders/"+tc.order+"/redeliver", body, "Idempotency-Key", tc.key)
		if got, _ := out["error"].(map[string]any); st != tc.status || got["code"] != tc.code {
			t.Errorf("%s: %d %v, want %d %s", tc.name, st, out, tc.status, tc.code)
		}
	}
	// Bad input names its field and changes nothing, even for an order that can be
	// redelivered.
	window := body["window"]
	for _, tc := range []struct {
		name, field string
		body        map[string]any
		status      int
	}{
		{"no window", "window.start", map[string]any{}, 400},
		{"a window in the past", "window.end", map[string]any{"window": map[string]any{"start": now.Add(-3 * time.Hour).Format(time.RFC3339), "end": now.Add(-time.Hour).Format(time.RFC3339)}}, 400},
		{"a refund without currency", "refund.currency", map[string]any{"window": window, "refund": map[string]any{"amount_cents": 100}}, 400},
		{"a negative refund", "refund.amount_cents", map[string]any{"window": window, "refund": map[string]any{"amount_cents": -1, "currency": "CNY"}}, 400},
		{"an unknown field", "cents", map[string]any{"window": window, "refund": map[string]any{"cents": 1, "currency": "CNY"}}, 400},
		{"an external id in use", "external_id", map[string]any{"window": window, "external_id": "RD-2"}, 409},
	} {
		st, out := platform.do("POST", "/v1/orders/"+warm+"/redeliver", tc.body, "Idempotency-Key", "bad-"+tc.name)
		if got, _ := out["error"].(map[string]any); st != tc.status || got["field"] != tc.field {
			t.Errorf("%s: %d %v, want %d on %s", tc.name, st, out, tc.status, tc.field)
		}
	}
	if _, o := platform.do("GET", "/v1/orders/"+warm, nil); o["replaced_by"] != nil || o["refund"] != nil {
		t.Errorf("refused redeliveries changed the order: %v", o)
	}

	_, audit := ops.do("GET", "/v1/audit?site=yard-1", nil)
	n := 0
	for _, a := range audit["entries"].([]any) {
		if a := a.(map[string]any); a["action"] == "redelivered" && a["order"] == bad && a["actor"] == "veggie" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d audit entries of the redelivery: %v", n, audit)
	}
}

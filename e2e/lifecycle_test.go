package e2e_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/larder-lockers/larder/demo"
)

// TestOrderLoadPickup: a platform that hands out codes itself creates an order, a
// driver loads it at the kiosk, the resident types the code with the last four digits
// of the phone, takes the bags and shuts the doors, and the cloud shows the order picked
// up with its compartments free again.
func TestOrderLoadPickup(t *testing.T) {
	s := newSystem(t, sysOpts{})
	const phone = "+8613800138000"
	rc := s.order("ext-pickup-1", phone, "platform", demo.Parcel{Size: "M", Zone: "chilled"}, demo.Parcel{Size: "M", Zone: "frozen"})
	if rc.Pickup == nil || len(rc.Pickup.Code) != 8 {
		t.Fatalf("receipt without a code: %+v", rc)
	}
	s.loadAndPickUp(rc.Order, rc.Pickup.Code, phone)
}

// loadAndPickUp walks a two-compartment order from the driver to the resident. An
// empty code means the cloud sends it: it is read from the resident's SMS.
func (s *system) loadAndPickUp(o demo.Order, code, phone string) {
	t := s.t
	t.Helper()
	if len(o.Slots) != 2 {
		t.Fatalf("chilled+frozen order got slots %+v", o.Slots)
	}
	tok := s.driverToken()
	s.load(tok, o)
	s.waitState(o.ID, "loaded", 20*time.Second)
	if code == "" {
		code = s.sms.waitCode(t, phone, 20*time.Second)
	}
	// A wrong second factor does not open anything.
	if _, err := s.edge.Kiosk.Pickup(s.ctx, code, "0000"); demo.StatusOf(err) != 401 {
		t.Fatalf("wrong phone digits: %v", err)
	}
	res, err := s.people.PickUp(s.ctx, code, lastFour(phone))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Doors) != 2 {
		t.Fatalf("pickup opened %+v", res.Doors)
	}
	done := s.waitState(o.ID, "picked_up", 20*time.Second)
	// The edge measured the frozen zone (the order's coldest) all along, and said so.
	if cc := done.ColdChain; cc == nil || !cc.Known || cc.LimitC != -15 || cc.PeakC == nil || cc.MissingSeconds != 0 ||
		cc.From.After(cc.To) || cc.To.Sub(cc.From) > 10*time.Minute {
		t.Fatalf("cold chain of the picked-up order: %+v", cc)
	}
	// The code was single use.
	if _, err := s.edge.Kiosk.Pickup(s.ctx, code, lastFour(phone)); demo.StatusOf(err) != 401 && demo.StatusOf(err) != 409 {
		t.Fatalf("code reused: %v", err)
	}
	st, err := s.ops.Site(s.ctx, s.site)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range st.CompartmentList {
		if c.Order == o.ID {
			t.Fatalf("compartment %d still bound to the picked-up order", c.Number)
		}
	}
	items, err := s.sim.Control.Items(s.ctx)
	if err != nil || len(items) != 0 {
		t.Fatalf("items left in the bank: %v %v", items, err)
	}
}

// TestNotificationCarriesCode: the cloud sends the code itself. When the driver has
// loaded the order, the resident's SMS carries the code (drawn at admission, its digest
// at the edge since), the platform's signed "loaded" webhook does not; the resident types
// the code at the kiosk at once, and the platform hears "picked_up".
func TestNotificationCarriesCode(t *testing.T) {
	s := newSystem(t, sysOpts{})
	const phone = "+8613800138001"
	rc := s.order("ext-notify-1", phone, "notifier", demo.Parcel{Size: "M", Zone: "chilled"}, demo.Parcel{Size: "M", Zone: "frozen"})
	if rc.Pickup != nil {
		t.Fatal("a notifier order's receipt carries a code")
	}
	s.hooks.wait(t, "created", rc.Order.ID, 20*time.Second)
	s.loadAndPickUp(rc.Order, "", phone)
	for _, kind := range []string{"created", "loaded", "picked_up"} {
		ev := s.hooks.wait(t, kind, rc.Order.ID, 20*time.Second)
		if ev.SigErr != nil {
			t.Errorf("%s webhook: signature: %v", kind, ev.SigErr)
		}
		if ev.code() != "" {
			t.Errorf("%s webhook carries the code of an order the cloud notifies itself", kind)
		}
	}
}

// TestPlatformDeliveredCode: a platform that hands out codes itself gets the code in the
// receipt, once; the signed "loaded" webhook tells it the order is ready, and the
// resident gets no SMS from the cloud.
func TestPlatformDeliveredCode(t *testing.T) {
	s := newSystem(t, sysOpts{})
	const phone = "+8613800138002"
	rc := s.order("ext-notify-2", phone, "platform", demo.Parcel{Size: "M", Zone: "ambient"})
	tok := s.driverToken()
	s.load(tok, rc.Order)
	ev := s.hooks.wait(t, "loaded", rc.Order.ID, 20*time.Second)
	if ev.SigErr != nil {
		t.Fatalf("signature: %v", ev.SigErr)
	}
	if c := ev.code(); c != "" && c != rc.Pickup.Code {
		t.Fatalf("loaded webhook code %q, receipt %q", c, rc.Pickup.Code)
	}
	// Once nothing is pending in the cloud's outbox, nothing more will be sent.
	if err := demo.Eventually(s.ctx, 20*time.Second, "notification outbox empty", func() error {
		b, err := s.ops.Backlog(s.ctx)
		if err == nil && (b.Pending != 0 || b.Delivered == 0) {
			err = fmt.Errorf("backlog %+v", b)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	s.sms.mu.Lock()
	defer s.sms.mu.Unlock()
	for _, m := range s.sms.texts {
		if m.To == phone {
			t.Fatalf("the resident of a platform-delivered order got an SMS: %q", m.Text)
		}
	}
}

// TestRemoteOpenByOps: ops open a compartment from the cloud; the command succeeds only
// when the door sensor saw the door open.
func TestRemoteOpenByOps(t *testing.T) {
	s := newSystem(t, sysOpts{})
	const n = 26
	cmd, err := s.ops.OpenCompartment(s.ctx, s.site, n, "cleaning")
	if err != nil {
		t.Fatal(err)
	}
	if err := demo.Eventually(s.ctx, 20*time.Second, "remote open succeeds", func() error {
		c, err := s.ops.Command(s.ctx, cmd.ID)
		if err != nil {
			return err
		}
		switch c.State {
		case "SUCCEEDED":
			return nil
		case "FAILED", "TIMED_OUT", "REJECTED":
			t.Fatalf("remote open ended %s (%s)", c.State, c.Error)
		}
		return fmt.Errorf("state %s", c.State)
	}); err != nil {
		t.Fatal(err)
	}
	open, err := s.sim.Control.DoorOpen(s.ctx, n)
	if err != nil || !open {
		t.Fatalf("door %d open=%v after a successful remote open (%v)", n, open, err)
	}
	if err := s.sim.Control.Close(s.ctx, n); err != nil {
		t.Fatal(err)
	}
	// A driver's role may not open doors remotely.
	if _, err := s.driver.OpenCompartment(s.ctx, s.site, n, "curious"); demo.StatusOf(err) != 403 {
		t.Fatalf("driver remote open: %v", err)
	}
}

// TestExpiryReturn: a loaded order nobody picks up expires; its code stops working, the
// driver takes it back at the kiosk and the cloud records it returned.
func TestExpiryReturn(t *testing.T) {
	s := newSystem(t, sysOpts{hold: 8 * time.Second})
	const phone = "+8613900139000"
	rc := s.order("ext-expire-1", phone, "platform", demo.Parcel{Size: "M", Zone: "ambient"})
	o := rc.Order
	tok := s.driverToken()
	s.load(tok, o)
	s.waitState(o.ID, "loaded", 20*time.Second)
	s.waitState(o.ID, "expired", 40*time.Second)
	if _, err := s.edge.Kiosk.Pickup(s.ctx, rc.Pickup.Code, lastFour(phone)); demo.StatusOf(err) != 410 {
		t.Fatalf("pickup after expiry: %v", err)
	}
	tok = s.driverToken()
	s.waitManifest(tok, o.ID, "expired")
	doors, err := s.edge.Kiosk.DriverReturn(s.ctx, tok, o.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range doors {
		if err := s.people.Empty(s.ctx, d.Number); err != nil {
			t.Fatal(err)
		}
	}
	s.waitState(o.ID, "returned", 20*time.Second)
}

// TestEdgeOfflineConverges: the edge's uplink is cut after the order reached it; the
// driver loads and the resident picks up with the cloud unreachable; when the link
// returns, the cloud converges to picked up and the edge's outbox drains.
func TestEdgeOfflineConverges(t *testing.T) {
	s := newSystem(t, sysOpts{})
	const phone = "+8613700137000"
	rc := s.order("ext-offline-1", phone, "platform", demo.Parcel{Size: "M", Zone: "chilled"})
	o := rc.Order
	tok := s.driverToken()
	s.waitManifest(tok, o.ID, "reserved")

	s.proxy.Cut()
	s.waitOnline(false, 30*time.Second)
	if err := s.people.Load(s.ctx, tok, o.ID, o.Compartments()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.people.PickUp(s.ctx, rc.Pickup.Code, lastFour(phone)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.platform.Order(s.ctx, o.ID); got.State != "assigned" {
		t.Fatalf("the cloud heard through a cut link: %s", got.State)
	}

	resumed := time.Now()
	s.proxy.Resume(t)
	s.waitOnline(true, 60*time.Second)
	got := s.waitState(o.ID, "picked_up", 60*time.Second)
	s.waitDrained(30 * time.Second)
	// The edge is the authority for what happened and when: the cloud records the
	// loading at the time it happened, not when it heard of it. (closed_at is the
	// cloud's own time of closing the order.)
	if got.LoadedAt.IsZero() || !got.LoadedAt.Before(resumed) {
		t.Fatalf("loaded at %v: want before the link came back at %v", got.LoadedAt, resumed)
	}
}

// TestBrokerRestartMidFlow: a private Mosquitto is stopped after the order is created
// and before the driver loads it, and started again before the pickup; the cloud and
// the edge reconnect on their own and the order completes.
func TestBrokerRestartMidFlow(t *testing.T) {
	m := startMosquitto(t)
	s := newSystem(t, sysOpts{broker: m.Addr})
	const phone = "+8613600136000"
	rc := s.order("ext-restart-1", phone, "platform", demo.Parcel{Size: "M", Zone: "frozen"})
	o := rc.Order
	tok := s.driverToken()
	s.waitManifest(tok, o.ID, "reserved")

	m.Stop()
	if err := s.people.Load(s.ctx, tok, o.ID, o.Compartments()); err != nil {
		t.Fatal(err)
	}
	m.Start(t)
	s.waitState(o.ID, "loaded", 60*time.Second)

	// A second order created after the restart reaches the edge (the cloud's
	// subscriptions and the edge's came back).
	rc2 := s.order("ext-restart-2", phone, "platform", demo.Parcel{Size: "M", Zone: "chilled"})
	s.load(tok, rc2.Order)
	s.waitState(rc2.Order.ID, "loaded", 30*time.Second)

	if _, err := s.people.PickUp(s.ctx, rc.Pickup.Code, lastFour(phone)); err != nil {
		t.Fatal(err)
	}
	s.waitState(o.ID, "picked_up", 30*time.Second)
	s.waitDrained(30 * time.Second)
}

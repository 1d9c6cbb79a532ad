package e2e_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/larder-lockers/larder/demo"
)

// TestArrivalCodeWorksWithoutTheLoadingDelta: from the moment the driver starts loading,
// nothing the cloud sends reaches the edge (a one-way link), and the link is cut once the
// resident has the SMS. The code in the SMS opens the doors at once, with no desired
// delta after the loading and no reconnect: its digest reached the edge with the
// reservation, when the order was admitted.
func TestArrivalCodeWorksWithoutTheLoadingDelta(t *testing.T) {
	s := newSystem(t, sysOpts{})
	const phone = "+8613500135000"
	rc := s.order("ext-arrival-1", phone, "notifier", demo.Parcel{Size: "M", Zone: "chilled"}, demo.Parcel{Size: "M", Zone: "frozen"})
	o := rc.Order
	tok := s.driverToken()
	s.waitManifest(tok, o.ID, "reserved")

	s.proxy.HoldDown()
	if err := s.people.Load(s.ctx, tok, o.ID, o.Compartments()); err != nil {
		t.Fatal(err)
	}
	s.waitState(o.ID, "loaded", 30*time.Second)
	code := s.sms.waitCode(t, phone, 20*time.Second)
	s.proxy.Cut()

	res, err := s.people.PickUp(s.ctx, code, lastFour(phone))
	if err != nil {
		t.Fatalf("the SMS code at the kiosk, link cut after loading: %v", err)
	}
	if len(res.Doors) != 2 {
		t.Fatalf("pickup opened %+v", res.Doors)
	}
}

// TestReissuedCodeWaitsForTheEdge: a code reissued through the API reaches the resident
// only once the edge has applied the delta carrying its digest. With the link up that
// is a moment (the edge reports the version it applied at once); with the edge out of
// reach no SMS goes out, and when the link returns the resident gets the new code,
// which opens the doors at its first try.
func TestReissuedCodeWaitsForTheEdge(t *testing.T) {
	s := newSystem(t, sysOpts{})
	const phone = "+8613400134000"
	rc := s.order("ext-reissue-1", phone, "notifier", demo.Parcel{Size: "M", Zone: "chilled"})
	o := rc.Order
	tok := s.driverToken()
	s.load(tok, o)
	s.waitState(o.ID, "loaded", 30*time.Second)
	arrival := s.sms.waitCode(t, phone, 20*time.Second)

	if _, err := s.ops.ReissueCode(s.ctx, o.ID); err != nil {
		t.Fatal(err)
	}
	online := s.sms.waitNewCode(t, phone, []string{arrival}, 30*time.Second)

	s.proxy.Cut()
	s.waitOnline(false, 30*time.Second)
	if _, err := s.ops.ReissueCode(s.ctx, o.ID); err != nil {
		t.Fatal(err)
	}
	// Once nothing is pending in the cloud's outbox, nothing more will be sent.
	if err := demo.Eventually(s.ctx, 20*time.Second, "notification outbox empty", func() error {
		b, err := s.ops.Backlog(s.ctx)
		if err == nil && b.Pending != 0 {
			err = fmt.Errorf("backlog %+v", b)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if got := s.sms.codes(phone); len(got) != 2 {
		t.Fatalf("codes texted %v while the edge was out of reach: want only the arrival's and the first reissue's", got)
	}

	s.proxy.Resume(t)
	s.waitOnline(true, 60*time.Second)
	offline := s.sms.waitNewCode(t, phone, []string{arrival, online}, 60*time.Second)
	res, err := s.people.PickUp(s.ctx, offline, lastFour(phone))
	if err != nil {
		t.Fatalf("the reissued code at its first try: %v", err)
	}
	if len(res.Doors) != 1 {
		t.Fatalf("pickup opened %+v", res.Doors)
	}
	s.waitState(o.ID, "picked_up", 30*time.Second)
}

package cloud_test

import (
	"testing"
	"time"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/protocol"
)

var (
	chilledM = cloud.Parcel{Size: protocol.SizeM, Zone: protocol.ZoneChilled}
	chilledS = cloud.Parcel{Size: protocol.SizeS, Zone: protocol.ZoneChilled}
	ambientS = cloud.Parcel{Size: protocol.SizeS, Zone: protocol.ZoneAmbient}
	frozenL  = cloud.Parcel{Size: protocol.SizeL, Zone: protocol.ZoneFrozen}
)

func TestCreateOrderAssignsCodesAndPublishes(t *testing.T) {
	e := newEnv(t)
	e.site("yard-1", nil, bank(2, []protocol.Zone{protocol.ZoneChilled, protocol.ZoneAmbient}, []protocol.Size{protocol.SizeS, protocol.SizeM}))
	rc, err := e.svc.CreateOrder(e.ctx, e.plat, "k1", e.orderReq("yard-1", "ext-1", chilledS, chilledS, ambientS))
	if err != nil {
		t.Fatal(err)
	}
	o := rc.Order
	// Two chilled S parcels take two S compartments (best fit: S before M), the ambient
	// one a third.
	if o.State != cloud.StateAssigned || len(o.Slots) != 3 || o.Slots[0].Size != protocol.SizeS {
		t.Fatalf("order = %+v, want assigned with 3 S slots", o)
	}
	if rc.Code != "" {
		t.Errorf("code returned to a platform that does not deliver codes")
	}
	for _, sl := range o.Slots {
		if sl.Generation != 1 {
			t.Errorf("slot %+v: generation %d, want 1", sl, sl.Generation)
		}
	}
	e.svc.Flush(e.ctx)
	if notes := e.rec.notesOf(cloud.NoteCodeIssued); len(notes) != 0 {
		t.Fatalf("a code was sent before loading: %+v", notes)
	}
	for _, sl := range o.Slots {
		e.mustEvent("yard-1", protocol.Event{Kind: protocol.EventLoaded, Credential: protocol.CredDriver, Order: o.ID, Compartment: sl.Compartment})
	}
	e.svc.Flush(e.ctx)
	notes := e.rec.notesOf(cloud.NoteLoaded)
	if len(notes) != 1 || len(notes[0].Code) != cloud.CodeDigits || notes[0].Recipient == nil {
		t.Fatalf("arrival notices = %+v", notes)
	}
	o, _ = e.svc.GetOrder(e.ctx, e.plat, o.ID)
	key, _ := e.svc.SiteKey(e.ctx, "yard-1")
	if got := protocol.CodeDigest(key, notes[0].Code); got != o.CodeDigest {
		t.Errorf("code digest mismatch")
	}
	if got := protocol.SecondFactorDigest(key, o.ID, "0958"); got != o.FactorDigest {
		t.Errorf("second factor digest mismatch")
	}
	if notes[0].QR != "larder:v1:yard-1:"+notes[0].Code {
		t.Errorf("QR = %q", notes[0].QR)
	}
	ds := e.rec.desired["yard-1"]
	if len(ds) != 2 || ds[0].Version != 1 || len(ds[0].Reservations) != 1 || ds[0].Reservations[0].Order != o.ID {
		t.Fatalf("desired = %+v", ds)
	}
	if ds[0].Reservations[0].CodeDigest != o.CodeDigest || ds[1].Version != 2 || ds[1].Reservations[0].CodeDigest != o.CodeDigest {
		t.Fatalf("the arrival code's digest did not reach the edge with the reservation at admission: %+v", ds)
	}
	if err := ds[0].Validate(); err != nil {
		t.Fatalf("published desired invalid: %v", err)
	}
	if ds[0].Reservations[0].BudgetSeconds != 1800 || ds[0].Reservations[0].Zone != protocol.ZoneChilled {
		t.Errorf("reservation zone/budget = %s/%d", ds[0].Reservations[0].Zone, ds[0].Reservations[0].BudgetSeconds)
	}
	snap, err := e.svc.DesiredSnapshot(e.ctx, "yard-1")
	if err != nil || !snap.Full || snap.Version != 2 || len(snap.Reservations) != 1 {
		t.Fatalf("snapshot = %+v, %v", snap, err)
	}
}

func TestPackingSharesACompartment(t *testing.T) {
	e := newEnv(t)
	e.site("yard-1", nil, bank(1, []protocol.Zone{protocol.ZoneChilled}, []protocol.Size{protocol.SizeL}))
	// Two M parcels fill one L (2+2 units).
	rc, err := e.svc.CreateOrder(e.ctx, e.plat, "k1", e.orderReq("yard-1", "e1", chilledM, chilledM))
	if err != nil {
		t.Fatal(err)
	}
	if len(rc.Order.Slots) != 1 || len(rc.Order.Slots[0].Parcels) != 2 {
		t.Fatalf("slots = %+v", rc.Order.Slots)
	}
}

func TestPlatformDeliversCode(t *testing.T) {
	e := newEnv(t)
	e.site("yard-1", nil, bank(2, []protocol.Zone{protocol.ZoneChilled}, []protocol.Size{protocol.SizeM}))
	req := e.orderReq("yard-1", "e1", chilledS)
	req.CodeDelivery = cloud.DeliverByPlatform
	rc, err := e.svc.CreateOrder(e.ctx, e.plat, "k1", req)
	if err != nil {
		t.Fatal(err)
	}
	if len(rc.Code) != 8 || rc.QR == "" {
		t.Fatalf("receipt code %q qr %q", rc.Code, rc.QR)
	}
	e.svc.Flush(e.ctx)
	if n := e.rec.notesOf(cloud.NoteCodeIssued); len(n) != 0 {
		t.Errorf("code also sent by the notifier: %d", len(n))
	}
	// Replay: same order, no code.
	again, err := e.svc.CreateOrder(e.ctx, e.plat, "k1", req)
	if err != nil || !again.Replayed || again.Order.ID != rc.Order.ID || again.Code != "" {
		t.Fatalf("replay = %+v, %v", again, err)
	}
	// Reissue returns a new code to the platform.
	re, err := e.svc.ReissueCode(e.ctx, e.plat, rc.Order.ID)
	if err != nil || len(re.Code) != 8 || re.Order.CodeDigest == rc.Order.CodeDigest {
		t.Fatalf("reissue = %+v, %v", re, err)
	}
}

func TestIdempotency(t *testing.T) {
	e := newEnv(t)
	e.site("yard-1", nil, bank(3, []protocol.Zone{protocol.ZoneChilled}, []protocol.Size{protocol.SizeM}))
	req := e.orderReq("yard-1", "e1", chilledS)
	a, err := e.svc.CreateOrder(e.ctx, e.plat, "k1", req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.svc.CreateOrder(e.ctx, e.plat, "k1", req)
	if err != nil || b.Order.ID != a.Order.ID || !b.Replayed {
		t.Fatalf("replay gave %+v, %v", b, err)
	}
	other := req
	other.ExternalID = "e2"
	_, err = e.svc.CreateOrder(e.ctx, e.plat, "k1", other)
	wantCode(t, err, cloud.EIdempotency)
	// Another key for the same external id conflicts.
	_, err = e.svc.CreateOrder(e.ctx, e.plat, "k2", req)
	if ce := wantCode(t, err, cloud.EConflict); ce.Field != "external_id" {
		t.Errorf("field = %q", ce.Field)
	}
	// Keys are per platform: another platform may reuse k1.
	p2 := cloud.Principal{Role: cloud.RolePlatform, Subject: "fruit"}
	c, err := e.svc.CreateOrder(e.ctx, p2, "k1", req)
	if err != nil || c.Order.ID == a.Order.ID {
		t.Fatalf("other platform: %+v, %v", c, err)
	}
}

// TestIdempotencyKeysAreForgottenAfterTheRetention: a key replays for
// IdempotencyRetention; after it the sweep forgets it, so a late retry gets the
// external id's conflict (never a second order) and the key may be used again.
func TestIdempotencyKeysAreForgottenAfterTheRetention(t *testing.T) {
	e := newEnv(t)
	e.site("yard-1", nil, bank(3, []protocol.Zone{protocol.ZoneChilled}, []protocol.Size{protocol.SizeM}))
	req := e.orderReq("yard-1", "e1", chilledS)
	// A window that has not ended when the key is forgotten, so that retries validate.
	req.Window.Start, req.Window.End = req.Window.Start.Add(cloud.IdempotencyRetention), req.Window.End.Add(cloud.IdempotencyRetention)
	a, err := e.svc.CreateOrder(e.ctx, e.plat, "k1", req)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Add(cloud.IdempotencyRetention - time.Minute)
	if _, err := e.svc.Sweep(e.ctx); err != nil {
		t.Fatal(err)
	}
	if b, err := e.svc.CreateOrder(e.ctx, e.plat, "k1", req); err != nil || !b.Replayed || b.Order.ID != a.Order.ID {
		t.Fatalf("replay within the retention: %+v, %v", b, err)
	}
	e.clock.Add(2 * time.Minute)
	if _, err := e.svc.Sweep(e.ctx); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.CreateOrder(e.ctx, e.plat, "k1", req)
	if ce := wantCode(t, err, cloud.EConflict); ce.Field != "external_id" {
		t.Errorf("a retry after the retention: field %q, want external_id", ce.Field)
	}
	c, err := e.svc.CreateOrder(e.ctx, e.plat, "k1", e.orderReq("yard-1", "e2", chilledS))
	if err != nil || c.Replayed || c.Order.ID == a.Order.ID {
		t.Fatalf("a forgotten key for a new order: %+v, %v", c, err)
	}
}

func TestCapacityRefusalNamesNearestSites(t *testing.T) {
	e := newEnv(t)
	comps := bank(1, []protocol.Zone{protocol.ZoneFrozen}, []protocol.Size{protocol.SizeL})
	e.site("a", &cloud.Location{Lat: 51.5000, Lon: -0.1000}, comps)
	e.site("far", &cloud.Location{Lat: 52.5, Lon: -0.1}, comps)     // ~111 km: too far
	e.site("near", &cloud.Location{Lat: 51.5100, Lon: -0.1}, comps) // ~1.1 km
	e.site("mid", &cloud.Location{Lat: 51.5300, Lon: -0.1}, comps)  // ~3.3 km
	e.site("nofreezer", &cloud.Location{Lat: 51.5001, Lon: -0.1}, bank(1, []protocol.Zone{protocol.ZoneChilled}, []protocol.Size{protocol.SizeL}))
	if _, err := e.svc.CreateOrder(e.ctx, e.plat, "k1", e.orderReq("a", "e1", frozenL)); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.CreateOrder(e.ctx, e.plat, "k2", e.orderReq("a", "e2", frozenL))
	ce := wantCode(t, err, cloud.ENoCapacity)
	near, _ := ce.Detail.([]cloud.NearbySite)
	if len(near) != 2 || near[0].Site != "near" || near[1].Site != "mid" {
		t.Fatalf("nearby = %+v", near)
	}
	// Accessible orders need a low compartment: bank(1) gives each site one low L.
	req := e.orderReq("near", "e3", frozenL)
	req.Accessible = true
	if rc, err := e.svc.CreateOrder(e.ctx, e.plat, "k3", req); err != nil || len(rc.Order.Slots) != 1 {
		t.Fatalf("accessible: %+v %v", rc, err)
	}
}

func TestValidation(t *testing.T) {
	e := newEnv(t)
	e.site("yard-1", nil, bank(1, []protocol.Zone{protocol.ZoneChilled}, []protocol.Size{protocol.SizeM}))
	base := e.orderReq("yard-1", "e1", chilledS)
	cases := []struct {
		field string
		mod   func(*cloud.OrderRequest)
	}{
		{"external_id", func(r *cloud.OrderRequest) { r.ExternalID = "" }},
		{"site", func(r *cloud.OrderRequest) { r.Site = "Bad Site" }},
		{"recipient.phone", func(r *cloud.OrderRequest) { r.Recipient.Phone = "12" }},
		{"recipient.phone", func(r *cloud.OrderRequest) { r.Recipient.Phone = "+44abc1234567" }},
		{"parcels", func(r *cloud.OrderRequest) { r.Parcels = nil }},
		{"parcels[0].size", func(r *cloud.OrderRequest) { r.Parcels = []cloud.Parcel{{Size: "XL", Zone: protocol.ZoneChilled}} }},
		{"parcels[0].zone", func(r *cloud.OrderRequest) { r.Parcels = []cloud.Parcel{{Size: "S", Zone: "warm"}} }},
		{"window.end", func(r *cloud.OrderRequest) { r.Window.End = r.Window.Start }},
		{"window.end", func(r *cloud.OrderRequest) {
			r.Window = cloud.Window{Start: t0.Add(-5 * time.Hour), End: t0.Add(-time.Hour)}
		}},
		{"window.start", func(r *cloud.OrderRequest) {
			r.Window = cloud.Window{Start: t0.Add(30 * 24 * time.Hour), End: t0.Add(30*24*time.Hour + time.Hour)}
		}},
		{"code_delivery", func(r *cloud.OrderRequest) { r.CodeDelivery = "pigeon" }},
	}
	for _, c := range cases {
		r := base
		r.Parcels = append([]cloud.Parcel(nil), base.Parcels...)
		c.mod(&r)
		_, err := e.svc.CreateOrder(e.ctx, e.plat, "k", r)
		if ce := wantCode(t, err, cloud.EInvalid); ce.Field != c.field {
			t.Errorf("field = %q, want %q (%v)", ce.Field, c.field, err)
		}
	}
	_, err := e.svc.CreateOrder(e.ctx, e.plat, "", base)
	wantCode(t, err, cloud.EInvalid)
	_, err = e.svc.CreateOrder(e.ctx, e.ops, "k", base)
	wantCode(t, err, cloud.EForbidden)
	r := base
	r.Site = "nowhere"
	_, err = e.svc.CreateOrder(e.ctx, e.plat, "k", r)
	wantCode(t, err, cloud.ENotFound)
}

func TestLifecycleFromEdgeEvents(t *testing.T) {
	e := newEnv(t)
	e.site("yard-1", nil, bank(1, []protocol.Zone{protocol.ZoneChilled}, []protocol.Size{protocol.SizeM}))
	rc, err := e.svc.CreateOrder(e.ctx, e.plat, "k1", e.orderReq("yard-1", "e1", chilledS))
	if err != nil {
		t.Fatal(err)
	}
	id, comp := rc.Order.ID, rc.Order.Slots[0].Compartment
	e.clock.Add(90 * time.Minute)
	e.mustEvent("yard-1", protocol.Event{Kind: protocol.EventLoaded, Credential: protocol.CredDriver, Order: id, Compartment: comp})
	o, _ := e.svc.GetOrder(e.ctx, e.plat, id)
	if o.State != cloud.StateLoaded || !o.ExpiresAt.Equal(e.clock.Now().Add(24*time.Hour)) {
		t.Fatalf("after loaded: %s expires %v", o.State, o.ExpiresAt)
	}
	// Chilled food cannot be extended beyond 24 h after loading.
	_, err = e.svc.ExtendOrder(e.ctx, e.plat, id, time.Hour)
	wantCode(t, err, cloud.EFoodSafety)
	// Duplicate event (same seq) changes nothing.
	ack, err := e.svc.ApplyEdgeEvent(e.ctx, "yard-1", protocol.Message{Header: protocol.Header{ID: "dup", Seq: 1, Time: e.clock.Now()},
		Type: protocol.TypeEvent, Body: protocol.Event{Kind: protocol.EventPickedUp, Credential: protocol.CredPickup, Order: id}})
	if err != nil || ack != 1 {
		t.Fatalf("duplicate: ack %d err %v", ack, err)
	}
	if o, _ := e.svc.GetOrder(e.ctx, e.plat, id); o.State != cloud.StateLoaded {
		t.Fatalf("duplicate applied: %s", o.State)
	}
	// A gap is refused with the current ack.
	ack, err = e.svc.ApplyEdgeEvent(e.ctx, "yard-1", protocol.Message{Header: protocol.Header{ID: "gap", Seq: 5, Time: e.clock.Now()},
		Type: protocol.TypeEvent, Body: protocol.Event{Kind: protocol.EventPickedUp, Credential: protocol.CredPickup, Order: id}})
	if cloud.ErrorCode(err) != cloud.EConflict || ack != 1 {
		t.Fatalf("gap: ack %d err %v", ack, err)
	}
	e.mustEvent("yard-1", protocol.Event{Kind: protocol.EventPickedUp, Credential: protocol.CredPickup, Order: id})
	if o, _ := e.svc.GetOrder(e.ctx, e.plat, id); o.State != cloud.StatePickedUp {
		t.Fatalf("after picked_up: %s", o.State)
	}
	// The compartment is reused with a bumped generation.
	rc2, err := e.svc.CreateOrder(e.ctx, e.plat, "k2", e.orderReq("yard-1", "e2", chilledS))
	if err != nil {
		t.Fatal(err)
	}
	if s := rc2.Order.Slots[0]; s.Compartment != comp || s.Generation != 2 {
		t.Fatalf("reuse slot = %+v, want compartment %d generation 2", s, comp)
	}
	e.svc.Flush(e.ctx)
	for _, typ := range []string{cloud.NoteCreated, cloud.NoteLoaded, cloud.NotePickedUp} {
		if len(e.rec.notesOf(typ)) == 0 {
			t.Errorf("no %s notification", typ)
		}
	}
}

func TestExpiryReturnAndLapse(t *testing.T) {
	e := newEnv(t)
	e.site("yard-1", nil, bank(2, []protocol.Zone{protocol.ZoneAmbient}, []protocol.Size{protocol.SizeM}))
	a, _ := e.svc.CreateOrder(e.ctx, e.plat, "k1", e.orderReq("yard-1", "e1", ambientS))
	b, _ := e.svc.CreateOrder(e.ctx, e.plat, "k2", e.orderReq("yard-1", "e2", ambientS))
	e.clock.Add(2 * time.Hour)
	e.mustEvent("yard-1", protocol.Event{Kind: protocol.EventLoaded, Credential: protocol.CredDriver, Order: a.Order.ID, Compartment: a.Order.Slots[0].Compartment})
	// Ambient: extend by 2 h works (cap 48 h).
	if o, err := e.svc.ExtendOrder(e.ctx, e.plat, a.Order.ID, 2*time.Hour); err != nil || !o.ExpiresAt.Equal(e.clock.Now().Add(14*time.Hour)) {
		t.Fatalf("extend: %v %v", o.ExpiresAt, err)
	}
	for _, step := range []time.Duration{7 * time.Hour, 6 * time.Hour, 2 * time.Hour} { // 50 %, 90 %, past expiry
		e.clock.Add(step)
		if _, err := e.svc.Sweep(e.ctx); err != nil {
			t.Fatal(err)
		}
	}
	oa, _ := e.svc.GetOrder(e.ctx, e.plat, a.Order.ID)
	ob, _ := e.svc.GetOrder(e.ctx, e.plat, b.Order.ID)
	if oa.State != cloud.StateExpired || ob.State != cloud.StateCancelled || ob.Reason != "not_loaded" {
		t.Fatalf("after sweep: a %s, b %s (%s)", oa.State, ob.State, ob.Reason)
	}
	e.svc.Flush(e.ctx)
	if n := len(e.rec.notesOf(cloud.NoteReminder)); n != 2 {
		t.Errorf("reminders = %d, want 2", n)
	}
	m, err := e.svc.Manifest(e.ctx, e.drv, "yard-1")
	if err != nil || len(m) != 1 || m[0].State != cloud.StateExpired {
		t.Fatalf("manifest = %+v %v", m, err)
	}
	e.mustEvent("yard-1", protocol.Event{Kind: protocol.EventExpiredRemoved, Credential: protocol.CredDriver, Order: a.Order.ID})
	if oa, _ := e.svc.GetOrder(e.ctx, e.plat, a.Order.ID); oa.State != cloud.StateReturned {
		t.Fatalf("after removal: %s", oa.State)
	}
}

func TestOutageExtendsDeadlines(t *testing.T) {
	e := newEnv(t)
	e.site("yard-1", nil, bank(1, []protocol.Zone{protocol.ZoneAmbient, protocol.ZoneChilled}, []protocol.Size{protocol.SizeM}))
	a, _ := e.svc.CreateOrder(e.ctx, e.plat, "k1", e.orderReq("yard-1", "e1", ambientS))
	c, _ := e.svc.CreateOrder(e.ctx, e.plat, "k2", e.orderReq("yard-1", "e2", chilledS))
	e.mustEvent("yard-1", protocol.Event{Kind: protocol.EventLoaded, Credential: protocol.CredDriver, Order: a.Order.ID, Compartment: a.Order.Slots[0].Compartment})
	e.mustEvent("yard-1", protocol.Event{Kind: protocol.EventLoaded, Credential: protocol.CredDriver, Order: c.Order.ID, Compartment: c.Order.Slots[0].Compartment})
	before, _ := e.svc.GetOrder(e.ctx, e.plat, a.Order.ID)
	if err := e.svc.ApplyStatus(e.ctx, "yard-1", e.clock.Now(), protocol.Status{Online: false}); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(3 * time.Hour)
	if err := e.svc.ApplyStatus(e.ctx, "yard-1", e.clock.Now(), protocol.Status{Online: true}); err != nil {
		t.Fatal(err)
	}
	after, _ := e.svc.GetOrder(e.ctx, e.plat, a.Order.ID)
	if got := after.ExpiresAt.Sub(before.ExpiresAt); got != 3*time.Hour {
		t.Errorf("ambient extended by %v, want 3h", got)
	}
	ch, _ := e.svc.GetOrder(e.ctx, e.plat, c.Order.ID)
	if !ch.ExpiresAt.Equal(ch.LoadedAt.Add(24 * time.Hour)) {
		t.Errorf("chilled extended beyond its safety cap: %v", ch.ExpiresAt.Sub(ch.LoadedAt))
	}
	// A repeated online status changes nothing; a later central outage (the cloud lost
	// the broker) reported by the fleet adapter for an online site extends again.
	if err := e.svc.ApplyStatus(e.ctx, "yard-1", e.clock.Now(), protocol.Status{Online: true}); err != nil {
		t.Fatal(err)
	}
	if again, _ := e.svc.GetOrder(e.ctx, e.plat, a.Order.ID); !again.ExpiresAt.Equal(after.ExpiresAt) {
		t.Errorf("repeated status extended: %v", again.ExpiresAt.Sub(after.ExpiresAt))
	}
	e.clock.Add(2 * time.Hour)
	if err := e.svc.ApplyPresence(e.ctx, "yard-1", cloud.Presence{Online: true, At: e.clock.Now(), Outage: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if again, _ := e.svc.GetOrder(e.ctx, e.plat, a.Order.ID); again.ExpiresAt.Sub(after.ExpiresAt) != time.Hour {
		t.Errorf("central outage extended by %v, want 1h", again.ExpiresAt.Sub(after.ExpiresAt))
	}
	// A birth and a status of one reconnect extend once.
	e.svc.ApplyStatus(e.ctx, "yard-1", e.clock.Now(), protocol.Status{Online: false})
	before2, _ := e.svc.GetOrder(e.ctx, e.plat, a.Order.ID)
	e.clock.Add(2 * time.Hour)
	e.svc.ApplyBirth(e.ctx, "yard-1", e.clock.Now(), protocol.Birth{Software: "t", Compartments: bank(1, []protocol.Zone{protocol.ZoneAmbient, protocol.ZoneChilled}, []protocol.Size{protocol.SizeM})})
	e.svc.ApplyStatus(e.ctx, "yard-1", e.clock.Now(), protocol.Status{Online: true})
	if after2, _ := e.svc.GetOrder(e.ctx, e.plat, a.Order.ID); after2.ExpiresAt.Sub(before2.ExpiresAt) != 2*time.Hour {
		t.Errorf("reconnect extended by %v, want 2h", after2.ExpiresAt.Sub(before2.ExpiresAt))
	}
}

func TestAuthorisation(t *testing.T) {
	e := newEnv(t)
	e.site("yard-1", nil, bank(2, []protocol.Zone{protocol.ZoneChilled}, []protocol.Size{protocol.SizeM}))
	rc, _ := e.svc.CreateOrder(e.ctx, e.plat, "k1", e.orderReq("yard-1", "e1", chilledS))
	other := cloud.Principal{Role: cloud.RolePlatform, Subject: "rival"}
	_, err := e.svc.GetOrder(e.ctx, other, rc.Order.ID)
	wantCode(t, err, cloud.ENotFound)
	_, err = e.svc.CancelOrder(e.ctx, other, rc.Order.ID, "")
	wantCode(t, err, cloud.ENotFound)
	list, err := e.svc.ListOrders(e.ctx, other, cloud.OrderFilter{})
	if err != nil || len(list) != 0 {
		t.Fatalf("rival sees %d orders (%v)", len(list), err)
	}
	_, err = e.svc.GetOrder(e.ctx, e.drv, rc.Order.ID)
	wantCode(t, err, cloud.EForbidden)
	if _, err := e.svc.GetOrder(e.ctx, e.ops, rc.Order.ID); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.ListSites(e.ctx, e.plat)
	wantCode(t, err, cloud.EForbidden)
	_, err = e.svc.Provision(e.ctx, e.ops, "yard-1")
	wantCode(t, err, cloud.EForbidden)
	if _, err := e.svc.CancelOrder(e.ctx, e.plat, rc.Order.ID, "customer"); err != nil {
		t.Fatal(err)
	}
}

func TestProvisionOnceAndEdgeLogin(t *testing.T) {
	e := newEnv(t)
	e.site("yard-1", nil, bank(1, []protocol.Zone{protocol.ZoneChilled}, []protocol.Size{protocol.SizeM}))
	p, err := e.svc.Provision(e.ctx, e.admin, "yard-1")
	if err != nil || len(p.SiteKey) != 64 || p.MQTTPassword == "" {
		t.Fatalf("provision = %+v, %v", p, err)
	}
	_, err = e.svc.Provision(e.ctx, e.admin, "yard-1")
	wantCode(t, err, cloud.EAlreadyIssued)
	if site, ok := e.svc.AuthenticateEdge(e.ctx, "yard-1", p.MQTTPassword); !ok || site != "yard-1" {
		t.Fatal("edge login refused")
	}
	if _, ok := e.svc.AuthenticateEdge(e.ctx, "yard-1", "wrong"); ok {
		t.Fatal("wrong password accepted")
	}
}

func TestCommandsAlarmsAudit(t *testing.T) {
	e := newEnv(t)
	e.site("yard-1", nil, bank(2, []protocol.Zone{protocol.ZoneChilled}, []protocol.Size{protocol.SizeM}))
	_, err := e.svc.OpenCompartment(e.ctx, e.ops, "yard-1", 1, "")
	wantCode(t, err, cloud.EInvalid)
	rec, err := e.svc.OpenCompartment(e.ctx, e.ops, "yard-1", 1, "resident locked out, verified by phone")
	if err != nil || rec.State != protocol.StateQueued {
		t.Fatalf("open: %+v %v", rec, err)
	}
	e.svc.Flush(e.ctx)
	if len(e.rec.commands) != 1 || e.rec.commands[0].Purpose != protocol.PurposeOps {
		t.Fatalf("commands = %+v", e.rec.commands)
	}
	for _, st := range []protocol.CommandState{protocol.StateInProgress, protocol.StateSucceeded, protocol.StateInProgress} {
		if err := e.svc.ApplyCommandAck(e.ctx, "yard-1", e.clock.Now(), protocol.CommandAck{CommandID: rec.Command.ID, State: st}); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := e.svc.GetCommand(e.ctx, e.ops, rec.Command.ID)
	if got.State != protocol.StateSucceeded {
		t.Fatalf("command state %s", got.State)
	}
	// Out of service removes a compartment from assignment.
	if _, err := e.svc.SetInService(e.ctx, e.ops, "yard-1", 1, false, "door bent"); err != nil {
		t.Fatal(err)
	}
	rc, err := e.svc.CreateOrder(e.ctx, e.plat, "k1", e.orderReq("yard-1", "e1", chilledS))
	if err != nil || rc.Order.Slots[0].Compartment != 2 {
		t.Fatalf("order went to %+v (%v)", rc.Order.Slots, err)
	}
	// Alarms open and close.
	e.mustEvent("yard-1", protocol.Event{Kind: protocol.EventDoorLeftOpen, Credential: protocol.CredNone, Compartment: 2, Seconds: 120})
	e.mustEvent("yard-1", protocol.Event{Kind: protocol.EventBoardOffline, Credential: protocol.CredNone, Board: ptr(0)})
	d, _ := e.svc.GetSite(e.ctx, e.ops, "yard-1")
	if len(d.Alarms) != 2 {
		t.Fatalf("alarms = %+v", d.Alarms)
	}
	e.mustEvent("yard-1", protocol.Event{Kind: protocol.EventDoorClosed, Credential: protocol.CredNone, Compartment: 2})
	e.mustEvent("yard-1", protocol.Event{Kind: protocol.EventBoardOnline, Credential: protocol.CredNone, Board: ptr(0)})
	d, _ = e.svc.GetSite(e.ctx, e.ops, "yard-1")
	if len(d.Alarms) != 0 {
		t.Fatalf("alarms after recovery = %+v", d.Alarms)
	}
	if d.Compartments[cloud.CompOutOfService] != 1 || d.Compartments[cloud.CompReserved] != 1 {
		t.Errorf("compartment states = %v", d.Compartments)
	}
	log, err := e.svc.Audit(e.ctx, e.ops, cloud.AuditFilter{Site: "yard-1"})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, a := range log {
		actions = append(actions, a.Action)
	}
	want := map[string]bool{"remote_open": false, "out_of_service": false}
	for _, a := range actions {
		if _, ok := want[a]; ok {
			want[a] = true
		}
	}
	for a, ok := range want {
		if !ok {
			t.Errorf("audit lacks %s: %v", a, actions)
		}
	}
}

func TestReassignedAndLockout(t *testing.T) {
	e := newEnv(t)
	e.site("yard-1", nil, bank(3, []protocol.Zone{protocol.ZoneChilled}, []protocol.Size{protocol.SizeM}))
	a, _ := e.svc.CreateOrder(e.ctx, e.plat, "k1", e.orderReq("yard-1", "e1", chilledS))
	b, _ := e.svc.CreateOrder(e.ctx, e.plat, "k2", e.orderReq("yard-1", "e2", chilledS))
	from, to := a.Order.Slots[0].Compartment, b.Order.Slots[0].Compartment
	// The edge moved a into b's compartment: b must move elsewhere.
	e.mustEvent("yard-1", protocol.Event{Kind: protocol.EventReassigned, Credential: protocol.CredDriver, Order: a.Order.ID, Compartment: from, To: to, Reason: "jammed"})
	oa, _ := e.svc.GetOrder(e.ctx, e.plat, a.Order.ID)
	ob, _ := e.svc.GetOrder(e.ctx, e.plat, b.Order.ID)
	if oa.Slots[0].Compartment != to || oa.Slots[0].Generation != 2 {
		t.Errorf("a slots = %+v", oa.Slots)
	}
	if ob.State != cloud.StateAssigned || ob.Slots[0].Compartment == to || ob.Slots[0].Compartment == from {
		t.Errorf("b slots = %+v state %s", ob.Slots, ob.State)
	}
	d, _ := e.svc.GetSite(e.ctx, e.ops, "yard-1")
	if d.Compartments[cloud.CompOutOfService] != 1 {
		t.Errorf("jammed compartment not out of service: %v", d.Compartments)
	}
	e.mustEvent("yard-1", protocol.Event{Kind: protocol.EventCodeLockout, Credential: protocol.CredNone, Order: a.Order.ID, Seconds: 300})
	if oa, _ := e.svc.GetOrder(e.ctx, e.plat, a.Order.ID); !oa.CodeInvalid {
		t.Error("code not invalidated")
	}
	if re, err := e.svc.ReissueCode(e.ctx, e.ops, a.Order.ID); err != nil || re.Order.CodeInvalid {
		t.Fatalf("reissue %v", err)
	}
	e.mustEvent("yard-1", protocol.Event{Kind: protocol.EventOrderCompromised, Credential: protocol.CredNone, Order: a.Order.ID, Seconds: 2400})
	if oa, _ := e.svc.GetOrder(e.ctx, e.plat, a.Order.ID); oa.State != cloud.StateCompromised {
		t.Errorf("state %s", oa.State)
	}
	// Unknown orders are acknowledged, not refused.
	if _, err := e.event("yard-1", protocol.Event{Kind: protocol.EventPickedUp, Credential: protocol.CredPickup, Order: "ord_nope"}); err != nil {
		t.Fatal(err)
	}
}

func TestReassignSlot(t *testing.T) {
	e := newEnv(t)
	e.site("yard-1", nil, bank(2, []protocol.Zone{protocol.ZoneChilled}, []protocol.Size{protocol.SizeM}))
	rc, err := e.svc.CreateOrder(e.ctx, e.plat, "k1", e.orderReq("yard-1", "e1", chilledS))
	if err != nil {
		t.Fatal(err)
	}
	id, bad := rc.Order.ID, rc.Order.Slots[0].Compartment
	_, err = e.svc.ReassignSlot(e.ctx, e.plat, id, bad, "jammed")
	wantCode(t, err, cloud.EForbidden)
	_, err = e.svc.ReassignSlot(e.ctx, e.drv, id, bad+10, "jammed")
	wantCode(t, err, cloud.EInvalid)
	o, err := e.svc.ReassignSlot(e.ctx, e.drv, id, bad, "jammed")
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Slots) != 1 || o.Slots[0].Compartment == bad || o.Slots[0].Generation != 1 {
		t.Fatalf("slots %+v", o.Slots)
	}
	d, _ := e.svc.GetSite(e.ctx, e.ops, "yard-1")
	if d.Compartments[cloud.CompOutOfService] != 1 || d.Compartments[cloud.CompReserved] != 1 {
		t.Errorf("states %v", d.Compartments)
	}
	e.svc.Flush(e.ctx)
	if n := len(e.rec.commands); n != 1 || e.rec.commands[0].Kind != protocol.CmdOutOfService {
		t.Errorf("commands %+v", e.rec.commands)
	}
	// No other compartment left: 409 no_capacity, nothing changed.
	_, err = e.svc.ReassignSlot(e.ctx, e.drv, id, o.Slots[0].Compartment, "dirty")
	wantCode(t, err, cloud.ENoCapacity)
}

// TestWrongCodeBudgetAlarms: a code_lockout that names no order is the keypad's
// wrong-code budget spent: it opens one code_lockout alarm for the kiosk (refreshed, not
// duplicated, by the next), which ops resolve; one that names an order invalidates that
// order's code and opens no alarm.
func TestWrongCodeBudgetAlarms(t *testing.T) {
	e := newEnv(t)
	e.site("yard-1", nil, bank(2, []protocol.Zone{protocol.ZoneChilled}, []protocol.Size{protocol.SizeM}))
	rc, err := e.svc.CreateOrder(e.ctx, e.plat, "k1", e.orderReq("yard-1", "e1", chilledS))
	if err != nil {
		t.Fatal(err)
	}
	e.mustEvent("yard-1", protocol.Event{Kind: protocol.EventCodeLockout, Credential: protocol.CredNone, Order: rc.Order.ID})
	if d, _ := e.svc.GetSite(e.ctx, e.ops, "yard-1"); len(d.Alarms) != 0 {
		t.Fatalf("an order's lockout opened alarms %+v", d.Alarms)
	}
	for range 2 {
		e.mustEvent("yard-1", protocol.Event{Kind: protocol.EventCodeLockout, Credential: protocol.CredNone, Reason: "wrong_code_budget"})
	}
	d, _ := e.svc.GetSite(e.ctx, e.ops, "yard-1")
	if len(d.Alarms) != 1 || d.Alarms[0].ID != "code_lockout:kiosk" || d.Alarms[0].Count != 2 || d.Alarms[0].Reason != "wrong_code_budget" {
		t.Fatalf("alarms = %+v", d.Alarms)
	}
	if err := e.svc.ResolveAlarm(e.ctx, e.ops, "yard-1", "code_lockout:kiosk"); err != nil {
		t.Fatal(err)
	}
	if d, _ := e.svc.GetSite(e.ctx, e.ops, "yard-1"); len(d.Alarms) != 0 {
		t.Errorf("alarm not resolved: %+v", d.Alarms)
	}
}

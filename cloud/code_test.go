package cloud_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/protocol"
)

// Held codes (code.go): the resident's code is drawn at admission, its digest goes to the
// edge with the reservation, and the plain code waits sealed on the order until the
// resident may be told it.

// inFile says whether the store's file holds s in plain.
func (e *env) inFile(s string) bool {
	e.t.Helper()
	raw, err := os.ReadFile(e.db.Bolt().Path())
	if err != nil {
		e.t.Fatal(err)
	}
	return bytes.Contains(raw, []byte(s))
}

func (e *env) loadAll(site string, o cloud.Order) {
	e.t.Helper()
	for _, sl := range o.Slots {
		e.mustEvent(site, protocol.Event{Kind: protocol.EventLoaded, Credential: protocol.CredDriver, Order: o.ID, Compartment: sl.Compartment})
	}
}

// The arrival notice's code is the one whose digest reached the edge with the
// reservation at admission; until loading it is held sealed, never in the store's file
// in plain, and the sealed copy is erased once it is told.
func TestArrivalCodeIsTheAdmittedOne(t *testing.T) {
	e := newEnv(t)
	e.site("yard-1", nil, bank(2, []protocol.Zone{protocol.ZoneChilled}, []protocol.Size{protocol.SizeM}))
	rc, err := e.svc.CreateOrder(e.ctx, e.plat, "k1", e.orderReq("yard-1", "e1", chilledS))
	if err != nil {
		t.Fatal(err)
	}
	held, version, err := e.svc.HeldCode(e.ctx, rc.Order.ID)
	if err != nil || len(held) != cloud.CodeDigits || version != 0 {
		t.Fatalf("held code %q (waits for v%d), %v: want a code waiting for the loading only", held, version, err)
	}
	if e.inFile(held) {
		t.Fatal("the held code is in the store's file in plain")
	}
	e.svc.Flush(e.ctx)
	admitted := e.rec.desired["yard-1"][0].Reservations[0].CodeDigest

	e.loadAll("yard-1", rc.Order)
	e.svc.Flush(e.ctx)
	notes := e.rec.notesOf(cloud.NoteLoaded)
	if len(notes) != 1 || len(notes[0].Code) != cloud.CodeDigits {
		t.Fatalf("arrival notices %+v", notes)
	}
	key, _ := e.svc.SiteKey(e.ctx, "yard-1")
	if protocol.CodeDigest(key, notes[0].Code) != admitted {
		t.Fatal("the arrival notice's code is not the one whose digest the edge got with the reservation")
	}
	if notes[0].Code != held {
		t.Fatal("the arrival notice's code is not the held one")
	}
	if again, _, err := e.svc.HeldCode(e.ctx, rc.Order.ID); err != nil || again != "" {
		t.Fatalf("after loading the order still holds a code (%v)", err)
	}
	if e.inFile(held) {
		t.Fatal("the told code is in the store's file in plain")
	}
}

// Every way an order's code dies before it is told erases the held copy.
func TestHeldCodeErasedWhenTheCodeDies(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(e *env, o cloud.Order)
	}{
		{"cancelled", func(e *env, o cloud.Order) {
			if _, err := e.svc.CancelOrder(e.ctx, e.plat, o.ID, ""); err != nil {
				e.t.Fatal(err)
			}
		}},
		{"lapsed", func(e *env, o cloud.Order) {
			e.clock.Add(6 * 3600e9)
			if _, err := e.svc.Sweep(e.ctx); err != nil {
				e.t.Fatal(err)
			}
		}},
		{"invalidated", func(e *env, o cloud.Order) {
			e.mustEvent("yard-1", protocol.Event{Kind: protocol.EventCodeLockout, Credential: protocol.CredNone, Order: o.ID, Seconds: 300})
		}},
		{"expired, partly loaded", func(e *env, o cloud.Order) {
			e.mustEvent("yard-1", protocol.Event{Kind: protocol.EventLoaded, Credential: protocol.CredDriver, Order: o.ID, Compartment: o.Slots[0].Compartment})
			e.clock.Add(30 * 3600e9)
			if _, err := e.svc.Sweep(e.ctx); err != nil {
				e.t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.site("yard-1", nil, bank(2, []protocol.Zone{protocol.ZoneChilled, protocol.ZoneAmbient}, []protocol.Size{protocol.SizeM}))
			rc, err := e.svc.CreateOrder(e.ctx, e.plat, "k1", e.orderReq("yard-1", "e1", chilledS, ambientS))
			if err != nil {
				t.Fatal(err)
			}
			if held, _, _ := e.svc.HeldCode(e.ctx, rc.Order.ID); held == "" {
				t.Fatal("no code held at admission")
			}
			tc.end(e, rc.Order)
			if held, _, err := e.svc.HeldCode(e.ctx, rc.Order.ID); held != "" || err != nil {
				o, _ := e.svc.GetOrder(e.ctx, e.ops, rc.Order.ID)
				t.Fatalf("order %s (%s) still holds its code (%v)", o.State, o.Reason, err)
			}
		})
	}
}

// A reissued code is told only once the edge reports it applied the desired version
// that carries the new digest (telemetry or birth), so the kiosk never refuses it for a
// delta still on the way; a connected edge that never reports is trusted after
// CodeWait, one out of reach is waited for.
func TestReissuedCodeWaitsForTheEdge(t *testing.T) {
	e := newEnv(t)
	e.site("yard-1", nil, bank(3, []protocol.Zone{protocol.ZoneChilled}, []protocol.Size{protocol.SizeM}))
	key, _ := e.svc.SiteKey(e.ctx, "yard-1")
	order := func(ext string) cloud.Order {
		rc, err := e.svc.CreateOrder(e.ctx, e.plat, "k-"+ext, e.orderReq("yard-1", ext, chilledS))
		if err != nil {
			t.Fatal(err)
		}
		e.loadAll("yard-1", rc.Order)
		return rc.Order
	}
	reissue := func(o cloud.Order) uint64 {
		t.Helper()
		rc, err := e.svc.ReissueCode(e.ctx, e.ops, o.ID)
		if err != nil || rc.Code != "" {
			t.Fatalf("reissue: code %q in the response, %v", rc.Code, err)
		}
		d, _ := e.svc.GetSite(e.ctx, e.ops, "yard-1")
		return d.DesiredVersion
	}
	issued := func(o cloud.Order) []cloud.Notification {
		t.Helper()
		e.svc.Flush(e.ctx)
		var out []cloud.Notification
		for _, n := range e.rec.notesOf(cloud.NoteCodeIssued) {
			if n.Order == o.ID {
				out = append(out, n)
			}
		}
		return out
	}
	telemetry := func(v uint64) {
		t.Helper()
		if err := e.svc.ApplyTelemetry(e.ctx, "yard-1", e.clock.Now(), protocol.Telemetry{DesiredVersion: v}); err != nil {
			t.Fatal(err)
		}
	}
	sweep := func() {
		t.Helper()
		if _, err := e.svc.Sweep(e.ctx); err != nil {
			t.Fatal(err)
		}
	}

	// Telemetry: nothing until the edge reports the reissue's version.
	a := order("a")
	v := reissue(a)
	if n := issued(a); len(n) != 0 {
		t.Fatal("the reissued code was sent before the edge applied its delta")
	}
	telemetry(v - 1)
	telemetry(0) // an edge of protocol 1.0 reports no version
	if n := issued(a); len(n) != 0 {
		t.Fatal("the reissued code was sent on a report of an older version")
	}
	telemetry(v)
	n := issued(a)
	if len(n) != 1 || len(n[0].Code) != cloud.CodeDigits || n[0].Recipient == nil {
		t.Fatalf("code notices after the edge applied v%d: %+v", v, n)
	}
	got, _ := e.svc.GetOrder(e.ctx, e.ops, a.ID)
	if protocol.CodeDigest(key, n[0].Code) != got.CodeDigest {
		t.Fatal("the told code is not the order's")
	}
	if held, _, _ := e.svc.HeldCode(e.ctx, a.ID); held != "" {
		t.Fatal("the told code is still held")
	}
	telemetry(v + 1)
	if n := issued(a); len(n) != 1 {
		t.Fatalf("told %d times", len(n))
	}

	// Birth: an edge that comes back having applied the version.
	b := order("b")
	v = reissue(b)
	if _, err := e.svc.ApplyBirth(e.ctx, "yard-1", e.clock.Now(), protocol.Birth{Software: "test", DesiredVersion: v - 1, OutboxHighWater: e.seq["yard-1"],
		Compartments: bank(3, []protocol.Zone{protocol.ZoneChilled}, []protocol.Size{protocol.SizeM})}); err != nil {
		t.Fatal(err)
	}
	if n := issued(b); len(n) != 0 {
		t.Fatal("told on a birth behind the reissue")
	}
	if _, err := e.svc.ApplyBirth(e.ctx, "yard-1", e.clock.Now(), protocol.Birth{Software: "test", DesiredVersion: v, OutboxHighWater: e.seq["yard-1"],
		Compartments: bank(3, []protocol.Zone{protocol.ZoneChilled}, []protocol.Size{protocol.SizeM})}); err != nil {
		t.Fatal(err)
	}
	if n := issued(b); len(n) != 1 {
		t.Fatalf("code notices after a birth at v%d: %d", v, len(n))
	}

	// The fallback: an edge out of reach is waited for; a connected one is trusted after
	// CodeWait.
	c := order("c")
	reissue(c)
	if err := e.svc.ApplyStatus(e.ctx, "yard-1", e.clock.Now(), protocol.Status{Online: false}); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(cloud.CodeWait)
	sweep()
	if n := issued(c); len(n) != 0 {
		t.Fatal("told while the edge is out of reach")
	}
	if err := e.svc.ApplyStatus(e.ctx, "yard-1", e.clock.Now(), protocol.Status{Online: true}); err != nil {
		t.Fatal(err)
	}
	sweep()
	if n := issued(c); len(n) != 1 {
		t.Fatalf("code notices after CodeWait with the edge connected: %d", len(n))
	}
	if w, err := e.svc.CodeWaits(e.ctx); err != nil || w != 0 {
		t.Fatalf("%d codes still indexed as waiting (%v)", w, err)
	}
}

// A code reissued before loading waits for the loading too, and the arrival notice
// carries it once the edge has it.
func TestReissueBeforeLoading(t *testing.T) {
	e := newEnv(t)
	e.site("yard-1", nil, bank(2, []protocol.Zone{protocol.ZoneChilled}, []protocol.Size{protocol.SizeM}))
	rc, err := e.svc.CreateOrder(e.ctx, e.plat, "k1", e.orderReq("yard-1", "e1", chilledS))
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := e.svc.HeldCode(e.ctx, rc.Order.ID)
	if _, err := e.svc.ReissueCode(e.ctx, e.ops, rc.Order.ID); err != nil {
		t.Fatal(err)
	}
	d, _ := e.svc.GetSite(e.ctx, e.ops, "yard-1")
	second, waits, _ := e.svc.HeldCode(e.ctx, rc.Order.ID)
	if second == "" || second == first || waits != d.DesiredVersion {
		t.Fatalf("after the reissue: held %q (first %q), waits for v%d (site at v%d)", second, first, waits, d.DesiredVersion)
	}
	if err := e.svc.ApplyTelemetry(e.ctx, "yard-1", e.clock.Now(), protocol.Telemetry{DesiredVersion: d.DesiredVersion}); err != nil {
		t.Fatal(err)
	}
	e.svc.Flush(e.ctx)
	if n := e.rec.notesOf(cloud.NoteCodeIssued); len(n) != 0 {
		t.Fatal("a code was told before loading")
	}
	e.loadAll("yard-1", rc.Order)
	e.svc.Flush(e.ctx)
	if n := e.rec.notesOf(cloud.NoteLoaded); len(n) != 1 || n[0].Code != second {
		t.Fatalf("arrival notices %+v, want the reissued code", n)
	}
}

// A held code sealed under another key (the notify key was changed) cannot be told: the
// order gets a new code, its digest goes to the edge, and the resident is told it once
// the edge has applied it; the arrival notice goes out without a code.
func TestHeldCodeUnderAnotherKeyIsReplaced(t *testing.T) {
	e := newEnv(t)
	e.site("yard-1", nil, bank(2, []protocol.Zone{protocol.ZoneChilled}, []protocol.Size{protocol.SizeM}))
	rc, err := e.svc.CreateOrder(e.ctx, e.plat, "k1", e.orderReq("yard-1", "e1", chilledS))
	if err != nil {
		t.Fatal(err)
	}
	e.svc.Flush(e.ctx)
	e.svc = cloud.New(cloud.Options{Store: e.db, Now: e.clock.Now, Desired: e.rec, Commands: e.rec, Notifier: e.rec,
		CodeKey: bytes.Repeat([]byte{7}, 32)})
	e.loadAll("yard-1", rc.Order)
	e.svc.Flush(e.ctx)
	if n := e.rec.notesOf(cloud.NoteLoaded); len(n) != 1 || n[0].Code != "" {
		t.Fatalf("arrival notices %+v, want one without a code", n)
	}
	o, _ := e.svc.GetOrder(e.ctx, e.ops, rc.Order.ID)
	if o.CodeDigest == rc.Order.CodeDigest {
		t.Fatal("the unreadable code was kept")
	}
	ds := e.rec.desired["yard-1"]
	last := ds[len(ds)-1]
	if len(last.Reservations) != 1 || last.Reservations[0].CodeDigest != o.CodeDigest {
		t.Fatalf("the new digest was not sent to the edge: %+v", last)
	}
	if err := e.svc.ApplyTelemetry(e.ctx, "yard-1", e.clock.Now(), protocol.Telemetry{DesiredVersion: last.Version}); err != nil {
		t.Fatal(err)
	}
	e.svc.Flush(e.ctx)
	key, _ := e.svc.SiteKey(e.ctx, "yard-1")
	if n := e.rec.notesOf(cloud.NoteCodeIssued); len(n) != 1 || protocol.CodeDigest(key, n[0].Code) != o.CodeDigest {
		t.Fatalf("code notices %+v, want the new code once the edge has it", n)
	}
}

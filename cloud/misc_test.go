package cloud_test

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/protocol"
)

// TestLogsRedactSecrets logs the records that hold phone numbers, codes and site keys
// and checks that none of them reaches the log.
func TestLogsRedactSecrets(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	r := cloud.Recipient{Phone: "+8613800138000", Name: "Wang Fang", Flat: "2-301"}
	log.Info("x", "recipient", r, "order", cloud.Order{ID: "ord_1", Recipient: r},
		"note", cloud.Notification{Type: cloud.NoteLoaded, Order: "ord_1", Code: "12345678", Recipient: &r},
		"site", cloud.Site{ID: "yard-1", Key: []byte("super-secret-site-key-0123456789")})
	for _, secret := range []string{"13800138000", "Wang", "12345678", "super-secret"} {
		if strings.Contains(buf.String(), secret) {
			t.Errorf("log contains %q: %s", secret, buf.String())
		}
	}
	if !strings.Contains(buf.String(), "ord_1") {
		t.Errorf("log lost the order id: %s", buf.String())
	}
}

func TestCodesAreUniformDigits(t *testing.T) {
	e := newEnv(t)
	e.site("yard-1", nil, bank(50, []protocol.Zone{protocol.ZoneAmbient}, []protocol.Size{protocol.SizeS}))
	var counts [10]int
	n := 0
	for i := range 50 {
		req := e.orderReq("yard-1", "e"+string(rune('a'+i%26))+string(rune('a'+i/26)), ambientS)
		req.CodeDelivery = cloud.DeliverByPlatform
		rc, err := e.svc.CreateOrder(e.ctx, e.plat, req.ExternalID, req)
		if err != nil {
			t.Fatal(err)
		}
		if len(rc.Code) != cloud.CodeDigits {
			t.Fatalf("code %q", rc.Code)
		}
		for _, c := range rc.Code {
			counts[c-'0']++
			n++
		}
	}
	// 400 digits: each digit expected 40 times; a broken generator (e.g. modulo bias
	// towards low digits or a constant) falls far outside 15..65.
	for d, c := range counts {
		if c < 15 || c > 65 {
			t.Errorf("digit %d drawn %d times of %d", d, c, n)
		}
	}
}

func TestTelemetryAndTemperatureAlarm(t *testing.T) {
	e := newEnv(t)
	e.site("yard-1", nil, bank(1, []protocol.Zone{protocol.ZoneChilled}, []protocol.Size{protocol.SizeM}))
	c := 9.5
	e.mustEvent("yard-1", protocol.Event{Kind: protocol.EventTempExcursion, Credential: protocol.CredNone, Zone: protocol.ZoneChilled, Celsius: &c, Seconds: 600})
	e.mustEvent("yard-1", protocol.Event{Kind: protocol.EventTempExcursion, Credential: protocol.CredNone, Zone: protocol.ZoneChilled, Celsius: &c, Seconds: 900})
	d, _ := e.svc.GetSite(e.ctx, e.ops, "yard-1")
	if len(d.Alarms) != 1 || d.Alarms[0].Count != 2 || d.Alarms[0].ID != "temperature_excursion:chilled" {
		t.Fatalf("alarms %+v", d.Alarms)
	}
	if e.svc.Stats().AlarmsRaised.Load() != 1 {
		t.Errorf("alarms raised %d", e.svc.Stats().AlarmsRaised.Load())
	}
	ok := 4.0
	at := e.clock.Now().Add(time.Minute)
	if err := e.svc.ApplyTelemetry(e.ctx, "yard-1", at, protocol.Telemetry{OutboxDepth: 3,
		Zones: []protocol.ZoneReading{{Zone: protocol.ZoneChilled, Celsius: &ok}}}); err != nil {
		t.Fatal(err)
	}
	d, _ = e.svc.GetSite(e.ctx, e.ops, "yard-1")
	if len(d.Alarms) != 0 || d.OutboxDepth != 3 || len(d.Zones) != 1 || *d.Zones[0].Celsius != 4 || !d.LastSeen.Equal(at) {
		t.Fatalf("after telemetry: alarms %+v detail %+v", d.Alarms, d.SiteSummary)
	}
	if hw, _ := e.svc.EventHighWater(e.ctx, "yard-1"); hw != 2 {
		t.Errorf("high water %d", hw)
	}
	if hw, _ := e.svc.EventHighWater(e.ctx, "nowhere"); hw != 0 {
		t.Errorf("unknown site high water %d", hw)
	}
}

func TestLoadingCredentialAndCommands(t *testing.T) {
	e := newEnv(t)
	e.site("yard-1", nil, bank(1, []protocol.Zone{protocol.ZoneChilled}, []protocol.Size{protocol.SizeM}))
	cred, err := e.svc.IssueLoadingCredential(e.ctx, e.drv, "yard-1")
	if err != nil || len(cred.Credential) != 10 {
		t.Fatalf("credential %+v %v", cred, err)
	}
	key, _ := e.svc.SiteKey(e.ctx, "yard-1")
	snap, _ := e.svc.DesiredSnapshot(e.ctx, "yard-1")
	if len(snap.Credentials) != 1 || snap.Credentials[0].Digest != protocol.CredentialDigest(key, cred.Credential) || snap.Credentials[0].Driver != "dave" {
		t.Fatalf("snapshot credentials %+v", snap.Credentials)
	}
	rc, _ := e.svc.CreateOrder(e.ctx, e.plat, "k1", e.orderReq("yard-1", "e1", chilledS))
	cmd, err := e.svc.OpenForLoading(e.ctx, e.drv, rc.Order.ID, rc.Order.Slots[0].Compartment)
	if err != nil || cmd.Command.Generation != 1 || cmd.Command.Purpose != protocol.PurposeLoading {
		t.Fatalf("open for loading %+v %v", cmd, err)
	}
	pend, _ := e.svc.PendingCommands(e.ctx, "yard-1")
	if len(pend) != 1 {
		t.Fatalf("pending %d", len(pend))
	}
	// Nobody answers: the sweep times the command out after its expiry, and the
	// credential expires and is revoked.
	e.clock.Add(3 * time.Hour)
	if _, err := e.svc.Sweep(e.ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := e.svc.GetCommand(e.ctx, e.drv, cmd.Command.ID)
	if got.State != protocol.StateTimedOut {
		t.Errorf("command state %s", got.State)
	}
	e.svc.Flush(e.ctx)
	ds := e.rec.desired["yard-1"]
	if last := ds[len(ds)-1]; len(last.Revoke) != 1 || last.Revoke[0] != cred.ID {
		t.Errorf("last desired %+v", last)
	}
	if n, _ := e.svc.PendingCommands(e.ctx, ""); len(n) != 0 {
		t.Errorf("still pending: %d", len(n))
	}
	if n, _ := e.svc.PendingCommands(e.ctx, "yard-1"); len(n) != 0 {
		t.Errorf("still pending at yard-1 after the time-out: %d", len(n))
	}
}

// TestPendingCommandsBySite: a site's pending commands are its own, and a command leaves
// the list with its final state; the fleet-wide list has every site's.
func TestPendingCommandsBySite(t *testing.T) {
	e := newEnv(t)
	comps := bank(2, []protocol.Zone{protocol.ZoneChilled}, []protocol.Size{protocol.SizeM})
	e.site("yard-1", nil, comps)
	e.site("yard-10", nil, comps) // a prefix of the other's id must not match it
	ids := map[string]string{}
	for _, site := range []string{"yard-1", "yard-10", "yard-1"} {
		rec, err := e.svc.OpenCompartment(e.ctx, e.ops, site, 1, "check the door")
		if err != nil {
			t.Fatal(err)
		}
		ids[rec.Command.ID] = site
	}
	count := func(site string) int {
		t.Helper()
		pend, err := e.svc.PendingCommands(e.ctx, site)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pend {
			if site != "" && p.Site != site {
				t.Errorf("PendingCommands(%q) lists %s of %s", site, p.Command.ID, p.Site)
			}
		}
		return len(pend)
	}
	if a, b, all := count("yard-1"), count("yard-10"), count(""); a != 2 || b != 1 || all != 3 {
		t.Fatalf("pending: yard-1 %d, yard-10 %d, all %d; want 2, 1, 3", a, b, all)
	}
	for id, site := range ids {
		if site != "yard-1" {
			continue
		}
		if err := e.svc.ApplyCommandAck(e.ctx, site, e.clock.Now(), protocol.CommandAck{CommandID: id, State: protocol.StateInProgress}); err != nil {
			t.Fatal(err)
		}
		if count("yard-1") != 2 {
			t.Errorf("IN_PROGRESS left the pending list")
		}
		if err := e.svc.ApplyCommandAck(e.ctx, site, e.clock.Now(), protocol.CommandAck{CommandID: id, State: protocol.StateSucceeded}); err != nil {
			t.Fatal(err)
		}
		break
	}
	if a, b, all := count("yard-1"), count("yard-10"), count(""); a != 1 || b != 1 || all != 2 {
		t.Fatalf("after SUCCEEDED: yard-1 %d, yard-10 %d, all %d; want 1, 1, 2", a, b, all)
	}
}

// TestAlarmKinds pins the kinds the metrics report for every site: a kind added to the
// edge's dispatch table as raising an alarm shows up here, and so must be chosen.
func TestAlarmKinds(t *testing.T) {
	got := cloud.AlarmKinds()
	want := []protocol.EventKind{protocol.EventUncommandedOpen, protocol.EventDoorLeftOpen, protocol.EventLockJammed,
		protocol.EventBoardOffline, protocol.EventTempExcursion, protocol.EventHelpRequested, protocol.EventReassigned, protocol.EventCodeLockout}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("AlarmKinds() = %v, want %v", got, want)
	}
}

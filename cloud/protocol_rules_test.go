package cloud_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/protocol"
)

// Tests of the rules asyncapi.yaml states about the cloud's behaviour, by clause.

// TestOrderBeforeBirthRefused: [order.before-birth]. A site whose edge has sent no birth
// has no compartments and refuses orders with no_capacity; after the birth it takes them.
func TestOrderBeforeBirthRefused(t *testing.T) {
	e := newEnv(t)
	if _, err := e.svc.CreateSite(e.ctx, e.admin, cloud.SiteInput{ID: "unborn", Name: ptr("No birth yet")}); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.CreateOrder(e.ctx, e.plat, "k1", e.orderReq("unborn", "ext-1", chilledM))
	wantCode(t, err, cloud.ENoCapacity)
	if _, err := e.svc.ApplyBirth(e.ctx, "unborn", e.clock.Now(), protocol.Birth{Software: "test",
		Compartments: bank(1, []protocol.Zone{protocol.ZoneChilled}, []protocol.Size{protocol.SizeM})}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CreateOrder(e.ctx, e.plat, "k2", e.orderReq("unborn", "ext-2", chilledM)); err != nil {
		t.Fatalf("after the birth: %v", err)
	}
}

// alarmRow is a row of asyncapi.yaml's [alarm.table]: alarm, opened by, closed by.
var alarmRow = regexp.MustCompile("(?m)^\\s*\\| `([a-z_]+)` \\| ([^|]+) \\| ([^|]+) \\|$")

// TestAlarmTableMatchesCode: [alarm.table]. The table lists exactly AlarmKinds(), and
// each fact it says closes an alarm does: the alarm opened by its event is gone after
// the fact, about the same compartment, board or zone (and stays after the same fact
// about another one). Alarms closed by "an operator only" stay open after every fact.
func TestAlarmTableMatchesCode(t *testing.T) {
	doc, err := os.ReadFile("../protocol/asyncapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(doc), "**[alarm.table]**")
	if !ok {
		t.Fatal("asyncapi.yaml has no [alarm.table]")
	}
	table, _, _ = strings.Cut(table, "\n    ## ")
	closers := map[protocol.EventKind]string{}
	var kinds []protocol.EventKind
	for _, m := range alarmRow.FindAllStringSubmatch(table, -1) {
		k := protocol.EventKind(m[1])
		kinds = append(kinds, k)
		closers[k] = ""
		if !strings.Contains(m[3], "an operator only") {
			first, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimSpace(m[3]), "`"), "`")
			closers[k] = first
		}
	}
	if got, want := sortedKinds(kinds), sortedKinds(cloud.AlarmKinds()); !slices.Equal(got, want) {
		t.Fatalf("[alarm.table] lists %v, the code's AlarmKinds() %v", got, want)
	}

	comp, other := 3, 4
	board, otherBoard := 1, 2
	openers := map[protocol.EventKind]protocol.Event{
		protocol.EventUncommandedOpen: {Kind: protocol.EventUncommandedOpen, Credential: protocol.CredNone, Compartment: comp},
		protocol.EventDoorLeftOpen:    {Kind: protocol.EventDoorLeftOpen, Credential: protocol.CredNone, Compartment: comp, Seconds: 120},
		protocol.EventLockJammed:      {Kind: protocol.EventLockJammed, Credential: protocol.CredNone, Compartment: comp},
		protocol.EventBoardOffline:    {Kind: protocol.EventBoardOffline, Credential: protocol.CredNone, Board: &board},
		protocol.EventTempExcursion: {Kind: protocol.EventTempExcursion, Credential: protocol.CredNone, Zone: protocol.ZoneChilled,
			Celsius: ptr(9.5), Seconds: 900},
		protocol.EventCodeLockout:   {Kind: protocol.EventCodeLockout, Credential: protocol.CredNone, Seconds: 60},
		protocol.EventHelpRequested: {Kind: protocol.EventHelpRequested, Credential: protocol.CredNone},
	}
	// close applies the closing fact named in the table, about the alarm's subject when
	// same, else about another one.
	closeWith := func(e *env, site, fact string, same bool) {
		t.Helper()
		c, b, z := comp, board, protocol.ZoneChilled
		if !same {
			c, b, z = other, otherBoard, protocol.ZoneFrozen
		}
		switch fact {
		case "door_closed":
			e.mustEvent(site, protocol.Event{Kind: protocol.EventDoorClosed, Credential: protocol.CredNone, Compartment: c})
		case "board_online":
			e.mustEvent(site, protocol.Event{Kind: protocol.EventBoardOnline, Credential: protocol.CredNone, Board: &b})
		case "telemetry":
			if err := e.svc.ApplyTelemetry(e.ctx, site, e.clock.Now(), protocol.Telemetry{Zones: []protocol.ZoneReading{{Zone: z, Celsius: ptr(4.0)}}}); err != nil {
				t.Fatal(err)
			}
		case "set_in_service":
			if _, err := e.svc.SetInService(e.ctx, e.ops, site, c, true, ""); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("[alarm.table] names %q as a closing fact; this test knows no such fact", fact)
		}
	}
	facts := []string{"door_closed", "board_online", "telemetry", "set_in_service"}
	for _, kind := range kinds {
		ev, ok := openers[kind]
		if !ok {
			continue // reassigned: raised by the cloud itself; see the lifecycle tests
		}
		t.Run(string(kind), func(t *testing.T) {
			e := newEnv(t)
			e.site("yard", nil, bank(4, []protocol.Zone{protocol.ZoneChilled, protocol.ZoneFrozen}, []protocol.Size{protocol.SizeM}))
			e.mustEvent("yard", ev)
			if !hasAlarm(t, e, "yard", kind) {
				t.Fatalf("%s opened no alarm", kind)
			}
			for _, fact := range facts {
				closeWith(e, "yard", fact, false)
				if fact != closers[kind] {
					closeWith(e, "yard", fact, true)
				}
				if !hasAlarm(t, e, "yard", kind) {
					t.Fatalf("%s closed by %s, which the table does not say", kind, fact)
				}
			}
			if closers[kind] != "" {
				closeWith(e, "yard", closers[kind], true)
				if hasAlarm(t, e, "yard", kind) {
					t.Fatalf("%s still open after %s, which the table says closes it", kind, closers[kind])
				}
			}
		})
	}
}

func hasAlarm(t *testing.T, e *env, site string, kind protocol.EventKind) bool {
	t.Helper()
	d, err := e.svc.GetSite(e.ctx, e.ops, site)
	if err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(d.Alarms, func(a cloud.Alarm) bool { return a.Kind == kind })
}

func sortedKinds(ks []protocol.EventKind) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = string(k)
	}
	slices.Sort(out)
	return out
}

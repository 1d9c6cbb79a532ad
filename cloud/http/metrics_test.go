package http_test

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"testing"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/protocol"
)

// alarmsOpen scrapes /metrics and returns larder_alarms_open of site by kind.
func (f *fixture) alarmsOpen(site string) map[string]string {
	f.t.Helper()
	m := f.metrics()
	re := regexp.MustCompile(`(?m)^larder_alarms_open\{kind="([a-z_]+)",site="` + regexp.QuoteMeta(site) + `"\} (\S+)$`)
	got := map[string]string{}
	for _, sm := range re.FindAllStringSubmatch(m.raw, -1) {
		got[sm[1]] = sm[2]
	}
	return got
}

// TestAlarmsOpenZeroBeforeFirstAlarm: a rule such as
// larder_alarms_open{kind="help_requested"} > 0 can only tell a healthy site from a
// missing series if the healthy site reports 0.
func TestAlarmsOpenZeroBeforeFirstAlarm(t *testing.T) {
	f := newFixture(t)
	f.site("y1", 51.5)
	got := f.alarmsOpen("y1")
	for _, kind := range []string{"temperature_excursion", "door_left_open", "lock_jammed", "uncommanded_open",
		"board_offline", "help_requested", "reassigned"} {
		if got[kind] != "0" {
			t.Errorf(`fresh site: larder_alarms_open{kind=%q,site="y1"} = %q, want 0`, kind, got[kind])
		}
	}

	f.event("y1", protocol.Event{Kind: protocol.EventHelpRequested, Credential: protocol.CredNone, Reason: "kiosk help button"})
	got = f.alarmsOpen("y1")
	if got["help_requested"] != "1" {
		t.Errorf(`after a help request: larder_alarms_open{kind="help_requested",site="y1"} = %q, want 1`, got["help_requested"])
	}
	if got["door_left_open"] != "0" {
		t.Errorf(`after a help request: door_left_open = %q, want still 0`, got["door_left_open"])
	}
}

// TestAlarmKindsComplete sends every edge event kind to a site of its own and checks
// that whatever alarm it opens is of a kind the fresh site already reported as 0: an
// alarm kind the domain starts raising cannot be forgotten in the zero series.
func TestAlarmKindsComplete(t *testing.T) {
	f := newFixture(t)
	f.site("fresh", 51.5)
	zero := f.alarmsOpen("fresh")
	ctx := context.Background()
	board, celsius := 0, 14.5
	opened := 0
	for i, kind := range protocol.EventKinds() {
		site := fmt.Sprintf("k%d", i)
		f.site(site, 51.5)
		// One event carrying every field some kind requires, so each kind validates; the
		// first of its site's outbox.
		ev := protocol.Event{Kind: kind, Credential: protocol.CredSystem, Compartment: 1, To: 2, Order: "ord_none",
			Board: &board, Zone: protocol.ZoneChilled, Celsius: &celsius, Seconds: 600, Reason: "test"}
		if _, err := f.svc.ApplyEdgeEvent(ctx, site, protocol.Message{Header: protocol.Header{ID: protocol.NewID(), Seq: 1, Time: f.now},
			Type: protocol.TypeEvent, Body: ev}); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		d, err := f.svc.GetSite(ctx, cloud.System, site)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range d.Alarms {
			opened++
			if zero[string(a.Kind)] != "0" {
				t.Errorf("a %s event opened a %s alarm, which a fresh site does not report as 0", kind, a.Kind)
			}
		}
	}
	// The events that raise alarms on their own must have done so, or the loop checked
	// nothing.
	if opened < 6 {
		t.Fatalf("only %d alarms opened for %d event kinds: the events no longer reach the domain's raise?", opened, len(protocol.EventKinds()))
	}
	help := fmt.Sprintf("k%d", slices.Index(protocol.EventKinds(), protocol.EventHelpRequested))
	if got := f.alarmsOpen(help)["help_requested"]; got != "1" {
		t.Errorf(`larder_alarms_open{kind="help_requested",site=%q} = %q, want 1`, help, got)
	}
}

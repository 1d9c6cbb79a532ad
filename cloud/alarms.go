package cloud

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/larder-lockers/larder/protocol"
)

// Alarms: open problems at a site. An edge event raises one (or refreshes it: one alarm
// per kind and compartment, board or zone, with a count); a later fact closes it (door
// closed, board online, zone back in range, compartment back in service) or ops resolve
// it. Which event raises or closes which alarm is the edge's dispatch table (edge.go).

// AlarmKinds lists every kind of alarm the cloud opens, in protocol order: the edge
// events its dispatch table raises (code_lockout only when it names no order: the
// keypad's wrong-code budget spent), and reassigned, which it raises itself when an edge
// reports an order moved into a compartment the cloud knows to be occupied. Metrics
// report each kind for every site, 0 when none is open, so that a healthy site (0) is
// told from a missing series.
func AlarmKinds() []protocol.EventKind {
	var out []protocol.EventKind
	for _, k := range protocol.EventKinds() {
		if routes[k].raise || k == protocol.EventReassigned {
			out = append(out, k)
		}
	}
	return out
}

// alarmKey is site/ID, and an alarm's ID is kind:what (what: compartment, board, zone).
func alarmKey(site string, kind protocol.EventKind, what string) string {
	return site + "/" + alarmID(kind, what)
}

func alarmID(kind protocol.EventKind, what string) string { return string(kind) + ":" + what }

// alarmWhat is what an alarm of kind is about, taken from ev: its board, zone, the
// kiosk (help requests, a spent wrong-code budget) or else its compartment.
func alarmWhat(kind protocol.EventKind, ev protocol.Event) string {
	switch kind {
	case protocol.EventBoardOffline:
		return fmt.Sprint(*ev.Board)
	case protocol.EventTempExcursion:
		return string(ev.Zone)
	case protocol.EventHelpRequested, protocol.EventCodeLockout:
		return "kiosk"
	}
	return fmt.Sprint(ev.Compartment)
}

// raise opens (or refreshes) the alarm ev stands for; it reports whether a new one was
// opened.
func (s *Service) raise(tx Tx, site string, at time.Time, ev protocol.Event) (bool, error) {
	what := alarmWhat(ev.Kind, ev)
	a := Alarm{ID: alarmID(ev.Kind, what), Site: site, Kind: ev.Kind, Since: at, Updated: at, Count: 1, Reason: ev.Reason}
	switch ev.Kind {
	case protocol.EventBoardOffline:
		b := *ev.Board
		a.Board = &b
	case protocol.EventTempExcursion:
		a.Zone = ev.Zone
		if ev.Celsius != nil {
			a.Reason = fmt.Sprintf("%.1f °C for %.0f s", *ev.Celsius, ev.Seconds)
		}
		// Telemetry closes the alarm when the zone is back in range (ApplyTelemetry).
		s.live.mu.Lock()
		s.live.get(site).excursion[ev.Zone] = true
		s.live.mu.Unlock()
	case protocol.EventHelpRequested, protocol.EventCodeLockout:
	default:
		a.Compartment = ev.Compartment
	}
	k := site + "/" + a.ID
	var prev Alarm
	ok, err := getJSON(tx, bAlarms, k, &prev)
	if err != nil {
		return false, err
	}
	if ok {
		prev.Updated, prev.Count = at, prev.Count+1
		if a.Reason != "" {
			prev.Reason = a.Reason
		}
		return false, putJSON(tx, bAlarms, k, prev)
	}
	return true, putJSON(tx, bAlarms, k, a)
}

// closeAlarms closes the alarms of kinds about what at site, if open.
func closeAlarms(tx Tx, site, what string, kinds ...protocol.EventKind) error {
	for _, k := range kinds {
		if err := tx.Delete(bAlarms, alarmKey(site, k, what)); err != nil {
			return err
		}
	}
	return nil
}

// ResolveAlarm closes an open alarm by id (ops, admin), e.g. a help request answered.
func (s *Service) ResolveAlarm(ctx context.Context, p Principal, site, id string) error {
	if err := require(p, RoleOps, RoleAdmin); err != nil {
		return err
	}
	return internal("resolve alarm", s.store.Update(ctx, func(tx Tx) error {
		k := site + "/" + id
		if tx.Get(bAlarms, k) == nil {
			return &Error{Code: ENotFound, Message: "no open alarm " + id + " at site " + site}
		}
		audit(tx, s.now(), AuditEntry{Site: site, Actor: p.Subject, Role: p.Role, Action: "alarm_resolved:" + id})
		return tx.Delete(bAlarms, k)
	}))
}

func siteAlarms(tx Tx, site string) ([]Alarm, error) {
	var out []Alarm
	var derr error
	err := tx.Scan(bAlarms, site+"/", func(_ string, v []byte) bool {
		var a Alarm
		if derr = json.Unmarshal(v, &a); derr != nil {
			return false
		}
		out = append(out, a)
		return true
	})
	if err == nil {
		err = derr
	}
	return out, err
}

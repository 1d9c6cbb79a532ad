package protocol_test

import (
	"testing"

	"github.com/larder-lockers/larder/protocol"
)

// appendOnly fails unless got starts with pinned, in order: published values keep their
// place and meaning forever; new ones go at the end (then add them to pinned here).
func appendOnly[T comparable](t *testing.T, what string, got, pinned []T) {
	t.Helper()
	if len(got) < len(pinned) {
		t.Fatalf("%s: %d values, %d published: values were removed", what, len(got), len(pinned))
	}
	for i, p := range pinned {
		if got[i] != p {
			t.Errorf("%s[%d] = %v, published as %v: the list is append-only", what, i, got[i], p)
		}
	}
	seen := map[T]bool{}
	for _, v := range got {
		if seen[v] {
			t.Errorf("%s: %v appears twice", what, v)
		}
		seen[v] = true
	}
}

func TestErrorCodesAppendOnly(t *testing.T) {
	appendOnly(t, "ErrorCodes", protocol.ErrorCodes(), []protocol.ErrorCode{
		"invalid_command", "expired", "unknown_compartment", "out_of_service", "jammed",
		"board_offline", "busy", "stale_generation", "internal",
	})
}

func TestEventKindsAppendOnly(t *testing.T) {
	appendOnly(t, "EventKinds", protocol.EventKinds(), []protocol.EventKind{
		"door_opened", "door_closed", "loaded", "picked_up", "reassigned", "uncommanded_open",
		"door_left_open", "lock_jammed", "board_offline", "board_online", "temperature_excursion",
		"code_lockout", "order_compromised", "expired_removed", "help_requested", "outage",
	})
}

func TestChannelsAndTypesAppendOnly(t *testing.T) {
	var suffixes []string
	for _, c := range protocol.Channels() {
		suffixes = append(suffixes, c.Suffix())
	}
	appendOnly(t, "Channels", suffixes, []string{"status", "birth", "events", "telemetry",
		"commands/ack", "desired/get", "desired", "commands", "events/ack"})
	appendOnly(t, "Types", protocol.Types(), []protocol.Type{"status", "birth", "event",
		"telemetry", "command_ack", "desired_get", "desired", "command", "event_ack"})
}

func TestZonesAndSizes(t *testing.T) {
	appendOnly(t, "Zones", protocol.Zones(), []protocol.Zone{"frozen", "chilled", "cool", "ambient"})
	for _, z := range protocol.Zones() {
		if !z.Valid() {
			t.Errorf("zone %q not Valid", z)
		}
	}
	for _, z := range []protocol.Zone{"", "Frozen", "warm"} {
		if z.Valid() {
			t.Errorf("zone %q Valid", z)
		}
	}
	for i, s := range sizes {
		if s.Rank() != i+1 || !s.Valid() {
			t.Errorf("size %q: rank %d valid %v, want rank %d", s, s.Rank(), s.Valid(), i+1)
		}
	}
	for _, s := range []protocol.Size{"", "XL", "s"} {
		if s.Valid() || s.Rank() != 0 {
			t.Errorf("size %q valid", s)
		}
	}
}

func TestCommandStateFinal(t *testing.T) {
	for _, s := range commandStates {
		want := s != protocol.StateQueued && s != protocol.StateInProgress
		if s.Final() != want {
			t.Errorf("%s.Final() = %v, want %v", s, s.Final(), want)
		}
	}
	if protocol.CommandState("DONE").Final() {
		t.Error("unknown state is final")
	}
}

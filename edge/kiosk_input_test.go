package edge_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/larder-lockers/larder/edge"
	"github.com/larder-lockers/larder/protocol"
)

// TestMalformedAttemptsCountNothing: a code or phone ending of the wrong length is a bad
// request naming its field, never a guess: however many arrive, the keypad does not wait,
// the order's count of wrong second factors stays 0, and the next real guess still has
// every attempt left.
func TestMalformedAttemptsCountNothing(t *testing.T) {
	h := newHarness(t)
	h.reserve(alice)
	h.load(alice)
	cases := []struct {
		name, code, factor, field string
	}{
		{"7-digit code", "1234567", "4321", "code"},
		{"16-digit code", "1234567812345678", "4321", "code"},
		{"9-digit code starting with the right one", alice.code + "0", alice.factor, "code"},
		{"empty code", "", "4321", "code"},
		{"letters", "1234567a", "4321", "code"},
		{"right code, 3 phone digits", alice.code, "432", "factor"},
		{"right code, 5 phone digits", alice.code, "43210", "factor"},
		{"right code, no phone digits", alice.code, "", "factor"},
	}
	for round := range 3 { // 24 attempts: past FreeFailures (4), FailureBudget (20) and MaxOrderFailures (10)
		for _, c := range cases {
			_, err := h.l.Pickup(h.ctx, c.code, c.factor, false)
			e, _ := err.(*edge.Error)
			if e == nil || e.Code != edge.CodeBadRequest || e.Extra["field"] != c.field || e.Message == "" || e.MessageZH == "" {
				t.Fatalf("round %d, %s: %v %+v, want bad_request on %s", round, c.name, err, e, c.field)
			}
		}
	}
	if _, secs := h.l.Info(); secs != 0 {
		t.Fatalf("keypad waits %d s after malformed attempts", secs)
	}
	if r := h.reservation(alice.id); r.WrongAttempts != 0 || r.State != edge.OrderLoaded {
		t.Fatalf("order after malformed attempts: %d wrong, %s", r.WrongAttempts, r.State)
	}
	if n := h.count(protocol.EventCodeLockout); n != 0 {
		t.Fatalf("%d code_lockout events: %s", n, h.kinds())
	}
	if got := testutil.ToFloat64(h.m.CodeFailures); got != 0 {
		t.Fatalf("larder_code_failures_total %v after malformed attempts", got)
	}
	_, err := h.l.Pickup(h.ctx, "99999999", "0000", false)
	if e, _ := err.(*edge.Error); e == nil || e.Code != edge.CodeWrongCode || e.Extra["attempts_left"] != 4 {
		t.Fatalf("first real guess: %v", err)
	}
	if _, err := h.l.Pickup(h.ctx, alice.code, alice.factor, false); err != nil {
		t.Fatalf("right code after malformed attempts: %v", err)
	}
}

// TestHelpRateLimit: one help_requested per HelpInterval; presses in between report that
// staff already know and raise nothing; the next after the interval raises again.
func TestHelpRateLimit(t *testing.T) {
	h := newHarness(t)
	press := func(want bool) {
		t.Helper()
		raised, err := h.l.Help(h.ctx, "pickup")
		if err != nil || raised != want {
			t.Fatalf("Help at +%v: raised %v, %v; want %v", h.clock.Now().Sub(t0), raised, err, want)
		}
	}
	press(true)
	for range 20 {
		press(false)
	}
	h.clock.Advance(time.Minute - time.Second)
	press(false)
	if n := h.count(protocol.EventHelpRequested); n != 1 {
		t.Fatalf("%d help_requested within a minute, want 1", n)
	}
	h.clock.Advance(time.Second)
	press(true)
	press(false)
	if n := h.count(protocol.EventHelpRequested); n != 2 {
		t.Fatalf("%d help_requested after the interval, want 2", n)
	}
}

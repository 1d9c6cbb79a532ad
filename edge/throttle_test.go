package edge_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/larder-lockers/larder/edge"
	"github.com/larder-lockers/larder/protocol"
)

// guess types a wrong code (one no order has) and returns the answer.
func guess(h *harness, n int) *edge.Error {
	h.t.Helper()
	_, err := h.l.Pickup(h.ctx, fmt.Sprintf("9%07d", n%10_000_000), "0000", false)
	e, _ := err.(*edge.Error)
	if e == nil {
		h.t.Fatalf("wrong code %d: %v", n, err)
	}
	return e
}

// waitOf is the wait an answer announces, in seconds (0: none).
func waitOf(e *edge.Error) int {
	s, _ := e.Extra["retry_after_seconds"].(int)
	return s
}

// TestThrottleEscalates: four wrong codes are answered at once with the tries left; each
// further one makes the keypad wait 1 s, doubling to 60 s at most; during the wait every
// attempt, the right code included, is answered locked with the seconds left and changes
// nothing; after it the right code opens.
func TestThrottleEscalates(t *testing.T) {
	h := newHarness(t)
	h.reserve(alice)
	h.load(alice)
	for i := 1; i <= 4; i++ {
		e := guess(h, i)
		if e.Code != edge.CodeWrongCode || e.Extra["attempts_left"] != 5-i || waitOf(e) != 0 {
			t.Fatalf("wrong code %d: %+v", i, e)
		}
	}
	for i, want := range []int{1, 2, 4, 8, 16, 32, 60, 60, 60} {
		e := guess(h, 5+i)
		if e.Code != edge.CodeWrongCode || waitOf(e) != want || e.Extra["attempts_left"] != nil {
			t.Fatalf("wrong code %d: %+v, want wrong_code waiting %d s", 5+i, e, want)
		}
		if _, secs := h.l.Info(); secs != want {
			t.Fatalf("locked_seconds %d, want %d", secs, want)
		}
		h.clock.Advance(time.Duration(want) * time.Second / 2)
		// A guess and the right code during the wait: refused, unchecked, and the wait
		// does not grow.
		if e := guess(h, 100+i); e.Code != edge.CodeLocked || waitOf(e) != (want+1)/2 {
			t.Fatalf("guess during the wait: %+v, want locked %d s", e, (want+1)/2)
		}
		if _, err := h.l.Pickup(h.ctx, alice.code, alice.factor, false); code(err) != edge.CodeLocked {
			t.Fatalf("right code during the wait: %v", err)
		}
		h.clock.Advance(time.Duration(want)*time.Second - time.Duration(want)*time.Second/2)
	}
	if got := testutil.ToFloat64(h.m.CodeFailures); got != 13 {
		t.Fatalf("larder_code_failures_total %v, want 13 (refused attempts are not guesses)", got)
	}
	if _, err := h.l.Pickup(h.ctx, alice.code, alice.factor, false); err != nil {
		t.Fatalf("right code after the wait: %v", err)
	}
}

// TestThrottleDecays: the count of wrong codes starts over after DelayQuiet (10 min)
// without a wrong code, not before, and a successful pickup does not reset it.
func TestThrottleDecays(t *testing.T) {
	h := newHarness(t)
	h.reserve(alice)
	h.load(alice)
	for i := 1; i <= 6; i++ {
		guess(h, i)
		h.clock.Advance(2 * time.Second)
	}
	if _, err := h.l.Pickup(h.ctx, alice.code, alice.factor, false); err != nil {
		t.Fatalf("right code: %v", err)
	}
	h.clock.Advance(10*time.Minute - 5*time.Second) // quiet for just under 10 min
	if e := guess(h, 7); waitOf(e) != 4 {
		t.Fatalf("7th wrong code after a pickup and 9:57 quiet: %+v, want a 4 s wait", e)
	}
	h.clock.Advance(10 * time.Minute)
	if e := guess(h, 8); e.Code != edge.CodeWrongCode || e.Extra["attempts_left"] != 4 || waitOf(e) != 0 {
		t.Fatalf("after 10 min quiet: %+v, want 4 tries left and no wait", e)
	}
}

// TestThrottleSurvivesRestart: a reboot resets neither the wait nor the count.
func TestThrottleSurvivesRestart(t *testing.T) {
	h := newHarness(t)
	h.reserve(alice)
	h.load(alice)
	for i := 1; i <= 11; i++ { // the 11th waits 60 s
		guess(h, i)
		h.clock.Advance(time.Minute)
	}
	h.clock.Advance(-30 * time.Second)
	h.restart(nil)
	if _, secs := h.l.Info(); secs != 30 {
		t.Fatalf("locked_seconds after restart %d, want 30", secs)
	}
	if _, err := h.l.Pickup(h.ctx, alice.code, alice.factor, false); code(err) != edge.CodeLocked {
		t.Fatalf("right code after restart, within the wait: %v", err)
	}
	h.clock.Advance(30 * time.Second)
	if e := guess(h, 12); waitOf(e) != 60 {
		t.Fatalf("12th wrong code after restart: %+v, want the 60 s wait", e)
	}
}

// TestThrottleClockSetBack: a clock set back an hour after a wrong code does not stretch
// the wait beyond DelayMax.
func TestThrottleClockSetBack(t *testing.T) {
	h := newHarness(t)
	h.reserve(alice)
	h.load(alice)
	for i := 1; i <= 11; i++ {
		guess(h, i)
		h.clock.Advance(time.Minute)
	}
	guess(h, 12) // waits 60 s
	h.clock.Advance(-time.Hour)
	if _, secs := h.l.Info(); secs != 60 {
		t.Fatalf("locked_seconds after the clock went back %d, want 60", secs)
	}
	if e := guess(h, 13); e.Code != edge.CodeLocked || waitOf(e) != 60 {
		t.Fatalf("during the wait: %+v", e)
	}
	h.clock.Advance(time.Minute)
	if _, err := h.l.Pickup(h.ctx, alice.code, alice.factor, false); err != nil {
		t.Fatalf("right code a minute after the clock went back: %v", err)
	}
}

// budgetEvents counts the code_lockout events that say the budget of wrong codes is spent.
func budgetEvents(h *harness) int {
	n := 0
	for _, e := range h.events() {
		if e.Kind == protocol.EventCodeLockout && e.Reason == "wrong_code_budget" {
			if e.Order != "" || e.Seconds != 0 {
				h.t.Fatalf("budget event %+v names an order or a lock", e)
			}
			n++
		}
	}
	return n
}

// TestFailureBudgetAlarms: the 20th wrong code within an hour sends one code_lockout
// (wrong_code_budget) and counts in larder_code_lockouts_total; more wrong codes in the
// same hour send nothing more; the right code still opens at once; the next hour has a
// budget of its own.
func TestFailureBudgetAlarms(t *testing.T) {
	h := newHarness(t)
	alice := alice
	alice.expires = t0.Add(30 * 24 * time.Hour)
	h.reserve(alice)
	h.load(alice)
	start := h.clock.Now()
	pace := func(n int) { // wrong codes as fast as the keypad takes them
		for i := range n {
			e := guess(h, i)
			h.clock.Advance(time.Duration(waitOf(e)) * time.Second)
		}
	}
	pace(19)
	if n := budgetEvents(h); n != 0 {
		t.Fatalf("%d budget events after 19 wrong codes", n)
	}
	pace(1)
	if n := budgetEvents(h); n != 1 {
		t.Fatalf("%d budget events after 20 wrong codes, want 1", n)
	}
	if got := testutil.ToFloat64(h.m.CodeLockouts); got != 1 {
		t.Fatalf("larder_code_lockouts_total %v, want 1", got)
	}
	if _, err := h.l.Pickup(h.ctx, alice.code, alice.factor, false); err != nil {
		t.Fatalf("right code with the budget spent: %v", err)
	}
	for h.clock.Now().Sub(start) < 55*time.Minute {
		pace(1)
	}
	if n := budgetEvents(h); n != 1 {
		t.Fatalf("%d budget events within the hour, want 1", n)
	}
	h.clock.Set(start.Add(time.Hour))
	pace(20)
	if n := budgetEvents(h); n != 2 {
		t.Fatalf("%d budget events in the second hour, want 2", n)
	}
}

// TestGuessingTakesYears measures the throttle against its two targets (docs/codes.md)
// by driving the real Locker on the injected clock:
//
//   - An attacker who knows the phone digits and types wrong codes as fast as the keypad
//     takes them, flat out or in bursts that let the keypad go quiet in between, must
//     need at least a year on average to hit one of 50 live codes: 10⁸ / 50 = 2 × 10⁶
//     guesses at the achieved rate.
//   - A resident with a valid code arriving at a random moment, while the attacker also
//     types during every wait, must be able to type within 60 s and be served. Both
//     stand at the one touchscreen, so the moment the wait ends is the resident's turn:
//     what the throttle owes is that the wait never exceeds 60 s and that nothing typed
//     during it makes it longer.
func TestGuessingTakesYears(t *testing.T) {
	const (
		liveCodes = 50
		codes     = 1e8
		year      = 365.25 * 24 * time.Hour
		maxWait   = 60 * time.Second
	)
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))

	expected := func(guesses int, took time.Duration) time.Duration {
		return time.Duration(codes / liveCodes * (took.Seconds() / float64(guesses)) * float64(time.Second))
	}

	t.Run("flat out, with a resident", func(t *testing.T) {
		h := newHarness(t)
		alice := alice
		alice.expires = t0.Add(30 * 24 * time.Hour)
		h.reserve(alice)
		h.load(alice)
		start := h.clock.Now()
		end := start.Add(72 * time.Hour)
		arrival := func(after time.Time) time.Time {
			return after.Add(time.Duration(rng.Int64N(int64(90 * time.Minute))))
		}
		var (
			guesses, residents int
			worst              time.Duration
			attackAt, spamAt   = start, time.Time{}
			residentAt         = arrival(start)
		)
		for n := 0; ; n++ {
			next := attackAt
			if !spamAt.IsZero() && spamAt.Before(next) {
				next = spamAt
			}
			if !residentAt.After(next) {
				next = residentAt
			}
			if next.After(end) {
				break
			}
			h.clock.Set(next)
			switch {
			case next.Equal(residentAt): // first at an instant: see the test's comment
				waited := time.Duration(0)
				_, err := h.l.Pickup(h.ctx, alice.code, alice.factor, false)
				if e, _ := err.(*edge.Error); e != nil && e.Code == edge.CodeLocked {
					waited = time.Duration(waitOf(e)) * time.Second
					if waited > maxWait {
						t.Fatalf("resident at +%v told to wait %v", next.Sub(start), waited)
					}
					h.clock.Advance(waited)
					_, err = h.l.Pickup(h.ctx, alice.code, alice.factor, false)
				}
				if err != nil {
					t.Fatalf("resident at +%v, after waiting %v: %v", next.Sub(start), waited, err)
				}
				worst = max(worst, waited)
				residents++
				residentAt = arrival(h.clock.Now())
			case next.Equal(spamAt): // typing during the wait changes nothing
				before := h.l.ThrottledFor()
				if e := guess(h, n); e.Code != edge.CodeLocked {
					t.Fatalf("guess during the wait: %+v", e)
				}
				if after := h.l.ThrottledFor(); after != before {
					t.Fatalf("a guess during the wait moved it from %v to %v", before, after)
				}
				spamAt = time.Time{}
			default:
				e := guess(h, n)
				if e.Code == edge.CodeLocked {
					t.Fatalf("attacker at the end of the wait refused: %+v", e)
				}
				guesses++
				wait := time.Duration(waitOf(e)) * time.Second
				attackAt = next.Add(max(wait, time.Millisecond))
				if wait > time.Second {
					spamAt = next.Add(time.Duration(rng.Int64N(int64(wait-time.Second))) + time.Millisecond)
				}
			}
		}
		took := end.Sub(start)
		exp := expected(guesses, took)
		t.Logf("flat out: %d guesses in %v (%.1f s each): expected %.1f years to hit one of %d codes; %d residents, longest wait %v",
			guesses, took, took.Seconds()/float64(guesses), exp.Hours()/year.Hours(), liveCodes, residents, worst)
		if exp < year {
			t.Errorf("expected time to a hit %.2f years, want at least 1", exp.Hours()/year.Hours())
		}
		if residents < 10 {
			t.Fatalf("only %d residents arrived: the simulation is too short to say anything", residents)
		}
	})

	// Bursts of k guesses, then as long a pause as it takes the keypad to forget them:
	// the cheap first guesses of each burst must not buy the attacker more than the
	// pause costs.
	for _, k := range []int{1, 3, 5, 6, 8, 11, 16, 30} {
		t.Run(fmt.Sprintf("bursts of %d", k), func(t *testing.T) {
			h := newHarness(t)
			start := h.clock.Now()
			end := start.Add(8 * time.Hour)
			guesses := 0
			for n := 0; h.clock.Now().Before(end); n++ {
				e := guess(h, n)
				if e.Code != edge.CodeWrongCode {
					t.Fatalf("guess %d: %+v", n, e)
				}
				guesses++
				if guesses%k == 0 {
					h.clock.Advance(10 * time.Minute) // DelayQuiet: the count starts over
				} else {
					h.clock.Advance(time.Duration(waitOf(e)) * time.Second)
				}
			}
			took := h.clock.Now().Sub(start)
			exp := expected(guesses, took)
			t.Logf("bursts of %d: %d guesses in %v (%.1f s each): expected %.1f years", k, guesses, took.Round(time.Minute),
				took.Seconds()/float64(guesses), exp.Hours()/year.Hours())
			if exp < year {
				t.Errorf("expected time to a hit %.2f years, want at least 1", exp.Hours()/year.Hours())
			}
		})
	}
}

// TestThrottleJudgesAttemptAtItsTurn: an attempt that waited for the store while another
// held it is judged by the clock when its turn comes, not when it arrived: a wait that
// ended meanwhile does not refuse it.
func TestThrottleJudgesAttemptAtItsTurn(t *testing.T) {
	h := newHarness(t)
	h.reserve(alice)
	h.load(alice)
	for i := 1; i <= 11; i++ {
		guess(h, i)
		h.clock.Advance(time.Minute)
	}
	guess(h, 12) // waits 60 s
	h.clock.Advance(30 * time.Second)
	held, release := make(chan struct{}), make(chan struct{})
	go h.store.Update(func(edge.Tx) error { // someone else's transaction
		close(held)
		<-release
		return nil
	})
	<-held
	done := make(chan error, 1)
	go func() {
		_, err := h.l.Pickup(h.ctx, alice.code, alice.factor, false)
		done <- err
	}()
	time.Sleep(100 * time.Millisecond) // let the pickup read the clock and queue for the store
	h.clock.Advance(40 * time.Second)  // the wait is over by the pickup's turn
	close(release)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("pickup whose turn came after the wait: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("pickup did not return")
	}
}

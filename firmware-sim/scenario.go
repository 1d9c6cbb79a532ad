package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"
)

// Action vocabulary, shared by scenarios and the control API.
const (
	DoOpen        = "open"         // compartment, force
	DoClose       = "close"        // compartment
	DoPut         = "put"          // compartment, items (default 1)
	DoTake        = "take"         // compartment, items (default all)
	DoOutside     = "outside"      // outside_c
	DoPower       = "power"        // on
	DoFault       = "fault"        // fault
	DoClearFaults = "clear_faults" // -
)

// Duration is a time.Duration that reads and writes JSON as "1.5s" (a bare
// number is seconds).
type Duration time.Duration

// MarshalJSON writes d as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads "1.5s", "250ms" or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		*d = Duration(v)
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("duration %s: want \"1.5s\" or seconds", b)
	}
	*d = Duration(f * float64(time.Second))
	return nil
}

// Action is one thing people or the world do.
type Action struct {
	At          Duration `json:"at,omitempty"` // offset from the scenario's start
	Do          string   `json:"do"`
	Compartment int      `json:"compartment,omitempty"`
	Force       bool     `json:"force,omitempty"`
	Items       int      `json:"items,omitempty"`
	OutsideC    *float64 `json:"outside_c,omitempty"`
	On          *bool    `json:"on,omitempty"`
	Fault       *Fault   `json:"fault,omitempty"`
}

// Apply performs a on the world now.
func (w *World) Apply(a Action) error {
	switch a.Do {
	case DoOpen:
		return w.Open(a.Compartment, a.Force)
	case DoClose:
		return w.Close(a.Compartment)
	case DoPut:
		return w.Put(a.Compartment, a.Items)
	case DoTake:
		return w.Take(a.Compartment, a.Items)
	case DoOutside:
		if a.OutsideC == nil {
			return fmt.Errorf("sim: %s needs outside_c: %w", a.Do, ErrInvalid)
		}
		return w.SetOutside(*a.OutsideC)
	case DoPower:
		if a.On == nil {
			return fmt.Errorf("sim: %s needs on: %w", a.Do, ErrInvalid)
		}
		w.SetPower(*a.On)
		return nil
	case DoFault:
		if a.Fault == nil {
			return fmt.Errorf("sim: %s needs fault: %w", a.Do, ErrInvalid)
		}
		return w.ApplyFault(*a.Fault)
	case DoClearFaults:
		w.ClearFaults()
		return nil
	}
	return fmt.Errorf("sim: unknown action %q: %w", a.Do, ErrInvalid)
}

// Scenario is a list of timed actions.
type Scenario struct {
	Actions []Action `json:"actions"`
}

var knownActions = []string{DoOpen, DoClose, DoPut, DoTake, DoOutside, DoPower, DoFault, DoClearFaults}

// ParseScenario reads a scenario and checks its shape (not whether each
// action will succeed, which depends on the world at the time). Actions are
// ordered by offset, stably.
func ParseScenario(data []byte) (Scenario, error) {
	var s Scenario
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Scenario{}, fmt.Errorf("sim: scenario: %v: %w", err, ErrInvalid)
	}
	for i, a := range s.Actions {
		if !slices.Contains(knownActions, a.Do) {
			return Scenario{}, fmt.Errorf("sim: scenario action %d: unknown do %q (want one of %v): %w", i, a.Do, knownActions, ErrInvalid)
		}
		if a.At < 0 {
			return Scenario{}, fmt.Errorf("sim: scenario action %d: negative at: %w", i, ErrInvalid)
		}
	}
	slices.SortStableFunc(s.Actions, func(a, b Action) int {
		return int(time.Duration(a.At) - time.Duration(b.At))
	})
	return s, nil
}

// Run replays the scenario on w: each action at its offset from now (real
// time, or a synctest bubble's). A failing action is logged and skipped, as
// a person who cannot open a locked door walks on. It returns early with
// ctx's error, and otherwise the number of actions that failed.
func (s Scenario) Run(ctx context.Context, w *World, log *slog.Logger) (failed int, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	start := time.Now()
	for i, a := range s.Actions {
		if d := time.Until(start.Add(time.Duration(a.At))); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return failed, ctx.Err()
			case <-t.C:
			}
		}
		if err := w.Apply(a); err != nil {
			failed++
			log.Warn("scenario action failed", "index", i, "do", a.Do, "compartment", a.Compartment, "err", err)
		}
	}
	return failed, nil
}

package conform

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// simulator drives larder-sim's control API (GET /v1/state, POST
// /v1/compartments/{n}/open|close|put|take, POST /v1/faults): the people and the world
// around the edge under test. The kit reads doors and latch pulses from it as the proof
// that a door really opened.
type simulator struct{ api *api }

// door is one compartment as the simulator sees it.
type door struct {
	N          int  `json:"n"`
	DoorOpen   bool `json:"door_open"`
	HookClosed bool `json:"hook_closed"`
	Items      int  `json:"items"`
	Pulses     int  `json:"pulses"`
}

func (s simulator) door(ctx context.Context, n int) (door, error) {
	ans, err := s.api.expect(ctx, 200, "GET", "/v1/state", nil)
	if err != nil {
		return door{}, err
	}
	var st struct {
		Compartments []door `json:"compartments"`
	}
	if err := json.Unmarshal(ans.Raw, &st); err != nil {
		return door{}, fmt.Errorf("sim state: %w", err)
	}
	for _, d := range st.Compartments {
		if d.N == n {
			return d, nil
		}
	}
	return door{}, fmt.Errorf("sim has no compartment %d", n)
}

// act is a person at compartment n: open (force: pull a locked door), close, put, take.
func (s simulator) act(ctx context.Context, n int, do string, body any) error {
	_, err := s.api.expect(ctx, 200, "POST", fmt.Sprintf("/v1/compartments/%d/%s", n, do), body)
	return err
}

// fault injects (off false) or clears a fault at compartment n.
func (s simulator) fault(ctx context.Context, kind string, n int, off bool) error {
	_, err := s.api.expect(ctx, 200, "POST", "/v1/faults", map[string]any{"kind": kind, "compartment": n, "off": off})
	return err
}

// waitOpen waits until door n stands open.
func (s simulator) waitOpen(ctx context.Context, n int, timeout time.Duration) (door, error) {
	var d door
	err := poll(ctx, timeout, func() error {
		var err error
		if d, err = s.door(ctx, n); err != nil {
			return err
		}
		if !d.DoorOpen {
			return fmt.Errorf("door %d is not open", n)
		}
		return nil
	})
	return d, err
}

// shut pushes door n until it stays shut: closed while its latch is still released,
// the spring pushes a door ajar again, as a real one would.
func (s simulator) shut(ctx context.Context, n int, timeout time.Duration) error {
	return poll(ctx, timeout, func() error {
		if err := s.act(ctx, n, "close", nil); err != nil {
			return err
		}
		time.Sleep(100 * time.Millisecond)
		d, err := s.door(ctx, n)
		if err != nil {
			return err
		}
		if !d.HookClosed || d.DoorOpen {
			return fmt.Errorf("door %d does not stay shut", n)
		}
		return nil
	})
}

// handle is a person putting (put true) or taking everything out of open door n, then
// shutting it; the pause lets the edge's poller see the infrared change first.
func (s simulator) handle(ctx context.Context, n int, put bool, timeout time.Duration) error {
	do, body := "take", any(nil)
	if put {
		do, body = "put", map[string]int{"items": 1}
	}
	if err := s.act(ctx, n, do, body); err != nil {
		return err
	}
	time.Sleep(600 * time.Millisecond)
	return s.shut(ctx, n, timeout)
}

package demo

import (
	"context"
	"fmt"
	"time"
)

// People act at the locker bank: a driver and a resident using the kiosk, their hands
// played through the simulator's control API.
type People struct {
	Kiosk *KioskClient
	Sim   *SimClient
	// Dwell is how long a hand stays in an open compartment, so that the edge's poller
	// sees the infrared change before the door shuts (a person takes about that long
	// anyway). Zero means 1.5 s, three of the edge's default 500 ms poll intervals.
	Dwell time.Duration
}

func (p *People) dwell(ctx context.Context) error {
	d := p.Dwell
	if d <= 0 {
		d = 1500 * time.Millisecond
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// waitOpen waits for the door to swing open after the edge's unlock.
func (p *People) waitOpen(ctx context.Context, n int) error {
	return Eventually(ctx, 10*time.Second, fmt.Sprintf("door %d opens", n), func() error {
		open, err := p.Sim.DoorOpen(ctx, n)
		if err == nil && !open {
			err = fmt.Errorf("door %d still shut", n)
		}
		return err
	})
}

// Load has a driver (logged in with token) open each of the order's compartments at the
// kiosk, put a bag in and shut the door; it returns once the kiosk's manifest shows the
// order loaded (the edge has recorded it, whether or not the cloud is reachable).
func (p *People) Load(ctx context.Context, token, order string, compartments []int) error {
	for _, n := range compartments {
		if _, err := p.Kiosk.DriverOpen(ctx, token, order, n); err != nil {
			return fmt.Errorf("demo: driver opens %d for %s: %w", n, order, err)
		}
		if err := p.fill(ctx, n); err != nil {
			return err
		}
	}
	return Eventually(ctx, 10*time.Second, "order "+order+" loaded on the kiosk's manifest", func() error {
		m, err := p.Kiosk.Manifest(ctx, token)
		if err != nil {
			return err
		}
		for _, mo := range m {
			if mo.Order == order {
				if mo.State != "loaded" {
					return fmt.Errorf("state %s", mo.State)
				}
				return nil
			}
		}
		return fmt.Errorf("order not on the manifest")
	})
}

func (p *People) fill(ctx context.Context, n int) error {
	if err := p.waitOpen(ctx, n); err != nil {
		return err
	}
	if err := p.Sim.Put(ctx, n, 1); err != nil {
		return fmt.Errorf("demo: put into %d: %w", n, err)
	}
	if err := p.dwell(ctx); err != nil {
		return err
	}
	if err := p.Sim.Close(ctx, n); err != nil {
		return fmt.Errorf("demo: close %d: %w", n, err)
	}
	return nil
}

// Empty takes everything out of compartment n once its door is open, and shuts it.
func (p *People) Empty(ctx context.Context, n int) error {
	if err := p.waitOpen(ctx, n); err != nil {
		return err
	}
	if err := p.Sim.Take(ctx, n); err != nil {
		return fmt.Errorf("demo: take from %d: %w", n, err)
	}
	if err := p.dwell(ctx); err != nil {
		return err
	}
	if err := p.Sim.Close(ctx, n); err != nil {
		return fmt.Errorf("demo: close %d: %w", n, err)
	}
	return nil
}

// PickUp has a resident type the code and the last four digits of the phone at the kiosk,
// empty every door that opened and shut it; it waits for the kiosk to say done.
func (p *People) PickUp(ctx context.Context, code, factor string) (PickupResult, error) {
	res, err := p.Kiosk.Pickup(ctx, code, factor)
	if err != nil {
		return res, fmt.Errorf("demo: pickup at the kiosk: %w", err)
	}
	for _, d := range res.Doors {
		if err := p.Empty(ctx, d.Number); err != nil {
			return res, err
		}
	}
	err = Eventually(ctx, 15*time.Second, "pickup session done", func() error {
		done, err := p.Kiosk.SessionDone(ctx, res.Session)
		if err == nil && !done {
			err = fmt.Errorf("not done")
		}
		return err
	})
	return res, err
}

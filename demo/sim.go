package demo

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SimOptions start one larder-sim.
type SimOptions struct {
	Name    string // log prefix; empty means "sim"
	Profile string // kerong-cu16 (default) or bcc8a
	Boards  int    // default 2
	Zones   string // e.g. "chilled:1-16,frozen:17-24,ambient:25-32"
	// Control is the control API address (loopback); empty picks a free port.
	Control string
	// Listen serves the bus on TCP ("tcp://127.0.0.1:0") instead of a pty.
	Listen string
	Extra  []string // more flags
}

// Sim is a running larder-sim.
type Sim struct {
	*Proc
	// Bus is what larder-edge's -bus takes: the pty device or tcp://HOST:PORT.
	Bus     string
	Control *SimClient
}

// StartSim starts larder-sim and waits for it to announce its serial line and control API.
func (l *Launcher) StartSim(ctx context.Context, o SimOptions) (*Sim, error) {
	if o.Name == "" {
		o.Name = "sim"
	}
	if o.Profile == "" {
		o.Profile = "kerong-cu16"
	}
	if o.Boards == 0 {
		o.Boards = 2
	}
	if o.Control == "" {
		a, err := FreeAddr()
		if err != nil {
			return nil, err
		}
		o.Control = a
	} else if err := CheckFree(o.Control); err != nil {
		return nil, err
	}
	args := []string{"-profile", o.Profile, "-boards", strconv.Itoa(o.Boards), "-control", o.Control}
	if o.Listen != "" {
		args = append(args, "-listen", o.Listen)
	} else {
		args = append(args, "-pty")
	}
	if o.Zones != "" {
		args = append(args, "-zones", o.Zones)
	}
	args = append(args, o.Extra...)
	p, err := l.Start(o.Name, "larder-sim", args, nil)
	if err != nil {
		return nil, err
	}
	// "larder-sim: serial on /dev/pts/3 (kerong-cu16, 2 boards, 19200 baud)"
	bus, err := p.WaitLine(ctx, 10*time.Second, "its serial line", func(line string) string {
		rest, ok := strings.CutPrefix(line, "larder-sim: serial on ")
		if !ok {
			return ""
		}
		dev, _, _ := strings.Cut(rest, " ")
		return dev
	})
	if err != nil {
		p.Stop()
		return nil, err
	}
	url, err := p.WaitLine(ctx, 10*time.Second, "its control API", func(line string) string {
		u, _ := strings.CutPrefix(line, "larder-sim: control on ")
		if u == line {
			return ""
		}
		return strings.TrimSpace(u)
	})
	if err != nil {
		p.Stop()
		return nil, err
	}
	s := &Sim{Proc: p, Bus: bus, Control: &SimClient{URL: url}}
	if err := p.WaitHealthy(ctx, url+"/v1/bus", 10*time.Second); err != nil {
		p.Stop()
		return nil, err
	}
	return s, nil
}

// SimClient acts as people and the world through larder-sim's control API.
type SimClient struct {
	URL string
}

// SimState is the part of GET /v1/state the demo and tests read.
type SimState struct {
	Powered      bool `json:"powered"`
	Compartments []struct {
		N          int    `json:"n"`
		Zone       string `json:"zone"`
		DoorOpen   bool   `json:"door_open"`
		Latched    bool   `json:"latched"`
		HookClosed bool   `json:"hook_closed"`
		Items      int    `json:"items"`
		IR         bool   `json:"ir"`
		Pulses     int    `json:"pulses"`
	} `json:"compartments"`
	Zones []struct {
		Name  string   `json:"name"`
		TempC *float64 `json:"temp_c"`
	} `json:"zones"`
}

// State reads the whole simulated world.
func (c *SimClient) State(ctx context.Context) (SimState, error) {
	var s SimState
	err := doJSON(ctx, "GET", c.URL+"/v1/state", "", nil, &s)
	return s, err
}

func (c *SimClient) act(ctx context.Context, n int, do string, body any) error {
	return doJSON(ctx, "POST", fmt.Sprintf("%s/v1/compartments/%d/%s", c.URL, n, do), "", body, nil)
}

// Open pulls compartment n's door (force: even a locked one, as a crowbar would).
func (c *SimClient) Open(ctx context.Context, n int, force bool) error {
	return c.act(ctx, n, "open", map[string]bool{"force": force})
}

// Close pushes compartment n's door shut.
func (c *SimClient) Close(ctx context.Context, n int) error { return c.act(ctx, n, "close", nil) }

// Put places k items into compartment n (its door must be open).
func (c *SimClient) Put(ctx context.Context, n, k int) error {
	return c.act(ctx, n, "put", map[string]int{"items": k})
}

// Take removes every item from compartment n (its door must be open).
func (c *SimClient) Take(ctx context.Context, n int) error { return c.act(ctx, n, "take", nil) }

// DoorOpen reports whether compartment n's door is open.
func (c *SimClient) DoorOpen(ctx context.Context, n int) (bool, error) {
	s, err := c.State(ctx)
	if err != nil {
		return false, err
	}
	for _, cs := range s.Compartments {
		if cs.N == n {
			return cs.DoorOpen, nil
		}
	}
	return false, fmt.Errorf("demo: sim has no compartment %d", n)
}

// Items returns the number of items in each compartment that holds some.
func (c *SimClient) Items(ctx context.Context) (map[int]int, error) {
	s, err := c.State(ctx)
	if err != nil {
		return nil, err
	}
	out := map[int]int{}
	for _, cs := range s.Compartments {
		if cs.Items > 0 {
			out[cs.N] = cs.Items
		}
	}
	return out, nil
}

// Restore puts items back into compartments of a freshly started simulator (which
// always starts empty, doors shut): for each, force the door open, put, close. Call it
// before the edge starts, so the edge never sees these doors move.
func (c *SimClient) Restore(ctx context.Context, items map[int]int) error {
	for n, k := range items {
		if err := c.Open(ctx, n, true); err != nil {
			return fmt.Errorf("demo: restore %d: %w", n, err)
		}
		if err := c.Put(ctx, n, k); err != nil {
			return fmt.Errorf("demo: restore %d: %w", n, err)
		}
		if err := c.Close(ctx, n); err != nil {
			return fmt.Errorf("demo: restore %d: %w", n, err)
		}
	}
	return nil
}

package probe

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/larder-lockers/larder/edge/hw"
)

// SimProbe reads zone temperatures from larder-sim's control API
// (GET /v1/zones), the way a refrigeration controller with a network
// interface would be read. It implements hw.Thermometer and is safe for
// concurrent use.
type SimProbe struct {
	// URL is the control API's base URL, e.g. "http://127.0.0.1:7480".
	URL string
	// Zones selects and orders the zones to report; nil reports every zone
	// the simulator has, in its order. A selected zone the simulator does
	// not report yields a Reading with Err set.
	Zones []string
	// Client; nil means a client with a 2 s timeout.
	Client *http.Client
}

// simZone is the part of the simulator's ZoneState this probe reads. It is
// declared here, not imported: the edge speaks to the simulator only over
// its wire API, as it would to a real controller.
type simZone struct {
	Name  string   `json:"name"`
	TempC *float64 `json:"temp_c"` // null when the zone's probe failed
	Error string   `json:"error"`
}

var defaultClient = &http.Client{Timeout: 2 * time.Second}

// Read implements hw.Thermometer.
func (p *SimProbe) Read(ctx context.Context) ([]hw.Reading, error) {
	c := p.Client
	if c == nil {
		c = defaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(p.URL, "/")+"/v1/zones", nil)
	if err != nil {
		return nil, fmt.Errorf("probe: sim: %w", err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("probe: sim: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("probe: sim: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("probe: sim: GET /v1/zones: %s: %.200s", resp.Status, body)
	}
	var zones []simZone
	if err := json.Unmarshal(body, &zones); err != nil {
		return nil, fmt.Errorf("probe: sim: decode zones: %w", err)
	}
	now := time.Now()
	byName := make(map[string]simZone, len(zones))
	names := p.Zones
	for _, z := range zones {
		byName[z.Name] = z
		if p.Zones == nil {
			names = append(names, z.Name)
		}
	}
	out := make([]hw.Reading, 0, len(names))
	for _, name := range names {
		r := hw.Reading{Zone: name, At: now}
		z, ok := byName[name]
		switch {
		case !ok:
			r.Err = fmt.Errorf("probe: sim zone %q not reported: %w", name, hw.ErrProbe)
		case z.TempC == nil:
			r.Err = fmt.Errorf("probe: sim zone %q: %s: %w", name, z.Error, hw.ErrProbe)
		default:
			r.Celsius = *z.TempC
		}
		out = append(out, r)
	}
	return out, nil
}

var _ hw.Thermometer = (*SimProbe)(nil)

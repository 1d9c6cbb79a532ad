package demo

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// State is what the demo keeps in DIR/demo.json between runs (mode 0600: it holds the
// demo's keys and the site's secrets). The cloud and the edge keep their own data in
// DIR/cloud and DIR/edge; this file only lets the demo resume without provisioning again.
type State struct {
	Site string `json:"site"`
	// Provisioning of the site: the edge's key and MQTT credentials.
	Provisioning Provisioning `json:"provisioning"`
	// Keys are the demo's API keys by role: admin, ops, driver, platform.
	Keys map[string]string `json:"keys"`
	// Seeded is set once the demo orders exist and are loaded. SeedStart is the start of
	// their delivery window, kept so that an interrupted seeding retries the very same
	// requests (idempotency keys refuse a changed body).
	Seeded    bool      `json:"seeded"`
	SeedStart time.Time `json:"seed_start,omitzero"`
	// Pickups are codes the demo can print for the kiosk (orders loaded at seeding).
	Pickups []Pickup `json:"pickups,omitempty"`
	// Items is the simulator's physical contents by compartment at the last snapshot:
	// larder-sim keeps its world in memory, so the demo puts these back on the next run
	// before the edge starts (see Run).
	Items map[string]int `json:"items,omitempty"`
}

// Pickup is one resident's pickup at the kiosk.
type Pickup struct {
	Order  string `json:"order"`
	Code   string `json:"code"`   // empty: the cloud texted it (the inbox log has it)
	Factor string `json:"factor"` // last four digits of the phone
	Doors  []int  `json:"doors"`
}

// LoadState reads DIR/demo.json; a missing file is a zero State.
func LoadState(dir string) (State, error) {
	var s State
	raw, err := os.ReadFile(filepath.Join(dir, "demo.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("demo: state: %w", err)
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return s, fmt.Errorf("demo: state %s: %w (delete it and %s to start afresh)",
			filepath.Join(dir, "demo.json"), err, dir)
	}
	return s, nil
}

// Save writes DIR/demo.json atomically.
func (s State) Save(dir string) error {
	raw, _ := json.MarshalIndent(s, "", "  ")
	tmp := filepath.Join(dir, "demo.json.tmp")
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		return fmt.Errorf("demo: save state: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "demo.json")); err != nil {
		return fmt.Errorf("demo: save state: %w", err)
	}
	return nil
}

func itemsToJSON(m map[int]int) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		out[strconv.Itoa(k)] = v
	}
	return out
}

func itemsFromJSON(m map[string]int) map[int]int {
	out := map[int]int{}
	for k, v := range m {
		if n, err := strconv.Atoi(k); err == nil && v > 0 {
			out[n] = v
		}
	}
	return out
}

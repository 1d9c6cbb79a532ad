package sim_test

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	sim "github.com/larder-lockers/larder/firmware-sim"
	"github.com/larder-lockers/larder/protocol/board"
)

// FuzzParseScenario: scenario files and POST /v1/scenario bodies never
// panic, and what parses survives a JSON round trip and applies without
// panicking.
func FuzzParseScenario(f *testing.F) {
	if data, err := os.ReadFile("testdata/night-shift.json"); err == nil {
		f.Add(data)
	}
	f.Add([]byte(`{"actions":[{"at":1,"do":"take","compartment":1,"items":-3}]}`))
	f.Add([]byte(`{"actions":[{"do":"fault","fault":{"kind":"slow_replies","ms":5,"board":0}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		sc, err := sim.ParseScenario(data)
		if err != nil {
			return
		}
		back, err := json.Marshal(sc)
		if err != nil {
			t.Fatal(err)
		}
		again, err := sim.ParseScenario(back)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", back, err)
		}
		if diff := cmp.Diff(sc, again); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
		w, err := sim.NewWorld(sim.WorldConfig{Profile: board.KerongCU16, Boards: 1}, sim.NewFakeClock(time.Unix(0, 0)))
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range sc.Actions {
			_ = w.Apply(a) // errors are fine, panics are not
		}
		w.Snapshot()
	})
}

// FuzzParseZones: the --zones flag never panics and covers every compartment.
func FuzzParseZones(f *testing.F) {
	f.Add("chilled:1-8,frozen:9-12,ambient:13-16", 16)
	f.Add("cool:1+3-4", 5)
	f.Fuzz(func(t *testing.T, spec string, n int) {
		n = n % 1000
		if n < 0 {
			n = -n
		}
		z, err := sim.ParseZones(spec, n)
		if err == nil && len(z) != n {
			t.Fatalf("%q over %d: %d entries", spec, n, len(z))
		}
	})
}

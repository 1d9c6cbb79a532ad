package probe_test

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/larder-lockers/larder/edge/hw"
	"github.com/larder-lockers/larder/edge/probe"
	sim "github.com/larder-lockers/larder/firmware-sim"
)

func startSim(t *testing.T) *sim.Main {
	t.Helper()
	cfg := sim.DefaultConfig()
	cfg.PTY, cfg.Listen = false, "tcp://127.0.0.1:0"
	cfg.Control = "127.0.0.1:0"
	cfg.Zones = "chilled:1-8,frozen:9-12,ambient:13-16"
	m, err := sim.NewMain(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Open(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; m.Close() })
	return m
}

func TestSimProbe(t *testing.T) {
	m := startSim(t)
	p := &probe.SimProbe{URL: m.ControlURL(), Zones: []string{"frozen", "chilled", "nowhere"}}
	rs, err := p.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 3 || rs[0].Zone != "frozen" || rs[1].Zone != "chilled" {
		t.Fatalf("readings %+v", rs)
	}
	// The sim starts every zone at its setpoint.
	if rs[0].Err != nil || math.Abs(rs[0].Celsius-(-18)) > 1.5 {
		t.Errorf("frozen = %+v, want about -18 °C", rs[0])
	}
	if rs[1].Err != nil || math.Abs(rs[1].Celsius-4) > 1.5 {
		t.Errorf("chilled = %+v, want about 4 °C", rs[1])
	}
	if !errors.Is(rs[2].Err, hw.ErrProbe) {
		t.Errorf("unknown zone = %+v, want ErrProbe", rs[2])
	}

	if err := m.World().ApplyFault(sim.Fault{Kind: sim.FaultProbeFailure, Zone: "chilled"}); err != nil {
		t.Fatal(err)
	}
	all := &probe.SimProbe{URL: m.ControlURL() + "/"}
	rs, err = all.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]hw.Reading{}
	for _, r := range rs {
		seen[r.Zone] = r
	}
	if len(seen) < 3 {
		t.Errorf("all zones: %+v", rs)
	}
	if !errors.Is(seen["chilled"].Err, hw.ErrProbe) {
		t.Errorf("chilled with a failed probe = %+v", seen["chilled"])
	}
	if seen["frozen"].Err != nil {
		t.Errorf("frozen = %+v", seen["frozen"])
	}
}

func TestSimProbeHTTPErrors(t *testing.T) {
	for _, h := range []http.HandlerFunc{
		func(w http.ResponseWriter, r *http.Request) { http.Error(w, `{"error":"boom"}`, 500) },
		func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("not json")) },
	} {
		srv := httptest.NewServer(h)
		_, err := (&probe.SimProbe{URL: srv.URL}).Read(context.Background())
		if err == nil {
			t.Error("Read succeeded on a failing controller")
		}
		srv.Close()
	}
	if _, err := (&probe.SimProbe{URL: "http://127.0.0.1:1"}).Read(context.Background()); err == nil {
		t.Error("Read succeeded with nothing listening")
	}
}

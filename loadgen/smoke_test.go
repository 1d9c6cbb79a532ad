package loadgen_test

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/larder-lockers/larder/loadgen"
)

// buildCloud builds the real larder-cloud binary into a temporary directory.
func buildCloud(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+"/", "./cmd/larder-cloud")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(out)))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build larder-cloud: %v\n%s", err, out)
	}
	return filepath.Join(dir, "larder-cloud")
}

func smokeConfig(bin string) loadgen.Config {
	cfg := loadgen.DefaultConfig()
	cfg.CloudBin = bin
	cfg.Edges = 100
	cfg.IngestEdges = 100
	cfg.IngestEvents = 2000
	cfg.Rate = 20
	cfg.OpenRate = 5
	cfg.Duration = 3 * time.Second
	cfg.Timeout = 10 * time.Second
	// The storm restarts the cloud (its embedded broker) once the orders are done; the
	// edges come back within a second's backoff instead of larder-edge's five.
	cfg.Storm, cfg.BackoffMin, cfg.StormTarget = true, time.Second, 10*time.Second
	return cfg
}

// TestSmoke is the load generator's run in `make test`: 100 edges against the real
// larder-cloud binary (embedded broker, temporary data dir, free loopback ports) for a
// few seconds, orders walked to picked_up, remote opens to SUCCEEDED, then the cloud
// restarted under the connected fleet (the storm). It fails when anything is lost or a
// figure could not be measured.
func TestSmoke(t *testing.T) {
	bin := buildCloud(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := smokeConfig(bin)
	s, err := loadgen.Run(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	s.Print(&out)
	t.Log("\n" + out.String())
	if !s.OK() {
		t.Fatalf("the run lost something:\n%s", out.String())
	}
	switch {
	case s.Ingest == nil || s.Ingest.PerSecond <= 0 || s.Ingest.RawPerSecond <= 0:
		t.Errorf("no ingest figure with its raw baseline: %+v", s.Ingest)
	case s.Orders == nil || s.Orders.Created == 0 || s.Losses.OrdersWalked != s.Orders.Created:
		t.Errorf("orders: %+v, walked %d", s.Orders, s.Losses.OrdersWalked)
	case s.Opens == nil || s.Opens.Succeeded == 0:
		t.Errorf("no remote open succeeded: %+v", s.Opens)
	case s.Memory == nil || s.Memory.AfterBytes <= 0:
		t.Errorf("no memory figure: %+v", s.Memory)
	case s.Storm == nil || s.Storm.Healthy != cfg.Edges || s.Storm.Disconnects < int64(cfg.Edges):
		t.Errorf("storm: %+v, want every edge disconnected and healthy again", s.Storm)
	case s.Protocol.EventsPublished == 0 || s.Losses.EventsUnacked != 0:
		t.Errorf("events: %+v, unacked %d", s.Protocol, s.Losses.EventsUnacked)
	}
}

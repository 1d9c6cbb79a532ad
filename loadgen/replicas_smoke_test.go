package loadgen_test

import (
	"bytes"
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/larder-lockers/larder/internal/pgtest"
	"github.com/larder-lockers/larder/loadgen"
)

// TestHASmoke runs the replicated benchmark small: 2 replicas of the real larder-cloud
// over a fresh PostgreSQL database and a private Mosquitto, 50 edges, a few seconds of
// each measurement, one replica SIGKILLed. The throughput and latency targets are the
// benchmark's business (`make bench`, on a quiet machine); here every figure must be
// measured, nothing lost, and the takeover within its target.
func TestHASmoke(t *testing.T) {
	mosq, err := exec.LookPath("mosquitto")
	if err != nil {
		mosq = "/usr/sbin/mosquitto"
	}
	cfg := loadgen.DefaultConfig()
	cfg.CloudBin, cfg.Mosquitto, cfg.MosquittoConf = buildCloud(t), mosq, "../deploy/mosquitto/larder.conf"
	cfg.Edges, cfg.IngestEvents, cfg.OpenRate = 50, 0, 2
	cfg.Duration, cfg.Timeout = 3*time.Second, 20*time.Second
	ha := loadgen.DefaultHAConfig()
	ha.Store, ha.SaturateFor, ha.PacedRate = pgtest.DB(t), 2*time.Second, 50
	ha.MinRatio, ha.MaxP99 = 0, time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, figs, err := loadgen.RunHA(ctx, cfg, ha, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	figs.Print(&out)
	s.Print(&out)
	t.Log("\n" + out.String())
	if !s.OK() {
		t.Fatalf("the HA run failed:\n%s", out.String())
	}
	switch {
	case figs.PG == nil || figs.PG.PerSecond <= 0:
		t.Errorf("no PostgreSQL baseline: %+v", figs.PG)
	case figs.Throughput == nil || figs.Throughput.Created == 0 || figs.Throughput.Ratio <= 0:
		t.Errorf("no throughput figure: %+v", figs.Throughput)
	case figs.Paced == nil || figs.Paced.Created == 0:
		t.Errorf("no paced figure: %+v", figs.Paced)
	case figs.Takeover == nil || figs.Takeover.Seconds <= 0 || figs.Takeover.Orders == 0:
		t.Errorf("no takeover figure: %+v", figs.Takeover)
	}
}

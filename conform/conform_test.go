package conform_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/larder-lockers/larder/cloud/cloudd"
	"github.com/larder-lockers/larder/conform"
	"github.com/larder-lockers/larder/edge/edged"
	sim "github.com/larder-lockers/larder/firmware-sim"
)

var siteKey = bytes.Repeat([]byte{0x3c}, 32)

const password = "conform-test-password"

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startSim runs larder-sim in-process on TCP, one kerong board of 16 compartments.
func startSim(t *testing.T) *sim.Main {
	t.Helper()
	sm, err := sim.NewMain(sim.Config{Profile: "kerong-cu16", Boards: 1, Listen: "tcp://127.0.0.1:0", Control: "127.0.0.1:0",
		Zones: "chilled:1-8,frozen:9-12,ambient:13-16", OutsideC: 20, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := sm.Open(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); sm.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; sm.Close() })
	return sm
}

// startEdge runs Larder's edge daemon (edged.Main) in-process against the simulator and
// the broker at brokerURL.
func startEdge(t *testing.T, sm *sim.Main, site, brokerURL, kioskAddr string) {
	t.Helper()
	cfg := edged.DefaultConfig()
	cfg.Site, cfg.SiteKey, cfg.DataDir, cfg.KioskAddr, cfg.MetricsAddr = site, hex.EncodeToString(siteKey), t.TempDir(), kioskAddr, ""
	cfg.Broker, cfg.BrokerUsername, cfg.BrokerPassword = brokerURL, site, password
	cfg.Bus, cfg.Boards, cfg.Zones = "tcp://"+sm.SerialAddr(), []int{0}, "chilled:1-8,frozen:9-12,ambient:13-16"
	cfg.PollInterval = edged.Duration(100 * time.Millisecond)
	cfg.LogLevel = "error"
	m, err := edged.NewMain(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; m.Close() })
}

// runEdgeMode runs the kit in edge mode against Larder's edge, reached through
// via(brokerURL) (the broker itself when via is nil).
func runEdgeMode(t *testing.T, via func(brokerURL string) string, timeout time.Duration) conform.Report {
	t.Helper()
	sm := startSim(t)
	site := "conform-test"
	kiosk := freeAddr(t)
	cfg := conform.EdgeConfig{Listen: freeAddr(t), Site: site, SiteKey: siteKey, Password: password,
		Kiosk: "http://" + kiosk, Sim: sm.ControlURL(), Timeout: timeout,
		Listening: func(url string) {
			if via != nil {
				url = via(url)
			}
			startEdge(t, sm, site, url, kiosk)
		}}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := conform.RunEdge(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	rep.WriteText(&out)
	t.Logf("report:\n%s", out.String())
	return rep
}

// TestEdgeModeLarder: every edge clause passes against Larder's own edge daemon.
func TestEdgeModeLarder(t *testing.T) {
	rep := runEdgeMode(t, nil, 20*time.Second)
	if n := rep.Failed(); n > 0 {
		t.Fatalf("%d clauses failed against Larder's edge", n)
	}
	if len(rep.Results) != len(conform.Clauses())-cloudClauses() {
		t.Fatalf("%d results, want every edge clause", len(rep.Results))
	}
}

func cloudClauses() int {
	n := 0
	for _, c := range conform.Clauses() {
		if c.Mode == conform.ModeCloud {
			n++
		}
	}
	return n
}

// startCloud runs Larder's cloud (the real cloudd.Main with its embedded broker and
// bbolt store) and returns it with its admin key.
func startCloud(t *testing.T) (*cloudd.Main, string) {
	t.Helper()
	const adminKey = "lk_conform000000000000000000000000000000000000"
	cfg := cloudd.DefaultConfig()
	cfg.DataDir, cfg.HTTPAddr, cfg.MetricsAddr, cfg.MQTTListen, cfg.AdminKey = t.TempDir(), "127.0.0.1:0", "", "127.0.0.1:0", adminKey
	cfg.LogLevel = "error"
	m, err := cloudd.NewMain(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := m.Open(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return m, adminKey
}

func runCloudMode(t *testing.T, cfg conform.CloudConfig) conform.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := conform.RunCloud(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	rep.WriteText(&out)
	t.Logf("report:\n%s", out.String())
	return rep
}

// TestCloudModeLarder: every cloud clause passes against Larder's own cloud.
func TestCloudModeLarder(t *testing.T) {
	m, adminKey := startCloud(t)
	rep := runCloudMode(t, conform.CloudConfig{API: m.HTTPURL(), AdminKey: adminKey})
	if n := rep.Failed(); n > 0 {
		t.Fatalf("%d clauses failed against Larder's cloud", n)
	}
	if len(rep.Results) != cloudClauses() {
		t.Fatalf("%d results, want every cloud clause", len(rep.Results))
	}
}

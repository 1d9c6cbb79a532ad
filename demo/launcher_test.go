package demo_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/larder-lockers/larder/demo"
)

var binDir string

// TestMain builds the simulator, the edge and the cloud once for the launcher tests.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "larder-demo-bin-")
	if err != nil {
		panic(err)
	}
	binDir = dir
	cmd := exec.Command("go", "build", "-o", dir+"/", "../cmd/larder-sim", "../cmd/larder-edge", "../cmd/larder-cloud")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		os.RemoveAll(dir)
		os.Stderr.WriteString("demo tests: building larder-sim, larder-edge and larder-cloud failed: " + err.Error() + "\n")
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestSimAndOfflineEdge(t *testing.T) {
	ctx := context.Background()
	var console bytes.Buffer
	l := &demo.Launcher{BinDir: binDir, LogDir: t.TempDir(), StopTimeout: 5 * time.Second, Console: &console}
	t.Cleanup(func() { l.StopAll() })
	sim, err := l.StartSim(ctx, demo.SimOptions{Boards: 2, Zones: "chilled:1-16,frozen:17-24,ambient:25-32"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(sim.Bus, "/dev/") {
		t.Fatalf("bus %q: want a pty device", sim.Bus)
	}
	// Restore puts items behind shut, latched doors.
	if err := sim.Control.Restore(ctx, map[int]int{3: 2, 20: 1}); err != nil {
		t.Fatal(err)
	}
	s, err := sim.Control.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Compartments) != 32 {
		t.Fatalf("%d compartments", len(s.Compartments))
	}
	for _, c := range s.Compartments {
		if c.DoorOpen || !c.HookClosed {
			t.Fatalf("compartment %d left open after restore: %+v", c.N, c)
		}
	}
	items, _ := sim.Control.Items(ctx)
	if items[3] != 2 || items[20] != 1 || len(items) != 2 {
		t.Fatalf("items %v", items)
	}

	edge, err := l.StartEdge(ctx, demo.EdgeOptions{Site: "launcher-test", SiteKey: hex.EncodeToString(make([]byte, 32)),
		DataDir: t.TempDir(), Bus: sim.Bus, Zones: "chilled:1-16,frozen:17-24,ambient:25-32", Thermometer: sim.Control.URL,
		LogLevel: "warn"})
	if err != nil {
		t.Fatal(err)
	}
	// The secret went by file, readable only by us.
	fi, err := os.Stat(filepath.Join(edge.Opts.DataDir, "config.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("edge config: %v %v", fi, err)
	}
	// A port that is taken is named in the error.
	if _, err := l.StartEdge(ctx, demo.EdgeOptions{Kiosk: edge.Opts.Kiosk}); err == nil || !strings.Contains(err.Error(), edge.Opts.Kiosk) {
		t.Fatalf("second edge on a taken port: %v", err)
	}
	if err := edge.Stop(); err != nil {
		t.Fatalf("edge stop: %v", err)
	}
	if !edge.Exited() {
		t.Fatal("edge still running after Stop")
	}
	if err := l.StopAll(); err != nil {
		t.Fatalf("StopAll: %v", err)
	}
	if !sim.Exited() {
		t.Fatal("sim still running after StopAll")
	}
	// Every child's lines reach the console prefixed with its name (read once the
	// children are gone and their output drained).
	if !strings.Contains(console.String(), "[sim] larder-sim: serial on") {
		t.Fatalf("console:\n%s", console.String())
	}
	logs, _ := os.ReadFile(filepath.Join(l.LogDir, "sim.log"))
	if !strings.Contains(string(logs), "larder-sim: serial on") {
		t.Fatalf("sim.log: %s", logs)
	}
}

func TestStartFailsClearly(t *testing.T) {
	ctx := context.Background()
	l := &demo.Launcher{BinDir: binDir, StopTimeout: 5 * time.Second}
	t.Cleanup(func() { l.StopAll() })
	// The simulator refuses a non-loopback control address and exits: the error
	// carries what it printed.
	_, err := l.StartSim(ctx, demo.SimOptions{Control: "127.0.0.1:0", Extra: []string{"-profile", "nonsense"}})
	if err == nil || !strings.Contains(err.Error(), "nonsense") {
		t.Fatalf("bad profile: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := demo.CheckFree(ln.Addr().String()); err == nil || !strings.Contains(err.Error(), "taken") {
		t.Fatalf("CheckFree on a bound port: %v", err)
	}
	missing := &demo.Launcher{BinDir: t.TempDir()}
	if _, err := missing.StartSim(ctx, demo.SimOptions{}); err == nil || !strings.Contains(err.Error(), "make build") {
		t.Fatalf("missing binary: %v", err)
	}
}

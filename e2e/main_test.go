// Package e2e_test walks Larder's whole lifecycle with the real binaries as separate
// processes (larder-sim on a pty, larder-cloud, larder-edge) and a real Mosquitto:
// a platform creates orders, a driver loads them at the kiosk, the webhook carries the
// pickup code, the resident picks up; expiry and return; remote open by ops; the edge's
// uplink cut during loading and pickup; the broker restarted in the middle of a flow; an
// outage only the edge measured, which moves the cloud's deadline once.
//
// TestMain builds the binaries once (go build) into a temporary directory. The shared
// Mosquitto must listen on 127.0.0.1:1883 (as for `make test`); the broker-restart test
// starts its own mosquitto on a free port. Every test uses its own site id, and each
// cloud is confined to its site's topics, so runs never see each other's traffic.
package e2e_test

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var binDir string

// sharedBroker is the machine's Mosquitto.
const sharedBroker = "127.0.0.1:1883"

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse()
	dir, err := os.MkdirTemp("", "larder-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	binDir = filepath.Join(dir, "bin")
	start := time.Now()
	cmd := exec.Command("go", "build", "-o", binDir+"/", "./cmd/larder-cloud", "./cmd/larder-edge", "./cmd/larder-sim", "./cmd/larder-demo")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: building the binaries failed (%v):\n%s\n", err, out)
		return 1
	}
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "e2e: built the binaries in %s\n", time.Since(start).Round(time.Millisecond))
	}
	c, err := net.DialTimeout("tcp", sharedBroker, 2*time.Second)
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: these tests need Mosquitto on %s (`make setup` starts it; `make test` runs that first): %v\n", sharedBroker, err)
		return 1
	}
	c.Close()
	return m.Run()
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside the module")
	}
	return filepath.Dir(mod), nil
}

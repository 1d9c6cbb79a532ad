package e2e_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/larder-lockers/larder/demo"
)

// freeBlock finds demoPorts consecutive free loopback ports for larder-demo -port.
// demoPorts is how many ports the demo uses from its base: BASE..BASE+6.
const demoPorts = 7

func freeBlock(t *testing.T) int {
	t.Helper()
	for range 50 {
		base := 20000 + rand.IntN(20000)
		var addrs []string
		for i := range demoPorts {
			addrs = append(addrs, "127.0.0.1:"+strconv.Itoa(base+i))
		}
		if demo.CheckFree(addrs...) == nil {
			return base
		}
	}
	t.Fatalf("no block of %d free ports", demoPorts)
	return 0
}

// demoRun is one larder-demo process.
type demoRun struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  strings.Builder
	done chan struct{}
}

func startDemo(t *testing.T, dir string, base int) *demoRun {
	t.Helper()
	d := &demoRun{done: make(chan struct{})}
	d.cmd = exec.Command(filepath.Join(binDir, "larder-demo"), "-data", dir, "-bin", binDir, "-port", strconv.Itoa(base))
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	pr, pw := io.Pipe()
	d.cmd.Stdout, d.cmd.Stderr = pw, pw
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			d.mu.Lock()
			d.out.WriteString(sc.Text() + "\n")
			d.mu.Unlock()
		}
	}()
	go func() { d.cmd.Wait(); pw.Close(); close(d.done) }()
	t.Cleanup(func() {
		d.cmd.Process.Kill()
		<-d.done
		if t.Failed() {
			t.Logf("larder-demo output:\n%s", d.output())
			dumpLogs(t, filepath.Join(dir, "logs"))
		}
	})
	return d
}

func (d *demoRun) output() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.out.String()
}

// waitFor waits until the output contains s.
func (d *demoRun) waitFor(t *testing.T, s string, timeout time.Duration) {
	t.Helper()
	err := demo.Eventually(t.Context(), timeout, "larder-demo prints "+strconv.Quote(s), func() error {
		select {
		case <-d.done:
			t.Fatalf("larder-demo exited (%v) before printing %q:\n%s", d.cmd.ProcessState, s, d.output())
		default:
		}
		if !strings.Contains(d.output(), s) {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, d.output())
	}
}

// interrupt sends Ctrl-C and expects a clean exit.
func (d *demoRun) interrupt(t *testing.T) {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-d.done:
	case <-time.After(40 * time.Second):
		t.Fatalf("larder-demo did not stop within 40 s of Ctrl-C:\n%s", d.output())
	}
	if code := d.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("larder-demo exited %d after Ctrl-C:\n%s", code, d.output())
	}
}

var pickupLine = regexp.MustCompile(`code (\d{8})  phone (\d{4})  → doors \[([\d ]+)\]`)

// TestDemoRunsAndResumes is `make run` twice on one data directory: the first run
// provisions and seeds, prints URLs, keys and a pickup code, and stops cleanly on Ctrl-C;
// the second resumes without seeding again and the printed code still opens the doors
// and the bags are still inside (the simulator's contents were put back).
func TestDemoRunsAndResumes(t *testing.T) {
	dir := t.TempDir()
	base := freeBlock(t)
	d := startDemo(t, dir, base)
	d.waitFor(t, "Ctrl-C stops everything", 90*time.Second)
	out := d.output()
	for _, want := range []string{"/ops/", "/driver/", "/metrics", "admin ", "ops ", "driver ", "platform ", "Driver credential"} {
		if !strings.Contains(out, want) {
			t.Errorf("banner lacks %q", want)
		}
	}
	// Metrics on their own addresses (BASE+5 cloud, BASE+6 edge), as the banner prints
	// them; the API and the kiosk answer 404 for /metrics.
	port := func(i int) string { return "http://127.0.0.1:" + strconv.Itoa(base+i) }
	for url, want := range map[string]int{port(5) + "/metrics": 200, port(6) + "/metrics": 200,
		port(0) + "/metrics": 404, port(2) + "/metrics": 404} {
		if want == 200 && !strings.Contains(out, url) {
			t.Errorf("banner lacks %s", url)
		}
		resp, err := http.Get(url)
		if err != nil {
			t.Errorf("GET %s: %v", url, err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || want == 200 && !strings.Contains(string(body), "larder_") {
			t.Errorf("GET %s: %d, want %d", url, resp.StatusCode, want)
		}
	}
	// The resident of the order the cloud notifies itself gets the code by SMS.
	d.waitFor(t, "SMS to ****2468", 30*time.Second)
	if sms := regexp.MustCompile(`SMS to \*\*\*\*2468: .*\b(\d{8})\b`).FindStringSubmatch(d.output()); sms == nil {
		t.Fatalf("the resident's SMS carries no code:\n%s", d.output())
	}
	first := pickupLine.FindAllStringSubmatch(out, -1)
	if len(first) == 0 {
		t.Fatalf("no pickup code printed:\n%s", out)
	}
	d.interrupt(t)
	for i := range demoPorts {
		if err := demo.CheckFree("127.0.0.1:" + strconv.Itoa(base+i)); err != nil {
			t.Fatalf("a port is still taken after the demo stopped: %v", err)
		}
	}

	d = startDemo(t, dir, base)
	d.waitFor(t, "Ctrl-C stops everything", 60*time.Second)
	out = d.output()
	if strings.Contains(out, "seeding") {
		t.Fatalf("the second run seeded again:\n%s", out)
	}
	again := pickupLine.FindAllStringSubmatch(out, -1)
	if len(again) != len(first) || again[0][1] != first[0][1] {
		t.Fatalf("pickups %v after resume, %v before", again, first)
	}
	// The resident picks up with the printed code: doors open, bags are there.
	sim := &demo.SimClient{URL: "http://127.0.0.1:" + strconv.Itoa(base+3)}
	kiosk := &demo.KioskClient{URL: "http://127.0.0.1:" + strconv.Itoa(base+2)}
	items, err := sim.Items(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range strings.Fields(again[0][3]) {
		n, _ := strconv.Atoi(f)
		if items[n] == 0 {
			t.Fatalf("compartment %d is empty after resume (items %v)", n, items)
		}
	}
	people := &demo.People{Kiosk: kiosk, Sim: sim}
	if _, err := people.PickUp(t.Context(), again[0][1], again[0][2]); err != nil {
		t.Fatal(err)
	}
	// The order whose code the cloud texted: the banner points to its SMS in the inbox
	// log, and the code found there opens it.
	texted := smsPickupLine.FindStringSubmatch(out)
	if texted == nil {
		t.Fatalf("the banner does not point to the texted order's code:\n%s", out)
	}
	log, err := os.ReadFile(texted[2])
	if err != nil {
		t.Fatal(err)
	}
	var smsCode string
	for _, l := range strings.Split(string(log), "\n") {
		if strings.Contains(l, texted[1]) && strings.Contains(l, "SMS to") {
			if m := regexp.MustCompile(`\b(\d{8})\b`).FindStringSubmatch(l); m != nil {
				smsCode = m[1]
			}
		}
	}
	if smsCode == "" {
		t.Fatalf("no SMS with a code for %s in %s", texted[1], texted[2])
	}
	if _, err := people.PickUp(t.Context(), smsCode, texted[3]); err != nil {
		t.Fatalf("pickup with the code from the inbox log: %v", err)
	}
	d.interrupt(t)
}

// smsPickupLine is the banner's line for an order whose code the cloud texted.
var smsPickupLine = regexp.MustCompile(`code in the SMS: grep (\S+) (\S+)  phone (\d{4})  → doors \[([\d ]+)\]`)

package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/larder-lockers/larder/cloud"
	cloudhttp "github.com/larder-lockers/larder/cloud/http"
	"github.com/larder-lockers/larder/cloud/web"
	"github.com/larder-lockers/larder/protocol"
)

// The browser test: the real pages in headless Chromium against the real /v1 API and a
// real cloud.Service, with axe-core run in the same browser. It needs Chromium and the
// pinned axe-core; CI installs both. Screenshots go to .artifacts/web/ (git-ignored).

// isoExample is the codewords of "01234567" at version 1-M in ISO/IEC 18004 (data, then
// error correction).
const isoExample = "10 20 0c 56 61 80 ec 11 ec 11 ec 11 ec 11 ec 11 a5 24 d4 c1 ed 36 c7 87 2c 55"

const installHelp = `install them with:
    apt-get install -y chromium        # or set LARDER_CHROMIUM to a Chromium/Chrome binary
    npm ci --prefix tools/browser      # axe-core, pinned in tools/browser/package-lock.json
or set LARDER_SKIP_BROWSER=1 to skip the browser test`

// browserDeps returns the Chromium binary, the axe-core source and the repository root,
// or fails the test saying how to install what is missing.
func browserDeps(t *testing.T) (chrome, axe, root string) {
	t.Helper()
	if os.Getenv("LARDER_SKIP_BROWSER") == "1" {
		t.Skip("LARDER_SKIP_BROWSER=1")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	chrome = os.Getenv("LARDER_CHROMIUM")
	if chrome == "" {
		chrome = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chrome); err != nil {
		t.Fatalf("Chromium is missing (%v): %s", err, installHelp)
	}
	b, err := os.ReadFile(filepath.Join(root, "tools", "browser", "node_modules", "axe-core", "axe.min.js"))
	if err != nil {
		t.Fatalf("axe-core is missing (%v): %s", err, installHelp)
	}
	return chrome, string(b), root
}

// page wraps a chromedp tab: it records uncaught exceptions and console errors (a CSP
// violation is one) so that a page that breaks quietly fails the test.
type page struct {
	t         *testing.T
	ctx       context.Context // the tab; it has no deadline (it owns the browser)
	axe       string
	artifacts string
	mu        sync.Mutex
	problems  []string
}

// step bounds one browser step, so that a page that never shows what is awaited fails
// the test instead of hanging it.
const step = 60 * time.Second

func (p *page) run(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, step)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("browser: %v", err)
	}
}

func evalAs[T any](p *page, js string, opts ...chromedp.EvaluateOption) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, step)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, opts...))
	if err != nil {
		p.t.Fatalf("browser: evaluate %.60q: %v", js, err)
	}
	return v
}

// listen collects console errors and uncaught exceptions until the tab closes. Network
// errors (the 401 and 403 answers the test provokes) are not page errors.
func (p *page) listen() {
	msgs := chromedp.Console(p.ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if (m.IsException() || m.Type == chromedp.ConsoleError) && m.Source != "network" {
				p.mu.Lock()
				p.problems = append(p.problems, m.String())
				p.mu.Unlock()
			}
		}
	}()
}

func (p *page) noProblems(where string) {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.problems {
		p.t.Errorf("%s: %s", where, m)
	}
	p.problems = nil
}

func (p *page) screenshot(name string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, step)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(p.artifacts, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("screenshot %s", path)
}

type axeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// accessible runs axe-core in the page and fails on serious or critical violations.
func (p *page) accessible(where string) {
	p.t.Helper()
	evalAs[any](p, p.axe+";undefined")
	out := evalAs[string](p, `axe.run(document, {resultTypes: ['violations']}).then(r => JSON.stringify(r.violations.map(v => ({
		id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))}))))`,
		chromedp.EvalAwaitPromise)
	var vs []axeViolation
	if err := json.Unmarshal([]byte(out), &vs); err != nil {
		p.t.Fatalf("axe result %q: %v", out, err)
	}
	for _, v := range vs {
		line := fmt.Sprintf("%s: axe %s (%s): %s at %v", where, v.ID, v.Impact, v.Help, v.Nodes)
		if v.Impact == "serious" || v.Impact == "critical" {
			p.t.Error(line)
		} else {
			p.t.Log(line)
		}
	}
	p.t.Logf("%s: axe ran, %d violation(s)", where, len(vs))
}

// fitsPhone fails if the page scrolls sideways at phone width, naming the elements that
// stick out.
func (p *page) fitsPhone(where string) {
	p.t.Helper()
	wide := evalAs[[]string](p, `[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5)
		.map(e => e.tagName + (e.id ? '#' + e.id : '') + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right)).slice(0, 8)`)
	if len(wide) > 0 {
		p.t.Errorf("%s: wider than the %d px phone screen: %v", where, evalAs[int](p, `document.documentElement.clientWidth`), wide)
	}
}

func TestBrowser(t *testing.T) {
	chrome, axe, root := browserDeps(t)
	artifacts := filepath.Join(root, ".artifacts", "web")
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}

	// A site with one loaded order, one reserved and one door out of service, seen now
	// with its zone temperatures (the browser's clock is the real one).
	f := newFixture(t)
	f.clock.Add(time.Since(t0).Truncate(time.Second))
	temps := map[protocol.Zone]float64{protocol.ZoneChilled: 3.8, protocol.ZoneFrozen: -19.5, protocol.ZoneCool: 9.5, protocol.ZoneAmbient: 21}
	var zones []protocol.ZoneReading
	for _, z := range protocol.Zones() {
		c := temps[z]
		zones = append(zones, protocol.ZoneReading{Zone: z, Celsius: &c})
	}
	if err := f.svc.ApplyTelemetry(f.ctx, site, f.clock.Now(), protocol.Telemetry{Zones: zones,
		Boards: []protocol.BoardHealth{{Address: 0, Online: true}}}); err != nil {
		t.Fatal(err)
	}
	loadedOrder, code := f.order("b-1", cloud.Parcel{Size: protocol.SizeM, Zone: protocol.ZoneChilled})
	loadedOrder = f.load(loadedOrder)
	reserved, _ := f.order("b-2", cloud.Parcel{Size: protocol.SizeL, Zone: protocol.ZoneAmbient})
	if _, err := f.svc.SetInService(f.ctx, f.ops, site, 6, false, "door sticks"); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, c := range bank {
		want[fmt.Sprint(c.Number)] = string(cloud.CompFree)
	}
	want[fmt.Sprint(loadedOrder.Slots[0].Compartment)] = string(cloud.CompOccupied)
	want[fmt.Sprint(reserved.Slots[0].Compartment)] = string(cloud.CompReserved)
	want["6"] = string(cloud.CompOutOfService)

	h := f.handler(web.Options{PollEvery: 100 * time.Millisecond})
	mux := http.NewServeMux()
	mux.Handle("/", cloudhttp.New(cloudhttp.Options{Service: f.svc, Logger: f.log}))
	h.Mount(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer h.Close() // end the dashboard's event stream before the server waits for it

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chrome),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("hide-scrollbars", true), // phones overlay theirs; keeps screenshots whole
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	defer cancelAlloc()
	ctx, cancelTab := chromedp.NewContext(alloc)
	defer cancelTab()
	p := &page{t: t, ctx: ctx, axe: axe, artifacts: artifacts}
	p.listen()

	// Ops: sign in, the fleet table shows the site online with the right counts.
	row := `#fleet tr[data-site="` + site + `"]`
	p.run(
		chromedp.Navigate(srv.URL+"/ops/"),
		chromedp.WaitVisible(chromedp.CSS(`#key`)),
		chromedp.SendKeys(chromedp.CSS(`#key`), f.opsKey),
		chromedp.Click(chromedp.CSS(`#signin-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(row+`[data-online="true"]`)),
	)
	counts := evalAs[map[string]string](p, `Object.fromEntries([...document.querySelectorAll('`+row+` td[data-state]')].map(td => [td.dataset.state, td.textContent]))`)
	wantCounts := map[string]string{"free": "3", "reserved": "1", "occupied": "1", "out_of_service": "1", "missing": "0"}
	for k, v := range wantCounts {
		if counts[k] != v {
			t.Errorf("fleet table %s = %q, want %q (row %v)", k, counts[k], v, counts)
		}
	}
	status := evalAs[string](p, `document.querySelector('`+row+`').textContent`)
	if !strings.Contains(status, "Online") {
		t.Errorf("fleet row %q does not say Online", status)
	}
	stored := evalAs[string](p, `document.cookie + '|' + location.href`)
	if strings.Contains(stored, f.opsKey) {
		t.Errorf("the key is readable by page scripts or in the URL: %q", stored)
	}
	p.screenshot("ops-fleet")
	p.accessible("ops fleet")
	// axe really looks: an unlabelled field planted in the page is a critical violation.
	evalAs[any](p, `document.body.append(Object.assign(document.createElement('input'), {id: 'planted'})); undefined`)
	if n := evalAs[int](p, `axe.run(document, {runOnly: ['label']}).then(r => r.violations.filter(v => v.impact === 'critical').length)`,
		chromedp.EvalAwaitPromise); n != 1 {
		t.Errorf("axe found %d critical violations in a page with an unlabelled input, want 1", n)
	}
	evalAs[any](p, `document.getElementById('planted').remove(); undefined`)

	// Ops: the site's compartment grid.
	p.run(
		chromedp.Click(chromedp.CSS(row+` a`)),
		chromedp.WaitVisible(chromedp.CSS(`#grid button[data-comp="`+fmt.Sprint(loadedOrder.Slots[0].Compartment)+`"][data-state="occupied"]`)),
	)
	grid := evalAs[map[string]string](p, `Object.fromEntries([...document.querySelectorAll('#grid [data-comp]')].map(b => [b.dataset.comp, b.dataset.state]))`)
	for n, st := range want {
		if grid[n] != st {
			t.Errorf("grid door %s = %q, want %q (grid %v)", n, grid[n], st, grid)
		}
	}
	// Select the reserved door: the action form (reason, open, out of service) appears.
	p.run(
		chromedp.Click(chromedp.CSS(`#grid button[data-comp="`+fmt.Sprint(reserved.Slots[0].Compartment)+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#reason`)),
	)
	p.screenshot("ops-site")
	p.accessible("ops site")

	// A live change reaches the open grid through the stream.
	if _, err := f.svc.SetInService(f.ctx, f.ops, site, 6, true, ""); err != nil {
		t.Fatal(err)
	}
	p.run(chromedp.WaitVisible(chromedp.CSS(`#grid button[data-comp="6"][data-state="free"]`)))

	// Ops actions: take a free door out of service and open another, each with a reason
	// that reaches the audit log; the grid follows through the stream.
	p.run(
		chromedp.Click(chromedp.CSS(`#grid button[data-comp="5"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#actions button[value="oos"]`)),
		chromedp.SendKeys(chromedp.CSS(`#reason`), "cleaning"),
		chromedp.Click(chromedp.CSS(`#actions button[value="oos"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#grid button[data-comp="5"][data-state="out_of_service"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#actions button[value="in"]`)),
		chromedp.SendKeys(chromedp.CSS(`#reason`), "check the seal"),
		chromedp.Click(chromedp.CSS(`#actions button[value="open"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#actions .msg[data-command]`)),
	)
	entries, err := f.svc.Audit(f.ctx, f.ops, cloud.AuditFilter{Site: site})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, e := range entries {
		if e.Compartment == 5 {
			seen[e.Action] = e.Actor + ": " + e.Reason
		}
	}
	if seen["out_of_service"] != "olga: cleaning" || seen["remote_open"] != "olga: check the seal" {
		t.Errorf("audit of door 5 = %v, want out_of_service and remote_open by olga with their reasons", seen)
	}

	// Ops: order search and the webhook view (no outbox configured: it says so).
	p.run(
		chromedp.Navigate(srv.URL+"/ops/#/orders"),
		chromedp.WaitVisible(chromedp.CSS(`#q-site`)),
		chromedp.SendKeys(chromedp.CSS(`#q-site`), site),
		chromedp.Click(chromedp.CSS(`#view form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#orders-out table`)),
	)
	found := evalAs[string](p, `document.querySelector('#orders-out').textContent`)
	if !strings.Contains(found, loadedOrder.ID) || !strings.Contains(found, reserved.ID) {
		t.Errorf("order search shows %q, want both orders", found)
	}
	p.accessible("ops orders")
	p.noProblems("ops pages")

	// Driver (phone width): sign in, manifest, loading credential.
	p.run(
		chromedp.EmulateViewport(390, 844),
		chromedp.Navigate(srv.URL+"/driver/"),
		chromedp.WaitVisible(chromedp.CSS(`#key`)),
	)
	p.accessible("driver sign-in")
	p.run(
		chromedp.SendKeys(chromedp.CSS(`#key`), f.driverKey),
		chromedp.Click(chromedp.CSS(`#signin-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#site`)),
		chromedp.SendKeys(chromedp.CSS(`#site`), site),
		chromedp.Click(chromedp.CSS(`#site-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`article[data-order="`+reserved.ID+`"]`)),
		chromedp.Click(chromedp.CSS(`#cred button`)),
		chromedp.WaitVisible(chromedp.CSS(`#cred .credential`)),
	)
	cred := evalAs[string](p, `document.querySelector('#cred .credential').textContent.replace(/\s/g, '')`)
	if len(cred) != 10 {
		t.Errorf("loading credential %q, want 10 digits", cred)
	}
	// The credential as a QR code (the kiosk's scanner types what it reads): the encoder
	// gives the codewords of the standard's own example, and when zbarimg is installed the
	// drawn code is read back.
	if got := evalAs[string](p, `LarderQR.codewords('01234567').codewords.map(b => b.toString(16).padStart(2, '0')).join(' ')`); got != isoExample {
		t.Errorf("QR codewords of 01234567 (ISO/IEC 18004 annex example, 1-M) = %s, want %s", got, isoExample)
	}
	qr := func() []byte {
		ctx, cancel := context.WithTimeout(p.ctx, step)
		defer cancel()
		png, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS(`#cred svg.qr`)))
		if err != nil {
			t.Fatalf("QR screenshot: %v", err)
		}
		return png
	}()
	if zbar, err := exec.LookPath("zbarimg"); err == nil {
		path := filepath.Join(t.TempDir(), "qr.png")
		os.WriteFile(path, qr, 0o644)
		out, err := exec.Command(zbar, "-q", "--raw", path).Output()
		if got := strings.TrimSpace(string(out)); err != nil || got != cred {
			t.Errorf("zbarimg read %q (%v) from the credential QR code, want %q", got, err, cred)
		}
	} else {
		t.Log("zbarimg not installed (apt-get install zbar-tools): the QR code is not read back")
	}
	p.fitsPhone("driver")
	p.screenshot("driver")
	p.accessible("driver manifest")
	// Report a problem: door jammed, the order moves to another door and the manifest
	// shows it.
	card := `article[data-order="` + reserved.ID + `"]`
	from := reserved.Slots[0].Compartment
	p.run(
		chromedp.Click(chromedp.CSS(card+` summary`)),
		chromedp.Click(chromedp.CSS(card+` details button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#msg.ok`)),
	)
	moved, err := f.svc.GetOrder(f.ctx, f.ops, reserved.ID)
	if err != nil {
		t.Fatal(err)
	}
	to := moved.Slots[0].Compartment
	if to == from {
		t.Fatalf("the order stayed in door %d after the problem report", from)
	}
	if msg := evalAs[string](p, `document.getElementById('msg').textContent`); !strings.Contains(msg, fmt.Sprint(to)) {
		t.Errorf("after the report the page says %q, want door %d", msg, to)
	}
	if doors := evalAs[string](p, `document.querySelector('`+card+` .doors').textContent`); !strings.Contains(doors, fmt.Sprint(to)+" 号门") {
		t.Errorf("the manifest shows %q, want door %d", doors, to)
	}
	p.noProblems("driver page")

	// Resident (phone width): the code in the fragment shows the door; zh, then English.
	door := fmt.Sprint(loadedOrder.Slots[0].Compartment)
	p.run(
		chromedp.Navigate(srv.URL+"/r/"+loadedOrder.ID+"#c="+code),
		chromedp.WaitVisible(chromedp.CSS(`#doors li[data-door="`+door+`"]`)),
	)
	var text, href, lang string
	text = evalAs[string](p, `document.querySelector('#doors').textContent`)
	href = evalAs[string](p, `location.href`)
	lang = evalAs[string](p, `document.documentElement.lang`)
	if !strings.Contains(text, door+" 号门") {
		t.Errorf("resident doors %q, want %q", text, door+" 号门")
	}
	if strings.Contains(href, code) {
		t.Errorf("the code stayed in the address bar: %s", href)
	}
	if lang != "zh-CN" {
		t.Errorf("resident page lang = %q, want zh-CN by default", lang)
	}
	p.fitsPhone("resident")
	p.screenshot("resident-zh")
	p.accessible("resident zh")
	p.run(
		chromedp.Click(chromedp.CSS(`#lang`)),
		chromedp.WaitVisible(chromedp.CSS(`#doors li[data-door="`+door+`"]`)),
	)
	text = evalAs[string](p, `document.querySelector('#doors').textContent`)
	lang = evalAs[string](p, `document.documentElement.lang`)
	if !strings.Contains(text, "Door "+door) || lang != "en" {
		t.Errorf("English: doors %q lang %q", text, lang)
	}
	p.screenshot("resident-en")
	p.accessible("resident en")

	// A wrong code: the page asks for the code instead of showing anything.
	p.run(
		chromedp.Navigate("about:blank"), // a new fragment alone would not reload the page
		chromedp.Navigate(srv.URL+"/r/"+loadedOrder.ID+"#c=00000001"),
		chromedp.WaitVisible(chromedp.CSS(`#code-form`)),
	)
	p.accessible("resident wrong code")
	p.noProblems("resident page")
	f.noSecretsLogged(f.opsKey, f.driverKey, code, cred)
}

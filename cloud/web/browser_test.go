package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/larder-lockers/larder/cloud"
	lhttp "github.com/larder-lockers/larder/cloud/http"
	"github.com/larder-lockers/larder/cloud/web"
	"github.com/larder-lockers/larder/internal/browsertest"
	"github.com/larder-lockers/larder/protocol"
)

// The browser test: the real pages in headless Chromium against the real /v1 API and a
// real cloud.Service, with axe-core run in the same browser. It needs Chromium and the
// pinned axe-core; CI installs both. Screenshots go to .artifacts/web/ (git-ignored).

// isoExample is the codewords of "01234567" at version 1-M in ISO/IEC 18004 (data, then
// error correction).
const isoExample = "10 20 0c 56 61 80 ec 11 ec 11 ec 11 ec 11 ec 11 a5 24 d4 c1 ed 36 c7 87 2c 55"

// step bounds one browser step, so that a page that never shows what is awaited fails
// the test instead of hanging it.
const step = 60 * time.Second

// fitsPhone fails if the page scrolls sideways at phone width, naming the elements that
// stick out.
func fitsPhone(p *browsertest.Page, where string) {
	p.T.Helper()
	wide := browsertest.Eval[[]string](p, `[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5)
		.map(e => e.tagName + (e.id ? '#' + e.id : '') + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right)).slice(0, 8)`)
	if len(wide) > 0 {
		p.T.Errorf("%s: wider than the %d px phone screen: %v", where, browsertest.Eval[int](p, `document.documentElement.clientWidth`), wide)
	}
}

func TestBrowser(t *testing.T) {
	chrome, axe, root := browsertest.Deps(t)
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
	// The site's zone: the resident page tells its deadline there, named.
	shanghai := "Asia/Shanghai"
	if _, err := f.svc.UpdateSite(f.ctx, f.ops, site, cloud.SiteInput{TimeZone: &shanghai}); err != nil {
		t.Fatal(err)
	}
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
	mux.Handle("/", lhttp.New(lhttp.Options{Service: f.svc, Logger: f.log}))
	h.Mount(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer h.Close() // end the dashboard's event stream before the server waits for it

	p := browsertest.New(t, chrome, axe, artifacts, 1280, 900)
	p.Step = step

	// Ops: sign in, the fleet table shows the site online with the right counts.
	row := `#fleet tr[data-site="` + site + `"]`
	p.Run(
		chromedp.Navigate(srv.URL+"/ops/"),
		chromedp.WaitVisible(chromedp.CSS(`#key`)),
		chromedp.SendKeys(chromedp.CSS(`#key`), f.opsKey),
		chromedp.Click(chromedp.CSS(`#signin-form button[type=submit]`)),
		// A healthy fleet collapses to its counts; the operator lists all sites.
		chromedp.WaitVisible(chromedp.CSS(`#fleet-all`)),
		chromedp.Click(chromedp.CSS(`#fleet-all`)),
		chromedp.WaitVisible(chromedp.CSS(row+`[data-online="true"]`)),
	)
	counts := browsertest.Eval[map[string]string](p, `Object.fromEntries([...document.querySelectorAll('`+row+` td[data-state]')].map(td => [td.dataset.state, td.textContent]))`)
	wantCounts := map[string]string{"free": "3", "reserved": "1", "occupied": "1", "out_of_service": "1", "missing": "0"}
	for k, v := range wantCounts {
		if counts[k] != v {
			t.Errorf("fleet table %s = %q, want %q (row %v)", k, counts[k], v, counts)
		}
	}
	status := browsertest.Eval[string](p, `document.querySelector('`+row+`').textContent`)
	if !strings.Contains(status, "Online") {
		t.Errorf("fleet row %q does not say Online", status)
	}
	stored := browsertest.Eval[string](p, `document.cookie + '|' + location.href`)
	if strings.Contains(stored, f.opsKey) {
		t.Errorf("the key is readable by page scripts or in the URL: %q", stored)
	}
	p.Screenshot("ops-fleet")
	p.Accessible("ops fleet")
	// axe really looks: an unlabelled field planted in the page is a critical violation.
	browsertest.Eval[any](p, `document.body.append(Object.assign(document.createElement('input'), {id: 'planted'})); undefined`)
	if n := browsertest.Eval[int](p, `axe.run(document, {runOnly: ['label']}).then(r => r.violations.filter(v => v.impact === 'critical').length)`,
		chromedp.EvalAwaitPromise); n != 1 {
		t.Errorf("axe found %d critical violations in a page with an unlabelled input, want 1", n)
	}
	browsertest.Eval[any](p, `document.getElementById('planted').remove(); undefined`)

	// Ops: the site's compartment grid.
	p.Run(
		chromedp.Click(chromedp.CSS(row+` a`)),
		chromedp.WaitVisible(chromedp.CSS(`#grid button[data-comp="`+fmt.Sprint(loadedOrder.Slots[0].Compartment)+`"][data-state="occupied"]`)),
	)
	grid := browsertest.Eval[map[string]string](p, `Object.fromEntries([...document.querySelectorAll('#grid [data-comp]')].map(b => [b.dataset.comp, b.dataset.state]))`)
	for n, st := range want {
		if grid[n] != st {
			t.Errorf("grid door %s = %q, want %q (grid %v)", n, grid[n], st, grid)
		}
	}
	// Select the reserved door: the action form (reason, open, out of service) appears.
	p.Run(
		chromedp.Click(chromedp.CSS(`#grid button[data-comp="`+fmt.Sprint(reserved.Slots[0].Compartment)+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#reason`)),
	)
	p.Screenshot("ops-site")
	p.Accessible("ops site")

	// A live change reaches the open grid through the stream.
	if _, err := f.svc.SetInService(f.ctx, f.ops, site, 6, true, ""); err != nil {
		t.Fatal(err)
	}
	p.Run(chromedp.WaitVisible(chromedp.CSS(`#grid button[data-comp="6"][data-state="free"]`)))

	// Ops actions: take a free door out of service and open another, each with a reason
	// that reaches the audit log; the grid follows through the stream.
	p.Run(
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
	p.Run(
		chromedp.Navigate(srv.URL+"/ops/#/orders"),
		chromedp.WaitVisible(chromedp.CSS(`#q-site`)),
		chromedp.SendKeys(chromedp.CSS(`#q-site`), site),
		chromedp.Click(chromedp.CSS(`#view form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#orders-out table`)),
	)
	found := browsertest.Eval[string](p, `document.querySelector('#orders-out').textContent`)
	if !strings.Contains(found, loadedOrder.ID) || !strings.Contains(found, reserved.ID) {
		t.Errorf("order search shows %q, want both orders", found)
	}
	p.Accessible("ops orders")
	p.NoProblems("ops pages")

	// An order split across zones: the driver page says which parcel goes behind which door.
	// (Door 5, frozen, was taken out of service by ops above.)
	if _, err := f.svc.SetInService(f.ctx, f.ops, site, 5, true, "cleaned"); err != nil {
		t.Fatal(err)
	}
	split, _ := f.order("b-3", cloud.Parcel{Size: protocol.SizeM, Zone: protocol.ZoneChilled}, cloud.Parcel{Size: protocol.SizeS, Zone: protocol.ZoneFrozen})

	// Driver (phone width): sign in, manifest, loading credential.
	p.Run(
		chromedp.EmulateViewport(390, 844),
		chromedp.Navigate(srv.URL+"/driver/"),
		chromedp.WaitVisible(chromedp.CSS(`#key`)),
	)
	p.Accessible("driver sign-in")
	p.Run(
		chromedp.SendKeys(chromedp.CSS(`#key`), f.driverKey),
		chromedp.Click(chromedp.CSS(`#signin-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#site`)),
		chromedp.SendKeys(chromedp.CSS(`#site`), site),
		chromedp.Click(chromedp.CSS(`#site-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`article[data-order="`+reserved.ID+`"]`)),
		chromedp.Click(chromedp.CSS(`#cred button`)),
		chromedp.WaitVisible(chromedp.CSS(`#cred .credential`)),
	)
	cred := browsertest.Eval[string](p, `document.querySelector('#cred .credential').textContent.replace(/\s/g, '')`)
	if len(cred) != 10 {
		t.Errorf("loading credential %q, want 10 digits", cred)
	}
	// The credential as a QR code (the kiosk's scanner types what it reads): the encoder
	// gives the codewords of the standard's own example, and when zbarimg is installed the
	// drawn code is read back.
	if got := browsertest.Eval[string](p, `LarderQR.codewords('01234567').codewords.map(b => b.toString(16).padStart(2, '0')).join(' ')`); got != isoExample {
		t.Errorf("QR codewords of 01234567 (ISO/IEC 18004 annex example, 1-M) = %s, want %s", got, isoExample)
	}
	qr := func() []byte {
		ctx, cancel := context.WithTimeout(p.Ctx, step)
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
	// The split order: each door names its zone and the parcels behind it.
	splitCard := browsertest.Eval[string](p, `document.querySelector('article[data-order="`+split.ID+`"]').innerText`)
	if !strings.Contains(splitCard, "这一单分放在 2 个温区（冷藏、冷冻）") {
		t.Errorf("split order's card %q, want it to say the order is split across two zones", splitCard)
	}
	for _, sl := range split.Slots {
		li := browsertest.Eval[string](p, `document.querySelector('article[data-order="`+split.ID+`"] li[data-door="`+fmt.Sprint(sl.Compartment)+`"]').innerText`)
		zone := map[protocol.Zone]string{protocol.ZoneFrozen: "冷冻", protocol.ZoneChilled: "冷藏"}[sl.Zone]
		parcel := fmt.Sprintf("第 %d 件（%s）", sl.Parcels[0]+1, split.Parcels[sl.Parcels[0]].Size)
		if len(sl.Parcels) != 1 || !strings.Contains(li, zone+" · 放："+parcel) {
			t.Errorf("door %d of the split order says %q, want %s and %s", sl.Compartment, li, zone, parcel)
		}
	}
	fitsPhone(p, "driver")
	p.Screenshot("driver")
	p.Accessible("driver manifest")
	// Report a problem: door jammed, the order moves to another door and the manifest
	// shows it.
	card := `article[data-order="` + reserved.ID + `"]`
	from := reserved.Slots[0].Compartment
	p.Run(
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
	if msg := browsertest.Eval[string](p, `document.getElementById('msg').textContent`); !strings.Contains(msg, fmt.Sprint(to)) {
		t.Errorf("after the report the page says %q, want door %d", msg, to)
	}
	if doors := browsertest.Eval[string](p, `document.querySelector('`+card+` .doors').textContent`); !strings.Contains(doors, fmt.Sprint(to)+" 号门") {
		t.Errorf("the manifest shows %q, want door %d", doors, to)
	}
	p.NoProblems("driver page")

	// Resident (phone width): the code in the fragment shows the door; zh, then English.
	door := fmt.Sprint(loadedOrder.Slots[0].Compartment)
	p.Run(
		chromedp.Navigate(srv.URL+"/r/"+loadedOrder.ID+"#c="+code),
		chromedp.WaitVisible(chromedp.CSS(`#doors li[data-door="`+door+`"]`)),
	)
	var text, href, lang string
	text = browsertest.Eval[string](p, `document.querySelector('#doors').textContent`)
	href = browsertest.Eval[string](p, `location.href`)
	lang = browsertest.Eval[string](p, `document.documentElement.lang`)
	if !strings.Contains(text, door+" 号门") {
		t.Errorf("resident doors %q, want %q", text, door+" 号门")
	}
	if strings.Contains(href, code) {
		t.Errorf("the code stayed in the address bar: %s", href)
	}
	if lang != "zh-CN" {
		t.Errorf("resident page lang = %q, want zh-CN by default", lang)
	}
	sh, _ := time.LoadLocation(shanghai)
	if exp, want := p.Text("#expiry"), loadedOrder.ExpiresAt.In(sh).Format("15:04")+"（北京时间）"; !strings.Contains(exp, want) {
		t.Errorf("resident deadline %q, want the site's local time %q", exp, want)
	}
	// The device-bound QR code reads back (zbar, an independent decoder) as the tagged
	// payload: this site, this code, an expiry QRTagLifetime ahead and the tag the site
	// key makes, which the kiosk opens without the phone digits.
	p.Run(chromedp.WaitVisible(chromedp.CSS(`#qr svg.qr`)))
	zbar, err := exec.LookPath("zbarimg")
	if err != nil {
		t.Fatal("zbarimg is not installed (Debian's zbar-tools): run make setup")
	}
	residentQR := func() string {
		ctx, cancel := context.WithTimeout(p.Ctx, step)
		defer cancel()
		png, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS(`#qr svg.qr`)))
		if err != nil {
			t.Fatalf("resident QR screenshot: %v", err)
		}
		path := filepath.Join(t.TempDir(), "resident-qr.png")
		os.WriteFile(path, png, 0o644)
		out, err := exec.Command(zbar, "-q", "--raw", path).Output()
		if err != nil {
			t.Errorf("zbarimg could not read the resident QR code: %v", err)
		}
		return strings.TrimSpace(string(out))
	}()
	key, err := f.svc.SiteKey(f.ctx, site)
	if err != nil {
		t.Fatal(err)
	}
	exp := f.clock.Now().Add(protocol.QRTagLifetime)
	if want := fmt.Sprintf("larder:v1:%s:%s:%d:%s", site, code, exp.Unix(), protocol.QRTag(key, site, code, exp)); residentQR != want {
		t.Errorf("the resident QR code reads %q, want %q", residentQR, want)
	}
	fitsPhone(p, "resident")
	p.Screenshot("resident-zh")
	p.Accessible("resident zh")
	p.Run(
		chromedp.Click(chromedp.CSS(`#lang`)),
		chromedp.WaitVisible(chromedp.CSS(`#doors li[data-door="`+door+`"]`)),
	)
	text = browsertest.Eval[string](p, `document.querySelector('#doors').textContent`)
	lang = browsertest.Eval[string](p, `document.documentElement.lang`)
	if !strings.Contains(text, "Door "+door) || lang != "en" {
		t.Errorf("English: doors %q lang %q", text, lang)
	}
	p.Screenshot("resident-en")
	p.Accessible("resident en")

	// Picked up: the page tells how cold the food was kept, in the language chosen.
	peak := 9.5
	f.finish(loadedOrder, protocol.EventPickedUp, &protocol.ColdChain{From: f.clock.Now().Add(-time.Hour), To: f.clock.Now(), LimitC: 8,
		AboveSeconds: 7 * 60, PeakC: &peak})
	p.Run(
		chromedp.Navigate("about:blank"),
		chromedp.Navigate(srv.URL+"/r/"+loadedOrder.ID),
		chromedp.WaitVisible(chromedp.CSS(`#cold`)),
	)
	if got := browsertest.Eval[string](p, `document.getElementById('cold-text').textContent`); got != "7 minutes above 8 °C (warmest 9.5 °C)." {
		t.Errorf("English cold chain %q", got)
	}
	p.Run(chromedp.Click(chromedp.CSS(`#lang`)), chromedp.WaitVisible(chromedp.CSS(`#cold`)))
	if got := browsertest.Eval[string](p, `document.getElementById('cold-text').textContent`); got != "有 7 分钟高于 8 °C（最高 9.5 °C）。" {
		t.Errorf("Chinese cold chain %q", got)
	}
	if browsertest.Eval[bool](p, `!document.getElementById('deadline').hidden`) {
		t.Error("a picked-up order still shows a pickup deadline")
	}
	p.Screenshot("resident-picked-up")
	p.Accessible("resident picked up")

	// A wrong code: the page asks for the code instead of showing anything.
	p.Run(
		chromedp.Navigate("about:blank"), // a new fragment alone would not reload the page
		chromedp.Navigate(srv.URL+"/r/"+loadedOrder.ID+"#c=00000001"),
		chromedp.WaitVisible(chromedp.CSS(`#code-form`)),
	)
	p.Accessible("resident wrong code")
	p.NoProblems("resident page")
	f.noSecretsLogged(f.opsKey, f.driverKey, code, cred)
}

package browser_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/larder-lockers/larder/edge/edged"
	"github.com/larder-lockers/larder/edge/mqtt/mqtttest"
	sim "github.com/larder-lockers/larder/firmware-sim"
	"github.com/larder-lockers/larder/internal/browsertest"
	"github.com/larder-lockers/larder/protocol"
)

const (
	site = "courtyard-kiosk"
	// siteName is the bank's name in the cloud's desired state: the header shows it.
	siteName = "3号楼东门"
	// Two kerong-cu16 boards: doors 1-16 on board 0, 17-32 on board 1; each board has
	// all three zones.
	zones = "chilled:1-8+17-24,frozen:9-12+25-28,ambient:13-16+29-32"

	order      = "ord_kiosk_browser_0001"
	code       = "20261125"
	factor     = "8841"
	door       = 18 // chilled, on the second board
	credential = "4711081523"
)

var siteKey = bytes.Repeat([]byte{0x6b}, 32)

// courtyard is the locker bank under test: larder-sim and larder-edge in-process.
type courtyard struct {
	t      *testing.T
	world  *sim.World
	edge   *edged.Main
	kiosk  string
	broker *mqtttest.Mochi
	cloud  *mqtttest.Cloud
}

// newCourtyard starts the broker, the simulator and the edge daemon, and waits until the
// edge has announced itself on the broker (it is subscribed to its desired topic).
func newCourtyard(t *testing.T) *courtyard {
	t.Helper()
	c := &courtyard{t: t, broker: mqtttest.StartMochi(t)}

	sm, err := sim.NewMain(sim.Config{Profile: "kerong-cu16", Boards: 2, Listen: "tcp://127.0.0.1:0",
		Control: "127.0.0.1:0", Zones: zones, OutsideC: 25, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := sm.Open(); err != nil {
		t.Fatal(err)
	}
	simCtx, stopSim := context.WithCancel(context.Background())
	simDone := make(chan struct{})
	go func() { defer close(simDone); sm.Run(simCtx) }()
	t.Cleanup(func() { stopSim(); <-simDone; sm.Close() })
	c.world = sm.World()

	// The cloud's side of the protocol: a paho client on the site's topics.
	c.cloud = mqtttest.NewCloud(t, c.broker.URL(), site)
	t.Cleanup(c.cloud.Close)

	cfg := edged.DefaultConfig()
	cfg.Site, cfg.SiteKey, cfg.DataDir, cfg.KioskAddr = site, hex.EncodeToString(siteKey), t.TempDir(), "127.0.0.1:0"
	cfg.MetricsAddr = "" // not scraped here; the default port may be taken
	cfg.Broker, cfg.Bus, cfg.Boards, cfg.Zones = c.broker.URL(), "tcp://"+sm.SerialAddr(), []int{0, 1}, zones
	cfg.Thermometer = "sim:" + sm.ControlURL()
	cfg.PollInterval, cfg.TempInterval = edged.Duration(100*time.Millisecond), edged.Duration(time.Second)
	cfg.LogLevel = "error"
	m, err := edged.NewMain(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	edgeCtx, stopEdge := context.WithCancel(context.Background())
	edgeDone := make(chan struct{})
	go func() { defer close(edgeDone); m.Run(edgeCtx) }()
	t.Cleanup(func() { stopEdge(); <-edgeDone; m.Close() })
	c.edge, c.kiosk = m, m.KioskURL()

	c.cloud.Wait(t, step, "the edge's birth", func(s mqtttest.Snapshot) bool { return len(s.Births) > 0 })
	return c
}

// deliver publishes the site's desired state (one reservation, one loading credential)
// as the cloud does, and waits until the edge has applied it.
func (c *courtyard) deliver() {
	c.t.Helper()
	now := time.Now()
	d := protocol.Desired{Version: 1, Full: true, Site: &protocol.SiteProfile{Name: siteName, TimeZone: "Asia/Shanghai"},
		Reservations: []protocol.Reservation{{Order: order, CodeDigest: protocol.CodeDigest(siteKey, code),
			SecondFactorDigest: protocol.SecondFactorDigest(siteKey, order, factor), ExpiresAt: now.Add(24 * time.Hour),
			Zone: protocol.ZoneChilled, Slots: []protocol.Slot{{Compartment: door, Generation: 1, Size: protocol.SizeM}}}},
		Credentials: []protocol.LoadingCredential{{ID: "cred-kiosk-1", Digest: protocol.CredentialDigest(siteKey, credential),
			Driver: "drv-7", ExpiresAt: now.Add(time.Hour)}}}
	c.cloud.Publish(c.t, protocol.Header{}, d)
	deadline := time.Now().Add(step)
	for {
		if v, _ := c.edge.Locker().DesiredVersion(); v >= d.Version {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("the edge never applied desired version %d", d.Version)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// person does something with the bank through the simulator, retrying while the door
// is still latched (the unlock pulse is on its way).
func (c *courtyard) person(what string, f func() error) {
	c.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// recorded reports whether the edge has an event of the kind for the order in its
// outbox (the cloud is unreachable, so every event stays there).
func (c *courtyard) recorded(kind protocol.EventKind) bool {
	c.t.Helper()
	es, err := c.edge.Store().Pending(0, 10000)
	if err != nil {
		c.t.Fatal(err)
	}
	for _, e := range es {
		m, err := protocol.Decode(e.Payload)
		if err != nil {
			continue
		}
		if ev, ok := m.Body.(protocol.Event); ok && ev.Kind == kind && ev.Order == order {
			return true
		}
	}
	return false
}

// key taps the on-screen keypad: digits, then "enter" (Next / Open).
func key(s string) []chromedp.Action[chromedp.Void] {
	var as []chromedp.Action[chromedp.Void]
	for _, r := range s {
		as = append(as, chromedp.Click(chromedp.CSS(fmt.Sprintf(`#keypad button[data-key="%c"]`, r))))
	}
	return append(as, chromedp.Click(chromedp.CSS(`#key-ok`)))
}

// TestKioskPickup: a driver loads an order on the kiosk page and a resident picks it
// up there, in headless Chromium, against larder-sim and larder-edge with the cloud
// unreachable; axe-core checks each screen on the way.
func TestKioskPickup(t *testing.T) {
	chrome, axe, root := browsertest.Deps(t)
	artifacts := filepath.Join(root, ".artifacts", "kiosk")
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	start := time.Now()

	c := newCourtyard(t)
	c.deliver()
	// From here on the cloud is unreachable: loading and pickup must work offline.
	c.cloud.Close()
	c.broker.Stop()
	t.Logf("sim, edge, broker and desired state ready in %v", time.Since(start).Round(time.Millisecond))

	p := browsertest.New(t, chrome, axe, artifacts, 1280, 800)
	p.Step = step
	doorZh, doorEn := fmt.Sprintf("%d号门", door), fmt.Sprintf("Door %d", door)

	// The start screen: Chinese by default, the site's name from /api/info. The page runs
	// under the kiosk's own Content-Security-Policy.
	resp, err := chromedp.RunResponse(p.Ctx, chromedp.Navigate(c.kiosk+"/"))
	if err != nil {
		t.Fatalf("browser: open the kiosk: %v", err)
	}
	if csp, _ := resp.Headers["Content-Security-Policy"].(string); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("the kiosk page came with Content-Security-Policy %q, want default-src 'self'", csp)
	}
	waitFor(p, "the keypad", `document.body.dataset.screen === 'keypad' && document.querySelector('#keypad-hint').textContent !== ''`)
	waitFor(p, "the site name", `document.querySelector('#site-name').textContent.includes('`+siteName+`')`)
	// The clock at the bank, in the site's zone as the cloud named it, zone named.
	// (The exact time is checked on a fake clock by the page tests.)
	if clock := p.Text("#site-time"); !regexp.MustCompile(`^现在 \d\d:\d\d（北京时间）$`).MatchString(clock) {
		t.Errorf("header clock %q, want 现在 HH:MM（北京时间）", clock)
	}
	if lang := browsertest.Eval[string](p, `document.documentElement.lang`); lang != "zh-CN" {
		t.Errorf("kiosk page lang = %q, want zh-CN by default", lang)
	}
	if hint := p.Text("#keypad-hint"); !strings.Contains(hint, "8 位取件码") {
		t.Errorf("keypad hint %q, want the Chinese request for the 8-digit code", hint)
	}
	p.Screenshot("start-zh")
	p.Accessible("start screen")
	// The checks can fail: axe finds an unlabelled field planted in the page, and the
	// console check sees what the page's CSP blocks (an outside image).
	browsertest.Eval[any](p, `document.body.append(Object.assign(document.createElement('input'), {id: 'planted'})); undefined`)
	if n := browsertest.Eval[int](p, `axe.run(document, {runOnly: ['label']}).then(r => r.violations.filter(v => v.impact === 'critical').length)`,
		chromedp.EvalAwaitPromise); n != 1 {
		t.Errorf("axe found %d critical violations in a page with an unlabelled input, want 1", n)
	}
	browsertest.Eval[any](p, `document.getElementById('planted').remove(); document.body.append(Object.assign(document.createElement('img'),
		{id: 'planted', alt: '', src: 'http://192.0.2.1/x.png'})); undefined`)
	waitFor(p, "the CSP to block the planted image", `document.getElementById('planted').complete`)
	if !p.SawProblem("192.0.2.1") {
		t.Error("the page's CSP blocked an outside image and the console check did not see it")
	}
	browsertest.Eval[any](p, `document.getElementById('planted').remove(); undefined`)

	// The driver signs in with the loading credential and opens the order's door.
	p.Run(
		chromedp.Click(chromedp.CSS(`#driver-link`)),
		chromedp.WaitVisible(chromedp.CSS(`#credential`)),
	)
	p.Accessible("driver sign-in")
	openBtn := fmt.Sprintf(`#manifest button[data-focus="open:%s:%d"]`, order, door)
	p.Run(
		chromedp.SendKeys(chromedp.CSS(`#credential`), credential),
		chromedp.Click(chromedp.CSS(`#driver-login-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(openBtn)),
	)
	if who := p.Text("#driver-who"); !strings.Contains(who, "drv-7") {
		t.Errorf("driver screen names %q, want drv-7", who)
	}
	p.Accessible("driver manifest")
	p.Run(chromedp.Click(chromedp.CSS(openBtn)))
	waitFor(p, "the driver's door banner", `document.querySelector('#announcer').innerText.includes('`+doorZh+`已打开')`)
	// The driver puts the bag in and shuts the door; the edge sees it through the
	// infrared and records the order loaded; the manifest (refreshed every 3 s) moves it.
	c.person("put into the door", func() error { return c.world.Put(door, 1) })
	time.Sleep(300 * time.Millisecond) // the infrared is polled
	c.person("close the door", func() error { return c.world.Close(door) })
	waitFor(p, "the order under loaded", `document.querySelector('#manifest .group-loaded').innerText.includes('`+order+`')`)
	if !c.recorded(protocol.EventLoaded) {
		t.Fatal("the manifest shows the order loaded but the edge recorded no loaded event")
	}
	p.Screenshot("driver-loaded")
	p.Run(chromedp.Click(chromedp.CSS(`#driver-logout`)))
	waitFor(p, "the keypad after sign-out", `document.body.dataset.screen === 'keypad'`)

	// A wrong code: the phone step comes back, the code kept, with the message and the
	// tries left.
	p.Run(key("99999999")...)
	waitFor(p, "the second step", `document.querySelector('#code-summary').hidden === false`)
	p.Run(key("0000")...)
	waitFor(p, "the wrong-code message", `document.querySelector('#announcer').innerText.includes('取件码或手机后 4 位不对')`)
	if b := p.Text("#announcer"); !strings.Contains(b, "还可以再试 4 次") {
		t.Errorf("wrong-code banner %q, want 4 tries left", b)
	}
	if s := browsertest.Eval[string](p, `document.body.dataset.screen`); s != "keypad" {
		t.Errorf("after a wrong code the page shows %q, want the keypad", s)
	}
	if s := p.Text("#code-summary"); !strings.Contains(s, "9999 9999") {
		t.Errorf("after a wrong answer the code summary is %q, want the code kept", s)
	}
	p.Screenshot("wrong-code-zh")
	p.Accessible("wrong code")
	// The same screen in English: the banner follows the language.
	p.Run(chromedp.Click(chromedp.CSS(`#lang-toggle`)))
	waitFor(p, "the English banner", `document.querySelector('#announcer').innerText.includes('The code or the phone digits are not right')`)
	if b, lang := p.Text("#announcer"), browsertest.Eval[string](p, `document.documentElement.lang`); !strings.Contains(b, "4 more tries") || lang != "en" {
		t.Errorf("English: banner %q lang %q, want 4 more tries and lang en", b, lang)
	}
	if hint := p.Text("#keypad-hint"); !strings.Contains(hint, "last 4 digits") {
		t.Errorf("English keypad hint %q, want the phone step's", hint)
	}
	p.Screenshot("wrong-code-en")
	p.Accessible("wrong code, English")
	p.Run(chromedp.Click(chromedp.CSS(`#lang-toggle`)))
	waitFor(p, "Chinese again", `document.documentElement.lang === 'zh-CN'`)

	// The right code and factor: Start over, then the door opens and the page names it.
	p.Run(chromedp.Click(chromedp.CSS(`#start-over`)))
	waitFor(p, "the first step", `document.querySelector('#code-summary').hidden === true`)
	p.Run(key(code)...)
	waitFor(p, "the second step", `document.querySelector('#code-summary').hidden === false`)
	p.Run(key(factor)...)
	waitFor(p, "the doors screen naming door "+fmt.Sprint(door),
		`document.body.dataset.screen === 'doors' && document.querySelector('#announcer').innerText.includes('`+doorZh+`已打开')`)
	if list := p.Text("#door-list"); !strings.Contains(list, doorZh) || !strings.Contains(list, "请取出物品") {
		t.Errorf("door list %q, want %s open", list, doorZh)
	}
	if ref := p.Text("#doors-ref"); !strings.Contains(ref, order[len(order)-4:]) {
		t.Errorf("order reference %q, want the order's last 4", ref)
	}
	if strings.Contains(browsertest.Eval[string](p, `document.body.innerText`), code) {
		t.Error("the pickup code is still on the page")
	}
	p.Screenshot("doors-zh")
	p.Accessible("doors screen")
	p.Run(chromedp.Click(chromedp.CSS(`#lang-toggle`)))
	waitFor(p, "the English door banner", `document.querySelector('#announcer').innerText.includes('`+doorEn+` is open')`)
	p.Screenshot("doors-en")
	p.Accessible("doors screen, English")
	p.Run(chromedp.Click(chromedp.CSS(`#lang-toggle`)))
	waitFor(p, "Chinese again", `document.documentElement.lang === 'zh-CN'`)

	// The resident takes the bag out and shuts the door: thank you.
	c.person("take from the door", func() error { return c.world.Take(door, 0) })
	time.Sleep(300 * time.Millisecond)
	c.person("close the door", func() error { return c.world.Close(door) })
	waitFor(p, "the thank-you screen", `document.body.dataset.screen === 'thanks'`)
	if title := p.Text("#thanks-title"); !strings.Contains(title, "谢谢") {
		t.Errorf("thank-you title %q", title)
	}
	if !c.recorded(protocol.EventPickedUp) {
		t.Error("the page thanked the resident but the edge recorded no picked_up event")
	}
	p.Screenshot("thanks-zh")
	p.Accessible("thank-you screen")
	p.NoProblems("kiosk page")
	t.Logf("whole flow %v", time.Since(start).Round(time.Millisecond))
}

// load has the driver sign in on the kiosk page, open the order's door, put the bag in
// and shut it, and sign out, so that the order is ready to be picked up.
func (c *courtyard) load(p *browsertest.Page) {
	c.t.Helper()
	openBtn := fmt.Sprintf(`#manifest button[data-focus="open:%s:%d"]`, order, door)
	p.Run(
		chromedp.Click(chromedp.CSS(`#driver-link`)),
		chromedp.WaitVisible(chromedp.CSS(`#credential`)),
		chromedp.SendKeys(chromedp.CSS(`#credential`), credential),
		chromedp.Click(chromedp.CSS(`#driver-login-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(openBtn)),
		chromedp.Click(chromedp.CSS(openBtn)),
	)
	waitFor(p, "the driver's door banner", `document.querySelector('#announcer').innerText.includes('`+fmt.Sprintf("%d号门", door)+`已打开')`)
	c.person("put into the door", func() error { return c.world.Put(door, 1) })
	time.Sleep(300 * time.Millisecond) // the infrared is polled
	c.person("close the door", func() error { return c.world.Close(door) })
	waitFor(p, "the order under loaded", `document.querySelector('#manifest .group-loaded').innerText.includes('`+order+`')`)
	p.Run(chromedp.Click(chromedp.CSS(`#driver-logout`)))
	waitFor(p, "the keypad after sign-out", `document.body.dataset.screen === 'keypad'`)
}

// TestKioskQRScan: a resident holds a plain QR code (the payload platforms get with the
// code) to the kiosk's scanner, which types the payload as fast key events and Enter
// (Chromium's real key input, as a keyboard wedge is). A payload for another bank is refused on the page; this
// bank's payload fills the code, the resident types the phone digits, and the real edge
// opens the door.
func TestKioskQRScan(t *testing.T) {
	chrome, axe, root := browsertest.Deps(t)
	artifacts := filepath.Join(root, ".artifacts", "kiosk")
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	c := newCourtyard(t)
	c.deliver()
	c.cloud.Close()
	c.broker.Stop()

	p := browsertest.New(t, chrome, axe, artifacts, 1280, 800)
	p.Step = step
	p.Run(chromedp.Navigate(c.kiosk + "/"))
	waitFor(p, "the site name", `document.querySelector('#site-name').textContent.includes('`+siteName+`')`)
	c.load(p)

	// kb.Enter ("\r") ends the scan as a scanner's suffix does.
	p.Run(chromedp.KeyEvent("larder:v1:riverside-2:" + code + "\r"))
	waitFor(p, "the other-bank message", `document.querySelector('#announcer').innerText.includes('属于另一个取菜柜')`)
	if s := browsertest.Eval[string](p, `document.body.dataset.screen + '/' + document.querySelector('#code-summary').hidden`); s != "keypad/true" {
		t.Errorf("after another bank's QR the page shows %q, want the keypad's first step", s)
	}

	p.Run(chromedp.KeyEvent("larder:v1:" + site + ":" + code + "\r"))
	waitFor(p, "the phone step with the scanned code", `document.querySelector('#code-summary').hidden === false`)
	if sum := p.Text("#code-summary"); !strings.Contains(sum, code[:4]+" "+code[4:]) {
		t.Errorf("code summary %q, want the scanned code %s", sum, code)
	}
	p.Screenshot("qr-scanned-zh")
	p.Accessible("phone step after a scan")
	p.Run(key(factor)...)
	waitFor(p, "the doors screen naming door "+fmt.Sprint(door),
		`document.body.dataset.screen === 'doors' && document.querySelector('#announcer').innerText.includes('`+fmt.Sprintf("%d号门", door)+`已打开')`)
	// The door is unlatched: the resident takes the bag out and shuts it, and the edge
	// records the pickup.
	c.person("take from the door", func() error { return c.world.Take(door, 0) })
	time.Sleep(300 * time.Millisecond) // the infrared is polled
	c.person("close the door", func() error { return c.world.Close(door) })
	waitFor(p, "the thank-you screen", `document.body.dataset.screen === 'thanks'`)
	if !c.recorded(protocol.EventPickedUp) {
		t.Error("the page thanked the resident but the edge recorded no picked_up event")
	}
	p.NoProblems("kiosk page, QR scan")
}

// TestKioskQRWhileThrottled: a program hammers the kiosk API with wrong codes, taking
// every end of the keypad's wait, so that the keypad never checks a typed code again.
// The resident holds the device-bound QR code of the resident page to the scanner (the
// payload typed by Chromium's key input, as a keyboard wedge types it) on the locked
// screen: the edge verifies its tag offline with the site key and the door opens with
// no phone digits, and the pickup is recorded as a QR pickup.
func TestKioskQRWhileThrottled(t *testing.T) {
	chrome, axe, root := browsertest.Deps(t)
	artifacts := filepath.Join(root, ".artifacts", "kiosk")
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	c := newCourtyard(t)
	c.deliver()
	c.cloud.Close()
	c.broker.Stop()

	p := browsertest.New(t, chrome, axe, artifacts, 1280, 800)
	p.Step = step
	p.Run(chromedp.Navigate(c.kiosk + "/"))
	waitFor(p, "the site name", `document.querySelector('#site-name').textContent.includes('`+siteName+`')`)
	c.load(p)

	// The guesser: a wrong code every 50 ms until the test ends (at most 3 minutes).
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		client := &http.Client{Timeout: 5 * time.Second}
		for end := time.Now().Add(3 * time.Minute); time.Now().Before(end); {
			if resp, err := client.Post(c.kiosk+"/api/pickup", "application/json",
				strings.NewReader(`{"code":"99999999","factor":"0000"}`)); err == nil {
				resp.Body.Close()
			}
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	locked := func() int {
		resp, err := http.Get(c.kiosk + "/api/info")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var info struct {
			Locked int `json:"locked_seconds"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
			t.Fatal(err)
		}
		return info.Locked
	}
	for deadline := time.Now().Add(step); locked() < 4; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the keypad never waited 4 s under the guesser (waits %d s)", locked())
		}
	}
	// The right code with the right phone digits is refused unchecked now.
	resp, err := http.Post(c.kiosk+"/api/pickup", "application/json", strings.NewReader(`{"code":"`+code+`","factor":"`+factor+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusLocked {
		t.Fatalf("the right code under the guesser answered %d, want 423 locked", resp.StatusCode)
	}

	p.Run(chromedp.Navigate(c.kiosk + "/"))
	waitFor(p, "the locked screen", `document.body.dataset.screen === 'locked'`)
	p.Screenshot("qr-locked-zh")
	exp := time.Now().Add(protocol.QRTagLifetime)
	payload := fmt.Sprintf("larder:v1:%s:%s:%d:%s", site, code, exp.Unix(), protocol.QRTag(siteKey, site, code, exp))
	p.Run(chromedp.KeyEvent(payload + "\r"))
	waitFor(p, "the doors screen naming door "+fmt.Sprint(door),
		`document.body.dataset.screen === 'doors' && document.querySelector('#announcer').innerText.includes('`+fmt.Sprintf("%d号门", door)+`已打开')`)
	p.Screenshot("qr-opened-while-locked-zh")
	p.Accessible("doors screen after a QR pickup")
	c.person("take from the door", func() error { return c.world.Take(door, 0) })
	time.Sleep(300 * time.Millisecond) // the infrared is polled
	c.person("close the door", func() error { return c.world.Close(door) })
	waitFor(p, "the thank-you screen", `document.body.dataset.screen === 'thanks'`)
	var picked []protocol.Event
	for _, ev := range c.events(protocol.EventPickedUp) {
		if ev.Order == order {
			picked = append(picked, ev)
		}
	}
	if len(picked) != 1 || picked[0].Reason != "qr" || picked[0].Credential != protocol.CredPickup {
		t.Errorf("picked_up events %+v, want one with credential pickup_code and reason qr", picked)
	}
	if locked() == 0 {
		t.Error("the keypad stopped waiting: the guesser was not kept up (the test proves nothing)")
	}
	p.NoProblems("kiosk page, QR pickup while throttled")
}

// events returns the edge's outbox events of kind (the cloud is unreachable: every event
// stays there).
func (c *courtyard) events(kind protocol.EventKind) []protocol.Event {
	c.t.Helper()
	es, err := c.edge.Store().Pending(0, 10000)
	if err != nil {
		c.t.Fatal(err)
	}
	var out []protocol.Event
	for _, e := range es {
		m, err := protocol.Decode(e.Payload)
		if err != nil {
			continue
		}
		if ev, ok := m.Body.(protocol.Event); ok && ev.Kind == kind {
			out = append(out, ev)
		}
	}
	return out
}

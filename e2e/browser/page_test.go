package browser_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The browser plumbing, shaped like cloud/web's browser test (same flags, same install
// help, same axe gate) so that both fail and skip the same way.

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

// step bounds one browser step, so that a page that never shows what is awaited fails
// the test instead of hanging it. The whole test stays well under a minute when things
// work; a step that needs this long has failed.
const step = 20 * time.Second

// tab wraps a chromedp tab: it records uncaught exceptions and console errors (a CSP
// violation is one) so that a page that breaks quietly fails the test.
type tab struct {
	t         *testing.T
	ctx       context.Context // the tab; it has no deadline (it owns the browser)
	axe       string
	artifacts string
	mu        sync.Mutex
	problems  []string
}

// newTab starts a fresh headless Chromium (its own profile directory) with one tab,
// closed when the test ends.
func newTab(t *testing.T, chrome, axe, artifacts string) *tab {
	t.Helper()
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
		chromedp.Flag("hide-scrollbars", true), // keeps screenshots whole
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800), // a landscape kiosk touchscreen
	)
	ctx, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	p := &tab{t: t, ctx: ctx, axe: axe, artifacts: artifacts}
	// Start the browser and the tab now, so that a missing display library or a crash
	// fails here with Chromium's own message. The first call starts the browser under the
	// context it is given, so it gets the tab's own, not one with a deadline.
	//
	// The page keeps its Content-Security-Policy (default-src 'self'): axe is evaluated
	// through the DevTools protocol, which CSP does not govern, so there is no need for
	// Page.setBypassCSP, and leaving CSP on lets the console check catch anything the
	// page's own policy would block on a real kiosk.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start Chromium %s: %v", chrome, err)
	}
	p.listen()
	return p
}

func (p *tab) run(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, step)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("browser: %v", err)
	}
}

func evalAs[T any](p *tab, js string, opts ...chromedp.EvaluateOption) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, step)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, opts...))
	if err != nil {
		p.t.Fatalf("browser: evaluate %.60q: %v", js, err)
	}
	return v
}

// text is the visible text of the first element matching a CSS selector ("" if none).
func (p *tab) text(sel string) string {
	p.t.Helper()
	js, _ := json.Marshal(sel)
	return evalAs[string](p, `(() => { const e = document.querySelector(`+string(js)+`); return e ? e.innerText : ''; })()`)
}

// listen collects console errors and uncaught exceptions until the tab closes. Network
// errors (the 401 of the wrong code the test types) are not page errors.
func (p *tab) listen() {
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

func (p *tab) noProblems(where string) {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.problems {
		p.t.Errorf("%s: page error: %s", where, m)
	}
	p.problems = nil
}

// sawProblem waits a little for a recorded page problem that mentions s (console
// messages arrive on their own), forgets it and reports whether there was one.
func (p *tab) sawProblem(s string) bool {
	deadline := time.Now().Add(3 * time.Second)
	for {
		p.mu.Lock()
		for i, m := range p.problems {
			if strings.Contains(m, s) {
				p.problems = append(p.problems[:i], p.problems[i+1:]...)
				p.mu.Unlock()
				return true
			}
		}
		p.mu.Unlock()
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *tab) screenshot(name string) {
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

// accessible runs axe-core in the page, prints every violation and fails the test on
// serious or critical ones.
func (p *tab) accessible(where string) {
	p.t.Helper()
	if !evalAs[bool](p, `typeof axe === 'object'`) {
		evalAs[any](p, p.axe+";undefined")
	}
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

// waitFor polls a JavaScript condition until it holds, or fails the test after step
// with what the page shows (screen, banner), which is what one needs to see why.
func (p *tab) waitFor(what, cond string) {
	p.t.Helper()
	deadline := time.Now().Add(step)
	for !evalAs[bool](p, `!!(`+cond+`)`) {
		if time.Now().After(deadline) {
			p.t.Fatalf("browser: waited %v for %s; the page shows screen %q, banner %q", step, what,
				evalAs[string](p, `document.body.dataset.screen || ''`), p.text("#announcer"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

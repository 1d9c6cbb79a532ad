// Package browsertest drives the project's pages in headless Chromium for tests: it finds
// Chromium and the pinned axe-core (failing with install help when either is missing),
// starts a browser with a fresh profile, records console errors and uncaught exceptions
// (a Content-Security-Policy violation is one), takes screenshots and runs axe-core.
//
// Tests only: nothing the binaries import uses it. LARDER_SKIP_BROWSER=1 skips the tests
// that call Deps; LARDER_CHROMIUM names another Chromium or Chrome binary.
package browsertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// InstallHelp is what a test says when Chromium or axe-core is missing.
const InstallHelp = `install them with:
    apt-get install -y chromium        # or set LARDER_CHROMIUM to a Chromium/Chrome binary
    npm ci --prefix tools/browser      # axe-core, pinned in tools/browser/package-lock.json
or set LARDER_SKIP_BROWSER=1 to skip the browser tests`

// Deps returns the Chromium binary, the axe-core source and the repository root, or
// fails the test saying how to install what is missing.
func Deps(t testing.TB) (chrome, axe, root string) {
	t.Helper()
	if os.Getenv("LARDER_SKIP_BROWSER") == "1" {
		t.Skip("LARDER_SKIP_BROWSER=1")
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	chrome = os.Getenv("LARDER_CHROMIUM")
	if chrome == "" {
		chrome = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chrome); err != nil {
		t.Fatalf("Chromium is missing (%v): %s", err, InstallHelp)
	}
	b, err := os.ReadFile(filepath.Join(root, "tools", "browser", "node_modules", "axe-core", "axe.min.js"))
	if err != nil {
		t.Fatalf("axe-core is missing (%v): %s", err, InstallHelp)
	}
	return chrome, string(b), root
}

// repoRoot is the nearest directory above the working directory holding go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("browsertest: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Page is one tab of a headless Chromium of its own. Every step is bounded by Step, so
// a page that never shows what is awaited fails the test instead of hanging it.
type Page struct {
	T    testing.TB
	Ctx  context.Context // the tab; no deadline (it owns the browser)
	Step time.Duration   // bound of one step; New sets 30 s

	axe       string
	artifacts string
	mu        sync.Mutex // guards problems
	problems  []string
}

// New starts Chromium with a fresh profile and a width×height window, closed when the
// test ends. Screenshots go to artifacts.
func New(t testing.TB, chrome, axe, artifacts string, width, height int) *Page {
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
		chromedp.WindowSize(width, height),
	)
	ctx, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	p := &Page{T: t, Ctx: ctx, Step: 30 * time.Second, axe: axe, artifacts: artifacts}
	// Start the browser now, under the tab's own context (the first call's context owns
	// the browser), so that a crash or a missing library fails here with its message.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start Chromium %s: %v", chrome, err)
	}
	p.listen()
	return p
}

// Run runs actions within one Step and fails the test on error.
func (p *Page) Run(actions ...chromedp.Action[chromedp.Void]) {
	p.T.Helper()
	ctx, cancel := context.WithTimeout(p.Ctx, p.Step)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.T.Fatalf("browser: %v", err)
	}
}

// Eval evaluates js in the page within one Step and fails the test on error.
func Eval[T any](p *Page, js string, opts ...chromedp.EvaluateOption) T {
	p.T.Helper()
	ctx, cancel := context.WithTimeout(p.Ctx, p.Step)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, opts...))
	if err != nil {
		p.T.Fatalf("browser: evaluate %.60q: %v", js, err)
	}
	return v
}

// Text is the visible text of the first element matching a CSS selector ("" if none).
func (p *Page) Text(sel string) string {
	p.T.Helper()
	js, _ := json.Marshal(sel)
	return Eval[string](p, `(() => { const e = document.querySelector(`+string(js)+`); return e ? e.innerText : ''; })()`)
}

// listen collects console errors and uncaught exceptions until the tab closes. Network
// errors (the 401s and 403s tests provoke) are not page errors.
func (p *Page) listen() {
	msgs := chromedp.Console(p.Ctx)
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

// NoProblems fails the test for every page error recorded since the last call.
func (p *Page) NoProblems(where string) {
	p.T.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.problems {
		p.T.Errorf("%s: page error: %s", where, m)
	}
	p.problems = nil
}

// SawProblem waits a little for a recorded page error that mentions s (console messages
// arrive on their own), forgets it and reports whether there was one.
func (p *Page) SawProblem(s string) bool {
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

// Screenshot writes the whole page to artifacts/name.png.
func (p *Page) Screenshot(name string) {
	p.T.Helper()
	ctx, cancel := context.WithTimeout(p.Ctx, p.Step)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.T.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(p.artifacts, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.T.Fatal(err)
	}
	p.T.Logf("screenshot %s", path)
}

type axeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// Accessible runs axe-core in the page (injecting it through the DevTools protocol,
// which the page's Content-Security-Policy does not govern), logs every violation and
// fails the test on serious or critical ones.
func (p *Page) Accessible(where string) {
	p.T.Helper()
	if !Eval[bool](p, `typeof axe === 'object'`) {
		Eval[any](p, p.axe+";undefined")
	}
	out := Eval[string](p, `axe.run(document, {resultTypes: ['violations']}).then(r => JSON.stringify(r.violations.map(v => ({
		id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))}))))`,
		chromedp.EvalAwaitPromise)
	var vs []axeViolation
	if err := json.Unmarshal([]byte(out), &vs); err != nil {
		p.T.Fatalf("axe result %q: %v", out, err)
	}
	for _, v := range vs {
		line := fmt.Sprintf("%s: axe %s (%s): %s at %v", where, v.ID, v.Impact, v.Help, v.Nodes)
		if v.Impact == "serious" || v.Impact == "critical" {
			p.T.Error(line)
		} else {
			p.T.Log(line)
		}
	}
	p.T.Logf("%s: axe ran, %d violation(s)", where, len(vs))
}

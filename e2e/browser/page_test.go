package browser_test

import (
	"time"

	"github.com/larder-lockers/larder/internal/browsertest"
)

// step bounds one wait of the test: a page that never shows what is awaited, or an edge
// that never does what is expected, fails the test instead of hanging it. The whole test
// stays well under a minute when things work; a step that needs this long has failed.
const step = 20 * time.Second

// waitFor polls a JavaScript condition until it holds, or fails the test after step
// with what the page shows (screen, banner), which is what one needs to see why.
func waitFor(p *browsertest.Page, what, cond string) {
	p.T.Helper()
	deadline := time.Now().Add(step)
	for !browsertest.Eval[bool](p, `!!(`+cond+`)`) {
		if time.Now().After(deadline) {
			p.T.Fatalf("browser: waited %v for %s; the page shows screen %q, banner %q", step, what,
				browsertest.Eval[string](p, `document.body.dataset.screen || ''`), p.Text("#announcer"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Package browser holds Larder's browser end-to-end tests: the real pages in headless
// Chromium, driven through chromedp, against real daemons started in-process.
//
// TestKioskPickup runs larder-sim (two kerong-cu16 boards on TCP, chilled, frozen and
// ambient zones) and the whole edge daemon (edged.Main) on a temporary data directory.
// The reservation and the driver's loading credential reach the edge the way they do in
// production: a protocol.Desired snapshot published on the site's desired topic of an
// in-process mochi broker. The broker is then stopped, so that loading and pickup run
// with the cloud unreachable (the edge is offline-first). A driver loads the order on
// the kiosk page, a resident types a wrong code and then the right one on the
// on-screen keypad, and takes the item out through the simulator; the page must say
// which door opened and then thank the resident, and the edge must record the pickup.
// axe-core runs in the same browser on every screen the test checks and fails it on
// serious or critical violations.
//
// TestKioskQRScan starts the same bank, has the driver load the order, and then plays the
// kiosk's QR scanner: Chromium's own key input types a payload and Enter, as a keyboard
// wedge does. Another bank's payload must be refused on the page; this bank's must fill
// the code, and with the phone digits typed the door opens and the edge records the
// pickup.
//
// TestKioskQRWhileThrottled has a program hammer the kiosk API with wrong codes, so that
// the keypad keeps waiting and refuses even the right code and phone digits; the
// resident page's device-bound QR payload, typed as a scanner types it on the locked
// screen, must still open the door with no phone digits, and the edge must record the
// pickup as a QR pickup (picked_up with reason qr).
//
// Caveats:
//   - It needs Chromium (/usr/bin/chromium, or LARDER_CHROMIUM) and the pinned axe-core
//     (npm ci --prefix tools/browser). Missing either fails the test with the install
//     commands; LARDER_SKIP_BROWSER=1 skips it.
//   - The page keeps the kiosk's Content-Security-Policy (default-src 'self'). axe-core
//     is evaluated through the DevTools protocol, which CSP does not govern, so the test
//     needs no Page.setBypassCSP; with CSP on, anything the policy blocks shows as a
//     console error, and any console error fails the test. The test plants a blocked
//     image and an unlabelled field once to show that both checks can fail.
//   - Screenshots go to .artifacts/kiosk/ at the repository root (git-ignored).
//   - The browser uses the real clock: door and poll timings are the page's own (the
//     page polls its session once a second), so the test takes some seconds.
package browser

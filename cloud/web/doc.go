// Package web serves the cloud's web pages: the ops dashboard, the driver's phone page and
// the resident's order page, with their shared assets and the few endpoints they need
// outside the /v1 REST API. Everything is embedded: no build step, no external asset, a
// Content-Security-Policy that allows only same-origin scripts, styles and requests.
//
// # Routes
//
//	GET    /ops/                          ops dashboard (fleet, site grid, orders, webhooks, audit, reports)
//	POST   /ops/session                   sign in: Authorization: Bearer <ops key> → stream cookie
//	DELETE /ops/session                   forget the stream cookie
//	GET    /ops/stream[?site=<id>]        server-sent events: "fleet" changes or "site" snapshots
//	GET    /ops/api/fleet                 a page of sites, problems first, with counts (Bearer; see fleet.go)
//	GET    /ops/api/fleet/map             the same filters as map markers and grid cells (Bearer)
//	GET    /ops/api/backlog               notification outbox counts and dead letters (Bearer)
//	POST   /ops/api/backlog/requeue       {"id"}: retry a dead letter (Bearer)
//	GET    /driver/                       driver page (phone)
//	POST   /driver/api/orders/{order}/problem  {"compartment","reason"}: move to another door (Bearer)
//	GET    /r/{order}                     resident page; the link carries #c=<code>
//	GET    /r/api/orders/{order}          order for the resident, with its QR tag while it waits, its cold chain once it ended (X-Pickup-Code header)
//	POST   /r/api/orders/{order}/extend   extend within ResidentPolicy (X-Pickup-Code header)
//	GET    /assets/...                    style.css, common.js, qr.js, ops.js, fleet.js, map.js, driver.js, resident.js
//
// The endpoints answer errors in the /v1 API's shape, {"error": {"code", "message",
// "field"}}, and a domain code with the API's status: both read one table,
// cloud/http's StatusOf.
//
// Everything else the pages show comes from the /v1 API, called by the page with the key
// the user signed in with (kept in sessionStorage: gone when the tab closes, never in a
// URL) in an Authorization header.
//
// # Wiring
//
// cloudd serves the pages next to the /v1 API on one mux, and ends the streams before it
// shuts the server down:
//
//	pages := web.New(svc, web.Options{Logger: log, Backlog: notifyQueue})
//	mux := http.NewServeMux()
//	mux.Handle("/", api) // cloud/http: /v1, /healthz, /metrics
//	pages.Mount(mux)     // /ops/, /driver/, /r/, /assets/
//	...
//	pages.Close()        // before http.Server.Shutdown
//
// The stream clears its own write deadline, so a server WriteTimeout does not cut it.
// The resident's notification links to [ResidentLink](publicURL, order, code).
//
// # Secrets
//
// The ops stream needs a credential an EventSource can carry: the key is set once, by
// POST /ops/session, in an HttpOnly, SameSite=Strict cookie scoped to /ops/stream (see
// session.go for why the cookie holds the key and not a session id). The resident link
// carries the pickup code in the URL fragment, which browsers never send; the page sends it
// in a header and the handler compares digests in constant time (see resident.go). While
// the order waits in the locker the answer also carries the expiry and tag
// (protocol.QRTag, valid 30 minutes) of the page's device-bound QR code, which the kiosk
// opens without the phone digits; the answer never repeats the code itself. Keys,
// codes and cookies are never logged, and responses carrying data are Cache-Control:
// no-store.
//
// # Caveats
//
//   - The stream polls the service (there is no change feed): one read of the fleet index
//     per PollEvery for all viewers together, while anyone watches; each viewer then
//     re-reads its own page of the fleet after a change.
//   - The service has no resident role: after the code matches, the resident endpoints read
//     and extend the order as an internal ops principal ("resident-page").
//   - The driver's problem report calls the service's ReassignSlot ([Reassigner]); with a
//     Service that lacks it the endpoint answers 501 and the page points to the kiosk.
//   - Wrong-code limits are counted in the Service's store (FailureWait, CountFailure), so
//     replicas behind a load balancer share them; each wrong code costs one store commit.
//
// # Tests
//
// web_test.go drives the handlers with httptest against a real cloud.Service on a bbolt
// file. qr_test.go draws QR codes with assets/qr.js in node and reads them back with zbarimg
// (zbar-tools, installed by make setup). browser_test.go starts Chromium (chromedp) on the real pages and runs axe-core in
// it; it needs /usr/bin/chromium and `npm ci --prefix tools/browser`, and fails with the
// install command when they are missing, unless LARDER_SKIP_BROWSER=1.
package web

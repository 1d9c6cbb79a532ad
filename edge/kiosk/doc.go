// Package kiosk serves the locker bank's touchscreen: the embedded page (web/) and its
// JSON API for residents (pickup by code and phone digits or by a scanned device-bound QR
// payload, session status, help) and drivers (login, manifest,
// open, problem, return, logout), plus GET /healthz, on the kiosk address (metrics are
// served elsewhere: larder-edge's metrics_addr). docs/kiosk-api.md in the repository
// describes every endpoint, body and error code, the keypad throttle, and what the page
// does with each answer.
//
// Handlers are plain net/http on a chi router; they speak to the domain through two
// small interfaces (Resident, Driver) that *edge.Locker implements. Domain errors carry
// a code; one table (statusOf) maps codes to HTTP statuses, and internal errors are
// logged once, here. A request body over MaxBody bytes answers 413 too_large, the one
// error code the kiosk defines itself (the domain knows nothing of bodies); bodies are
// decoded strictly as to types; codes, factors and credentials are never logged.
//
// Driver requests carry the kiosk token from /api/driver/login as
// "Authorization: Bearer <token>".
//
// The page is plain ES modules with no build step and nothing from outside the locker:
// index.html loads web/app.js as a module; web/machine.js is the one state machine
// (screen × event → next screen), web/kiosk.js the shell around it, web/screens/ one
// module per screen, taking the document, the API client and the clock as parameters.
// The files are served from the embedded web/ as they are, .js with a JavaScript
// content type (browsers refuse modules otherwise), under a Content-Security-Policy of
// default-src 'self'; web/test/ (the page's node tests, `node --test
// edge/kiosk/web/test/`) is embedded but not served. edge/kiosk/package.json only tells
// node that the .js files are ES modules; it is outside web/ so it is not served.
package kiosk

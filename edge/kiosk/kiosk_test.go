package kiosk_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/larder-lockers/larder/edge"
	"github.com/larder-lockers/larder/edge/bolt"
	"github.com/larder-lockers/larder/edge/bolt/boltest"
	"github.com/larder-lockers/larder/edge/hw"
	"github.com/larder-lockers/larder/edge/kiosk"
	"github.com/larder-lockers/larder/protocol"
)

var key = []byte("0123456789abcdef0123456789abcdef")
var t0 = time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)

type fixture struct {
	t       testing.TB
	store   *bolt.Store
	l       *edge.Locker
	latch   *edge.FakeLatch
	clock   *edge.FakeClock
	metrics *edge.Metrics
	logs    *syncBuffer
	h       http.Handler
}

// syncBuffer collects the Locker's log lines from any goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	var specs []edge.CompartmentSpec
	for n := 1; n <= 4; n++ {
		specs = append(specs, edge.CompartmentSpec{Number: n, Size: protocol.SizeM, Zone: protocol.ZoneChilled,
			HeightCM: 20 + 50*((n-1)%2), Row: 1 + (n-1)%2, Column: 1 + (n-1)/2, Lock: n})
	}
	f := &fixture{t: t, store: boltest.Open(t), latch: &edge.FakeLatch{}, clock: edge.NewFakeClock(t0), metrics: edge.NewMetrics(nil),
		logs: &syncBuffer{}}
	l, err := edge.New(edge.Config{Site: "courtyard-1", SiteKey: key, Compartments: specs, Store: f.store,
		Latch: f.latch, Clock: f.clock, StaggerGap: -1, Metrics: f.metrics, Log: slog.New(slog.NewTextHandler(f.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	snap := &hw.Snapshot{Compartments: map[int]hw.CompartmentState{}}
	for n := 1; n <= 4; n++ {
		snap.Compartments[n] = hw.CompartmentState{Door: hw.DoorClosed, Occupancy: hw.Empty}
	}
	if err := l.Start(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	f.l = l
	f.h = kiosk.New(kiosk.Config{Resident: l, Driver: l, Health: func() error { return nil }})
	// One order in compartments 1 and 3, loaded, and a driver credential.
	_, err = l.ApplyDesired(context.Background(), "m1", protocol.Desired{Version: 1, Full: true,
		Reservations: []protocol.Reservation{{Order: "ord_0001", Slots: []protocol.Slot{{Compartment: 1, Generation: 1}, {Compartment: 3, Generation: 1}},
			CodeDigest: protocol.CodeDigest(key, "12345678"), SecondFactorDigest: protocol.SecondFactorDigest(key, "ord_0001", "4321"),
			ExpiresAt: t0.Add(24 * time.Hour), Zone: protocol.ZoneChilled},
			{Order: "ord_0002", Slots: []protocol.Slot{{Compartment: 2, Generation: 1, Size: protocol.SizeM}},
				CodeDigest: protocol.CodeDigest(key, "22223333"), SecondFactorDigest: protocol.SecondFactorDigest(key, "ord_0002", "1111"),
				ExpiresAt: t0.Add(24 * time.Hour), Zone: protocol.ZoneChilled}},
		Credentials: []protocol.LoadingCredential{{ID: "c1", Digest: protocol.CredentialDigest(key, "drv-secret"), Driver: "drv-1", ExpiresAt: t0.Add(time.Hour)}}})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// helps counts the help_requested events in the outbox.
func (f *fixture) helps() int {
	f.t.Helper()
	es, err := f.store.Pending(0, 1<<20)
	if err != nil {
		f.t.Fatal(err)
	}
	n := 0
	for _, e := range es {
		m, err := protocol.Decode(e.Payload)
		if err != nil {
			f.t.Fatal(err)
		}
		if ev, ok := m.Body.(protocol.Event); ok && ev.Kind == protocol.EventHelpRequested {
			n++
		}
	}
	return n
}

func (f *fixture) hw(kind hw.EventKind, c int, occ hw.Occupancy) {
	f.l.HandleHW(context.Background(), hw.Event{Kind: kind, Compartment: c, Occupancy: occ})
}

func (f *fixture) cycle(c int, occ hw.Occupancy) {
	f.hw(hw.EventDoorOpened, c, 0)
	f.hw(hw.EventOccupancyChanged, c, occ)
	f.hw(hw.EventDoorClosed, c, 0)
}

func (f *fixture) do(method, path, body, token string) (int, map[string]any) {
	f.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	var out map[string]any
	if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			f.t.Fatalf("%s %s: body %q: %v", method, path, rec.Body, err)
		}
	}
	return rec.Code, out
}

func (f *fixture) login() string {
	f.t.Helper()
	st, body := f.do("POST", "/api/driver/login", `{"credential":"drv-secret"}`, "")
	if st != 200 || body["driver"] != "drv-1" {
		f.t.Fatalf("login %d %v", st, body)
	}
	return body["token"].(string)
}

func (f *fixture) loadAll() {
	tok := f.login()
	for _, c := range []struct {
		order string
		n     int
	}{{"ord_0001", 1}, {"ord_0001", 3}, {"ord_0002", 2}} {
		st, body := f.do("POST", "/api/driver/open", `{"order":"`+c.order+`","compartment":`+string(rune('0'+c.n))+`}`, tok)
		if st != 200 {
			f.t.Fatalf("driver open %d: %d %v", c.n, st, body)
		}
		f.cycle(c.n, hw.Occupied)
	}
}

// TestInfoNamesTheSite: /api/info carries the site's name and zone once the cloud's
// desired state has described them (a delta renames), and only the id before.
func TestInfoNamesTheSite(t *testing.T) {
	f := newFixture(t)
	_, body := f.do("GET", "/api/info", "", "")
	if body["site"] != "courtyard-1" || body["site_name"] != nil || body["time_zone"] != nil {
		t.Fatalf("info before the cloud named the site: %v", body)
	}
	for i, name := range []string{"3号楼", "3号楼东门"} {
		d := protocol.Desired{Version: uint64(2 + i), Site: &protocol.SiteProfile{Name: name, TimeZone: "Asia/Shanghai"}}
		if _, err := f.l.ApplyDesired(context.Background(), fmt.Sprint("site-", i), d); err != nil {
			t.Fatal(err)
		}
		_, body = f.do("GET", "/api/info", "", "")
		if body["site"] != "courtyard-1" || body["site_name"] != name || body["time_zone"] != "Asia/Shanghai" {
			t.Fatalf("info after desired version %d: %v", d.Version, body)
		}
	}
	// A delta without a site leaves it as it was.
	if _, err := f.l.ApplyDesired(context.Background(), "site-none", protocol.Desired{Version: 4, Cancel: []string{"ord_0002"}}); err != nil {
		t.Fatal(err)
	}
	if _, body = f.do("GET", "/api/info", "", ""); body["site_name"] != "3号楼东门" {
		t.Fatalf("info after a delta without a site: %v", body)
	}
}

func TestPickupOverHTTP(t *testing.T) {
	f := newFixture(t)
	f.loadAll()
	st, body := f.do("POST", "/api/pickup", `{"code":"12345678","factor":"4321"}`, "")
	if st != 200 {
		t.Fatalf("pickup %d %v", st, body)
	}
	doors := body["doors"].([]any)
	d0 := doors[0].(map[string]any)
	if len(doors) != 2 || d0["where_en"] != "door 1, bottom row, left" || d0["state"] != "open" || body["order_ref"] != "0001" {
		t.Fatalf("body %v", body)
	}
	sess := body["session"].(string)
	st, body = f.do("GET", "/api/sessions/"+sess, "", "")
	if st != 200 || body["done"] != false {
		t.Fatalf("session %d %v", st, body)
	}
	f.cycle(1, hw.Empty)
	f.cycle(3, hw.Empty)
	st, body = f.do("GET", "/api/sessions/"+sess, "", "")
	if st != 200 || body["done"] != true {
		t.Fatalf("session after closing %d %v", st, body)
	}
	st, body = f.do("GET", "/api/sessions/nope", "", "")
	if st != 404 || body["error"] != "not_found" {
		t.Fatalf("unknown session %d %v", st, body)
	}
}

func TestPickupErrors(t *testing.T) {
	f := newFixture(t)
	f.loadAll()
	cases := []struct {
		name, body string
		status     int
		code       string
	}{
		{"not json", `{"code":`, 400, "bad_request"},
		{"missing factor", `{"code":"12345678"}`, 400, "bad_request"},
		{"letters", `{"code":"1234567a","factor":"4321"}`, 400, "bad_request"},
		{"wrong type", `{"code":12345678,"factor":"4321"}`, 400, "bad_request"},
		{"two values", `{"code":"12345678","factor":"4321"}{}`, 400, "bad_request"},
		{"too big", `{"code":"` + strings.Repeat("1", 5000) + `","factor":"4321"}`, 413, "too_large"},
		{"too big after a complete value", `{"code":"12345678","factor":"4321"}` + strings.Repeat(" ", kiosk.MaxBody), 413, "too_large"},
		{"7 digits", `{"code":"1234567","factor":"4321"}`, 400, "bad_request"},
		{"16 digits", `{"code":"1234567812345678","factor":"4321"}`, 400, "bad_request"},
		{"5 phone digits", `{"code":"12345678","factor":"43210"}`, 400, "bad_request"},
		{"wrong code", `{"code":"99999999","factor":"4321"}`, 401, "wrong_code"},
	}
	for _, c := range cases {
		st, body := f.do("POST", "/api/pickup", c.body, "")
		if st != c.status || body["error"] != c.code || body["message"] == "" || body["message_zh"] == "" {
			t.Errorf("%s: %d %v", c.name, st, body)
		}
	}
	_, body := f.do("POST", "/api/pickup", `{"code":"99999999","factor":"4321"}`, "")
	if body["attempts_left"] != 3.0 {
		t.Fatalf("attempts_left %v", body)
	}
	f.do("POST", "/api/pickup", `{"code":"99999999","factor":"4321"}`, "")
	f.do("POST", "/api/pickup", `{"code":"99999999","factor":"4321"}`, "")
	// The 5th wrong code in a row makes the keypad wait 1 s, the 6th 2 s.
	st, body := f.do("POST", "/api/pickup", `{"code":"99999999","factor":"4321"}`, "")
	if st != 401 || body["error"] != "wrong_code" || body["retry_after_seconds"] != 1.0 || body["attempts_left"] != nil {
		t.Fatalf("5th wrong code %d %v", st, body)
	}
	f.clock.Advance(time.Second)
	if st, body = f.do("POST", "/api/pickup", `{"code":"99999999","factor":"4321"}`, ""); st != 401 || body["retry_after_seconds"] != 2.0 {
		t.Fatalf("6th wrong code %d %v", st, body)
	}
	st, body = f.do("POST", "/api/pickup", `{"code":"12345678","factor":"4321"}`, "")
	if st != 423 || body["error"] != "locked" || body["retry_after_seconds"] != 2.0 {
		t.Fatalf("locked %d %v", st, body)
	}
	_, body = f.do("GET", "/api/info", "", "")
	if body["locked_seconds"] != 2.0 || body["site"] != "courtyard-1" {
		t.Fatalf("info %v", body)
	}
	f.clock.Advance(2 * time.Second)
	if _, body = f.do("GET", "/api/info", "", ""); body["locked_seconds"] != 0.0 {
		t.Fatalf("info after the wait %v", body)
	}

	// Hardware: every door jams.
	f.latch.SetJammed(2, true)
	st, body = f.do("POST", "/api/pickup", `{"code":"22223333","factor":"1111"}`, "")
	if st != 503 || body["error"] != "hardware" {
		t.Fatalf("hardware %d %v", st, body)
	}
	f.latch.SetJammed(2, false)

	// Compromised, then accepted.
	for i := 0; i <= 40; i++ {
		f.l.Temperatures(context.Background(), []hw.Reading{{Zone: "chilled", Celsius: 12}})
		f.clock.Advance(time.Minute)
	}
	st, body = f.do("POST", "/api/pickup", `{"code":"22223333","factor":"1111"}`, "")
	if st != 409 || body["error"] != "compromised" || body["minutes_out"] == nil {
		t.Fatalf("compromised %d %v", st, body)
	}
	st, body = f.do("POST", "/api/pickup", `{"code":"22223333","factor":"1111","accept_compromised":true}`, "")
	if st != 200 || body["compromised"] != true {
		t.Fatalf("accepted %d %v", st, body)
	}
	// Expired.
	f.clock.Advance(48 * time.Hour)
	st, body = f.do("POST", "/api/pickup", `{"code":"12345678","factor":"4321"}`, "")
	if st != 410 || body["error"] != "expired" {
		t.Fatalf("expired %d %v", st, body)
	}
}

// TestMalformedPickupIsNotAGuess: codes of the wrong length and phone endings of the wrong
// length answer 400 bad_request naming the field, and however many arrive, the keypad
// neither waits nor loses attempts, and the order's code keeps working.
func TestMalformedPickupIsNotAGuess(t *testing.T) {
	f := newFixture(t)
	f.loadAll()
	for range 6 { // 30 attempts: more than FreeFailures (4) and FailureBudget (20)
		for _, c := range []struct{ body, field string }{
			{`{"code":"1234567","factor":"4321"}`, "code"},
			{`{"code":"1234567812345678","factor":"4321"}`, "code"},
			{`{"factor":"4321"}`, "code"},
			{`{"code":"12345678","factor":"432"}`, "factor"},
			{`{"code":"12345678","factor":"43210"}`, "factor"},
		} {
			st, body := f.do("POST", "/api/pickup", c.body, "")
			if st != 400 || body["error"] != "bad_request" || body["field"] != c.field {
				t.Fatalf("%s: %d %v, want 400 bad_request on %s", c.body, st, body, c.field)
			}
		}
	}
	if _, body := f.do("GET", "/api/info", "", ""); body["locked_seconds"] != 0.0 {
		t.Fatalf("info after malformed attempts %v", body)
	}
	if st, body := f.do("POST", "/api/pickup", `{"code":"99999999","factor":"4321"}`, ""); st != 401 || body["attempts_left"] != 4.0 {
		t.Fatalf("first real guess %d %v", st, body)
	}
	if st, body := f.do("POST", "/api/pickup", `{"code":"12345678","factor":"4321"}`, ""); st != 200 {
		t.Fatalf("right code %d %v", st, body)
	}
}

// TestHelpRateLimitOverHTTP: the first press raises help_requested; presses within a
// minute answer 202 with already_notified and raise nothing; after the minute, one more.
func TestHelpRateLimitOverHTTP(t *testing.T) {
	f := newFixture(t)
	help := func(wantAlready bool) {
		t.Helper()
		st, body := f.do("POST", "/api/help", `{"context":"pickup"}`, "")
		if st != 202 || body["already_notified"] != wantAlready || body["message"] == "" || body["message_zh"] == "" {
			t.Fatalf("help at +%v: %d %v, want already_notified %v", f.clock.Now().Sub(t0), st, body, wantAlready)
		}
	}
	help(false)
	help(true)
	f.clock.Advance(59 * time.Second)
	help(true)
	if n := f.helps(); n != 1 {
		t.Fatalf("%d help_requested events within the minute, want 1", n)
	}
	f.clock.Advance(time.Second)
	help(false)
	help(true)
	if n := f.helps(); n != 2 {
		t.Fatalf("%d help_requested events, want 2", n)
	}
}

func TestDriverOverHTTP(t *testing.T) {
	f := newFixture(t)
	if st, body := f.do("POST", "/api/driver/login", `{"credential":"nope"}`, ""); st != 401 || body["error"] != "bad_credential" {
		t.Fatalf("bad login %d %v", st, body)
	}
	if st, body := f.do("GET", "/api/driver/manifest", "", ""); st != 401 || body["error"] != "bad_credential" {
		t.Fatalf("no token %d %v", st, body)
	}
	tok := f.login()
	st, body := f.do("GET", "/api/driver/manifest", "", tok)
	if st != 200 || len(body["orders"].([]any)) != 2 {
		t.Fatalf("manifest %d %v", st, body)
	}
	if st, body := f.do("POST", "/api/driver/open", `{"order":"ord_0002"}`, tok); st != 400 {
		t.Fatalf("open without compartment %d %v", st, body)
	}
	if st, body := f.do("POST", "/api/driver/open", `{"order":"ord_none","compartment":2}`, tok); st != 404 {
		t.Fatalf("open unknown order %d %v", st, body)
	}
	f.latch.SetJammed(2, true)
	if st, body := f.do("POST", "/api/driver/open", `{"order":"ord_0002","compartment":2}`, tok); st != 503 || body["error"] != "hardware" {
		t.Fatalf("open jammed %d %v", st, body)
	}
	st, body = f.do("POST", "/api/driver/problem", `{"order":"ord_0002","compartment":2,"reason":"jammed"}`, tok)
	if st != 200 || body["door"].(map[string]any)["number"] != 4.0 {
		t.Fatalf("problem %d %v", st, body)
	}
	if st, body := f.do("POST", "/api/driver/problem", `{"order":"ord_0001","compartment":1,"reason":"full"}`, tok); st != 409 || body["error"] != "no_compartment" {
		t.Fatalf("no compartment %d %v", st, body)
	}
	if st, body := f.do("POST", "/api/driver/problem", `{"order":"ord_0001","compartment":1,"reason":"bored"}`, tok); st != 400 {
		t.Fatalf("bad reason %d %v", st, body)
	}
	if st, body := f.do("POST", "/api/driver/return", `{"order":"ord_0001"}`, tok); st != 409 || body["error"] != "conflict" {
		t.Fatalf("return of a live order %d %v", st, body)
	}
	if st, _ := f.do("POST", "/api/driver/logout", "", tok); st != 204 {
		t.Fatalf("logout %d", st)
	}
	if st, _ := f.do("GET", "/api/driver/manifest", "", tok); st != 401 {
		t.Fatalf("token after logout %d", st)
	}
	f.clock.Advance(2 * time.Hour)
	if st, body := f.do("POST", "/api/driver/login", `{"credential":"drv-secret"}`, ""); st != 410 || body["error"] != "expired" {
		t.Fatalf("expired credential %d %v", st, body)
	}
}

func TestReturnOverHTTP(t *testing.T) {
	f := newFixture(t)
	f.loadAll()
	f.clock.Advance(25 * time.Hour)
	f.l.DriverLogout("")
	_, _, _ = f.l.DriverLogin("x")
	// The credential expired with the hour; a fresh one arrives.
	_, err := f.l.ApplyDesired(context.Background(), "m2", protocol.Desired{Version: 2, Credentials: []protocol.LoadingCredential{{
		ID: "c2", Digest: protocol.CredentialDigest(key, "drv-2"), Driver: "drv-2", ExpiresAt: t0.Add(30 * time.Hour)}}})
	if err != nil {
		t.Fatal(err)
	}
	st, body := f.do("POST", "/api/driver/login", `{"credential":"drv-2"}`, "")
	if st != 200 {
		t.Fatalf("login %d %v", st, body)
	}
	tok := body["token"].(string)
	st, body = f.do("POST", "/api/driver/return", `{"order":"ord_0001"}`, tok)
	if st != 200 || len(body["doors"].([]any)) != 2 {
		t.Fatalf("return %d %v", st, body)
	}
}

// TestHelpHealthPage: help, health and the page; /metrics is not on the kiosk address
// (larder-edge serves it on its own metrics_addr).
func TestHelpHealthPage(t *testing.T) {
	f := newFixture(t)
	if st, body := f.do("POST", "/api/help", `{"context":"pickup"}`, ""); st != 202 || body["message"] == "" || body["already_notified"] != false {
		t.Fatalf("help %d %v", st, body)
	}
	for _, c := range []struct {
		path, want string
		status     int
	}{{"/healthz", "ok", 200}, {"/metrics", "", 404}, {"/", "<", 200}, {"/app.js", "createKiosk", 200},
		{"/test/api.test.js", "", 404}, {"/api/nope", "not_found", 404}} {
		rec := httptest.NewRecorder()
		f.h.ServeHTTP(rec, httptest.NewRequest("GET", c.path, nil))
		if rec.Code != c.status || !strings.Contains(rec.Body.String(), c.want) {
			t.Errorf("%s: %d %.80q", c.path, rec.Code, rec.Body.String())
		}
	}
	h := kiosk.New(kiosk.Config{Resident: f.l, Driver: f.l, Health: func() error { return errors.New("store closed") }})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), "store closed") {
		t.Fatalf("unhealthy: %d %q", rec.Code, rec.Body)
	}
}

// importRE finds the module specifiers of static imports and re-exports
// (`import x from './a.js'`, `import './b.js'`, `export { y } from './c.js'`).
var importRE = regexp.MustCompile(`(?m)^(?:import\s+(?:[^'";]*?\sfrom\s*)?|export\s+(?:\*|\{[^}]*\})\s*from\s*)['"]([^'"]+)['"]`)

// TestPageModules walks the page's ES modules from index.html's module script through
// every import: each must be served, under the kiosk's CSP, with a JavaScript content
// type (browsers refuse a module served as anything else), and every import must be
// relative, so the page loads nothing from outside the locker.
func TestPageModules(t *testing.T) {
	f := newFixture(t)
	get := func(path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		f.h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		return rec
	}
	page := get("/").Body.String()
	m := regexp.MustCompile(`<script type="module" src="([^"]+)">`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("index.html has no module script: %.300s", page)
	}
	queue, seen := []string{"/" + m[1]}, map[string]bool{}
	for len(queue) > 0 && len(seen) < 100 {
		p := queue[0]
		queue = queue[1:]
		if seen[p] {
			continue
		}
		seen[p] = true
		rec := get(p)
		ct := rec.Header().Get("Content-Type")
		if rec.Code != 200 || !(strings.HasPrefix(ct, "text/javascript") || strings.HasPrefix(ct, "application/javascript")) {
			t.Errorf("%s: %d %q, want 200 and a JavaScript content type", p, rec.Code, ct)
			continue
		}
		if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("%s: Content-Security-Policy %q", p, csp)
		}
		for _, im := range importRE.FindAllStringSubmatch(rec.Body.String(), -1) {
			spec := im[1]
			if !strings.HasPrefix(spec, "./") && !strings.HasPrefix(spec, "../") {
				t.Errorf("%s imports %q: only relative imports of the page's own files", p, spec)
				continue
			}
			queue = append(queue, path.Join(path.Dir(p), spec))
		}
	}
	// The walk must have found the modules, or it proves nothing.
	for _, want := range []string{"/app.js", "/kiosk.js", "/machine.js", "/api.js", "/i18n.js", "/screens/pickup.js", "/screens/driver.js"} {
		if !seen[want] {
			t.Errorf("the import walk never reached %s (found %v)", want, seen)
		}
	}
}

// qrPayload is the device-bound QR payload the resident page shows, tagged with the
// fixture's site key.
func qrPayload(site, code string, expires time.Time) string {
	return fmt.Sprintf("larder:v1:%s:%s:%d:%s", site, code, expires.Unix(), protocol.QRTag(key, site, code, expires))
}

// events returns the outbox's events of kind.
func (f *fixture) events(kind protocol.EventKind) []protocol.Event {
	f.t.Helper()
	es, err := f.store.Pending(0, 1<<20)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []protocol.Event
	for _, e := range es {
		m, err := protocol.Decode(e.Payload)
		if err != nil {
			f.t.Fatal(err)
		}
		if ev, ok := m.Body.(protocol.Event); ok && ev.Kind == kind {
			out = append(out, ev)
		}
	}
	return out
}

// TestPickupQRWhileThrottled: with the keypad waiting after wrong codes, so that the
// right code and phone digits are refused unchecked, a scanned device-bound QR payload
// opens the order's doors without the phone digits, leaves the throttle as it was, and is
// audited and reported as a QR pickup.
func TestPickupQRWhileThrottled(t *testing.T) {
	f := newFixture(t)
	f.loadAll()
	for range 5 {
		f.do("POST", "/api/pickup", `{"code":"99999999","factor":"4321"}`, "")
	}
	if st, body := f.do("POST", "/api/pickup", `{"code":"12345678","factor":"4321"}`, ""); st != 423 || body["error"] != "locked" {
		t.Fatalf("right code while the keypad waits: %d %v, want 423 locked", st, body)
	}
	_, info := f.do("GET", "/api/info", "", "")
	failures := testutil.ToFloat64(f.metrics.CodeFailures)

	qr := qrPayload("courtyard-1", "12345678", t0.Add(protocol.QRTagLifetime))
	st, body := f.do("POST", "/api/pickup", `{"qr":"`+qr+`"}`, "")
	if st != 200 {
		t.Fatalf("QR pickup while throttled: %d %v, want 200", st, body)
	}
	if doors := body["doors"].([]any); len(doors) != 2 || body["order_ref"] != "0001" {
		t.Fatalf("QR pickup opened %v", body)
	}
	if _, after := f.do("GET", "/api/info", "", ""); after["locked_seconds"] != info["locked_seconds"] {
		t.Errorf("the keypad's wait went from %v to %v s over a QR pickup, want it untouched", info["locked_seconds"], after["locked_seconds"])
	}
	if got := testutil.ToFloat64(f.metrics.CodeFailures); got != failures {
		t.Errorf("larder_code_failures_total %v after a QR pickup, want %v", got, failures)
	}
	audit, err := f.store.AuditLog()
	if err != nil {
		t.Fatal(err)
	}
	var qrDoors []int
	for _, a := range audit {
		if a.Reason == "pickup_qr" && a.Order == "ord_0001" && a.Credential == protocol.CredPickup {
			qrDoors = append(qrDoors, a.Compartment)
		}
	}
	if len(qrDoors) != 2 {
		t.Errorf("audit entries of the QR pickup: doors %v, want 1 and 3 with reason pickup_qr (log %+v)", qrDoors, audit)
	}
	f.cycle(1, hw.Empty)
	f.cycle(3, hw.Empty)
	picked := f.events(protocol.EventPickedUp)
	if len(picked) != 1 || picked[0].Order != "ord_0001" || picked[0].Reason != "qr" || picked[0].Credential != protocol.CredPickup {
		t.Errorf("picked_up events %+v, want one for ord_0001 with credential pickup_code and reason qr", picked)
	}
	opened := 0
	for _, ev := range f.events(protocol.EventDoorOpened) {
		if (ev.Compartment == 1 || ev.Compartment == 3) && ev.Reason == "qr" {
			opened++
		}
	}
	if opened != 2 {
		t.Errorf("%d door_opened events with reason qr for doors 1 and 3, want 2", opened)
	}
	// The order is taken: its QR code says so, and still counts nothing.
	if st, body := f.do("POST", "/api/pickup", `{"qr":"`+qr+`"}`, ""); st != 409 || body["error"] != "already_picked_up" {
		t.Errorf("QR of a picked-up order: %d %v, want 409 already_picked_up", st, body)
	}
}

// TestPickupQRRefused: payloads the edge cannot verify are refused without a look at
// their code, each with its reason, and none of them counts toward the keypad's throttle;
// each is counted in larder_qr_refused_total. A plain payload is not a QR pickup: it goes
// with the phone digits as a code.
func TestPickupQRRefused(t *testing.T) {
	f := newFixture(t)
	f.loadAll()
	now := t0
	good := qrPayload("courtyard-1", "12345678", now.Add(protocol.QRTagLifetime))
	forged := good[:len(good)-1] + map[bool]string{true: "0", false: "1"}[good[len(good)-1] != '0']
	cases := []struct {
		name, body string
		status     int
		code       string
		reason     string // qr_refused's reason, or bad_request's field
	}{
		{"bad tag", `{"qr":"` + forged + `"}`, 401, "qr_refused", "bad_tag"},
		{"tag of another key", `{"qr":"` + good[:len(good)-20] +
			protocol.QRTag([]byte("another-site-key-0123456789abcdef"), "courtyard-1", "12345678", now.Add(protocol.QRTagLifetime)) + `"}`, 401, "qr_refused", "bad_tag"},
		{"other site", `{"qr":"` + qrPayload("riverside-2", "12345678", now.Add(protocol.QRTagLifetime)) + `"}`, 401, "qr_refused", "other_site"},
		{"expired", `{"qr":"` + qrPayload("courtyard-1", "12345678", now) + `"}`, 401, "qr_refused", "expired"},
		{"too far ahead", `{"qr":"` + qrPayload("courtyard-1", "12345678", now.Add(2*protocol.QRTagLifetime+time.Second)) + `"}`, 401, "qr_refused", "expired"},
		{"plain payload", `{"qr":"larder:v1:courtyard-1:12345678"}`, 400, "bad_request", "qr"},
		{"upper-case tag", `{"qr":"` + good[:len(good)-20] + strings.ToUpper(good[len(good)-20:]) + `"}`, 400, "bad_request", "qr"},
		{"7-digit code", `{"qr":"larder:v1:courtyard-1:1234567:1798225200:` + strings.Repeat("a", 20) + `"}`, 400, "bad_request", "qr"},
		{"QR and code", `{"qr":"` + good + `","code":"12345678","factor":"4321"}`, 400, "bad_request", "qr"},
	}
	refused := 0.0
	for _, c := range cases {
		st, body := f.do("POST", "/api/pickup", c.body, "")
		got := body["reason"]
		if c.code == "bad_request" {
			got = body["field"]
		}
		if st != c.status || body["error"] != c.code || got != c.reason || body["message"] == "" || body["message_zh"] == "" {
			t.Errorf("%s: %d %v, want %d %s (%s)", c.name, st, body, c.status, c.code, c.reason)
		}
		if c.name != "QR and code" {
			refused++
		}
	}
	var total float64
	for _, r := range []string{"bad_tag", "other_site", "expired", "malformed"} {
		total += testutil.ToFloat64(f.metrics.QRRefused.WithLabelValues(r))
	}
	if total != refused {
		t.Errorf("larder_qr_refused_total sums to %v, want %v", total, refused)
	}
	if got := testutil.ToFloat64(f.metrics.QRRefused.WithLabelValues("bad_tag")); got != 2 {
		t.Errorf(`larder_qr_refused_total{reason="bad_tag"} = %v, want 2`, got)
	}
	// A loop of refusals costs one log line a minute, which counts the ones in between;
	// no payload or tag is ever logged.
	if n := strings.Count(f.logs.String(), "qr refused"); n != 1 {
		t.Errorf("%v refusals in one instant logged %d lines, want 1:\n%s", refused, n, f.logs)
	}
	f.clock.Advance(time.Minute)
	f.do("POST", "/api/pickup", `{"qr":"`+forged+`"}`, "")
	if n := strings.Count(f.logs.String(), "qr refused"); n != 2 || !strings.Contains(f.logs.String(), fmt.Sprintf("refusals=%d", int(refused))) {
		t.Errorf("a minute later: %d lines, want 2, the second counting %v refusals:\n%s", n, refused, f.logs)
	}
	if logs := f.logs.String(); strings.Contains(logs, good[len(good)-20:]) || strings.Contains(logs, "12345678") {
		t.Errorf("a tag or code is in the logs:\n%s", logs)
	}
	// None of it was a guess: the keypad has all its tries, and the order opens.
	if testutil.ToFloat64(f.metrics.CodeFailures) != 0 {
		t.Errorf("refused QR payloads counted as wrong codes")
	}
	if _, body := f.do("POST", "/api/pickup", `{"code":"99999999","factor":"4321"}`, ""); body["attempts_left"] != 4.0 {
		t.Errorf("the first wrong code after refused QR payloads: %v, want attempts_left 4", body)
	}
	if st, body := f.do("POST", "/api/pickup", `{"qr":"`+good+`"}`, ""); st != 200 {
		t.Errorf("the good QR after the refusals: %d %v", st, body)
	}
}

// FuzzPickupBody feeds arbitrary bodies to POST /api/pickup: the handler must answer
// with the contract's JSON and never a 5xx, whatever arrives.
func FuzzPickupBody(f *testing.F) {
	for _, s := range []string{`{"code":"12345678","factor":"4321"}`, `{"code":"12345678","factor":"4321","accept_compromised":true}`,
		`{"qr":"larder:v1:courtyard-1:12345678:1798225200:0123456789abcdef0123"}`, `{"qr":"larder:v1:courtyard-1:12345678"}`,
		`{}`, ``, `null`, `[]`, `{"code":null}`, `{"code":"1","factor":"2","x":{"y":[1,2]}}`, "\xff\xfe", `{"code":"12345678","factor":"4321"} x`} {
		f.Add([]byte(s))
	}
	fx := newFixture(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := httptest.NewRecorder()
		fx.h.ServeHTTP(rec, httptest.NewRequest("POST", "/api/pickup", bytes.NewReader(body)))
		if rec.Code >= 500 && rec.Code != 503 {
			t.Fatalf("status %d for %q", rec.Code, body)
		}
		var out map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("non-JSON answer %q: %v", rec.Body, err)
		}
		if rec.Code != 200 && out["error"] == nil {
			t.Fatalf("error without code: %d %v", rec.Code, out)
		}
	})
}

// FuzzAPIBodies sends arbitrary bodies to every POST endpoint, with a valid driver token:
// always a JSON answer, never a 500.
func FuzzAPIBodies(f *testing.F) {
	paths := []string{"/api/help", "/api/driver/login", "/api/driver/open", "/api/driver/problem", "/api/driver/return"}
	for i, s := range []string{`{"order":"ord_0002","compartment":2}`, `{"order":"ord_0001","compartment":1,"reason":"full"}`,
		`{"credential":"drv-secret"}`, `{"context":"pickup"}`, `{"order":"ord_0001"}`, `{"compartment":-1}`, `{"order":""}`, `[`} {
		f.Add(uint8(i), []byte(s))
	}
	fx := newFixture(f)
	tok := fx.login()
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		path := paths[int(which)%len(paths)]
		req := httptest.NewRequest("POST", path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		fx.h.ServeHTTP(rec, req)
		if rec.Code >= 500 && rec.Code != 503 {
			t.Fatalf("%s: status %d for %q: %s", path, rec.Code, body, rec.Body)
		}
		var out map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("%s: non-JSON answer %q", path, rec.Body)
		}
	})
}

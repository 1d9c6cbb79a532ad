package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/larder-lockers/larder/cloud"
	lhttp "github.com/larder-lockers/larder/cloud/http"
	"github.com/larder-lockers/larder/cloud/notify"
	"github.com/larder-lockers/larder/cloud/web"
	"github.com/larder-lockers/larder/protocol"
)

func (f *fixture) handler(opt web.Options) *web.Handler {
	if opt.Now == nil {
		opt.Now = f.clock.Now
	}
	if opt.Logger == nil {
		opt.Logger = f.log
	}
	h := web.New(f.svc, opt)
	f.t.Cleanup(h.Close)
	return h
}

// do serves one request from addr through h.
func do(h http.Handler, method, path, addr string, hdr map[string]string, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.RemoteAddr = addr + ":40000"
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func decodeTo[T any](t *testing.T, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %q: %v", w.Body.String(), err)
	}
	return v
}

func errCode(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	var b struct {
		Error struct{ Code string } `json:"error"`
	}
	json.Unmarshal(w.Body.Bytes(), &b)
	return b.Error.Code
}

func TestResidentRightCode(t *testing.T) {
	f := newFixture(t)
	h := f.handler(web.Options{})
	o, code := f.order("r-1", cloud.Parcel{Size: protocol.SizeM, Zone: protocol.ZoneChilled})
	o = f.load(o)

	w := do(h, "GET", "/r/api/orders/"+o.ID, "10.0.0.1", map[string]string{web.CodeHeader: code}, "")
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
	v := decodeTo[web.ResidentOrder](t, w)
	if v.State != cloud.StateLoaded || !v.CodeValid || v.Site.Name != "Plum Court" || v.Site.Address != "12 Plum Lane" {
		t.Errorf("view = %+v", v)
	}
	if len(v.Doors) != 1 || v.Doors[0].Number != o.Slots[0].Compartment || !v.Doors[0].Loaded || v.Doors[0].Row == "" {
		t.Errorf("doors = %+v, want door %d loaded with a row", v.Doors, o.Slots[0].Compartment)
	}
	if !v.ExpiresAt.Equal(o.ExpiresAt) {
		t.Errorf("expires_at = %v, want %v", v.ExpiresAt, o.ExpiresAt)
	}
	// Chilled food waits 24 h at most after loading: no extension offered.
	if v.Extend.Allowed || v.Extend.Reason != "food_safety" {
		t.Errorf("extend = %+v, want refused for food safety", v.Extend)
	}
	// The phone as written and as digits, not "138" alone: three digits occur by chance in
	// the body's ids and times (a CI run found "138" there).
	for _, secret := range []string{"138 0013", "0013 8000", "13800138000", "Wang", "3-502", o.CodeDigest, code} {
		if strings.Contains(w.Body.String(), secret) {
			t.Errorf("the resident view shows %q (personal data, digest or code)", secret)
		}
	}
	// The page itself is served for any order id; it carries no data.
	if w := do(h, "GET", "/r/"+o.ID, "10.0.0.1", nil, ""); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "/assets/resident.js") {
		t.Errorf("GET /r/{order} = %d", w.Code)
	}
	f.noSecretsLogged(code, f.opsKey)
}

// TestResidentQR: while the order waits in the locker, the resident view carries the
// expiry and tag of the page's device-bound QR code, valid for protocol.QRTagLifetime
// and verifiable with the site key; before loading it carries none.
func TestResidentQR(t *testing.T) {
	f := newFixture(t)
	h := f.handler(web.Options{})
	o, code := f.order("r-qr", cloud.Parcel{Size: protocol.SizeM, Zone: protocol.ZoneChilled})
	get := func() web.ResidentOrder {
		w := do(h, "GET", "/r/api/orders/"+o.ID, "10.0.0.9", map[string]string{web.CodeHeader: code}, "")
		if w.Code != http.StatusOK {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		return decodeTo[web.ResidentOrder](t, w)
	}
	if v := get(); v.QR != nil {
		t.Errorf("before loading the view has a QR %+v, want none (the kiosk could not open it)", v.QR)
	}
	o = f.load(o)
	v := get()
	if v.QR == nil {
		t.Fatal("a loaded order's view has no QR")
	}
	if want := f.clock.Now().Add(protocol.QRTagLifetime).Unix(); v.QR.Expires != want {
		t.Errorf("qr.expires = %d, want now + %v = %d", v.QR.Expires, protocol.QRTagLifetime, want)
	}
	key, err := f.svc.SiteKey(f.ctx, site)
	if err != nil {
		t.Fatal(err)
	}
	if want := protocol.QRTag(key, site, code, time.Unix(v.QR.Expires, 0)); v.QR.Tag != want {
		t.Errorf("qr.tag = %q, want protocol.QRTag(site key, %s, code, expires) = %q", v.QR.Tag, site, want)
	}
	f.clock.Add(time.Minute)
	if later := get(); later.QR == nil || later.QR.Expires != v.QR.Expires+60 || later.QR.Tag == v.QR.Tag {
		t.Errorf("a minute later the QR is %+v, want a fresh one expiring 60 s later than %+v", later.QR, v.QR)
	}
	f.noSecretsLogged(code, v.QR.Tag)
}

func TestResidentWrongCode(t *testing.T) {
	f := newFixture(t)
	h := f.handler(web.Options{})
	o, code := f.order("r-2", cloud.Parcel{Size: protocol.SizeS, Zone: protocol.ZoneAmbient})
	wrong := "00000000"
	if wrong == code {
		wrong = "11111111"
	}
	cases := []struct {
		name, path string
		hdr        map[string]string
	}{
		{"wrong code", "/r/api/orders/" + o.ID, map[string]string{web.CodeHeader: wrong}},
		{"no code", "/r/api/orders/" + o.ID, nil},
		{"short code", "/r/api/orders/" + o.ID, map[string]string{web.CodeHeader: code[:7]}},
		{"right code of another order id", "/r/api/orders/ord_000000000000000000000000", map[string]string{web.CodeHeader: code}},
		{"bad order id", "/r/api/orders/..%2f..%2fetc", map[string]string{web.CodeHeader: code}},
	}
	var bodies []string
	for i, c := range cases {
		// A different address each time, so that the per-address limit stays out of it.
		w := do(h, "GET", c.path, "10.0.1."+string(rune('1'+i)), c.hdr, "")
		if w.Code != http.StatusForbidden || errCode(t, w) != "wrong_code" {
			t.Errorf("%s: status %d %s, want 403 wrong_code", c.name, w.Code, w.Body)
		}
		bodies = append(bodies, w.Body.String())
	}
	// An unknown order and a wrong code answer alike, so ids cannot be probed.
	if bodies[0] != bodies[3] {
		t.Errorf("unknown order answers %q, wrong code %q: they must not differ", bodies[3], bodies[0])
	}
	if w := do(h, "POST", "/r/api/orders/"+o.ID+"/extend", "10.0.2.1", map[string]string{web.CodeHeader: wrong}, ""); w.Code != http.StatusForbidden {
		t.Errorf("extend with a wrong code: %d, want 403", w.Code)
	}
	f.noSecretsLogged(code, wrong)
}

func TestResidentRateLimit(t *testing.T) {
	f := newFixture(t)
	reg := prometheus.NewPedanticRegistry()
	h := f.handler(web.Options{Registry: reg, Resident: web.ResidentPolicy{MaxFailuresPerOrder: 5, MaxFailuresPerIP: 8, Window: 15 * time.Minute}})
	o, code := f.order("r-3", cloud.Parcel{Size: protocol.SizeS, Zone: protocol.ZoneAmbient})
	wrong := map[string]string{web.CodeHeader: "99999999"}
	if code == "99999999" {
		wrong[web.CodeHeader] = "99999998"
	}
	right := map[string]string{web.CodeHeader: code}
	path := "/r/api/orders/" + o.ID

	// Per order: five wrong codes from five addresses lock the order for everyone.
	for i := range 5 {
		if w := do(h, "GET", path, "10.1.0."+string(rune('1'+i)), wrong, ""); w.Code != http.StatusForbidden {
			t.Fatalf("wrong code %d: status %d, want 403", i+1, w.Code)
		}
	}
	w := do(h, "GET", path, "10.1.1.1", right, "")
	if w.Code != http.StatusTooManyRequests || errCode(t, w) != "locked" {
		t.Fatalf("right code on a locked order: %d %s, want 429 locked", w.Code, w.Body)
	}
	if ra := w.Header().Get("Retry-After"); ra != "900" {
		t.Errorf("Retry-After = %q, want 900", ra)
	}
	f.clock.Add(14 * time.Minute)
	if w := do(h, "GET", path, "10.1.1.1", right, ""); w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "60" {
		t.Errorf("a minute before the window ends: %d Retry-After %q, want 429 and 60", w.Code, w.Header().Get("Retry-After"))
	}
	f.clock.Add(time.Minute)
	if w := do(h, "GET", path, "10.1.1.1", right, ""); w.Code != http.StatusOK {
		t.Fatalf("after the window: %d %s, want 200", w.Code, w.Body)
	}

	// Per address: guesses spread over many order ids lock the address, for every order.
	for i := range 8 {
		p := "/r/api/orders/ord_guess" + string(rune('a'+i))
		if w := do(h, "GET", p, "10.2.0.1", right, ""); w.Code != http.StatusForbidden {
			t.Fatalf("guess %d: %d, want 403", i, w.Code)
		}
	}
	if w := do(h, "GET", path, "10.2.0.1", right, ""); w.Code != http.StatusTooManyRequests {
		t.Errorf("locked address with the right code: %d, want 429", w.Code)
	}
	if w := do(h, "GET", path, "10.2.0.2", right, ""); w.Code != http.StatusOK {
		t.Errorf("another address: %d, want 200", w.Code)
	}
	if w := do(h, "POST", path+"/extend", "10.2.0.1", right, ""); w.Code != http.StatusTooManyRequests {
		t.Errorf("extend from a locked address: %d, want 429", w.Code)
	}
	for name, want := range map[string]float64{"larder_web_resident_code_failures_total": 13, "larder_web_resident_locked_total": 4} {
		if got := metric(t, reg, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

// metric reads the value of a counter or gauge without labels.
func metric(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			return m.Gauge.GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func TestResidentExtend(t *testing.T) {
	f := newFixture(t)
	h := f.handler(web.Options{Resident: web.ResidentPolicy{ExtendStep: 12 * time.Hour, MaxExtended: 24 * time.Hour}})
	amb, ambCode := f.order("r-4", cloud.Parcel{Size: protocol.SizeL, Zone: protocol.ZoneAmbient})
	chl, chlCode := f.order("r-5", cloud.Parcel{Size: protocol.SizeM, Zone: protocol.ZoneChilled})
	extend := func(o cloud.Order, code string) *httptest.ResponseRecorder {
		return do(h, "POST", "/r/api/orders/"+o.ID+"/extend", "10.3.0.1", map[string]string{web.CodeHeader: code}, "")
	}

	// Not loaded yet: nothing to extend.
	if w := extend(amb, ambCode); w.Code != http.StatusConflict || errCode(t, w) != "not_loaded" {
		t.Errorf("extend before loading: %d %s, want 409 not_loaded", w.Code, w.Body)
	}
	amb = f.load(amb)
	chl = f.load(chl)

	want := amb.ExpiresAt
	for i := range 2 {
		w := extend(amb, ambCode)
		if w.Code != http.StatusOK {
			t.Fatalf("extension %d: %d %s", i+1, w.Code, w.Body)
		}
		want = want.Add(12 * time.Hour)
		v := decodeTo[web.ResidentOrder](t, w)
		if !v.ExpiresAt.Equal(want) {
			t.Errorf("extension %d: expires_at %v, want %v", i+1, v.ExpiresAt, want)
		}
		got, _ := f.svc.GetOrder(f.ctx, f.ops, amb.ID)
		if !got.ExpiresAt.Equal(want) {
			t.Errorf("extension %d: the service has %v, want %v", i+1, got.ExpiresAt, want)
		}
		if i == 0 && (!v.Extend.Allowed || !v.Extend.Until.Equal(want.Add(12*time.Hour))) {
			t.Errorf("after one extension the offer is %+v, want another 12 h", v.Extend)
		}
		if i == 1 && (v.Extend.Allowed || v.Extend.Reason != "limit") {
			t.Errorf("after two extensions the offer is %+v, want refused: limit", v.Extend)
		}
	}
	if w := extend(amb, ambCode); w.Code != http.StatusConflict || errCode(t, w) != "limit" {
		t.Errorf("third extension: %d %s, want 409 limit", w.Code, w.Body)
	}

	// Chilled: the food-safety cap (24 h after loading) leaves no room.
	if w := extend(chl, chlCode); w.Code != http.StatusUnprocessableEntity || errCode(t, w) != "food_safety" {
		t.Errorf("chilled extension: %d %s, want 422 food_safety", w.Code, w.Body)
	}
	got, _ := f.svc.GetOrder(f.ctx, f.ops, chl.ID)
	if !got.ExpiresAt.Equal(chl.ExpiresAt) {
		t.Errorf("a refused extension moved the expiry to %v", got.ExpiresAt)
	}
	f.noSecretsLogged(ambCode, chlCode)
}

// sse reads server-sent events on a goroutine of its own, so that a test can wait for an
// event with a deadline, or check that none comes.
type sse struct {
	events chan event
	ended  chan error
}

type event struct{ name, data string }

func newSSE(body io.Reader) *sse {
	s := &sse{events: make(chan event, 64), ended: make(chan error, 1)}
	go func() {
		r := bufio.NewReader(body)
		var ev event
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				s.ended <- err
				return
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case line == "" && ev.name != "":
				s.events <- ev
				ev = event{}
			case strings.HasPrefix(line, "event: "):
				ev.name = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				ev.data += line[len("data: "):]
			}
		}
	}()
	return s
}

// within returns the next event named name if one comes within d.
func (s *sse) within(name string, d time.Duration) (event, bool, error) {
	deadline := time.After(d)
	for {
		select {
		case ev := <-s.events:
			if ev.name == name {
				return ev, true, nil
			}
		case err := <-s.ended:
			return event{}, false, err
		case <-deadline:
			return event{}, false, nil
		}
	}
}

// nextEvent returns the next event named name, within 10 s.
func (s *sse) nextEvent(t *testing.T, name string) event {
	t.Helper()
	ev, ok, err := s.within(name, 10*time.Second)
	if !ok {
		t.Fatalf("no %q event within 10 s (stream ended: %v)", name, err)
	}
	return ev
}

func login(t *testing.T, base, key string) *http.Cookie {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/ops/session", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNoContent {
		t.Fatalf("POST /ops/session: %d", res.StatusCode)
	}
	for _, c := range res.Cookies() {
		if c.Name == "larder_ops" {
			return c
		}
	}
	t.Fatal("no session cookie")
	return nil
}

func openStream(t *testing.T, url string, c *http.Cookie) (*http.Response, error) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	if c != nil {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	return http.DefaultClient.Do(req)
}

func TestStream(t *testing.T) {
	f := newFixture(t)
	reg := prometheus.NewPedanticRegistry()
	h := f.handler(web.Options{PollEvery: 20 * time.Millisecond, Registry: reg})
	srv := httptest.NewServer(h)
	defer srv.Close()
	o, _ := f.order("s-1", cloud.Parcel{Size: protocol.SizeM, Zone: protocol.ZoneChilled})
	f.load(o)

	// Sign-in: only ops and admin keys, and the cookie is fenced in.
	for _, c := range []struct {
		key  string
		want int
	}{{"", 401}, {"lk_nope" + strings.Repeat("0", 40), 401}, {f.driverKey, 403}, {f.platKey, 403}} {
		req, _ := http.NewRequest("POST", srv.URL+"/ops/session", nil)
		if c.key != "" {
			req.Header.Set("Authorization", "Bearer "+c.key)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != c.want || len(res.Cookies()) != 0 {
			t.Errorf("login with %.8q: %d with %d cookies, want %d and none", c.key, res.StatusCode, len(res.Cookies()), c.want)
		}
	}
	cookie := login(t, srv.URL, f.opsKey)
	if !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Path != "/ops/stream" || cookie.MaxAge <= 0 {
		t.Errorf("cookie = %+v, want HttpOnly, SameSite=Strict, Path=/ops/stream, a Max-Age", cookie)
	}

	// Without the cookie, or with a forged one, no stream.
	for _, c := range []*http.Cookie{nil, {Name: "larder_ops", Value: "lk_forged"}} {
		res, err := openStream(t, srv.URL+"/ops/stream", c)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Errorf("stream with cookie %v: %d, want 401", c, res.StatusCode)
		}
	}

	res, err := openStream(t, srv.URL+"/ops/stream", cookie)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); res.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("stream: %d %q", res.StatusCode, ct)
	}
	s := newSSE(res.Body)
	var fe web.FleetEvent
	if err := json.Unmarshal([]byte(s.nextEvent(t, "fleet").data), &fe); err != nil {
		t.Fatal(err)
	}
	if len(fe.Changed) != 1 || fe.Changed[0].ID != site || !fe.Changed[0].Online || fe.Totals[cloud.SiteOnline] != 1 {
		t.Fatalf("first fleet event = %+v, want %s online", fe, site)
	}
	cs := fe.Changed[0].Compartments
	if cs[cloud.CompOccupied] != 1 || cs[cloud.CompFree] != 5 {
		t.Errorf("compartments = %v, want 1 occupied and 5 free", cs)
	}

	// An unchanged fleet is not sent again (ten polls pass); a change is pushed.
	if ev, ok, _ := s.within("fleet", 200*time.Millisecond); ok {
		t.Errorf("an unchanged fleet was sent again: %s", ev.data)
	}
	if _, err := f.svc.SetInService(f.ctx, f.ops, site, 6, false, "door sticks"); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(s.nextEvent(t, "fleet").data), &fe); err != nil {
		t.Fatal(err)
	}
	if got := fe.Changed[0].Compartments[cloud.CompOutOfService]; got != 1 {
		t.Errorf("after taking door 6 out of service the stream says %d out of service, want 1", got)
	}
	if err := f.svc.ApplyStatus(f.ctx, site, f.clock.Now(), protocol.Status{Online: false}); err != nil {
		t.Fatal(err)
	}
	fe = web.FleetEvent{}
	if err := json.Unmarshal([]byte(s.nextEvent(t, "fleet").data), &fe); err != nil {
		t.Fatal(err)
	}
	if len(fe.Changed) != 1 || fe.Changed[0].Online || fe.Changed[0].State != cloud.SiteOffline || fe.Totals[cloud.SiteOffline] != 1 {
		t.Errorf("the stream still says online after the edge's Last Will: %+v", fe)
	}

	// One site's stream carries its compartment grid.
	res2, err := openStream(t, srv.URL+"/ops/stream?site="+site, cookie)
	if err != nil {
		t.Fatal(err)
	}
	defer res2.Body.Close()
	s2 := newSSE(res2.Body)
	var d cloud.SiteDetail
	if err := json.Unmarshal([]byte(s2.nextEvent(t, "site").data), &d); err != nil {
		t.Fatal(err)
	}
	states := map[int]cloud.CompState{}
	for _, c := range d.CompartmentList {
		states[c.Number] = c.State
	}
	if states[o.Slots[0].Compartment] != cloud.CompOccupied || states[6] != cloud.CompOutOfService || states[3] != cloud.CompFree {
		t.Errorf("site grid = %v", states)
	}
	if got := metric(t, reg, "larder_web_stream_clients"); got != 2 {
		t.Errorf("larder_web_stream_clients = %v with two streams open", got)
	}
	if res, _ := openStream(t, srv.URL+"/ops/stream?site=nowhere", cookie); res.StatusCode != http.StatusNotFound {
		t.Errorf("stream of an unknown site: %d, want 404", res.StatusCode)
	}

	// Close ends open streams (so that http.Server.Shutdown does not wait on them).
	h.Close()
	select {
	case <-s2.ended:
	case <-time.After(5 * time.Second):
		t.Error("Close did not end the stream")
	}
	f.noSecretsLogged(f.opsKey)
}

// backlog is a behavioural fake of the notification outbox's ops view.
type backlog struct {
	dead     []notify.Notification
	requeued []string
}

func (b *backlog) Stats(context.Context) (notify.Stats, error) {
	return notify.Stats{Pending: 3, Delivered: 10, Dead: len(b.dead)}, nil
}

func (b *backlog) DeadLetters(_ context.Context, limit int) ([]notify.Notification, error) {
	return b.dead[:min(limit, len(b.dead))], nil
}

func (b *backlog) Requeue(_ context.Context, id string, _ time.Time) error {
	for i, n := range b.dead {
		if n.ID == id {
			b.requeued = append(b.requeued, id)
			b.dead = append(b.dead[:i], b.dead[i+1:]...)
			return nil
		}
	}
	return notify.ErrNotFound
}

func TestBacklog(t *testing.T) {
	f := newFixture(t)
	bl := &backlog{dead: []notify.Notification{{ID: "ord_1/loaded/sms", Kind: notify.KindLoaded, Channel: notify.ChannelSMS,
		Target: "+8613800138000", Order: "ord_1", Site: site, Data: json.RawMessage(`{"code":"12345678"}`),
		State: notify.StateDead, Attempts: 8, LastError: "gateway: 500", Created: t0}}}
	h := f.handler(web.Options{Backlog: bl})
	auth := map[string]string{"Authorization": "Bearer " + f.opsKey}

	w := do(h, "GET", "/ops/api/backlog", "10.4.0.1", auth, "")
	if w.Code != http.StatusOK {
		t.Fatalf("backlog: %d %s", w.Code, w.Body)
	}
	v := decodeTo[web.BacklogView](t, w)
	if v.Stats.Pending != 3 || len(v.Dead) != 1 || v.Dead[0].ID != "ord_1/loaded/sms" || v.Dead[0].Attempts != 8 {
		t.Errorf("backlog = %+v", v)
	}
	if strings.Contains(w.Body.String(), "13800138000") || strings.Contains(w.Body.String(), "12345678") {
		t.Errorf("the backlog shows a phone number or a code: %s", w.Body)
	}
	if w := do(h, "GET", "/ops/api/backlog", "10.4.0.1", map[string]string{"Authorization": "Bearer " + f.driverKey}, ""); w.Code != http.StatusForbidden {
		t.Errorf("backlog with a driver key: %d, want 403", w.Code)
	}
	if w := do(h, "GET", "/ops/api/backlog", "10.4.0.1", nil, ""); w.Code != http.StatusUnauthorized || w.Header().Get("WWW-Authenticate") == "" {
		t.Errorf("backlog without a key: %d, want 401 with WWW-Authenticate", w.Code)
	}
	if w := do(h, "POST", "/ops/api/backlog/requeue", "10.4.0.1", auth, `{"id":"nope"}`); w.Code != http.StatusNotFound {
		t.Errorf("requeue unknown: %d, want 404", w.Code)
	}
	if w := do(h, "POST", "/ops/api/backlog/requeue", "10.4.0.1", auth, `{"id":"ord_1/loaded/sms"}`); w.Code != http.StatusNoContent {
		t.Errorf("requeue: %d %s, want 204", w.Code, w.Body)
	}
	if len(bl.requeued) != 1 {
		t.Errorf("requeued = %v", bl.requeued)
	}

	// Without an outbox, the section is absent and the stream carries no backlog.
	h2 := f.handler(web.Options{})
	if w := do(h2, "GET", "/ops/api/backlog", "10.4.0.1", auth, ""); w.Code != http.StatusNotFound {
		t.Errorf("backlog without an outbox: %d, want 404", w.Code)
	}
}

// reassigner is a behavioural fake of the missing service method: it moves the slot to
// the next door number.
type reassigner struct {
	got []string
	err error
}

func (r *reassigner) ReassignSlot(_ context.Context, p cloud.Principal, order string, n int, reason string) (cloud.Order, error) {
	if r.err != nil {
		return cloud.Order{}, r.err
	}
	r.got = append(r.got, string(p.Role)+":"+p.Subject+":"+order+":"+reason)
	return cloud.Order{ID: order, State: cloud.StateAssigned, Slots: []cloud.Slot{{Compartment: n + 1, Generation: 2}}}, nil
}

func TestProblem(t *testing.T) {
	f := newFixture(t)
	drv := map[string]string{"Authorization": "Bearer " + f.driverKey, "Content-Type": "application/json"}
	path := "/driver/api/orders/ord_x/problem"

	// A service without ReassignSlot: the endpoint says so.
	bare := web.New(struct{ web.Service }{f.svc}, web.Options{Now: f.clock.Now})
	defer bare.Close()
	if w := do(bare, "POST", path, "10.5.0.1", drv, `{"compartment":3,"reason":"jammed"}`); w.Code != http.StatusNotImplemented {
		t.Errorf("without a reassigner: %d, want 501", w.Code)
	}

	// The real service: door jammed, the order moves to the other free ambient L door and
	// the jammed one goes out of service.
	o, _ := f.order("p-1", cloud.Parcel{Size: protocol.SizeL, Zone: protocol.ZoneAmbient})
	from := o.Slots[0].Compartment
	h := f.handler(web.Options{})
	w := do(h, "POST", "/driver/api/orders/"+o.ID+"/problem", "10.5.0.1", drv, fmt.Sprintf(`{"compartment":%d,"reason":"jammed"}`, from))
	if w.Code != http.StatusOK {
		t.Fatalf("real reassignment: %d %s", w.Code, w.Body)
	}
	var moved struct {
		Slots []struct{ Compartment int } `json:"slots"`
	}
	json.Unmarshal(w.Body.Bytes(), &moved)
	got, _ := f.svc.GetOrder(f.ctx, f.ops, o.ID)
	if len(moved.Slots) != 1 || moved.Slots[0].Compartment == from || len(got.Slots) != 1 || got.Slots[0].Compartment != moved.Slots[0].Compartment {
		t.Errorf("answer %+v, service %+v: want one slot, moved off door %d", moved.Slots, got.Slots, from)
	}
	d, _ := f.svc.GetSite(f.ctx, f.ops, site)
	for _, c := range d.CompartmentList {
		if c.Number == from && c.State != cloud.CompOutOfService {
			t.Errorf("the jammed door %d is %s, want out of service", from, c.State)
		}
	}

	re := &reassigner{}
	h = f.handler(web.Options{Reassigner: re})
	for _, c := range []struct {
		name string
		hdr  map[string]string
		body string
		want int
	}{
		{"no key", nil, `{"compartment":3,"reason":"jammed"}`, 401},
		{"platform key", map[string]string{"Authorization": "Bearer " + f.platKey}, `{"compartment":3,"reason":"jammed"}`, 403},
		{"unknown reason", drv, `{"compartment":3,"reason":"haunted"}`, 400},
		{"no door", drv, `{"reason":"jammed"}`, 400},
		{"unknown field", drv, `{"compartment":3,"reason":"jammed","force":true}`, 400},
		{"not JSON", drv, `compartment=3`, 400},
		{"ok", drv, `{"compartment":3,"reason":"jammed"}`, 200},
	} {
		if w := do(h, "POST", path, "10.5.0.1", c.hdr, c.body); w.Code != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, w.Code, w.Body, c.want)
		}
	}
	if len(re.got) != 1 || re.got[0] != "driver:dave:ord_x:jammed" {
		t.Errorf("reassigner saw %v", re.got)
	}
	re.err = &cloud.Error{Code: cloud.ENoCapacity, Message: "no other door free"}
	if w := do(h, "POST", path, "10.5.0.1", drv, `{"compartment":3,"reason":"occupied"}`); w.Code != http.StatusConflict || errCode(t, w) != "no_capacity" {
		t.Errorf("no capacity: %d %s, want 409 no_capacity", w.Code, w.Body)
	}
	re.err = errors.New("disk on fire")
	if w := do(h, "POST", path, "10.5.0.1", drv, `{"compartment":3,"reason":"occupied"}`); w.Code != 500 || strings.Contains(w.Body.String(), "fire") {
		t.Errorf("internal error: %d %s, want 500 without the cause", w.Code, w.Body)
	}
	f.noSecretsLogged(f.driverKey, f.platKey)
}

// TestDomainErrorStatuses: the pages answer each domain code with the /v1 API's status
// (one table, cloud/http), including the codes a copied table once lacked.
func TestDomainErrorStatuses(t *testing.T) {
	f := newFixture(t)
	re := &reassigner{}
	h := f.handler(web.Options{Reassigner: re})
	drv := map[string]string{"Authorization": "Bearer " + f.driverKey, "Content-Type": "application/json"}
	for _, c := range []struct {
		code cloud.Code
		want int
	}{
		{cloud.EIdempotency, http.StatusUnprocessableEntity},
		{cloud.EInternal, http.StatusInternalServerError},
		{cloud.EInvalid, http.StatusBadRequest},
		{cloud.ENotFound, http.StatusNotFound},
		{cloud.EConflict, http.StatusConflict},
		{cloud.ENoCapacity, http.StatusConflict},
		{cloud.EForbidden, http.StatusForbidden},
		{cloud.EFoodSafety, http.StatusUnprocessableEntity},
		{cloud.EUnavailable, http.StatusServiceUnavailable},
		{cloud.ETooLarge, http.StatusRequestEntityTooLarge},
		{cloud.EAlreadyIssued, http.StatusConflict},
	} {
		re.err = &cloud.Error{Code: c.code, Message: "cause: disk on fire"}
		w := do(h, "POST", "/driver/api/orders/ord_x/problem", "10.5.0.1", drv, `{"compartment":3,"reason":"jammed"}`)
		if w.Code != c.want || errCode(t, w) != string(c.code) {
			t.Errorf("%s: %d %s, want %d %s", c.code, w.Code, w.Body, c.want, c.code)
		}
		if api := lhttp.StatusOf(c.code); w.Code != api {
			t.Errorf("%s: the page answers %d, the /v1 API %d", c.code, w.Code, api)
		}
		if c.code == cloud.EInternal && strings.Contains(w.Body.String(), "fire") {
			t.Errorf("internal error shows its message: %s", w.Body)
		}
	}
}

func TestPagesAndAssets(t *testing.T) {
	f := newFixture(t)
	h := f.handler(web.Options{})
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) }) // the /v1 API
	h.Mount(mux)
	for _, c := range []struct {
		path, ctype string
		want        int
	}{
		{"/ops/", "text/html", 200},
		{"/driver/", "text/html", 200},
		{"/r/ord_abc", "text/html", 200},
		{"/assets/style.css", "text/css", 200},
		{"/assets/common.js", "text/javascript", 200},
		{"/assets/ops.js", "text/javascript", 200},
		{"/assets/driver.js", "text/javascript", 200},
		{"/assets/qr.js", "text/javascript", 200},
		{"/assets/resident.js", "text/javascript", 200},
		{"/assets/", "application/json", 404},
		{"/assets/nope.js", "", 404},
		{"/ops/nope", "application/json", 404},
		{"/v1/sites", "", http.StatusTeapot},
	} {
		w := do(mux, "GET", c.path, "10.6.0.1", nil, "")
		if w.Code != c.want || !strings.HasPrefix(w.Header().Get("Content-Type"), c.ctype) {
			t.Errorf("GET %s: %d %q, want %d %q", c.path, w.Code, w.Header().Get("Content-Type"), c.want, c.ctype)
		}
		if c.want != http.StatusTeapot && !strings.Contains(w.Header().Get("Content-Security-Policy"), "script-src 'self'") {
			t.Errorf("GET %s: no CSP", c.path)
		}
	}
	// No page loads anything from elsewhere or runs inline script.
	for _, p := range []string{"ops.html", "driver.html", "resident.html"} {
		b := do(mux, "GET", map[string]string{"ops.html": "/ops/", "driver.html": "/driver/", "resident.html": "/r/x"}[p], "10.6.0.1", nil, "").Body.String()
		if strings.Contains(b, "http://") || strings.Contains(b, "https://") || strings.Contains(b, "<script>") || strings.Contains(b, "style=") {
			t.Errorf("%s references an external asset, inline script or inline style", p)
		}
	}
}

func TestResidentLink(t *testing.T) {
	if got, want := web.ResidentLink("https://larder.example.org/", "ord_1", "12345678"), "https://larder.example.org/r/ord_1#c=12345678"; got != want {
		t.Errorf("ResidentLink = %q, want %q", got, want)
	}
}

// FuzzResident sends arbitrary order ids and code headers: never a 5xx, and never a 200
// unless the id and code are the real ones.
func FuzzResident(f *testing.F) {
	fx := newFixture(f)
	o, code := fx.order("fz-1", cloud.Parcel{Size: protocol.SizeS, Zone: protocol.ZoneAmbient})
	// Limits out of the way: this is about what one request can do.
	h := fx.handler(web.Options{Resident: web.ResidentPolicy{MaxFailuresPerOrder: 1 << 30, MaxFailuresPerIP: 1 << 30}})
	f.Add(o.ID, code)
	f.Add(o.ID, code[:7]+"x")
	f.Add(o.ID, " "+code)
	f.Add("", "")
	f.Add("ord_0000", "1234567\x00")
	f.Add("../../etc", "99999999")
	f.Add(strings.ToUpper(o.ID), code)
	f.Add(o.ID, "１２３４５６７８")
	f.Fuzz(func(t *testing.T, id, c string) {
		r := httptest.NewRequest("GET", "/r/api/orders/"+url.PathEscape(id), nil)
		r.Header[web.CodeHeader] = []string{c}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("id %q code %q: %d %s", id, c, w.Code, w.Body)
		}
		if w.Code == http.StatusOK && !(id == o.ID && c == code) {
			t.Fatalf("id %q code %q opened the order", id, c)
		}
		if id == o.ID && c == code && w.Code != http.StatusOK {
			t.Fatalf("the right code got %d", w.Code)
		}
	})
}

// FuzzProblemBody sends arbitrary bodies to the driver's problem endpoint: only 4xx
// answers (the order does not exist), never a 5xx or a reassignment.
func FuzzProblemBody(f *testing.F) {
	fx := newFixture(f)
	h := fx.handler(web.Options{})
	for _, s := range []string{`{"compartment":3,"reason":"jammed"}`, `{"compartment":-1,"reason":"jammed"}`,
		`{"compartment":1e9,"reason":"x"}`, `{"compartment":3,"reason":"jammed"}{}`, `[]`, `null`, "", `{"compartment":"3"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest("POST", "/driver/api/orders/ord_none/problem", strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+fx.driverKey)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code < 400 || w.Code >= 500 {
			t.Fatalf("body %q: %d %s", body, w.Code, w.Body)
		}
	})
}

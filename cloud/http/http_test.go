package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/cloud/bolt"
	lhttp "github.com/larder-lockers/larder/cloud/http"
	"github.com/larder-lockers/larder/protocol"
)

type fixture struct {
	t      *testing.T
	svc    *cloud.Service
	srv    *httptest.Server
	reg    *prometheus.Registry // what the API registered, scraped by metrics()
	keys   map[string]string    // role name → plain key
	now    time.Time
	health error
	seq    uint64
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "c.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, keys: map[string]string{}, now: time.Now().UTC().Truncate(time.Second)}
	f.svc = cloud.New(cloud.Options{Store: db, Now: func() time.Time { return f.now }})
	f.reg = prometheus.NewRegistry()
	api := lhttp.New(lhttp.Options{Service: f.svc, Registry: f.reg, MQTTURL: "tcp://127.0.0.1:1883", MaxBody: 4096,
		Health: func(context.Context) error { return f.health }})
	f.srv = httptest.NewServer(api)
	t.Cleanup(func() {
		f.srv.Close()
		if err := db.Check(); err != nil {
			t.Errorf("consistency: %v", err)
		}
		db.Close()
	})
	ctx := context.Background()
	root := cloud.Principal{Role: cloud.RoleAdmin, Subject: "root"}
	for name, in := range map[string]cloud.KeyInput{
		"admin": {Role: cloud.RoleAdmin, Subject: "root"}, "ops": {Role: cloud.RoleOps, Subject: "olga"},
		"platform": {Role: cloud.RolePlatform, Subject: "veggie"}, "rival": {Role: cloud.RolePlatform, Subject: "rival"},
		"driver": {Role: cloud.RoleDriver, Subject: "dave"},
	} {
		_, plain, err := f.svc.CreateKey(ctx, root, in)
		if err != nil {
			t.Fatal(err)
		}
		f.keys[name] = plain
	}
	return f
}

// metrics scrapes the registry the API registered into, as cloudd serves it on its
// metrics address (the API itself answers 404 for /metrics).
func (f *fixture) metrics() resp {
	f.t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(f.reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		f.t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	return resp{status: rec.Code, header: rec.Header(), raw: rec.Body.String()}
}

type resp struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (r resp) errCode() string {
	e, _ := r.body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

func (r resp) errField() string {
	e, _ := r.body["error"].(map[string]any)
	s, _ := e["field"].(string)
	return s
}

func (f *fixture) do(method, path, who string, body any, hdr ...string) resp {
	f.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, _ := json.Marshal(b)
		rd = bytes.NewReader(data)
	}
	req, _ := http.NewRequest(method, f.srv.URL+path, rd)
	if who != "" {
		req.Header.Set("Authorization", "Bearer "+f.keys[who])
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	out := resp{status: res.StatusCode, header: res.Header, raw: string(data)}
	json.Unmarshal(data, &out.body)
	if res.StatusCode >= 400 && strings.HasPrefix(path, "/v1") && out.errCode() == "" {
		f.t.Errorf("%s %s: %d without the error shape: %s", method, path, res.StatusCode, data)
	}
	if res.StatusCode >= 500 && path != "/healthz" {
		f.t.Errorf("%s %s: server error %d: %s", method, path, res.StatusCode, data)
	}
	return out
}

func (f *fixture) want(r resp, status int, code string) {
	f.t.Helper()
	if r.status != status || (code != "" && r.errCode() != code) {
		f.t.Fatalf("got %d %q, want %d %q: %s", r.status, r.errCode(), status, code, r.raw)
	}
}

// site creates a site with compartments through the API and a birth.
func (f *fixture) site(id string, lat float64, comps ...protocol.Compartment) {
	f.t.Helper()
	f.want(f.do("POST", "/v1/sites", "admin", map[string]any{"id": id, "name": "Yard " + id, "location": map[string]float64{"lat": lat, "lon": 0}}), 201, "")
	if len(comps) == 0 {
		for i := 1; i <= 4; i++ {
			comps = append(comps, protocol.Compartment{Number: i, Size: protocol.SizeM, Zone: []protocol.Zone{protocol.ZoneChilled, protocol.ZoneAmbient}[i%2], HeightCM: 40 * i, Lock: i})
		}
	}
	if _, err := f.svc.ApplyBirth(context.Background(), id, f.now, protocol.Birth{Software: "t", Compartments: comps}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) order(site, ext string, zone protocol.Zone) map[string]any {
	return map[string]any{"external_id": ext, "site": site,
		"recipient": map[string]any{"phone": "+86 138 0013 8000", "name": "Wang", "flat": "2-301"},
		"parcels":   []map[string]any{{"size": "S", "zone": zone}},
		"window":    map[string]any{"start": f.now.Add(time.Hour).Format(time.RFC3339), "end": f.now.Add(3 * time.Hour).Format(time.RFC3339)}}
}

func (f *fixture) event(site string, ev protocol.Event) {
	f.t.Helper()
	f.seq++
	if _, err := f.svc.ApplyEdgeEvent(context.Background(), site, protocol.Message{Header: protocol.Header{ID: protocol.NewID(), Seq: f.seq, Time: f.now},
		Type: protocol.TypeEvent, Body: ev}); err != nil {
		f.t.Fatal(err)
	}
}

func TestHealthMetricsAndDocs(t *testing.T) {
	f := newFixture(t)
	f.site("y1", 51.5)
	if r := f.do("GET", "/healthz", "", nil); r.status != 200 {
		t.Fatalf("healthz %d", r.status)
	}
	f.health = errors.New("broker down")
	if r := f.do("GET", "/healthz", "", nil); r.status != 503 || !strings.Contains(r.raw, "broker down") {
		t.Fatalf("unhealthy healthz %d %q", r.status, r.raw)
	}
	f.do("GET", "/v1/sites", "ops", nil)
	// Fleet data is not the API's to serve: cloudd serves it on metrics_addr.
	f.want(f.do("GET", "/metrics", "", nil), 404, "not_found")
	m := f.metrics()
	for _, want := range []string{`larder_site_up{site="y1"} 1`, `larder_compartments{site="y1",state="free",zone="chilled"} 2`, `larder_site_desired_version{site="y1"}`,
		`larder_http_request_duration_seconds_count{code="2xx",method="GET",route="/v1/sites"}`, "larder_unlock_failures_total", "larder_code_lockouts_total"} {
		if !strings.Contains(m.raw, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if r := f.do("GET", "/v1/openapi.json", "", nil); r.status != 200 || r.body["openapi"] != "3.1.0" {
		t.Fatalf("openapi %d", r.status)
	}
	f.want(f.do("GET", "/v1/nope", "ops", nil), 404, "not_found")
	f.want(f.do("PUT", "/v1/orders", "ops", nil), 405, "method_not_allowed")
}

func TestAuthentication(t *testing.T) {
	f := newFixture(t)
	r := f.do("GET", "/v1/sites", "", nil)
	f.want(r, 401, "unauthorized")
	if r.header.Get("WWW-Authenticate") == "" {
		t.Error("no WWW-Authenticate")
	}
	req, _ := http.NewRequest("GET", f.srv.URL+"/v1/sites", nil)
	req.Header.Set("Authorization", "bearer "+f.keys["ops"])
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != 200 {
		t.Errorf("lower-case scheme: %v %v", res.StatusCode, err)
	}
	req.Header.Set("Authorization", "Basic "+f.keys["ops"])
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != 401 {
		t.Errorf("basic scheme: %v %v", res.StatusCode, err)
	}
	f.keys["bogus"] = "lk_0000000000000000000000000000000000000000"
	f.want(f.do("GET", "/v1/sites", "bogus", nil), 401, "unauthorized")
	f.keys["bogus"] = "not a key"
	f.want(f.do("GET", "/v1/sites", "bogus", nil), 401, "unauthorized")
}

func TestKeys(t *testing.T) {
	f := newFixture(t)
	r := f.do("POST", "/v1/keys", "admin", map[string]any{"role": "platform", "subject": "greens"})
	f.want(r, 201, "")
	key, _ := r.body["key"].(string)
	if !strings.HasPrefix(key, "lk_") {
		t.Fatalf("key %q", key)
	}
	f.keys["greens"] = key
	f.want(f.do("GET", "/v1/orders", "greens", nil), 200, "")
	f.want(f.do("POST", "/v1/keys", "ops", map[string]any{"role": "admin", "subject": "me"}), 403, "forbidden")
	f.want(f.do("POST", "/v1/keys", "admin", map[string]any{"role": "king", "subject": "me"}), 400, "invalid")
	r = f.do("POST", "/v1/keys", "admin", map[string]any{"role": "ops", "subject": "me", "extra": 1})
	if f.want(r, 400, "invalid"); r.errField() != "extra" {
		t.Errorf("field %q", r.errField())
	}
	l := f.do("GET", "/v1/keys", "admin", nil)
	f.want(l, 200, "")
	if strings.Contains(l.raw, "digest") || strings.Contains(l.raw, key) {
		t.Error("key list leaks secrets")
	}
	id, _ := r.body["id"].(string)
	_ = id
	keys, _ := l.body["keys"].([]any)
	var greensID string
	for _, k := range keys {
		m := k.(map[string]any)
		if m["subject"] == "greens" {
			greensID = m["id"].(string)
		}
	}
	f.want(f.do("DELETE", "/v1/keys/"+greensID, "admin", nil), 204, "")
	f.want(f.do("DELETE", "/v1/keys/"+greensID, "admin", nil), 404, "not_found")
	f.want(f.do("GET", "/v1/orders", "greens", nil), 401, "unauthorized")
}

func TestSites(t *testing.T) {
	f := newFixture(t)
	f.site("y1", 51.5)
	f.want(f.do("POST", "/v1/sites", "admin", map[string]any{"id": "y1"}), 409, "conflict")
	r := f.do("POST", "/v1/sites", "admin", map[string]any{"id": "Bad Id"})
	if f.want(r, 400, "invalid"); r.errField() != "id" {
		t.Errorf("field %q", r.errField())
	}
	f.want(f.do("POST", "/v1/sites", "ops", map[string]any{"id": "y2"}), 403, "forbidden")
	l := f.do("GET", "/v1/sites", "ops", nil)
	f.want(l, 200, "")
	if strings.Contains(l.raw, `"key"`) {
		t.Error("site list leaks the site key")
	}
	f.want(f.do("GET", "/v1/sites", "platform", nil), 403, "forbidden")
	d := f.do("GET", "/v1/sites/y1", "ops", nil)
	f.want(d, 200, "")
	if list, _ := d.body["compartment_list"].([]any); len(list) != 4 {
		t.Errorf("compartments %v", d.body["compartment_list"])
	}
	f.want(f.do("GET", "/v1/sites/none", "ops", nil), 404, "not_found")
	f.want(f.do("PATCH", "/v1/sites/y1", "ops", map[string]any{"name": "Sunny yard", "location": map[string]float64{"lat": 51.6, "lon": 0.1}}), 200, "")
	r = f.do("PATCH", "/v1/sites/y1", "ops", map[string]any{"location": map[string]float64{"lat": 91, "lon": 0}})
	if f.want(r, 400, "invalid"); r.errField() != "location.lat" {
		t.Errorf("field %q", r.errField())
	}
	r = f.do("PATCH", "/v1/sites/y1", "ops", map[string]any{"name": 7})
	if f.want(r, 400, "invalid"); r.errField() != "name" {
		t.Errorf("field %q", r.errField())
	}
	f.want(f.do("PATCH", "/v1/sites/nope", "ops", map[string]any{"name": "x"}), 404, "not_found")
	f.want(f.do("POST", "/v1/sites/y1/provision", "ops", nil), 403, "forbidden")
	p := f.do("POST", "/v1/sites/y1/provision", "admin", nil)
	f.want(p, 200, "")
	if k, _ := p.body["site_key"].(string); len(k) != 64 || p.body["mqtt_url"] != "tcp://127.0.0.1:1883" || p.header.Get("Cache-Control") != "no-store" {
		t.Errorf("provisioning %v", p.body)
	}
	f.want(f.do("POST", "/v1/sites/y1/provision", "admin", nil), 409, "already_issued")
	f.want(f.do("POST", "/v1/sites/zz/provision", "admin", nil), 404, "not_found")
}

func TestOpsCommandsAlarmsAudit(t *testing.T) {
	f := newFixture(t)
	f.site("y1", 51.5)
	r := f.do("POST", "/v1/sites/y1/compartments/1/open", "ops", map[string]any{"reason": "resident called, verified"})
	f.want(r, 202, "")
	id, _ := r.body["id"].(string)
	if r.body["state"] != "QUEUED" {
		t.Errorf("state %v", r.body["state"])
	}
	r = f.do("POST", "/v1/sites/y1/compartments/1/open", "ops", map[string]any{})
	if f.want(r, 400, "invalid"); r.errField() != "reason" {
		t.Errorf("field %q", r.errField())
	}
	f.want(f.do("POST", "/v1/sites/y1/compartments/x/open", "ops", map[string]any{"reason": "r"}), 400, "invalid")
	f.want(f.do("POST", "/v1/sites/y1/compartments/99/open", "ops", map[string]any{"reason": "r"}), 404, "not_found")
	f.want(f.do("POST", "/v1/sites/y1/compartments/1/open", "platform", map[string]any{"reason": "r"}), 403, "forbidden")
	f.want(f.do("GET", "/v1/commands/"+id, "ops", nil), 200, "")
	f.want(f.do("GET", "/v1/commands/cmd_nope", "ops", nil), 404, "not_found")
	f.want(f.do("GET", "/v1/commands/"+id, "driver", nil), 404, "not_found")
	f.want(f.do("POST", "/v1/sites/y1/compartments/2/out-of-service", "ops", map[string]any{"reason": "bent door"}), 202, "")
	f.want(f.do("POST", "/v1/sites/y1/compartments/2/out-of-service", "ops", map[string]any{}), 400, "invalid")
	f.want(f.do("POST", "/v1/sites/y1/compartments/2/in-service", "ops", map[string]any{}), 202, "")
	f.want(f.do("POST", "/v1/sites/y1/compartments/2/in-service", "driver", map[string]any{}), 403, "forbidden")

	f.event("y1", protocol.Event{Kind: protocol.EventDoorLeftOpen, Credential: protocol.CredNone, Compartment: 3, Seconds: 90})
	d := f.do("GET", "/v1/sites/y1", "ops", nil)
	alarms, _ := d.body["alarms"].([]any)
	if len(alarms) != 1 {
		t.Fatalf("alarms %v", d.body["alarms"])
	}
	aid := alarms[0].(map[string]any)["id"].(string)
	f.want(f.do("POST", "/v1/sites/y1/alarms/"+aid+"/resolve", "ops", nil), 204, "")
	f.want(f.do("POST", "/v1/sites/y1/alarms/"+aid+"/resolve", "ops", nil), 404, "not_found")

	a := f.do("GET", "/v1/audit?site=y1&limit=50", "ops", nil)
	f.want(a, 200, "")
	if !strings.Contains(a.raw, `"remote_open"`) || !strings.Contains(a.raw, "resident called") {
		t.Errorf("audit %s", a.raw)
	}
	r = f.do("GET", "/v1/audit?since=yesterday", "ops", nil)
	if f.want(r, 400, "invalid"); r.errField() != "since" {
		t.Errorf("field %q", r.errField())
	}
	f.want(f.do("GET", "/v1/audit?limit=0", "ops", nil), 400, "invalid")
	f.want(f.do("GET", "/v1/audit?limit=5000", "ops", nil), 400, "invalid")
	f.want(f.do("GET", "/v1/audit", "platform", nil), 403, "forbidden")
}

func TestDrivers(t *testing.T) {
	f := newFixture(t)
	f.site("y1", 51.5)
	o := f.do("POST", "/v1/orders", "platform", f.order("y1", "e1", protocol.ZoneChilled), "Idempotency-Key", "k1")
	f.want(o, 201, "")
	order := o.body["order"].(map[string]any)
	id := order["id"].(string)
	comp := int(order["slots"].([]any)[0].(map[string]any)["compartment"].(float64))
	m := f.do("GET", "/v1/sites/y1/manifest", "driver", nil)
	f.want(m, 200, "")
	// The phone's groups, not "138" alone, which random ids and times may hold by chance.
	if strings.Contains(m.raw, "0013 8000") || strings.Contains(m.raw, "13800138000") || strings.Contains(m.raw, "Wang") {
		t.Error("manifest leaks personal data")
	}
	if orders, _ := m.body["orders"].([]any); len(orders) != 1 {
		t.Fatalf("manifest %s", m.raw)
	}
	f.want(f.do("GET", "/v1/sites/none/manifest", "driver", nil), 404, "not_found")
	f.want(f.do("GET", "/v1/sites/y1/manifest", "platform", nil), 403, "forbidden")
	c := f.do("POST", "/v1/sites/y1/loading-credentials", "driver", nil)
	f.want(c, 201, "")
	if cred, _ := c.body["credential"].(string); len(cred) != 10 {
		t.Errorf("credential %q", cred)
	}
	f.want(f.do("POST", "/v1/sites/y1/loading-credentials", "ops", nil), 403, "forbidden")
	f.want(f.do("POST", "/v1/sites/none/loading-credentials", "driver", nil), 404, "not_found")
	r := f.do("POST", "/v1/orders/"+id+"/open", "driver", map[string]any{"compartment": comp})
	f.want(r, 202, "")
	if r.body["purpose"] != "loading" {
		t.Errorf("command %v", r.body)
	}
	r = f.do("POST", "/v1/orders/"+id+"/open", "driver", map[string]any{"compartment": comp + 1})
	if f.want(r, 400, "invalid"); r.errField() != "compartment" {
		t.Errorf("field %q", r.errField())
	}
	f.want(f.do("POST", "/v1/orders/"+id+"/open", "driver", map[string]any{}), 400, "invalid")
	f.want(f.do("POST", "/v1/orders/ord_nope/open", "driver", map[string]any{"compartment": 1}), 404, "not_found")
	f.want(f.do("POST", "/v1/orders/"+id+"/open", "platform", map[string]any{"compartment": comp}), 403, "forbidden")
	f.event("y1", protocol.Event{Kind: protocol.EventLoaded, Credential: protocol.CredDriver, Order: id, Compartment: comp})
	f.want(f.do("POST", "/v1/orders/"+id+"/open", "driver", map[string]any{"compartment": comp}), 409, "conflict")
}

func TestOrders(t *testing.T) {
	f := newFixture(t)
	f.site("y1", 51.5)
	f.site("y2", 51.51)
	body := f.order("y1", "e1", protocol.ZoneChilled)
	body["code_delivery"] = "platform"
	r := f.do("POST", "/v1/orders", "platform", body, "Idempotency-Key", "k1")
	f.want(r, 201, "")
	pickup, _ := r.body["pickup"].(map[string]any)
	if code, _ := pickup["code"].(string); len(code) != 8 || pickup["qr"] != "larder:v1:y1:"+code {
		t.Fatalf("pickup %v", pickup)
	}
	if r.header.Get("Location") == "" || r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("headers %v", r.header)
	}
	order := r.body["order"].(map[string]any)
	id := order["id"].(string)
	if order["recipient"].(map[string]any)["phone"] != "****8000" || strings.Contains(r.raw, "13800") {
		t.Errorf("phone not masked: %v", order["recipient"])
	}
	// Idempotency: same key and body → same order, no code.
	again := f.do("POST", "/v1/orders", "platform", body, "Idempotency-Key", "k1")
	f.want(again, 200, "")
	if again.body["order"].(map[string]any)["id"] != id || again.body["pickup"] != nil || again.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replay %s", again.raw)
	}
	body2 := f.order("y1", "e2", protocol.ZoneChilled)
	f.want(f.do("POST", "/v1/orders", "platform", body2, "Idempotency-Key", "k1"), 422, "idempotency_mismatch")
	f.want(f.do("POST", "/v1/orders", "platform", body2), 400, "invalid")
	f.want(f.do("POST", "/v1/orders", "platform", body, "Idempotency-Key", "k-other"), 409, "conflict")
	// Capacity: y1 has 2 chilled M; the second takes the last, the third is refused with y2 nearby.
	f.want(f.do("POST", "/v1/orders", "platform", body2, "Idempotency-Key", "k2"), 201, "")
	full := f.do("POST", "/v1/orders", "platform", f.order("y1", "e3", protocol.ZoneChilled), "Idempotency-Key", "k3")
	f.want(full, 409, "no_capacity")
	near := full.body["error"].(map[string]any)["nearby_sites"].([]any)
	if len(near) != 1 || near[0].(map[string]any)["site"] != "y2" {
		t.Errorf("nearby %v", near)
	}
	// Bad input, each with its field.
	bad := []struct {
		body  string
		field string
	}{
		{`{"external_id":"x","site":"y1","recipient":{"phone":"+8613800138000"},"parcels":[{"size":"S","zone":"chilled"}],"window":{"start":"soon","end":"later"}}`, "window.start"},
		{`{"external_id":"x","site":"y1","recipient":{"phone":"+8613800138000"},"parcels":[{"size":"S","zone":"chilled","weight":3}]}`, "weight"},
		{`{"external_id":5}`, "external_id"},
		{`{"external_id":"x"`, "body"},
		{`[]`, "body"},
		{``, "body"},
		{`{} {}`, "body"},
		{`{"external_id":"x","site":"y1","recipient":{"phone":"+8613800138000"},"parcels":[{"size":"XXL","zone":"chilled"}],"window":{"start":"2030-01-01T10:00:00Z","end":"2030-01-01T11:00:00Z"}}`, "parcels[0].size"},
	}
	for _, b := range bad {
		r := f.do("POST", "/v1/orders", "platform", b.body, "Idempotency-Key", "kb")
		if r.status != 400 || r.errField() != b.field {
			t.Errorf("%s: %d field %q, want 400 %q", b.body, r.status, r.errField(), b.field)
		}
	}
	big := `{"external_id":"` + strings.Repeat("x", 5000) + `"}`
	f.want(f.do("POST", "/v1/orders", "platform", big, "Idempotency-Key", "kb"), 413, "too_large")
	r = f.do("POST", "/v1/orders", "platform", body, "Idempotency-Key", "kb", "Content-Type", "text/plain")
	if f.want(r, 400, "invalid"); r.errField() != "Content-Type" {
		t.Errorf("field %q", r.errField())
	}
	f.want(f.do("POST", "/v1/orders", "driver", body, "Idempotency-Key", "kd"), 403, "forbidden")
	f.want(f.do("POST", "/v1/orders", "platform", f.order("nowhere", "e9", protocol.ZoneChilled), "Idempotency-Key", "k9"), 404, "not_found")

	// Reading: owner yes, rival no, ops yes.
	f.want(f.do("GET", "/v1/orders/"+id, "platform", nil), 200, "")
	f.want(f.do("GET", "/v1/orders/"+id, "rival", nil), 404, "not_found")
	f.want(f.do("GET", "/v1/orders/"+id, "ops", nil), 200, "")
	f.want(f.do("GET", "/v1/orders/"+id, "driver", nil), 403, "forbidden")
	l := f.do("GET", "/v1/orders?site=y1&state=assigned&limit=10", "platform", nil)
	if f.want(l, 200, ""); len(l.body["orders"].([]any)) != 2 {
		t.Errorf("list %s", l.raw)
	}
	if rl := f.do("GET", "/v1/orders", "rival", nil); len(rl.body["orders"].([]any)) != 0 {
		t.Errorf("rival sees orders: %s", rl.raw)
	}
	f.want(f.do("GET", "/v1/orders?state=lost", "platform", nil), 400, "invalid")
	f.want(f.do("GET", "/v1/orders?limit=-1", "platform", nil), 400, "invalid")
	f.want(f.do("GET", "/v1/orders", "driver", nil), 403, "forbidden")

	// Extend: chilled before loading may move within 24 h of the window's end.
	f.want(f.do("POST", "/v1/orders/"+id+"/extend", "platform", map[string]any{"seconds": 3600}), 422, "food_safety")
	f.want(f.do("POST", "/v1/orders/"+id+"/extend", "platform", map[string]any{"seconds": 0}), 400, "invalid")
	f.want(f.do("POST", "/v1/orders/"+id+"/extend", "rival", map[string]any{"seconds": 3600}), 404, "not_found")
	amb := f.do("POST", "/v1/orders", "platform", f.order("y1", "e4", protocol.ZoneAmbient), "Idempotency-Key", "k4")
	f.want(amb, 201, "")
	ambID := amb.body["order"].(map[string]any)["id"].(string)
	f.want(f.do("POST", "/v1/orders/"+ambID+"/extend", "platform", map[string]any{"seconds": 3600}), 200, "")

	// Reissue: the platform that delivers codes gets the new one.
	re := f.do("POST", "/v1/orders/"+id+"/reissue-code", "platform", nil)
	f.want(re, 200, "")
	if re.body["pickup"] == nil {
		t.Error("no pickup in reissue")
	}
	f.want(f.do("POST", "/v1/orders/"+id+"/reissue-code", "rival", nil), 404, "not_found")

	// Cancel.
	f.want(f.do("POST", "/v1/orders/"+id+"/cancel", "rival", map[string]any{}), 404, "not_found")
	c := f.do("POST", "/v1/orders/"+id+"/cancel", "platform", map[string]any{"reason": "customer"})
	if f.want(c, 200, ""); c.body["state"] != "cancelled" {
		t.Errorf("cancel %s", c.raw)
	}
	f.want(f.do("POST", "/v1/orders/"+id+"/cancel", "platform", map[string]any{}), 409, "conflict")
	f.want(f.do("POST", "/v1/orders/"+id+"/reissue-code", "platform", nil), 409, "conflict")
	f.want(f.do("POST", "/v1/orders/"+id+"/extend", "platform", map[string]any{"seconds": 60}), 409, "conflict")
	f.want(f.do("POST", "/v1/orders/ord_nope/cancel", "ops", map[string]any{}), 404, "not_found")
}

// TestAuthorisationMatrix checks every route against every role: the roles the
// documentation allows get past authorisation (any status but 401/403), the others 403.
func TestAuthorisationMatrix(t *testing.T) {
	f := newFixture(t)
	f.site("y1", 51.5)
	o := f.do("POST", "/v1/orders", "platform", f.order("y1", "e1", protocol.ZoneChilled), "Idempotency-Key", "k1")
	id := o.body["order"].(map[string]any)["id"].(string)
	routes := []struct {
		method, path string
		body         any
		allowed      string // roles, space-separated
	}{
		{"GET", "/v1/keys", nil, "admin"},
		{"POST", "/v1/sites", map[string]any{"id": "new"}, "admin"},
		{"GET", "/v1/sites", nil, "ops admin"},
		{"GET", "/v1/sites/y1", nil, "ops admin"},
		{"PATCH", "/v1/sites/y1", map[string]any{}, "ops admin"},
		{"GET", "/v1/sites/y1/manifest", nil, "driver ops admin"},
		{"POST", "/v1/sites/y1/loading-credentials", nil, "driver"},
		{"POST", "/v1/sites/y1/compartments/4/out-of-service", map[string]any{"reason": "x"}, "ops admin"},
		{"GET", "/v1/audit", nil, "ops admin"},
		{"GET", "/v1/reports/orders?from=2026-03-01T00:00:00Z&to=2026-03-02T00:00:00Z", nil, "platform rival ops admin"},
		{"GET", "/v1/reports/remote-opens?from=2026-03-01T00:00:00Z&to=2026-03-02T00:00:00Z", nil, "ops admin"},
		{"GET", "/v1/orders", nil, "platform rival ops admin"},
		{"GET", "/v1/orders/" + id, nil, "platform ops admin"},
	}
	for _, rt := range routes {
		for _, who := range []string{"admin", "ops", "platform", "rival", "driver"} {
			r := f.do(rt.method, rt.path, who, rt.body)
			allowed := strings.Contains(" "+rt.allowed+" ", " "+who+" ")
			denied := r.status == 403 || (who == "rival" && r.status == 404)
			if allowed == denied {
				t.Errorf("%s %s as %s: %d (allowed=%v)", rt.method, rt.path, who, r.status, allowed)
			}
		}
	}
}

func TestWebhookSetting(t *testing.T) {
	f := newFixture(t)
	r := f.do("PUT", "/v1/platforms/veggie/webhook", "platform", map[string]any{"url": "https://veggie.example/hooks"})
	f.want(r, 200, "")
	if sec, _ := r.body["secret"].(string); len(sec) != 64 || r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("webhook %v", r.body)
	}
	url, secret, err := f.svc.Webhook(context.Background(), "veggie")
	if err != nil || url != "https://veggie.example/hooks" || len(secret) != 32 {
		t.Errorf("stored %q %d %v", url, len(secret), err)
	}
	f.want(f.do("PUT", "/v1/platforms/veggie/webhook", "rival", map[string]any{"url": "https://evil.example/"}), 403, "forbidden")
	f.want(f.do("PUT", "/v1/platforms/veggie/webhook", "ops", map[string]any{"url": "https://x.example/"}), 403, "forbidden")
	f.want(f.do("PUT", "/v1/platforms/rival/webhook", "admin", map[string]any{"url": "https://rival.example/h"}), 200, "")
	r = f.do("PUT", "/v1/platforms/veggie/webhook", "platform", map[string]any{"url": "ftp://x"})
	if f.want(r, 400, "invalid"); r.errField() != "url" {
		t.Errorf("field %q", r.errField())
	}
	f.want(f.do("PUT", "/v1/platforms/veggie/webhook", "platform", map[string]any{}), 400, "invalid")
}

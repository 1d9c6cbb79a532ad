package web_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/cloud/web"
	"github.com/larder-lockers/larder/protocol"
)

// The site's detail shows the desired version the edge reported applied in its latest
// telemetry, not only the one of its last connect (birth).
func TestEdgeVersionFromTelemetry(t *testing.T) {
	f := newFixture(t)
	before, err := f.svc.GetSite(f.ctx, f.ops, site)
	if err != nil {
		t.Fatal(err)
	}
	f.order("v-1", cloud.Parcel{Size: protocol.SizeM, Zone: protocol.ZoneChilled}) // bumps the desired version
	d, _ := f.svc.GetSite(f.ctx, f.ops, site)
	if d.DesiredVersion <= before.EdgeDesiredVersion {
		t.Fatalf("desired version %d did not move past the edge's %d", d.DesiredVersion, before.EdgeDesiredVersion)
	}
	if err := f.svc.ApplyTelemetry(f.ctx, site, f.clock.Now(), protocol.Telemetry{DesiredVersion: d.DesiredVersion}); err != nil {
		t.Fatal(err)
	}
	for _, get := range []func() (cloud.SiteSummary, error){
		func() (cloud.SiteSummary, error) {
			d, err := f.svc.GetSite(f.ctx, f.ops, site)
			return d.SiteSummary, err
		},
		func() (cloud.SiteSummary, error) { s, err := f.svc.ListSites(f.ctx, f.ops); return s[0], err },
	} {
		got, err := get()
		if err != nil {
			t.Fatal(err)
		}
		if got.EdgeDesiredVersion != d.DesiredVersion {
			t.Errorf("edge desired version %d after telemetry reported %d", got.EdgeDesiredVersion, d.DesiredVersion)
		}
	}
}

// Bad filters, limits, cursors and site groupings are refused with a clear error.
func TestFleetBadInput(t *testing.T) {
	f := newFixture(t)
	h := f.handler(web.Options{})
	for _, q := range []string{"state=bogus", "zone=hot", "alarm=door_opened", "tag=Not+A+Tag", "sort=random",
		"limit=0", "limit=501", "limit=x", "cursor=***", "problems=yes"} {
		req := httptest.NewRequest("GET", "/ops/api/fleet?"+q, nil)
		req.Header.Set("Authorization", "Bearer "+f.opsKey)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusBadRequest {
			t.Errorf("GET /ops/api/fleet?%s: %d %s, want 400", q, w.Code, w.Body)
		}
	}
	req := httptest.NewRequest("GET", "/ops/api/fleet", nil)
	req.Header.Set("Authorization", "Bearer "+f.driverKey)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusForbidden {
		t.Errorf("a driver key reads the fleet: %d, want 403", w.Code)
	}
	long := string(make([]byte, 101))
	for _, in := range []cloud.SiteInput{
		{Tags: &[]string{"ok", "ok"}}, {Tags: &[]string{"Upper"}}, {Tags: &[]string{""}}, {District: &long},
	} {
		if _, err := f.svc.UpdateSite(f.ctx, f.ops, site, in); cloud.ErrorCode(err) != cloud.EInvalid {
			t.Errorf("UpdateSite(%+v) = %v, want invalid", in, err)
		}
	}
	tags, district := []string{"pilot", "elderly"}, "Xuhui"
	st, err := f.svc.UpdateSite(f.ctx, f.ops, site, cloud.SiteInput{Tags: &tags, District: &district})
	if err != nil || st.District != "Xuhui" || len(st.Tags) != 2 || st.Tags[0] != "elderly" {
		t.Errorf("UpdateSite with tags and district = %+v, %v", st, err)
	}
}

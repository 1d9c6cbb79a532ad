package web_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/cloud/web"
	"github.com/larder-lockers/larder/protocol"
)

// BenchmarkResidentOrder measures GET /r/api/orders/{order} (code check, order and site
// reads, JSON) against its baseline in the same loop: the bare service reads it makes
// (GetOrder, SiteKey, GetSite). The ratio is the cost of the page API on top of the
// domain; make bench runs it.
func BenchmarkResidentOrder(b *testing.B) {
	f := newFixture(b)
	o, code := f.order("bench-1", cloud.Parcel{Size: protocol.SizeM, Zone: protocol.ZoneChilled})
	h := f.handler(web.Options{})
	req := httptest.NewRequest("GET", "/r/api/orders/"+o.ID, nil)
	req.Header.Set(web.CodeHeader, code)
	var base, page time.Duration
	b.ResetTimer()
	for b.Loop() {
		t := time.Now()
		if _, err := f.svc.GetOrder(f.ctx, f.ops, o.ID); err != nil {
			b.Fatal(err)
		}
		if _, err := f.svc.SiteKey(f.ctx, site); err != nil {
			b.Fatal(err)
		}
		if _, err := f.svc.GetSite(f.ctx, f.ops, site); err != nil {
			b.Fatal(err)
		}
		base += time.Since(t)

		t = time.Now()
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		page += time.Since(t)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
	b.ReportMetric(float64(page.Microseconds())/float64(b.N), "page-µs/op")
	b.ReportMetric(float64(base.Microseconds())/float64(b.N), "baseline-µs/op")
	b.ReportMetric(float64(page)/float64(base), "page/baseline")
}

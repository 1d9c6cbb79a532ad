package web_test

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/cloud/bolt"
	"github.com/larder-lockers/larder/cloud/web"
	"github.com/larder-lockers/larder/protocol"
)

// Two replicas behind a load balancer: two handlers over two Services on one store. The
// wrong-code limits count the failures of both, so spreading guesses over replicas gains
// nothing.
func TestResidentRateLimitAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "cloud.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c := &clock{t: t0}
	a := cloud.New(cloud.Options{Store: db, Now: c.Now})
	b := cloud.New(cloud.Options{Store: db, Now: c.Now})
	admin := cloud.Principal{Role: cloud.RoleAdmin, Subject: "root"}
	if _, err := a.CreateSite(ctx, admin, cloud.SiteInput{ID: site}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Provision(ctx, admin, site); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ApplyBirth(ctx, site, c.Now(), protocol.Birth{Software: "edge/test", Compartments: bank}); err != nil {
		t.Fatal(err)
	}
	rc, err := a.CreateOrder(ctx, cloud.Principal{Role: cloud.RolePlatform, Subject: "veggie"}, "idem-1", cloud.OrderRequest{ExternalID: "x-1", Site: site,
		Recipient: cloud.Recipient{Phone: "+86 138 0013 8000", Name: "Wang Fang", Flat: "3-502"},
		Parcels:   []cloud.Parcel{{Size: protocol.SizeS, Zone: protocol.ZoneAmbient}},
		Window:    cloud.Window{Start: c.Now(), End: c.Now().Add(2 * time.Hour)}, CodeDelivery: cloud.DeliverByPlatform})
	if err != nil {
		t.Fatal(err)
	}
	pol := web.ResidentPolicy{MaxFailuresPerOrder: 5, MaxFailuresPerIP: 8, Window: 15 * time.Minute}
	ha, hb := web.New(a, web.Options{Now: c.Now, Resident: pol}), web.New(b, web.Options{Now: c.Now, Resident: pol})
	t.Cleanup(ha.Close)
	t.Cleanup(hb.Close)
	wrong := map[string]string{web.CodeHeader: "99999999"}
	if rc.Code == "99999999" {
		wrong[web.CodeHeader] = "99999998"
	}
	right := map[string]string{web.CodeHeader: rc.Code}
	path := "/r/api/orders/" + rc.Order.ID

	// Per order: three wrong codes on one replica and two on the other lock the order on both.
	for i, h := range []http.Handler{ha, ha, ha, hb, hb} {
		if w := do(h, "GET", path, "10.1.0."+string(rune('1'+i)), wrong, ""); w.Code != http.StatusForbidden {
			t.Fatalf("wrong code %d: status %d, want 403", i+1, w.Code)
		}
	}
	for name, h := range map[string]http.Handler{"a": ha, "b": hb} {
		if w := do(h, "GET", path, "10.1.1.1", right, ""); w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "900" {
			t.Errorf("right code on replica %s of a locked order: %d Retry-After %q, want 429 and 900", name, w.Code, w.Header().Get("Retry-After"))
		}
	}
	// Per address, five minutes later: four guesses on each replica lock the address on
	// both, for 15 minutes from the first guess.
	c.Add(5 * time.Minute)
	for i := range 8 {
		h := []http.Handler{ha, hb}[i%2]
		if w := do(h, "GET", "/r/api/orders/ord_guess"+string(rune('a'+i)), "10.2.0.1", right, ""); w.Code != http.StatusForbidden {
			t.Fatalf("guess %d: %d, want 403", i, w.Code)
		}
	}
	c.Add(10 * time.Minute) // the order's window is over, the address's is not
	if w := do(hb, "GET", path, "10.3.0.1", right, ""); w.Code != http.StatusOK {
		t.Errorf("after the order's window: %d %s, want 200", w.Code, w.Body)
	}
	for name, h := range map[string]http.Handler{"a": ha, "b": hb} {
		if w := do(h, "GET", path, "10.2.0.1", right, ""); w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "300" {
			t.Errorf("the address that guessed on both replicas, on %s: %d Retry-After %q, want 429 and 300", name, w.Code, w.Header().Get("Retry-After"))
		}
	}
}

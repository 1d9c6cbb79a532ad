package pg_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/protocol"
)

// TestConcurrentOrdersManySites: 32 platforms' threads ordering at 25 sites at once over
// one store finish without an error other than a full site, and never book a
// compartment twice (CheckInvariants). Under SERIALIZABLE 26 of these 320 orders gave up
// after 10 attempts (predicate locks on the shared key index); see the package doc.
func TestConcurrentOrdersManySites(t *testing.T) {
	w := newWorld(t, time.Now())
	for i := range 25 {
		w.site(fmt.Sprintf("yard%d", i), 16)
	}
	var wg sync.WaitGroup
	errs := map[string]int{}
	var mu sync.Mutex
	start := time.Now()
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				now := w.clock.Now()
				_, err := w.svc.CreateOrder(w.ctx, w.plat, fmt.Sprintf("idem-%d-%d", g, i), cloud.OrderRequest{ExternalID: fmt.Sprintf("c%d-%d", g, i), Site: fmt.Sprintf("yard%d", (g*10+i)%25),
					Recipient: cloud.Recipient{Phone: "+44 20 7946 0958"}, Parcels: []cloud.Parcel{{Size: protocol.SizeS, Zone: protocol.ZoneChilled}},
					Window: cloud.Window{Start: now.Add(time.Hour), End: now.Add(3 * time.Hour)}})
				if err != nil {
					mu.Lock()
					errs[fmt.Sprint(err)]++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("320 orders in %v, %d retries", time.Since(start), w.store.Stats().Retries.Load())
	for e, n := range errs {
		if !strings.HasPrefix(e, "no_capacity") {
			t.Errorf("%d orders failed: %s", n, e)
		}
	}
	if v, err := cloud.CheckInvariants(w.ctx, w.store); err != nil || len(v) > 0 {
		t.Errorf("invariants: %v %v", v, err)
	}
}

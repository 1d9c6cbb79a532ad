package web_test

import (
	"fmt"
	"sync"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/protocol"
)

// seedFleet creates n sites besides the fixture's, through the service (concurrently:
// the store commits them in groups): site sNNNNN is "Court N" at "N Chestnut Road" in
// district-(N mod 12), tagged pilot when N is a multiple of 10, on a 100 × 100 grid of
// points 0.005° apart, provisioned with a 32-door bank and online. 10,000 take about
// 2.5 s here.
func (f *fixture) seedFleet(n int) {
	f.t.Helper()
	var comps []protocol.Compartment
	for i := 1; i <= 32; i++ {
		z := protocol.ZoneChilled
		if i > 24 {
			z = protocol.ZoneAmbient
		} else if i > 16 {
			z = protocol.ZoneFrozen
		}
		comps = append(comps, protocol.Compartment{Number: i, Size: protocol.SizeM, Zone: z, HeightCM: 40 + 10*(i%8), Board: i / 17, Lock: (i-1)%16 + 1})
	}
	ids := make(chan int)
	errs := make(chan error, 16)
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ids {
				id := fmt.Sprintf("s%05d", i)
				name := fmt.Sprintf("Court %d", i)
				district := fmt.Sprintf("district-%d", i%12)
				addr := fmt.Sprintf("%d Chestnut Road", i)
				tags := []string{}
				if i%10 == 0 {
					tags = append(tags, "pilot")
				}
				loc := cloud.Location{Lat: 31.0 + float64(i%100)*0.005, Lon: 121.2 + float64(i/100)*0.005}
				if _, err := f.svc.CreateSite(f.ctx, f.admin, cloud.SiteInput{ID: id, Name: &name, Address: &addr,
					District: &district, Tags: &tags, Location: &loc}); err != nil {
					errs <- err
					return
				}
				if _, err := f.svc.Provision(f.ctx, f.admin, id); err != nil {
					errs <- err
					return
				}
				if _, err := f.svc.ApplyBirth(f.ctx, id, f.clock.Now(), protocol.Birth{Software: "edge/test", Compartments: comps}); err != nil {
					errs <- err
					return
				}
				if err := f.svc.ApplyStatus(f.ctx, id, f.clock.Now(), protocol.Status{Online: true}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		select {
		case ids <- i:
		case err := <-errs:
			f.t.Fatal(err)
		}
	}
	close(ids)
	wg.Wait()
	select {
	case err := <-errs:
		f.t.Fatal(err)
	default:
	}
}

package cloud

import (
	"context"
	"fmt"
	"time"

	"github.com/larder-lockers/larder/protocol"
)

// SeedOrders writes n orders straight into the store, for the report benchmark: spread
// evenly over span from start, over sites and platforms, each of one chilled slot,
// picked up after a few hours (one in ten returned, with a cold-chain record). It skips
// the domain so that 100,000 orders take seconds; the reports read them as they would
// read orders the domain made.
func (s *Service) SeedOrders(ctx context.Context, n int, sites, platforms []string, start time.Time, span time.Duration) error {
	const batch = 5000
	for lo := 0; lo < n; lo += batch {
		err := s.store.Update(ctx, func(tx Tx) error {
			for i := lo; i < min(lo+batch, n); i++ {
				at := start.Add(span / time.Duration(n) * time.Duration(i)).UTC()
				o := Order{ID: sortableID("ord_", at), Platform: platforms[i%len(platforms)], Site: sites[i%len(sites)],
					ExternalID: fmt.Sprint(i), State: StatePickedUp, Zone: protocol.ZoneChilled,
					Parcels: []Parcel{{Size: protocol.SizeS, Zone: protocol.ZoneChilled}},
					Slots:   []Slot{{Compartment: 1 + i%32, Generation: uint64(i), Size: protocol.SizeS, Zone: protocol.ZoneChilled, Parcels: []int{0}, Loaded: true}},
					Created: at, Updated: at, LoadedAt: at.Add(time.Hour), ExpiresAt: at.Add(25 * time.Hour),
					ClosedAt: at.Add(time.Hour + time.Duration(i%600)*time.Minute), Delivery: DeliverByNotifier,
					Recipient:  Recipient{Phone: "+86 138 0013 8000", Name: "Li", Flat: "3-2-501"},
					CodeDigest: "0123456789abcdef0123456789abcdef", FactorDigest: "0123456789abcdef0123456789abcdef"}
				if i%10 == 0 {
					o.State = StateReturned
				}
				o.ColdChain = &ColdChain{Known: true, ColdChain: &protocol.ColdChain{From: o.LoadedAt, To: o.ClosedAt, LimitC: 8, AboveSeconds: float64(i % 90)}}
				if err := putJSON(tx, bOrders, o.ID, o); err != nil {
					return err
				}
				if err := tx.Put(bBySite, o.Site+"/"+o.ID, []byte{}); err != nil {
					return err
				}
				if err := tx.Put(bByPlat, o.Platform+"/"+o.ID, []byte{}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

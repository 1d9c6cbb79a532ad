package cloud

import (
	"context"
	"encoding/json"
	"time"

	"github.com/larder-lockers/larder/protocol"
)

// Desired state.
//
// Every change of a site's reservations or credentials bumps the site's DesiredVersion by
// one inside the transaction that makes it, and queues the delta (version, upserts,
// cancels) to be published after the commit. Because the store runs OnCommit hooks in
// commit order and the outbox delivers in order, an edge sees versions in order; a delta
// lost on the way (crash, broker outage) shows up as a gap and the edge asks for a full
// snapshot (DesiredSnapshot), which is built from the orders themselves.

// reservation is the edge's view of a live order.
func (s *Service) reservation(o *Order) protocol.Reservation {
	r := protocol.Reservation{
		Order:              o.ID,
		CodeDigest:         o.CodeDigest,
		SecondFactorDigest: o.FactorDigest,
		ExpiresAt:          o.ExpiresAt.UTC(),
		MaxExpiresAt:       s.pol.maxExpiry(o).UTC(),
		Zone:               o.Zone,
		BudgetSeconds:      int(s.pol.Budget[o.Zone] / time.Second),
		Accessible:         o.Accessible,
	}
	for _, sl := range o.Slots {
		r.Slots = append(r.Slots, protocol.Slot{Compartment: sl.Compartment, Generation: sl.Generation, Size: sl.Size})
	}
	return r
}

// publishDelta bumps site's desired version (the caller writes site back) and queues d
// after commit. A reservation whose code was invalidated is still sent (the edge keeps
// the order; only its code digest is dead).
func (s *Service) publishDelta(tx Tx, site *Site, d protocol.Desired) {
	site.DesiredVersion++
	d.Version = site.DesiredVersion
	d.Full = false
	id := site.ID
	tx.OnCommit(func() { s.queue(outItem{site: id, desired: &d}) })
}

// DesiredSnapshot returns the full desired state of a site: every live reservation and
// every unexpired loading credential, at the current version. The fleet adapter publishes
// it when an edge asks (DesiredGet) or is behind at birth.
func (s *Service) DesiredSnapshot(ctx context.Context, site string) (protocol.Desired, error) {
	var d protocol.Desired
	err := s.store.View(ctx, func(tx Tx) error {
		st, err := loadSite(tx, site)
		if err != nil {
			return err
		}
		d = protocol.Desired{Version: st.DesiredVersion, Full: true}
		orders, err := siteOrders(tx, site, true)
		if err != nil {
			return err
		}
		for i := range orders {
			d.Reservations = append(d.Reservations, s.reservation(&orders[i]))
		}
		now := s.now()
		return tx.Scan(bCreds, site+"/", func(_ string, v []byte) bool {
			var c Credential
			if json.Unmarshal(v, &c) == nil && c.ExpiresAt.After(now) {
				d.Credentials = append(d.Credentials, c.LoadingCredential)
			}
			return true
		})
	})
	if err != nil {
		return protocol.Desired{}, err
	}
	if d.Version == 0 {
		// Nothing was ever desired: version 1 is the empty state, so that an edge at 0
		// applies it.
		d.Version = 1
		err = s.store.Update(ctx, func(tx Tx) error {
			st, err := loadSite(tx, site)
			if err != nil {
				return err
			}
			if st.DesiredVersion == 0 {
				st.DesiredVersion = 1
				return putSite(tx, st)
			}
			d.Version = st.DesiredVersion
			return nil
		})
	}
	return d, err
}

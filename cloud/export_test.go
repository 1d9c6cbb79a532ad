package cloud

import (
	"context"
	"time"

	"github.com/larder-lockers/larder/protocol"
)

// Hooks for the black-box test of the lifecycle table (lifecycle_test.go).

// Row is one row of the lifecycle table as the test sees it. To is "" for a row that
// keeps the state; Guarded says the row applies only when its guard holds.
type Row struct {
	On      string
	From    []OrderState
	To      OrderState
	Ignore  bool
	Guarded bool
}

// LifecycleRows returns the table.
func LifecycleRows() []Row {
	var out []Row
	for _, r := range lifecycle {
		to := r.to
		if to == same || r.ignore {
			to = ""
		}
		out = append(out, Row{On: string(r.on), From: r.from, To: to, Ignore: r.ignore, Guarded: r.when != nil})
	}
	return out
}

// EdgeHappenings lists the happenings edge events dispatch to.
func EdgeHappenings() []string {
	var out []string
	for _, r := range routes {
		if r.on != "" {
			out = append(out, string(r.on))
		}
	}
	return out
}

// Particulars are what Happen passes with a happening.
type Particulars struct {
	Event       protocol.Event
	By          Principal
	Compartment int
	Reason      string
	Extend      time.Duration
	Redeliver   *RedeliverRequest
	Applied     uint64
}

// Happen applies happening on to order id in one transaction, straight through the
// table (no eviction before displaced), and saves the site as the service's callers do.
func (s *Service) Happen(ctx context.Context, id, on string, p Particulars) error {
	return s.store.Update(ctx, func(tx Tx) error {
		o, err := loadOrder(tx, id)
		if err != nil {
			return err
		}
		st, err := loadSite(tx, o.Site)
		if err != nil {
			return err
		}
		var batch []protocol.Reservation
		c := &step{on: happening(on), by: p.By, ev: p.Event, compartment: p.Compartment, reason: p.Reason,
			extend: p.Extend, batch: &batch, redeliver: p.Redeliver, applied: p.Applied}
		if err := s.apply(tx, st, o, c); err != nil {
			return err
		}
		if len(batch) > 0 {
			s.publishDelta(tx, st, protocol.Desired{Reservations: batch})
		}
		return putSite(tx, st)
	})
}

// HeldCode unseals the code held on order id ("" when none) and says which desired
// version it waits for, so that tests can look for it where it must not be.
func (s *Service) HeldCode(ctx context.Context, id string) (code string, version uint64, err error) {
	err = s.store.View(ctx, func(tx Tx) error {
		o, err := loadOrder(tx, id)
		if err != nil || o.HeldCode == nil {
			return err
		}
		version = o.HeldVersion
		code, err = s.openHeld(o)
		return err
	})
	return code, version, err
}

// CodeWaits counts the orders indexed as waiting for the edge to apply their held code.
func (s *Service) CodeWaits(ctx context.Context) (int, error) {
	var n int
	err := s.store.View(ctx, func(tx Tx) error {
		ids, err := codeWaits(tx, "")
		n = len(ids)
		return err
	})
	return n, err
}

// QueueDesired puts d for site on the fleet lane, as a commit's hook does.
func (s *Service) QueueDesired(site string, d protocol.Desired) {
	s.queue(outItem{site: site, desired: &d})
}

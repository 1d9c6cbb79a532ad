package cloud

import (
	"context"
	"unicode/utf8"
)

// Redelivery: the platform's decision about food a resident did not get as they should
// have. Larder does not decide: it records. The platform may send the food again
// (RedeliverOrder makes the replacement order) and say what it refunded (a field: Larder
// moves no money).

// RedeliverRequest is what a platform sends to redeliver an order.
type RedeliverRequest struct {
	// ExternalID is the platform's id of the replacement; empty means the original's
	// with "/redelivery" appended.
	ExternalID string `json:"external_id"`
	// Window is when the driver brings the replacement, as for a new order.
	Window Window `json:"window"`
	// Refund is what the platform refunded, if anything, recorded on the original order.
	Refund *Refund `json:"refund,omitempty"`
}

// validate checks the refund; the window and external id are checked as a new order's.
func (r RedeliverRequest) validate() error {
	rf := r.Refund
	if rf == nil {
		return nil
	}
	switch {
	case rf.AmountCents < 0:
		return Invalid("refund.amount_cents", "must not be negative")
	case !currency(rf.Currency):
		return Invalid("refund.currency", "want an ISO 4217 code such as CNY or EUR")
	case len(rf.Reference) > 128 || !printable(rf.Reference):
		return Invalid("refund.reference", "at most 128 printable characters")
	case utf8.RuneCountInString(rf.Note) > 200 || !printable(rf.Note):
		return Invalid("refund.note", "at most 200 printable characters")
	}
	return nil
}

func currency(s string) bool {
	if len(s) != 3 {
		return false
	}
	for _, r := range s {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}

// RedeliverOrder sends the food of order id again (the platform that owns it): for an
// order that was compromised (whether still in the locker, taken back or taken by the
// resident despite the warning), or that expired or was returned uncollected. The
// replacement is admitted like a new order (same recipient, site, parcels and code
// delivery, the request's window, normal assignment, a new code; order.created is sent
// with replaces) and linked both ways: the original's replaced_by, the replacement's
// replaces. The original keeps its state and records the refund, if the platform gives
// one. The audit log records the redelivery. The same idempotency key with the same
// request returns the same replacement (Replayed, without its code); a second
// redelivery of the same order under another key is EConflict.
func (s *Service) RedeliverOrder(ctx context.Context, p Principal, id, idemKey string, req RedeliverRequest) (OrderReceipt, error) {
	if err := require(p, RolePlatform); err != nil {
		return OrderReceipt{}, err
	}
	if idemKey == "" {
		return OrderReceipt{}, Invalid("Idempotency-Key", "required")
	}
	if len(idemKey) > 128 || !printable(idemKey) {
		return OrderReceipt{}, Invalid("Idempotency-Key", "at most 128 printable characters")
	}
	if err := req.validate(); err != nil {
		return OrderReceipt{}, err
	}
	req.Window.Start, req.Window.End = req.Window.Start.UTC(), req.Window.End.UTC()
	hash := requestHash(struct {
		Order string           `json:"order"`
		Req   RedeliverRequest `json:"req"`
	}{id, req})
	now := s.now()

	var rc OrderReceipt
	err := s.store.Update(ctx, func(tx Tx) error {
		rc = OrderReceipt{}
		if done, err := replay(tx, p, idemKey, hash, &rc); done || err != nil {
			return err
		}
		o, err := loadOwned(tx, p, id)
		if err != nil {
			return err
		}
		run := req
		if run.ExternalID == "" {
			run.ExternalID = o.ExternalID + "/redelivery"
		}
		// The replacement is checked as the platform's new order would be.
		as := OrderRequest{ExternalID: run.ExternalID, Site: o.Site, Recipient: o.Recipient, Accessible: o.Accessible,
			Parcels: o.Parcels, Window: run.Window, CodeDelivery: o.Delivery}
		if err := as.Validate(now, s.pol.MaxAhead); err != nil {
			return err
		}
		st, err := loadSite(tx, o.Site)
		if err != nil {
			return err
		}
		c := &step{on: onRedeliver, by: p, redeliver: &run}
		if err := s.apply(tx, st, o, c); err != nil {
			return err
		}
		if err := putIdem(tx, p, idemKey, idemRecord{Order: c.replacement.ID, Hash: hash}, now); err != nil {
			return err
		}
		if err := putSite(tx, st); err != nil {
			return err
		}
		rc = OrderReceipt{Order: *c.replacement}
		if c.toCaller {
			rc.Code, rc.QR = c.code, QRPayload(o.Site, c.code)
		}
		return nil
	})
	if err != nil {
		if ErrorCode(err) == ENoCapacity {
			s.stats.Refused.Add(1)
		}
		return OrderReceipt{}, internal("redeliver order", err)
	}
	if !rc.Replayed {
		s.stats.OrdersCreated.Add(1)
	}
	return rc, nil
}

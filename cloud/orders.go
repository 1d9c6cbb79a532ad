package cloud

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/larder-lockers/larder/protocol"
)

// Orders: the REST operations on orders, their validation, and the order records with
// their indexes. An operation that changes an order validates its input here, loads the
// order and its site once, and hands the change to the lifecycle table (lifecycle.go),
// which checks the state, runs the effects and saves the order.

// OrderRequest is what a platform sends to create an order.
type OrderRequest struct {
	ExternalID string    `json:"external_id"`
	Site       string    `json:"site"`
	Recipient  Recipient `json:"recipient"`
	Accessible bool      `json:"accessible"`
	Parcels    []Parcel  `json:"parcels"`
	Window     Window    `json:"window"`
	// CodeDelivery is who gives the resident the code; empty means the notifier (SMS).
	CodeDelivery CodeDelivery `json:"code_delivery,omitempty"`
}

// MaxParcels bounds one order.
const MaxParcels = 20

// Validate reports the first bad field of r at time now.
func (r OrderRequest) Validate(now time.Time, maxAhead time.Duration) error {
	switch {
	case r.ExternalID == "":
		return Invalid("external_id", "required")
	case len(r.ExternalID) > 128 || !printable(r.ExternalID):
		return Invalid("external_id", "at most 128 printable characters")
	case r.Site == "":
		return Invalid("site", "required")
	case !protocol.ValidSite(r.Site):
		return Invalid("site", "not a valid site id")
	case r.Recipient.Phone == "":
		return Invalid("recipient.phone", "required")
	case !validPhone(r.Recipient.Phone):
		return Invalid("recipient.phone", "want a phone number of 7 to 15 digits, optionally starting with +")
	case utf8.RuneCountInString(r.Recipient.Name) > 100 || !printable(r.Recipient.Name):
		return Invalid("recipient.name", "at most 100 printable characters")
	case utf8.RuneCountInString(r.Recipient.Flat) > 32 || !printable(r.Recipient.Flat):
		return Invalid("recipient.flat", "at most 32 printable characters")
	case len(r.Parcels) == 0:
		return Invalid("parcels", "at least one parcel")
	case len(r.Parcels) > MaxParcels:
		return Invalid("parcels", "at most %d parcels", MaxParcels)
	}
	for i, p := range r.Parcels {
		if !p.Size.Valid() {
			return Invalid(fmt.Sprintf("parcels[%d].size", i), "want S, M or L")
		}
		if !p.Zone.Valid() {
			return Invalid(fmt.Sprintf("parcels[%d].zone", i), "want frozen, chilled, cool or ambient")
		}
	}
	w := r.Window
	switch {
	case w.Start.IsZero():
		return Invalid("window.start", "required")
	case w.End.IsZero():
		return Invalid("window.end", "required")
	case !w.End.After(w.Start):
		return Invalid("window.end", "must be after window.start")
	case w.End.Sub(w.Start) > 24*time.Hour:
		return Invalid("window.end", "a window lasts at most 24 hours")
	case !w.End.After(now):
		return Invalid("window.end", "the window has already ended")
	case w.Start.After(now.Add(maxAhead)):
		return Invalid("window.start", "at most %s ahead", maxAhead)
	}
	switch r.CodeDelivery {
	case "", DeliverByNotifier, DeliverByPlatform:
	default:
		return Invalid("code_delivery", "want notifier or platform")
	}
	return nil
}

func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return false
		}
	}
	return true
}

// OrderReceipt is the answer to a create: the order and, when the platform delivers the
// code itself, the plain code and its QR payload, given this once.
type OrderReceipt struct {
	Order    Order
	Code     string
	QR       string
	Replayed bool
}

type idemRecord struct {
	Order string `json:"order"`
	Hash  string `json:"hash"`
}

// IdempotencyRetention is how long an idempotency key is remembered: a retry within it
// gets the order the key made (or EIdempotency for another request), and the sweep
// forgets the key some time after. A platform retries within minutes; keeping every key
// forever made the index of keys grow with every order ever made, and since keys are
// random (UUIDs) each new order wrote a random page of it, and more of them as the
// orders stored grew: a million keys fill some 57,000 leaf pages under 880 branch pages,
// so each order of a commit wrote about two pages of the index, against half a page
// with a thousand keys. A request retried after the retention still makes no second order: its
// external id is taken (EConflict names the order).
const IdempotencyRetention = 24 * time.Hour

// putIdem remembers idemKey of p for the order made by the request of hash, until the
// retention from now has passed (bIdemEnds).
func putIdem(tx Tx, p Principal, idemKey string, rec idemRecord, now time.Time) error {
	k := p.Subject + "/" + idemKey
	if err := putJSON(tx, bIdem, k, rec); err != nil {
		return err
	}
	return tx.Put(bIdemEnds, dueKey(now.Add(IdempotencyRetention), k), []byte{})
}

// forgetIdem drops the idempotency keys whose retention ended by now (the sweep), at
// most maxDropped at a time.
func forgetIdem(tx Tx, now time.Time) error {
	return dropEnded(tx, bIdemEnds, bIdem, dueKey(now, ""))
}

// requestHash is the digest of a request's canonical JSON, which an idempotency key is
// bound to.
func requestHash(req any) string {
	canon, _ := json.Marshal(req)
	sum := sha256.Sum256(canon)
	return hex.EncodeToString(sum[:])
}

// replay answers a request whose idempotency key was used before: with the order it
// made (done), or an error if the key was used for another request (hash).
func replay(tx Tx, p Principal, idemKey, hash string, rc *OrderReceipt) (done bool, err error) {
	var idem idemRecord
	ok, err := getJSON(tx, bIdem, p.Subject+"/"+idemKey, &idem)
	if err != nil || !ok {
		return false, err
	}
	if idem.Hash != hash {
		return false, &Error{Code: EIdempotency, Field: "Idempotency-Key", Message: "this idempotency key was used for another request"}
	}
	o, err := loadOrder(tx, idem.Order)
	if err != nil {
		return false, err
	}
	*rc = OrderReceipt{Order: *o, Replayed: true}
	return true, nil
}

// CreateOrder admits an order (platform): it checks capacity in the order's window,
// assigns compartments by the policy (cloud/assign), draws the code, and publishes the
// reservation with the code's digest. A platform that delivers codes itself gets the
// code in the receipt, once; otherwise the code is held sealed on the order (code.go)
// and the resident gets it by SMS with the arrival notice when the order is loaded.
// The same idempotency key with the same request returns the same order (Replayed,
// without the code, which is handed out once: a platform that lost it reissues); with
// another request it fails with EIdempotency. Keys are remembered for
// IdempotencyRetention.
func (s *Service) CreateOrder(ctx context.Context, p Principal, idemKey string, req OrderRequest) (OrderReceipt, error) {
	if err := require(p, RolePlatform); err != nil {
		return OrderReceipt{}, err
	}
	if idemKey == "" {
		return OrderReceipt{}, Invalid("Idempotency-Key", "required")
	}
	if len(idemKey) > 128 || !printable(idemKey) {
		return OrderReceipt{}, Invalid("Idempotency-Key", "at most 128 printable characters")
	}
	now := s.now()
	if err := req.Validate(now, s.pol.MaxAhead); err != nil {
		return OrderReceipt{}, err
	}
	if req.CodeDelivery == "" {
		req.CodeDelivery = DeliverByNotifier
	}
	req.Window.Start, req.Window.End = req.Window.Start.UTC(), req.Window.End.UTC()
	hash := requestHash(req)

	var rc OrderReceipt
	err := s.store.Update(ctx, func(tx Tx) error {
		rc = OrderReceipt{}
		if done, err := replay(tx, p, idemKey, hash, &rc); done || err != nil {
			return err
		}
		if id := tx.Get(bExtIDs, p.Subject+"/"+req.ExternalID); id != nil {
			return &Error{Code: EConflict, Field: "external_id", Message: "external_id is already used by order " + string(id)}
		}
		st, err := loadSite(tx, req.Site)
		if err != nil {
			return err
		}
		o := &Order{ID: sortableID("ord_", now), Platform: p.Subject, ExternalID: req.ExternalID, Site: st.ID,
			Recipient: req.Recipient, Accessible: req.Accessible, Parcels: req.Parcels, Window: req.Window,
			Delivery: req.CodeDelivery, State: stateNew, Zone: coldest(req.Parcels), Created: now.UTC(),
			RequestHash: hash}
		c := &step{on: onCreate, by: p}
		if err := s.apply(tx, st, o, c); err != nil {
			return err
		}
		if err := putIdem(tx, p, idemKey, idemRecord{Order: o.ID, Hash: hash}, now); err != nil {
			return err
		}
		if err := putSite(tx, st); err != nil {
			return err
		}
		rc = OrderReceipt{Order: *o}
		if c.toCaller {
			rc.Code, rc.QR = c.code, QRPayload(o.Site, c.code)
		}
		return nil
	})
	if err != nil {
		if ErrorCode(err) == ENoCapacity {
			s.stats.Refused.Add(1)
		}
		return OrderReceipt{}, internal("create order", err)
	}
	if !rc.Replayed {
		s.stats.OrdersCreated.Add(1)
	}
	return rc, nil
}

// change applies happening c to order id and its site in one transaction, and returns
// the order as saved. With owned, the order is loaded as p may see it (loadOwned);
// without, any order is (drivers handle every order of a site). The store may run the
// function more than once, so each run starts from a fresh copy of c.
func (s *Service) change(ctx context.Context, p Principal, id string, owned bool, c *step) (Order, error) {
	var out Order
	err := s.store.Update(ctx, func(tx Tx) error {
		load := loadOrder
		if owned {
			load = func(tx Tx, id string) (*Order, error) { return loadOwned(tx, p, id) }
		}
		o, err := load(tx, id)
		if err != nil {
			return err
		}
		st, err := loadSite(tx, o.Site)
		if err != nil {
			return err
		}
		run := *c
		if err := s.apply(tx, st, o, &run); err != nil {
			return err
		}
		*c = run
		out = *o
		return putSite(tx, st)
	})
	return out, err
}

// CancelOrder cancels an order that has not been loaded (platform owner, ops, admin).
func (s *Service) CancelOrder(ctx context.Context, p Principal, id, reason string) (Order, error) {
	if len(reason) > 200 {
		return Order{}, Invalid("reason", "at most 200 characters")
	}
	if reason == "" {
		reason = "cancelled by " + string(p.Role)
	}
	o, err := s.change(ctx, p, id, true, &step{on: onCancel, by: p, reason: reason})
	return o, internal("cancel order", err)
}

// ExtendOrder moves an order's expiry by d (platform owner, ops, admin), never beyond
// the food-safety cap of its zones (MaxHold after loading): chilled and frozen food
// cannot be extended past 24 h after loading.
func (s *Service) ExtendOrder(ctx context.Context, p Principal, id string, d time.Duration) (Order, error) {
	if d < time.Minute || d > 7*24*time.Hour {
		return Order{}, Invalid("seconds", "want between 60 and 604800 seconds")
	}
	o, err := s.change(ctx, p, id, true, &step{on: onExtend, by: p, extend: d})
	return o, internal("extend order", err)
}

// ReissueCode draws a new code for a live order (platform owner, ops, admin); the old one
// stops working at the edge with the next desired delta. The code goes to the platform in
// the receipt if it delivers codes itself and asks; else it is held sealed until the edge
// has applied that delta (code.go) and then goes to the resident through the notifier
// (before loading, with the arrival notice).
func (s *Service) ReissueCode(ctx context.Context, p Principal, id string) (OrderReceipt, error) {
	c := &step{on: onReissue, by: p}
	o, err := s.change(ctx, p, id, true, c)
	if err != nil {
		return OrderReceipt{}, internal("reissue code", err)
	}
	rc := OrderReceipt{Order: o}
	if c.toCaller {
		rc.Code, rc.QR = c.code, QRPayload(o.Site, c.code)
	}
	return rc, nil
}

// ReassignSlot moves one not-yet-loaded compartment of an order to another free one after
// a driver reported a problem with it (driver, ops, admin): the parcels of that slot are
// planned again by the policy, the new compartments get bumped generations, the edge gets
// the new reservation and the code keeps working. The reported compartment goes out of
// service (and the edge is told), except for reasons that say nothing is wrong with it
// ("too_small", "full"). This is the online path of the kiosk's "problem" button, which
// the edge handles itself (EventReassigned) when the cloud is out of reach.
func (s *Service) ReassignSlot(ctx context.Context, p Principal, orderID string, compartment int, reason string) (Order, error) {
	if err := require(p, RoleDriver, RoleOps, RoleAdmin); err != nil {
		return Order{}, err
	}
	if reason == "" || len(reason) > 64 || !printable(reason) {
		return Order{}, Invalid("reason", "want 1 to 64 printable characters")
	}
	o, err := s.change(ctx, p, orderID, false, &step{on: onSlotReassigned, by: p, compartment: compartment, reason: reason})
	return o, internal("reassign slot", err)
}

// GetOrder returns an order the principal may see.
func (s *Service) GetOrder(ctx context.Context, p Principal, id string) (Order, error) {
	var o *Order
	err := s.store.View(ctx, func(tx Tx) error {
		var err error
		o, err = loadOwned(tx, p, id)
		return err
	})
	if err != nil {
		return Order{}, internal("get order", err)
	}
	return *o, nil
}

// OrderFilter selects orders. Limit zero means 100 (at most 1000); After is the last
// order id of the previous page.
type OrderFilter struct {
	Site  string
	State OrderState
	Limit int
	After string
}

// ListOrders lists orders: a platform its own, ops and admin all.
func (s *Service) ListOrders(ctx context.Context, p Principal, f OrderFilter) ([]Order, error) {
	if err := require(p, RolePlatform, RoleOps, RoleAdmin); err != nil {
		return nil, err
	}
	if f.Limit <= 0 {
		f.Limit = 100
	}
	if f.Limit > 1000 {
		return nil, Invalid("limit", "at most 1000")
	}
	if f.State != "" && !f.State.Valid() {
		return nil, Invalid("state", "unknown state %q", f.State)
	}
	if f.Site != "" && !protocol.ValidSite(f.Site) {
		return nil, Invalid("site", "not a valid site id")
	}
	out := []Order{}
	err := s.store.View(ctx, func(tx Tx) error {
		bucket, prefix := bOrders, ""
		switch {
		case p.Role == RolePlatform:
			bucket, prefix = bByPlat, p.Subject+"/"
		case f.Site != "":
			bucket, prefix = bBySite, f.Site+"/"
		}
		var ierr error
		tx.Scan(bucket, prefix, func(k string, _ []byte) bool {
			id := strings.TrimPrefix(k, prefix)
			if id <= f.After {
				return true
			}
			var o *Order
			if o, ierr = loadOrder(tx, id); ierr != nil {
				return false
			}
			if (f.Site == "" || o.Site == f.Site) && (f.State == "" || o.State == f.State) {
				out = append(out, *o)
			}
			return len(out) < f.Limit
		})
		return ierr
	})
	return out, internal("list orders", err)
}

// Order records and their indexes.

func dueKey(t time.Time, id string) string { return fmt.Sprintf("%012d/%s", t.Unix(), id) }

// putOrder writes o and keeps its indexes true; old is its previous record (nil when new).
func (s *Service) putOrder(tx Tx, o *Order, old *Order) error {
	o.Updated = s.now().UTC()
	if old == nil {
		if err := tx.Put(bBySite, o.Site+"/"+o.ID, []byte{}); err != nil {
			return err
		}
		if err := tx.Put(bByPlat, o.Platform+"/"+o.ID, []byte{}); err != nil {
			return err
		}
		if err := tx.Put(bExtIDs, o.Platform+"/"+o.ExternalID, []byte(o.ID)); err != nil {
			return err
		}
	} else if d := s.pol.deadline(old); !d.IsZero() {
		if err := tx.Delete(bDue, dueKey(d, o.ID)); err != nil {
			return err
		}
	}
	if d := s.pol.deadline(o); !d.IsZero() {
		if err := tx.Put(bDue, dueKey(d, o.ID), []byte{}); err != nil {
			return err
		}
	}
	if o.State.Live() {
		if err := tx.Put(bLive, o.Site+"/"+o.ID, []byte{}); err != nil {
			return err
		}
	} else if err := tx.Delete(bLive, o.Site+"/"+o.ID); err != nil {
		return err
	}
	return putJSON(tx, bOrders, o.ID, o)
}

func loadOrder(tx Tx, id string) (*Order, error) {
	var o Order
	ok, err := getJSON(tx, bOrders, id, &o)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, &Error{Code: ENotFound, Message: "no such order: " + id}
	}
	return &o, nil
}

// loadOwned loads an order the principal may see: platforms only their own (another
// platform's order is "not found", so that ids cannot be probed), ops and admin all.
func loadOwned(tx Tx, p Principal, id string) (*Order, error) {
	o, err := loadOrder(tx, id)
	if err != nil {
		return nil, err
	}
	switch p.Role {
	case RolePlatform:
		if o.Platform != p.Subject {
			return nil, &Error{Code: ENotFound, Message: "no such order: " + id}
		}
	case RoleOps, RoleAdmin:
	default:
		return nil, Errorf(EForbidden, "the %s role may not do this", p.Role)
	}
	return o, nil
}

// siteOrders returns the orders of a site (only the live ones if live).
func siteOrders(tx Tx, site string, live bool) ([]Order, error) {
	idx := bBySite
	if live {
		idx = bLive
	}
	var ids []string
	err := tx.Scan(idx, site+"/", func(k string, _ []byte) bool {
		ids = append(ids, strings.TrimPrefix(k, site+"/"))
		return true
	})
	if err != nil {
		return nil, err
	}
	out := make([]Order, 0, len(ids))
	for _, id := range ids {
		var o Order
		ok, err := getJSON(tx, bOrders, id, &o)
		if err != nil {
			return nil, err
		}
		if ok && (!live || o.State.Live()) {
			out = append(out, o)
		}
	}
	return out, nil
}

package cloud

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/larder-lockers/larder/cloud/assign"
	"github.com/larder-lockers/larder/protocol"
)

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

// coldest returns the coldest zone of parcels (it sets the budget).
func coldest(ps []Parcel) protocol.Zone {
	for _, z := range protocol.Zones() {
		for _, p := range ps {
			if p.Zone == z {
				return z
			}
		}
	}
	return ""
}

// hold is the shortest hold among the order's zones; maxHold likewise.
func (s *Service) hold(o *Order) (hold, max time.Duration) {
	for i, p := range o.Parcels {
		h, m := s.pol.Hold[p.Zone], s.pol.MaxHold[p.Zone]
		if i == 0 || h < hold {
			hold = h
		}
		if i == 0 || m < max {
			max = m
		}
	}
	return hold, max
}

// holdBase is when the hold starts: loading, or the window's end before it.
func holdBase(o *Order) time.Time {
	if !o.LoadedAt.IsZero() {
		return o.LoadedAt
	}
	return o.Window.End
}

// deadline is the next time Sweep must look at o (zero: none).
func (s *Service) deadline(o *Order) time.Time {
	switch o.State {
	case StateAssigned:
		if anyLoaded(o) {
			return o.ExpiresAt
		}
		return o.Window.End.Add(s.pol.LoadGrace)
	case StateLoaded:
		if r := s.reminderAt(o); !r.IsZero() {
			return r
		}
		return o.ExpiresAt
	}
	return time.Time{}
}

// reminderAt is when the next reminder is due (50 % and 90 % of the hold), zero if none.
func (s *Service) reminderAt(o *Order) time.Time {
	span := o.ExpiresAt.Sub(o.LoadedAt)
	switch o.Reminders {
	case 0:
		return o.LoadedAt.Add(span / 2)
	case 1:
		return o.LoadedAt.Add(span * 9 / 10)
	}
	return time.Time{}
}

func anyLoaded(o *Order) bool {
	for _, sl := range o.Slots {
		if sl.Loaded {
			return true
		}
	}
	return false
}

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
	} else if d := s.deadline(old); !d.IsZero() {
		if err := tx.Delete(bDue, dueKey(d, o.ID)); err != nil {
			return err
		}
	}
	if d := s.deadline(o); !d.IsZero() {
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

// note makes the notification typ about o, in tx: a [TxNotifier] writes it into its
// durable outbox in this very transaction (an error then fails the transaction: a change
// must not commit without its notice); any other Notifier gets it after the commit.
// Ids sort by time (sortableID), so that an outbox keyed by them grows at its end.
func (s *Service) note(tx Tx, typ string, o *Order, mod func(*Notification)) error {
	now := s.now()
	n := Notification{Type: typ, ID: sortableID("evt_", now), Time: now.UTC(), Site: o.Site, Order: o.ID,
		Platform: o.Platform, ExternalID: o.ExternalID, State: o.State, LoadedAt: o.LoadedAt, ExpiresAt: o.ExpiresAt,
		CodeToPlatform: o.Delivery == DeliverByPlatform}
	for _, sl := range o.Slots {
		n.Compartments = append(n.Compartments, sl.Compartment)
	}
	if typ != NotePickedUp && typ != NoteCreated {
		// Notices the resident gets carry the phone number (platform-only ones do not)
		// and the locker bank's name, for the text.
		r := o.Recipient
		n.Recipient = &r
		var st Site
		if ok, _ := getJSON(tx, bSites, o.Site, &st); ok {
			n.SiteName = st.Name
		}
	}
	if mod != nil {
		mod(&n)
	}
	if tn, ok := s.ports.notifier.(TxNotifier); ok {
		if err := tn.NotifyTx(tx, n); err != nil {
			return internal("notify "+typ, err)
		}
		return nil
	}
	tx.OnCommit(func() { s.queue(outItem{site: o.Site, note: &n}) })
	return nil
}

// codeNote makes the code notification to the resident.
func (s *Service) codeNote(tx Tx, o *Order, code string) error {
	r := o.Recipient
	return s.note(tx, NoteCodeIssued, o, func(n *Notification) {
		n.Recipient = &r
		n.Code = code
		n.QR = QRPayload(o.Site, code)
		n.ExpiresAt = o.ExpiresAt
	})
}

// CreateOrder admits an order (platform): it checks capacity in the order's window,
// assigns compartments by the policy (cloud/assign), draws the code, and publishes the
// reservation. A platform that delivers codes itself gets the code in the receipt, once;
// otherwise the resident gets it by SMS with the arrival notice when the order is loaded. The same idempotency key with the same request returns the same order
// (Replayed, without the code, which is handed out once: a platform that lost it
// reissues); with another request it fails with EIdempotency.
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
	canon, _ := json.Marshal(req)
	sum := sha256.Sum256(canon)
	hash := hex.EncodeToString(sum[:])

	var rc OrderReceipt
	err := s.store.Update(ctx, func(tx Tx) error {
		rc = OrderReceipt{}
		var idem idemRecord
		ok, err := getJSON(tx, bIdem, p.Subject+"/"+idemKey, &idem)
		if err != nil {
			return err
		}
		if ok {
			if idem.Hash != hash {
				return &Error{Code: EIdempotency, Field: "Idempotency-Key", Message: "this idempotency key was used for another request"}
			}
			o, err := loadOrder(tx, idem.Order)
			if err != nil {
				return err
			}
			rc = OrderReceipt{Order: *o, Replayed: true}
			return nil
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
			Delivery: req.CodeDelivery, State: StateAssigned, Zone: coldest(req.Parcels), Created: now.UTC(),
			RequestHash: hash}
		if err := s.assignSlots(tx, st, o, nil); err != nil {
			return err
		}
		h, _ := s.hold(o)
		o.ExpiresAt = o.Window.End.Add(h)
		code, digest, err := issueCode(tx, st, o.ID)
		if err != nil {
			return err
		}
		o.CodeDigest = digest
		o.FactorDigest = protocol.SecondFactorDigest(st.Key, o.ID, LastFour(o.Recipient.Phone))
		o.CodeIssues = 1
		if err := s.putOrder(tx, o, nil); err != nil {
			return err
		}
		if err := putJSON(tx, bIdem, p.Subject+"/"+idemKey, idemRecord{Order: o.ID, Hash: hash}); err != nil {
			return err
		}
		s.publishDelta(tx, st, protocol.Desired{Reservations: []protocol.Reservation{s.reservation(o)}})
		if err := putSite(tx, st); err != nil {
			return err
		}
		if err := s.note(tx, NoteCreated, o, nil); err != nil {
			return err
		}
		rc = OrderReceipt{Order: *o}
		if o.Delivery == DeliverByPlatform {
			rc.Code, rc.QR = code, QRPayload(o.Site, code)
		}
		// For notifier delivery this first code is never told to anyone: the resident's
		// code is drawn when the order is loaded and sent with the arrival notice, so a
		// plain code never waits anywhere for hours. The placeholder only keeps the
		// reservation well-formed (the edge needs a digest) and unusable.
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

// assignSlots plans compartments for o at st and reserves them, bumping each one's
// generation. keep lists slots o already holds and keeps (reassignment).
func (s *Service) assignSlots(tx Tx, st *Site, o *Order, keep []Slot) error {
	zones := map[string]int{}
	var parcels []assign.Parcel
	for _, p := range o.Parcels {
		zones[string(p.Zone)]++
		parcels = append(parcels, assign.Parcel{Size: p.Size, Zone: p.Zone})
	}
	free, err := freeCandidates(tx, st.ID, zones, o.Accessible)
	if err != nil {
		return err
	}
	picks, err := assign.Plan(parcels, o.Accessible, free)
	if errors.Is(err, assign.ErrNoFit) {
		near, nerr := s.nearby(tx, st, parcels, o.Accessible, zones)
		if nerr != nil {
			return nerr
		}
		return &Error{Code: ENoCapacity, Field: "parcels", Detail: near,
			Message: fmt.Sprintf("site %s cannot hold this order in its window", st.ID)}
	}
	if err != nil {
		return Invalid("parcels", "%v", err)
	}
	o.Slots = keep
	for _, pk := range picks {
		c, ok, err := getComp(tx, st.ID, pk.Compartment)
		if err != nil {
			return err
		}
		if !ok || !c.free() {
			// The free index said otherwise: a broken invariant, never hand it out.
			return Errorf(EInternal, "free index of site %s lists compartment %d, which is not free", st.ID, pk.Compartment)
		}
		old := c
		c.Generation++
		c.Order = o.ID
		c.Occupied = false
		if err := putComp(tx, c, &old); err != nil {
			return err
		}
		o.Slots = append(o.Slots, Slot{Compartment: c.Number, Generation: c.Generation, Size: c.Size, Zone: c.Zone, Parcels: pk.Parcels})
	}
	return nil
}

// release frees o's compartments and its live code.
func (s *Service) release(tx Tx, o *Order) error {
	for _, sl := range o.Slots {
		c, ok, err := getComp(tx, o.Site, sl.Compartment)
		if err != nil {
			return err
		}
		if !ok || c.Order != o.ID {
			continue
		}
		old := c
		c.Order, c.Occupied = "", false
		if err := putComp(tx, c, &old); err != nil {
			return err
		}
	}
	return dropCode(tx, o)
}

func dropCode(tx Tx, o *Order) error {
	k := o.Site + "/" + o.CodeDigest
	if string(tx.Get(bCodes, k)) == o.ID {
		return tx.Delete(bCodes, k)
	}
	return nil
}

// finish moves o to a final state: compartments freed, code dropped, reservation
// cancelled at the edge, platform notified.
func (s *Service) finish(tx Tx, st *Site, o *Order, state OrderState, reason, note string) error {
	old := *o
	o.State, o.Reason, o.ClosedAt = state, reason, s.now().UTC()
	if err := s.release(tx, o); err != nil {
		return err
	}
	if err := s.putOrder(tx, o, &old); err != nil {
		return err
	}
	s.publishDelta(tx, st, protocol.Desired{Cancel: []string{o.ID}})
	if err := s.note(tx, note, o, func(n *Notification) { n.Reason = reason }); err != nil {
		return err
	}
	return putSite(tx, st)
}

// update saves o and publishes its reservation.
func (s *Service) update(tx Tx, st *Site, o *Order, old *Order) error {
	if err := s.putOrder(tx, o, old); err != nil {
		return err
	}
	s.publishDelta(tx, st, protocol.Desired{Reservations: []protocol.Reservation{s.reservation(o)}})
	return putSite(tx, st)
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

// CancelOrder cancels an order that has not been loaded (platform owner, ops, admin).
func (s *Service) CancelOrder(ctx context.Context, p Principal, id, reason string) (Order, error) {
	if len(reason) > 200 {
		return Order{}, Invalid("reason", "at most 200 characters")
	}
	var out Order
	err := s.store.Update(ctx, func(tx Tx) error {
		o, err := loadOwned(tx, p, id)
		if err != nil {
			return err
		}
		if o.State != StateAssigned || anyLoaded(o) {
			return Errorf(EConflict, "an order in state %s (or already loaded) cannot be cancelled", o.State)
		}
		st, err := loadSite(tx, o.Site)
		if err != nil {
			return err
		}
		if reason == "" {
			reason = "cancelled by " + string(p.Role)
		}
		if err := s.finish(tx, st, o, StateCancelled, reason, NoteCancelled); err != nil {
			return err
		}
		out = *o
		return nil
	})
	return out, internal("cancel order", err)
}

// ExtendOrder moves an order's expiry by d (platform owner, ops, admin), never beyond
// the food-safety cap of its zones (MaxHold after loading): chilled and frozen food
// cannot be extended past 24 h after loading.
func (s *Service) ExtendOrder(ctx context.Context, p Principal, id string, d time.Duration) (Order, error) {
	if d < time.Minute || d > 7*24*time.Hour {
		return Order{}, Invalid("seconds", "want between 60 and 604800 seconds")
	}
	var out Order
	err := s.store.Update(ctx, func(tx Tx) error {
		o, err := loadOwned(tx, p, id)
		if err != nil {
			return err
		}
		if o.State != StateAssigned && o.State != StateLoaded {
			return Errorf(EConflict, "an order in state %s cannot be extended", o.State)
		}
		_, max := s.hold(o)
		limit := holdBase(o).Add(max)
		next := o.ExpiresAt.Add(d)
		if next.After(limit) {
			return &Error{Code: EFoodSafety, Field: "seconds", Message: fmt.Sprintf(
				"the %s order may wait at most %s after loading; it can be extended until %s",
				o.Zone, max, limit.UTC().Format(time.RFC3339))}
		}
		st, err := loadSite(tx, o.Site)
		if err != nil {
			return err
		}
		old := *o
		o.ExpiresAt = next
		o.Extended += d
		if err := s.update(tx, st, o, &old); err != nil {
			return err
		}
		if err := s.note(tx, NoteExtended, o, func(n *Notification) { n.ExpiresAt = o.ExpiresAt }); err != nil {
			return err
		}
		out = *o
		return nil
	})
	return out, internal("extend order", err)
}

// ReissueCode draws a new code for a live order (platform owner, ops, admin); the old one
// stops working at the edge with the next desired delta. The code goes to the platform if
// it delivers codes itself, else to the resident through the notifier.
func (s *Service) ReissueCode(ctx context.Context, p Principal, id string) (OrderReceipt, error) {
	var rc OrderReceipt
	err := s.store.Update(ctx, func(tx Tx) error {
		rc = OrderReceipt{}
		o, err := loadOwned(tx, p, id)
		if err != nil {
			return err
		}
		if o.State != StateAssigned && o.State != StateLoaded && o.State != StateCompromised {
			return Errorf(EConflict, "an order in state %s has no code to reissue", o.State)
		}
		st, err := loadSite(tx, o.Site)
		if err != nil {
			return err
		}
		old := *o
		if err := dropCode(tx, o); err != nil {
			return err
		}
		code, digest, err := issueCode(tx, st, o.ID)
		if err != nil {
			return err
		}
		o.CodeDigest, o.CodeInvalid = digest, false
		o.CodeIssues++
		if err := s.update(tx, st, o, &old); err != nil {
			return err
		}
		audit(tx, s.now(), AuditEntry{Site: o.Site, Actor: p.Subject, Role: p.Role, Action: "code_reissued", Order: o.ID})
		rc.Order = *o
		if o.Delivery == DeliverByPlatform && p.Role == RolePlatform {
			rc.Code, rc.QR = code, QRPayload(o.Site, code)
			return nil
		}
		return s.codeNote(tx, o, code)
	})
	return rc, internal("reissue code", err)
}

package edge

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"time"

	"github.com/larder-lockers/larder/protocol"
)

// A driver signs in at the kiosk with a loading credential and gets a kiosk token for
// the stop. The token is random (newToken), given only to the driver's browser and
// stored only as its keyed digest (tokenDigest) in a DriverToken, with the session's
// absolute end: DriverSession after sign-in, or the credential's expiry if sooner. So a
// restart of the edge leaves drivers signed in, and their sessions end when they would
// have. A revoked credential ends its sessions at once; so does signing out.

// DriverToken is a driver's kiosk session as the store keeps it.
type DriverToken struct {
	Digest     string    `json:"digest"`     // tokenDigest of the token; the token itself is never stored
	Driver     string    `json:"driver"`     // the driver id
	Credential string    `json:"credential"` // id of the loading credential signed in with
	Expires    time.Time `json:"expires"`    // the session ends here, whatever happens meanwhile
}

// MaxDriverTokens bounds the sessions kept at once. A kiosk is one screen, so a few are
// live at a time; a sign-in beyond the bound signs out the sessions that end soonest.
const MaxDriverTokens = 64

// tokenDigest is the keyed digest under which a kiosk token is stored.
func tokenDigest(siteKey []byte, token string) string {
	m := hmac.New(sha256.New, siteKey)
	m.Write([]byte("larder kiosk driver token v1\x00"))
	m.Write([]byte(token))
	return hex.EncodeToString(m.Sum(nil))
}

// DriverLogin checks a driver's loading credential (synced from the cloud as a digest)
// and returns a kiosk token valid for DriverSession, or until the credential expires if
// that is sooner. The session is stored (as the token's digest), so it survives a
// restart of the edge; sessions that have ended are swept here.
func (l *Locker) DriverLogin(credential string) (token, driver string, err error) {
	if credential == "" || len(credential) > 256 {
		return "", "", errorf(CodeBadRequest, "driver login", "Please scan your driver code.", "请扫描配送员码。")
	}
	now := l.clock.Now()
	d := protocol.CredentialDigest(l.cfg.SiteKey, credential)
	var outcome *Error
	var evicted []DriverToken
	token = newToken()
	err = l.cfg.Store.Update(func(tx Tx) error {
		outcome, evicted = nil, nil
		c, found, err := tx.CredentialByDigest(d)
		if err != nil {
			return err
		}
		if !found || !protocol.DigestEqual(c.Digest, d) {
			outcome = errorf(CodeBadCredential, "driver login", "This driver code is not valid here.", "该配送员码在此无效。")
			return nil
		}
		if !now.Before(c.ExpiresAt) {
			outcome = errorf(CodeExpired, "driver login", "This driver code has expired. Please get a new one in the driver app.",
				"该配送员码已过期，请在配送员应用中重新获取。")
			return nil
		}
		if evicted, err = sweepDriverTokens(tx, now); err != nil {
			return err
		}
		exp := now.Add(l.cfg.DriverSession)
		if c.ExpiresAt.Before(exp) {
			exp = c.ExpiresAt
		}
		driver = c.Driver
		return tx.PutDriverToken(DriverToken{Digest: tokenDigest(l.cfg.SiteKey, token), Driver: c.Driver, Credential: c.ID, Expires: exp})
	})
	if err != nil {
		return "", "", internal("driver login", err)
	}
	if outcome != nil {
		return "", "", outcome
	}
	for _, e := range evicted {
		l.log.Warn("driver signed out: too many kiosk sessions", "driver", e.Driver, "max", MaxDriverTokens)
	}
	return token, driver, nil
}

// sweepDriverTokens deletes the sessions that have ended and, when MaxDriverTokens are
// still live, those that end soonest, so that one more fits. It returns the live
// sessions it ended.
func sweepDriverTokens(tx Tx, now time.Time) (evicted []DriverToken, err error) {
	ts, err := tx.DriverTokens()
	if err != nil {
		return nil, err
	}
	live := ts[:0]
	for _, t := range ts {
		if !now.Before(t.Expires) {
			if err := tx.DeleteDriverToken(t.Digest); err != nil {
				return nil, err
			}
			continue
		}
		live = append(live, t)
	}
	slices.SortFunc(live, func(a, b DriverToken) int { return a.Expires.Compare(b.Expires) })
	for len(live) >= MaxDriverTokens {
		if err := tx.DeleteDriverToken(live[0].Digest); err != nil {
			return nil, err
		}
		evicted, live = append(evicted, live[0]), live[1:]
	}
	return evicted, nil
}

// DriverLogout ends a kiosk driver session.
func (l *Locker) DriverLogout(token string) error {
	if err := l.cfg.Store.Update(func(tx Tx) error { return tx.DeleteDriverToken(tokenDigest(l.cfg.SiteKey, token)) }); err != nil {
		return internal("driver logout", err)
	}
	return nil
}

// Driver returns the driver id of a kiosk token, or bad_credential.
func (l *Locker) Driver(token string) (string, error) {
	now := l.clock.Now()
	digest := tokenDigest(l.cfg.SiteKey, token)
	var dt DriverToken
	var found, still bool
	err := l.cfg.Store.View(func(tx Tx) error {
		var err error
		if dt, found, err = tx.DriverToken(digest); err != nil || !found {
			return err
		}
		// A revoked credential ends its sessions at once.
		cs, err := tx.Credentials()
		for _, c := range cs {
			if c.ID == dt.Credential {
				still = true
			}
		}
		return err
	})
	if err != nil {
		return "", internal("driver", err)
	}
	if !found || !now.Before(dt.Expires) {
		return "", errorf(CodeBadCredential, "driver", "Your driver session has ended. Please scan your code again.",
			"配送员会话已结束，请重新扫码。")
	}
	if !still {
		if err := l.DriverLogout(token); err != nil {
			return "", err
		}
		return "", errorf(CodeBadCredential, "driver", "Your driver code was revoked.", "您的配送员码已被撤销。")
	}
	return dt.Driver, nil
}

// ManifestOrder is one order of the driver's manifest.
type ManifestOrder struct {
	Order      string        `json:"order"`
	Zone       protocol.Zone `json:"zone"`
	Accessible bool          `json:"accessible"`
	State      string        `json:"state"` // reserved, loaded or expired
	Doors      []Door        `json:"doors"`
}

// Manifest lists the site's orders a driver deals with: to load, loaded, and expired (to
// return).
func (l *Locker) Manifest() ([]ManifestOrder, error) {
	now := l.clock.Now()
	var out []ManifestOrder
	err := l.cfg.Store.View(func(tx Tx) error {
		return tx.Reservations(func(r Reservation) bool {
			var state string
			switch {
			case r.State == OrderCancelled || (r.State == OrderLoaded || r.State == OrderInvalidated) && l.expired(&r, now):
				state = "expired"
			case r.State == OrderReserved:
				state = "reserved"
			case r.State == OrderLoaded:
				state = "loaded"
			default:
				return true
			}
			m := ManifestOrder{Order: r.Order, Zone: r.Zone, Accessible: r.Accessible, State: state}
			for _, s := range r.Slots {
				m.Doors = append(m.Doors, l.door(s.Compartment, false))
			}
			out = append(out, m)
			return true
		})
	})
	if err != nil {
		return nil, internal("manifest", err)
	}
	return out, nil
}

// DriverOpen opens compartment c of order for loading. The compartment is recorded
// loaded when its door closes and the infrared sees the item.
func (l *Locker) DriverOpen(ctx context.Context, driver, order string, c int) (Door, error) {
	now := l.clock.Now()
	var outcome *Error
	var s Session
	err := l.cfg.Store.Update(func(tx Tx) error {
		outcome = nil
		r, comp, e, err := l.loadable(tx, order, c)
		if err != nil || e != nil {
			outcome = e
			return err
		}
		if comp.State == StateLoading {
			// Opened again (the driver closed it on nothing, or pressed twice): reuse.
			if err := endLoadingSessions(tx, c); err != nil {
				return err
			}
		}
		s = Session{ID: newToken(), Kind: SessionLoading, Order: r.Order, Compartments: []int{c},
			Credential: protocol.CredDriver, Actor: driver, Started: now}
		return l.openDoors(tx, s, "loading", now)
	})
	if err != nil {
		return Door{}, internal("driver open", err)
	}
	if outcome != nil {
		return Door{}, outcome
	}
	return l.pulseLoading(ctx, s)
}

// loadable checks that compartment c of order can be opened for loading.
func (l *Locker) loadable(tx Tx, order string, c int) (Reservation, Compartment, *Error, error) {
	r, found, err := tx.Reservation(order)
	if err != nil {
		return r, Compartment{}, nil, err
	}
	if !found || r.State != OrderReserved {
		return r, Compartment{}, errorf(CodeNotFound, "driver open", "This order is not waiting to be loaded here.", "该订单不在此处待放入。"), nil
	}
	slot, ok := r.Slot(c)
	if !ok || slot.Loaded {
		return r, Compartment{}, errorf(CodeConflict, "driver open", "This door is not one to load for the order.", "此柜门不属于该订单的待放入柜门。"), nil
	}
	comp, _, err := tx.Compartment(c)
	if err != nil {
		return r, comp, nil, err
	}
	if comp.Order != r.Order || (comp.State != StateReserved && comp.State != StateLoading) {
		return r, comp, errorf(CodeConflict, "driver open", "This door cannot be opened for the order now.", "此柜门目前无法为该订单打开。"), nil
	}
	return r, comp, nil, nil
}

// pulseLoading opens a loading session's door; on failure the compartment goes back to
// reserved and the driver is told to report the problem (which reassigns the order).
func (l *Locker) pulseLoading(ctx context.Context, s Session) (Door, error) {
	l.trackSession(s)
	c := s.Compartments[0]
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := l.unlock(ctx, c); err != nil {
		l.log.Warn("door did not open for loading", "compartment", c, "order", s.Order, "err", err)
		l.recordJams(s, []int{c}, []error{err})
		_ = l.abandon(s)
		return l.door(c, true), unlockErr("driver open", err)
	}
	d := l.door(c, false)
	d.State = "open"
	return d, nil
}

// DriverProblem moves an order's compartment c, which the driver found jammed, faulty or
// full, to another free compartment of the same zone and the same or a larger size
// (smallest first; below 120 cm for accessible orders), opens it for loading and reports
// reassigned. The order's code keeps working.
func (l *Locker) DriverProblem(ctx context.Context, driver, order string, c int, reason string) (Door, error) {
	switch reason {
	case "jammed", "faulty", "full":
	default:
		return Door{}, errorf(CodeBadRequest, "driver problem", "Please say what is wrong with the door.", "请说明柜门的问题。")
	}
	now := l.clock.Now()
	var outcome *Error
	var s Session
	err := l.cfg.Store.Update(func(tx Tx) error {
		outcome = nil
		r, comp, e, err := l.loadable(tx, order, c)
		if err != nil || e != nil {
			outcome = e
			return err
		}
		to, ok, err := l.reassign(tx, &r, comp, reason, protocol.CredDriver, now)
		if err != nil {
			return err
		}
		if !ok {
			outcome = errorf(CodeNoCompartment, "driver problem", "There is no other free compartment for this order. Please take it back.",
				"没有其他可用的柜格，请将订单带回。")
			return nil
		}
		if err := tx.PutReservation(r); err != nil {
			return err
		}
		// A loading session on the old door ends with it.
		if err := endLoadingSessions(tx, c); err != nil {
			return err
		}
		s = Session{ID: newToken(), Kind: SessionLoading, Order: r.Order, Compartments: []int{to},
			Credential: protocol.CredDriver, Actor: driver, Started: now}
		return l.openDoors(tx, s, "loading", now)
	})
	if err != nil {
		return Door{}, internal("driver problem", err)
	}
	if outcome != nil {
		return Door{}, outcome
	}
	l.notify()
	l.refreshGauges()
	return l.pulseLoading(ctx, s)
}

// reassign moves r's slot in comp to the best free compartment, marks comp jammed or out
// of service, and enqueues reassigned. The new slot's generation is the compartment's
// last generation plus one: the cloud learns it from the event.
func (l *Locker) reassign(tx Tx, r *Reservation, comp Compartment, reason string, cred protocol.CredentialKind, now time.Time) (to int, ok bool, err error) {
	slot, _ := r.Slot(comp.Number)
	from := l.layout.specs[comp.Number]
	all, err := tx.Compartments()
	if err != nil {
		return 0, false, err
	}
	l.mu.Lock()
	var cands []CompartmentSpec
	for _, cc := range all {
		sp, known := l.layout.specs[cc.Number]
		if !known || cc.State != StateFree || cc.Number == comp.Number {
			continue
		}
		if sp.Zone != from.Zone || sp.Size.Rank() < slot.Size.Rank() || sp.Size.Rank() < from.Size.Rank() && slot.Size == "" {
			continue
		}
		if r.Accessible && sp.HeightCM >= AccessibleMaxHeightCM {
			continue
		}
		if online, seen := l.boards[sp.Board]; seen && !online {
			continue
		}
		cands = append(cands, sp)
	}
	l.mu.Unlock()
	if len(cands) == 0 {
		return 0, false, nil
	}
	slices.SortFunc(cands, func(a, b CompartmentSpec) int {
		return cmp.Or(cmp.Compare(a.Size.Rank(), b.Size.Rank()), cmp.Compare(a.Number, b.Number))
	})
	best := cands[0]
	nc, _, err := tx.Compartment(best.Number)
	if err != nil {
		return 0, false, err
	}
	gen := nc.Generation + 1
	nc.State, nc.Order, nc.Generation, nc.Since, nc.Reason = StateReserved, r.Order, gen, now, ""
	if err := tx.PutCompartment(nc); err != nil {
		return 0, false, err
	}
	old := comp
	old.Order, old.Since, old.Reason = "", now, reason
	old.State = StateOutOfService
	if reason == "jammed" {
		old.State = StateJammed
	}
	if err := tx.PutCompartment(old); err != nil {
		return 0, false, err
	}
	// Remember where the cloud's compartment went, so a desired state sent before the
	// cloud learnt of the move maps onto the new one.
	if r.Moved == nil {
		r.Moved = map[int]int{}
	}
	orig := comp.Number
	for k, v := range r.Moved {
		if v == comp.Number {
			orig = k
		}
	}
	r.Moved[orig] = best.Number
	slot.Compartment, slot.Generation = best.Number, gen
	if slot.Size == "" {
		slot.Size = best.Size
	}
	if err := enqueue(tx, now, protocol.Event{Kind: protocol.EventReassigned, Credential: cred, Order: r.Order,
		Compartment: comp.Number, To: best.Number, Generation: gen, Reason: reason}); err != nil {
		return 0, false, err
	}
	l.log.Info("order reassigned", "order", r.Order, "compartment", comp.Number, "to", best.Number, "reason", reason)
	return best.Number, true, nil
}

// DriverReturn opens the doors of an expired (or cancelled) order so the driver can take
// it back; expired_removed is recorded once the doors close and the infrared sees them
// empty.
func (l *Locker) DriverReturn(ctx context.Context, driver, order string) ([]Door, error) {
	now := l.clock.Now()
	var outcome *Error
	var s Session
	var r Reservation
	err := l.cfg.Store.Update(func(tx Tx) error {
		outcome = nil
		var found bool
		var err error
		r, found, err = tx.Reservation(order)
		if err != nil {
			return err
		}
		returnable := found && (r.State == OrderCancelled ||
			(r.State == OrderLoaded || r.State == OrderInvalidated) && l.expired(&r, now))
		if !returnable {
			outcome = errorf(CodeConflict, "driver return", "This order is not waiting to be returned.", "该订单不需要取回。")
			return nil
		}
		s = Session{ID: newToken(), Kind: SessionReturn, Order: r.Order, Credential: protocol.CredDriver, Actor: driver, Started: now}
		for _, sl := range r.Slots {
			s.Compartments = append(s.Compartments, sl.Compartment)
		}
		r.State, r.Session = OrderReturning, s.ID
		if err := tx.PutReservation(r); err != nil {
			return err
		}
		return l.openDoors(tx, s, "return", now)
	})
	if err != nil {
		return nil, internal("driver return", err)
	}
	if outcome != nil {
		return nil, outcome
	}
	res, err := l.pulseSession(ctx, s, r, false)
	return res.Doors, err
}

// endLoadingSessions ends the loading sessions that hold compartment c.
func endLoadingSessions(tx Tx, c int) error {
	ss, err := tx.Sessions()
	if err != nil {
		return err
	}
	for _, s := range ss {
		if s.Kind == SessionLoading && contains(s.Compartments, c) {
			if err := tx.DeleteSession(s.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

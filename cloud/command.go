package cloud

import (
	"context"
	"encoding/json"
	"time"

	"github.com/larder-lockers/larder/protocol"
)

// Commands are jobs: the cloud records one as QUEUED, publishes it after the commit, and
// the edge's CommandAcks move it to SUCCEEDED / FAILED / TIMED_OUT / REJECTED. A command
// the edge never answers is TIMED_OUT by Sweep after its expiry.

func (s *Service) command(tx Tx, site string, c protocol.Command) (CommandRecord, error) {
	now := s.now().UTC()
	c.ID = sortableID("cmd_", now)
	c.ExpiresAt = now.Add(s.pol.CommandTTL)
	if err := c.Validate(); err != nil {
		return CommandRecord{}, Invalid("command", "%v", err)
	}
	rec := CommandRecord{Site: site, Command: c, State: protocol.StateQueued, Created: now, Updated: now}
	if err := putJSON(tx, bCmds, c.ID, rec); err != nil {
		return CommandRecord{}, err
	}
	tx.OnCommit(func() { s.queue(outItem{site: site, command: &c}) })
	return rec, nil
}

func checkReason(reason string) error {
	if reason == "" {
		return Invalid("reason", "required")
	}
	if len(reason) > 200 || !printable(reason) {
		return Invalid("reason", "at most 200 printable characters")
	}
	return nil
}

// OpenCompartment asks the edge to open a compartment for ops, with a mandatory reason
// that goes to the audit log (ops, admin).
func (s *Service) OpenCompartment(ctx context.Context, p Principal, site string, n int, reason string) (CommandRecord, error) {
	if err := require(p, RoleOps, RoleAdmin); err != nil {
		return CommandRecord{}, err
	}
	if err := checkReason(reason); err != nil {
		return CommandRecord{}, err
	}
	var rec CommandRecord
	err := s.store.Update(ctx, func(tx Tx) error {
		if _, err := loadSite(tx, site); err != nil {
			return err
		}
		if _, ok, err := getComp(tx, site, n); err != nil {
			return err
		} else if !ok {
			return &Error{Code: ENotFound, Field: "compartment", Message: "no such compartment"}
		}
		var err error
		rec, err = s.command(tx, site, protocol.Command{Kind: protocol.CmdOpen, Compartment: n,
			Purpose: protocol.PurposeOps, Reason: reason, Actor: p.Subject})
		if err != nil {
			return err
		}
		audit(tx, s.now(), AuditEntry{Site: site, Actor: p.Subject, Role: p.Role, Action: "remote_open",
			Compartment: n, Reason: reason, Credential: protocol.CredOpsRemote, Command: rec.Command.ID})
		return nil
	})
	return rec, internal("open compartment", err)
}

// SetInService takes a compartment out of service (with a reason) or back in (ops,
// admin). Out of service, it takes no new orders; a reservation it holds runs its course.
func (s *Service) SetInService(ctx context.Context, p Principal, site string, n int, in bool, reason string) (CommandRecord, error) {
	if err := require(p, RoleOps, RoleAdmin); err != nil {
		return CommandRecord{}, err
	}
	if !in {
		if err := checkReason(reason); err != nil {
			return CommandRecord{}, err
		}
	} else if len(reason) > 200 {
		return CommandRecord{}, Invalid("reason", "at most 200 characters")
	}
	var rec CommandRecord
	err := s.store.Update(ctx, func(tx Tx) error {
		if _, err := loadSite(tx, site); err != nil {
			return err
		}
		c, ok, err := getComp(tx, site, n)
		if err != nil {
			return err
		}
		if !ok {
			return &Error{Code: ENotFound, Field: "compartment", Message: "no such compartment"}
		}
		old := c
		c.InService = in
		c.OOSReason = ""
		kind, action := protocol.CmdInService, "in_service"
		if !in {
			c.OOSReason = reason
			kind, action = protocol.CmdOutOfService, "out_of_service"
		} else if err := s.closeAlarms(tx, site, itoa(n), protocol.EventLockJammed); err != nil {
			return err
		}
		if err := putComp(tx, c, &old); err != nil {
			return err
		}
		rec, err = s.command(tx, site, protocol.Command{Kind: kind, Compartment: n, Reason: reason, Actor: p.Subject})
		if err != nil {
			return err
		}
		audit(tx, s.now(), AuditEntry{Site: site, Actor: p.Subject, Role: p.Role, Action: action,
			Compartment: n, Reason: reason, Command: rec.Command.ID})
		return nil
	})
	return rec, internal("set service", err)
}

// GetCommand returns a command's record (ops, admin).
func (s *Service) GetCommand(ctx context.Context, p Principal, id string) (CommandRecord, error) {
	if err := require(p, RoleOps, RoleAdmin, RoleDriver); err != nil {
		return CommandRecord{}, err
	}
	var rec CommandRecord
	err := s.store.View(ctx, func(tx Tx) error {
		ok, err := getJSON(tx, bCmds, id, &rec)
		if err == nil && !ok {
			err = &Error{Code: ENotFound, Message: "no such command: " + id}
		}
		return err
	})
	if err == nil && p.Role == RoleDriver && rec.Command.Actor != p.Subject {
		return CommandRecord{}, &Error{Code: ENotFound, Message: "no such command: " + id}
	}
	return rec, internal("get command", err)
}

// ApplyCommandAck records an edge's report on a command. States only move forward: a
// final state is never replaced, so late or duplicate acks change nothing.
func (s *Service) ApplyCommandAck(ctx context.Context, site string, at time.Time, a protocol.CommandAck) error {
	s.live.touch(site, at)
	var failedOpen bool
	err := s.store.Update(ctx, func(tx Tx) error {
		failedOpen = false
		var rec CommandRecord
		ok, err := getJSON(tx, bCmds, a.CommandID, &rec)
		if err != nil || !ok || rec.Site != site {
			return err // an ack for a command we do not know (or another site's): ignore
		}
		if rec.State.Final() || (rec.State == protocol.StateInProgress && a.State == protocol.StateQueued) || rec.State == a.State {
			return nil
		}
		rec.State, rec.Error, rec.Message, rec.Updated = a.State, a.Error, a.Message, at.UTC()
		failedOpen = rec.Command.Kind == protocol.CmdOpen && (a.State == protocol.StateFailed || a.State == protocol.StateTimedOut)
		return putJSON(tx, bCmds, a.CommandID, rec)
	})
	if err == nil && failedOpen {
		s.stats.UnlockFailures.Add(1)
	}
	return internal("apply command ack", err)
}

// PendingCommands lists the commands without a final state, of one site or (site "")
// of all, for the fleet adapter to re-arm and republish after a restart or a birth.
func (s *Service) PendingCommands(ctx context.Context, site string) ([]CommandRecord, error) {
	var out []CommandRecord
	err := s.store.View(ctx, func(tx Tx) error {
		var derr error
		tx.Scan(bCmds, "", func(_ string, v []byte) bool {
			var rec CommandRecord
			if derr = json.Unmarshal(v, &rec); derr != nil {
				return false
			}
			if !rec.State.Final() && (site == "" || rec.Site == site) {
				out = append(out, rec)
			}
			return true
		})
		return derr
	})
	return out, internal("pending commands", err)
}

// Drivers.

// LoadingCredential is a driver's credential for a site's kiosk, shown once.
type LoadingCredential struct {
	ID         string    `json:"id"`
	Site       string    `json:"site"`
	Credential string    `json:"credential"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// IssueLoadingCredential gives a driver a time-limited credential for a site's kiosk
// (driver). It is 10 random digits (typed at the kiosk), stored and sent to the edge
// only as protocol.CredentialDigest.
func (s *Service) IssueLoadingCredential(ctx context.Context, p Principal, site string) (LoadingCredential, error) {
	if err := require(p, RoleDriver); err != nil {
		return LoadingCredential{}, err
	}
	var out LoadingCredential
	err := s.store.Update(ctx, func(tx Tx) error {
		st, err := loadSite(tx, site)
		if err != nil {
			return err
		}
		plain := newDigits(5) + newDigits(5)
		c := Credential{Site: site, LoadingCredential: protocol.LoadingCredential{ID: newID("cred_"),
			Digest: protocol.CredentialDigest(st.Key, plain), Driver: p.Subject, ExpiresAt: s.now().Add(s.pol.CredentialTTL).UTC()}}
		if err := putJSON(tx, bCreds, site+"/"+c.ID, c); err != nil {
			return err
		}
		s.publishDelta(tx, st, protocol.Desired{Credentials: []protocol.LoadingCredential{c.LoadingCredential}})
		audit(tx, s.now(), AuditEntry{Site: site, Actor: p.Subject, Role: p.Role, Action: "loading_credential_issued", Credential: protocol.CredDriver})
		out = LoadingCredential{ID: c.ID, Site: site, Credential: plain, ExpiresAt: c.ExpiresAt}
		return putSite(tx, st)
	})
	return out, internal("issue credential", err)
}

// ManifestEntry is one order a driver handles at a site: no personal data.
type ManifestEntry struct {
	Order      string        `json:"order"`
	ExternalID string        `json:"external_id"`
	State      OrderState    `json:"state"`
	Zone       protocol.Zone `json:"zone"`
	Accessible bool          `json:"accessible,omitempty"`
	Parcels    []Parcel      `json:"parcels"`
	Slots      []Slot        `json:"slots"`
	Window     Window        `json:"window"`
	ExpiresAt  time.Time     `json:"expires_at"`
}

// Manifest lists what a driver loads (assigned) and takes back (expired, compromised)
// at a site (driver, ops, admin).
func (s *Service) Manifest(ctx context.Context, p Principal, site string) ([]ManifestEntry, error) {
	if err := require(p, RoleDriver, RoleOps, RoleAdmin); err != nil {
		return nil, err
	}
	out := []ManifestEntry{}
	err := s.store.View(ctx, func(tx Tx) error {
		if _, err := loadSite(tx, site); err != nil {
			return err
		}
		orders, err := siteOrders(tx, site, true)
		if err != nil {
			return err
		}
		for _, o := range orders {
			if o.State == StateLoaded {
				continue
			}
			out = append(out, ManifestEntry{Order: o.ID, ExternalID: o.ExternalID, State: o.State, Zone: o.Zone,
				Accessible: o.Accessible, Parcels: o.Parcels, Slots: o.Slots, Window: o.Window, ExpiresAt: o.ExpiresAt})
		}
		return nil
	})
	return out, internal("manifest", err)
}

// OpenForLoading asks the edge to open one of an order's compartments for a driver
// (driver). The command carries the slot's generation, so a stale one is refused.
func (s *Service) OpenForLoading(ctx context.Context, p Principal, orderID string, compartment int) (CommandRecord, error) {
	if err := require(p, RoleDriver); err != nil {
		return CommandRecord{}, err
	}
	var rec CommandRecord
	err := s.store.Update(ctx, func(tx Tx) error {
		o, err := loadOrder(tx, orderID)
		if err != nil {
			return err
		}
		if o.State != StateAssigned {
			return Errorf(EConflict, "an order in state %s is not loaded", o.State)
		}
		var slot *Slot
		for i := range o.Slots {
			if o.Slots[i].Compartment == compartment {
				slot = &o.Slots[i]
			}
		}
		if slot == nil {
			return &Error{Code: EInvalid, Field: "compartment", Message: "the order does not hold this compartment"}
		}
		rec, err = s.command(tx, o.Site, protocol.Command{Kind: protocol.CmdOpen, Compartment: compartment,
			Purpose: protocol.PurposeLoading, Order: o.ID, Generation: slot.Generation, Actor: p.Subject})
		if err != nil {
			return err
		}
		audit(tx, s.now(), AuditEntry{Site: o.Site, Actor: p.Subject, Role: p.Role, Action: "remote_open_loading",
			Compartment: compartment, Order: o.ID, Credential: protocol.CredDriver, Command: rec.Command.ID})
		return nil
	})
	return rec, internal("open for loading", err)
}

// Sweep does what time decides: it expires loaded orders past their expiry, lapses
// orders never loaded by the end of their window plus LoadGrace, sends reminders, times
// out unanswered commands and revokes expired credentials. It returns how many orders it
// changed. Run calls it every minute; tests call it with an injected clock.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	now := s.now()
	var due []string
	err := s.store.View(ctx, func(tx Tx) error {
		end := dueKey(now, "~")
		return tx.Scan(bDue, "", func(k string, _ []byte) bool {
			if k > end {
				return false
			}
			due = append(due, k[13:])
			return len(due) < 10000
		})
	})
	if err != nil {
		return 0, internal("sweep", err)
	}
	changed := 0
	for _, id := range due {
		err := s.store.Update(ctx, func(tx Tx) error {
			o, err := loadOrder(tx, id)
			if err != nil {
				return err
			}
			d := s.deadline(o)
			if d.IsZero() || d.After(now) {
				return nil
			}
			st, err := loadSite(tx, o.Site)
			if err != nil {
				return err
			}
			old := *o
			switch {
			case o.State == StateAssigned && !anyLoaded(o):
				return s.finish(tx, st, o, StateCancelled, "not_loaded", NoteCancelled)
			case o.State == StateLoaded && !o.ExpiresAt.After(now), o.State == StateAssigned:
				o.State = StateExpired
				if err := s.putOrder(tx, o, &old); err != nil {
					return err
				}
				return s.note(tx, NoteExpired, o, nil)
			case o.State == StateLoaded:
				// One reminder, even if the sweep ran late and several are due.
				for o.Reminders++; o.Reminders < 2 && !s.reminderAt(o).After(now); o.Reminders++ {
				}
				if err := s.putOrder(tx, o, &old); err != nil {
					return err
				}
				r := o.Recipient
				return s.note(tx, NoteReminder, o, func(n *Notification) { n.Recipient, n.ExpiresAt = &r, o.ExpiresAt })
			}
			return nil
		})
		if err != nil {
			return changed, internal("sweep", err)
		}
		changed++
	}
	return changed, s.sweepCommandsAndCreds(ctx, now)
}

func (s *Service) sweepCommandsAndCreds(ctx context.Context, now time.Time) error {
	return internal("sweep", s.store.Update(ctx, func(tx Tx) error {
		var derr error
		tx.Scan(bCmds, "", func(k string, v []byte) bool {
			var rec CommandRecord
			if derr = json.Unmarshal(v, &rec); derr != nil {
				return false
			}
			if !rec.State.Final() && now.After(rec.Command.ExpiresAt.Add(time.Minute)) {
				rec.State, rec.Error, rec.Message, rec.Updated = protocol.StateTimedOut, protocol.ErrExpired, "no answer from the edge", now.UTC()
				derr = putJSON(tx, bCmds, k, rec)
			}
			return derr == nil
		})
		if derr != nil {
			return derr
		}
		revoke := map[string][]string{}
		tx.Scan(bCreds, "", func(k string, v []byte) bool {
			var c Credential
			if derr = json.Unmarshal(v, &c); derr != nil {
				return false
			}
			if !c.ExpiresAt.After(now) {
				revoke[c.Site] = append(revoke[c.Site], c.ID)
				derr = tx.Delete(bCreds, k)
			}
			return derr == nil
		})
		if derr != nil {
			return derr
		}
		for site, ids := range revoke {
			st, err := loadSite(tx, site)
			if err != nil {
				continue
			}
			s.publishDelta(tx, st, protocol.Desired{Revoke: ids})
			if err := putSite(tx, st); err != nil {
				return err
			}
		}
		return nil
	}))
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

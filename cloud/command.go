package cloud

import (
	"context"
	"encoding/json"
	"time"

	"github.com/larder-lockers/larder/protocol"
)

// Commands are jobs: the cloud records one as QUEUED, publishes it after the commit, and
// the edge's CommandAcks move it to SUCCEEDED / FAILED / TIMED_OUT / REJECTED. A command
// the edge never answers is TIMED_OUT by the sweep a minute after its expiry (sweep.go).

func (s *Service) command(tx Tx, site string, c protocol.Command) (CommandRecord, error) {
	now := s.now().UTC()
	c.ID = sortableID("cmd_", now)
	c.ExpiresAt = now.Add(s.pol.CommandTTL)
	if err := c.Validate(); err != nil {
		return CommandRecord{}, Invalid("command", "%v", err)
	}
	rec := CommandRecord{Site: site, Command: c, State: protocol.StateQueued, Created: now, Updated: now}
	if err := putCommand(tx, rec); err != nil {
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
		} else if err := closeAlarms(tx, site, itoa(n), protocol.EventLockJammed); err != nil {
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
		return putCommand(tx, rec)
	})
	if err == nil && failedOpen {
		s.stats.UnlockFailures.Add(1)
	}
	return internal("apply command ack", err)
}

// PendingCommands lists the commands without a final state, of one site (from the
// site's pending index) or (site "") of all, for the fleet adapter to re-arm and
// republish after a restart or a birth.
func (s *Service) PendingCommands(ctx context.Context, site string) ([]CommandRecord, error) {
	var out []CommandRecord
	err := s.store.View(ctx, func(tx Tx) error {
		var derr error
		if site != "" {
			var ids []string
			tx.Scan(bCmdsPending, site+"/", func(k string, _ []byte) bool {
				ids = append(ids, k[len(site)+1:])
				return true
			})
			for _, id := range ids {
				var rec CommandRecord
				ok, err := getJSON(tx, bCmds, id, &rec)
				if err != nil {
					return err
				}
				if ok && !rec.State.Final() {
					out = append(out, rec)
				}
			}
			return nil
		}
		tx.Scan(bCmds, "", func(_ string, v []byte) bool {
			var rec CommandRecord
			if derr = json.Unmarshal(v, &rec); derr != nil {
				return false
			}
			if !rec.State.Final() {
				out = append(out, rec)
			}
			return true
		})
		return derr
	})
	return out, internal("pending commands", err)
}

// putCommand saves rec and keeps the site's pending index: listed while the command has
// no final state, removed when it gets one.
func putCommand(tx Tx, rec CommandRecord) error {
	if err := putJSON(tx, bCmds, rec.Command.ID, rec); err != nil {
		return err
	}
	k := rec.Site + "/" + rec.Command.ID
	if rec.State.Final() {
		return tx.Delete(bCmdsPending, k)
	}
	return tx.Put(bCmdsPending, k, []byte{})
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

package cloud

import (
	"context"
	"encoding/json"
	"time"

	"github.com/larder-lockers/larder/protocol"
)

// The sweep: what time decides. Orders are found through the due index (bDue: each live
// order's next deadline, kept by putOrder), so a sweep reads only the orders whose time
// has come; what each one's deadline means is a lifecycle happening (lapse, expire,
// reminder), applied through the table in lifecycle.go. Commands and loading
// credentials are few and short-lived, and are scanned.

// Sweep does what time decides: it expires loaded orders past their expiry, lapses
// orders never loaded by the end of their window plus LoadGrace, sends reminders, times
// out unanswered commands, tells the held codes a connected edge has had CodeWait to
// apply (code.go), revokes expired credentials, forgets the idempotency keys past
// their retention (orders.go) and drops the failure counters whose window has ended
// (limits.go). It returns how many due orders it looked at (each in its
// own transaction). Run calls it every minute; tests call it with an injected clock.
//
// It runs once across the replicas sharing a store: it does nothing (0, nil) unless
// this process holds the periodic work (Options.Work), and its transactions carry the
// work lease's fence, so that a replica that paused past its lease cannot commit a
// sweep the new holder runs too.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	ctx, ok := s.work(ctx)
	if !ok {
		return 0, nil
	}
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
		if err := s.store.Update(ctx, func(tx Tx) error { return s.sweepOrder(tx, id, now) }); err != nil {
			return changed, internal("sweep", err)
		}
		changed++
	}
	return changed, internal("sweep", s.store.Update(ctx, func(tx Tx) error {
		if err := timeOutCommands(tx, now); err != nil {
			return err
		}
		if err := s.codeWaitsOver(tx, now); err != nil {
			return err
		}
		if err := s.revokeCredentials(tx, now); err != nil {
			return err
		}
		if err := forgetIdem(tx, now); err != nil {
			return err
		}
		return dropEndedWindows(tx, now)
	}))
}

// sweepOrder applies to order id the happening its passed deadline stands for.
func (s *Service) sweepOrder(tx Tx, id string, now time.Time) error {
	o, err := loadOrder(tx, id)
	if err != nil {
		return err
	}
	on := s.pol.due(o, now)
	if on == "" {
		return nil
	}
	st, err := loadSite(tx, o.Site)
	if err != nil {
		return err
	}
	v := st.DesiredVersion
	if err := s.apply(tx, st, o, &step{on: on, at: now, by: System}); err != nil {
		return err
	}
	if st.DesiredVersion == v {
		return nil // an expiry or a reminder: the edge is not told, the site is unchanged
	}
	return putSite(tx, st)
}

// due is what o's deadline means at now, "" if it has not passed: an order
// never loaded lapses; a loaded one past its expiry, or a partly loaded one past it,
// expires; a loaded one before its expiry is due a reminder.
func (p Policy) due(o *Order, now time.Time) happening {
	d := p.deadline(o)
	switch {
	case d.IsZero() || d.After(now):
		return ""
	case o.State == StateAssigned && !anyLoaded(o):
		return onLapse
	case o.State == StateLoaded && !o.ExpiresAt.After(now), o.State == StateAssigned:
		return onExpire
	case o.State == StateLoaded:
		return onReminder
	}
	return ""
}

// timeOutCommands gives up on the commands the edge never answered, a minute after
// their expiry (the edge refuses an expired command anyway).
func timeOutCommands(tx Tx, now time.Time) error {
	var derr error
	tx.Scan(bCmds, "", func(k string, v []byte) bool {
		var rec CommandRecord
		if derr = json.Unmarshal(v, &rec); derr != nil {
			return false
		}
		if !rec.State.Final() && now.After(rec.Command.ExpiresAt.Add(time.Minute)) {
			rec.State, rec.Error, rec.Message, rec.Updated = protocol.StateTimedOut, protocol.ErrExpired, "no answer from the edge", now.UTC()
			derr = putCommand(tx, rec)
		}
		return derr == nil
	})
	return derr
}

// revokeCredentials deletes the expired loading credentials and tells each site's edge,
// one delta per site.
func (s *Service) revokeCredentials(tx Tx, now time.Time) error {
	var derr error
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
}

package edge

import (
	"context"
	"errors"
	"time"

	"github.com/larder-lockers/larder/edge/hw"
	"github.com/larder-lockers/larder/protocol"
)

// HandleCommand takes one cloud command. It records the command durably (deduplicated by
// id) and queues QUEUED, then carries it out on its own goroutine, one command at a
// time, queueing IN_PROGRESS and the final state. A command id seen before is never
// carried out again: its last known state is queued again. "Opened" means the door's
// feedback showed it open (hw.Latch's contract), not that a relay fired.
//
// Acks are queued in the Store (Tx.QueueCommandAck) in the transaction that records the
// state they report, and Notify wakes the sync, which publishes them; so an ack made
// while the link is down, or lost with a restart, is still sent when the link returns.
func (l *Locker) HandleCommand(ctx context.Context, c protocol.Command) {
	now := l.clock.Now()
	var rec CommandRecord
	var existed bool
	err := l.cfg.Store.Update(func(tx Tx) error {
		var err error
		rec, existed, err = tx.Command(c.ID)
		if err != nil {
			return err
		}
		if existed {
			return tx.QueueCommandAck(now, rec.Ack()) // the cloud asks again: tell it again
		}
		rec = CommandRecord{ID: c.ID, Kind: c.Kind, State: protocol.StateQueued, Received: now}
		switch {
		case !now.Before(c.ExpiresAt):
			rec.State, rec.Error, rec.Message = protocol.StateRejected, protocol.ErrExpired, "arrived after its expiry"
		case c.Compartment != 0 && l.layout.specs[c.Compartment].Number == 0:
			rec.State, rec.Error, rec.Message = protocol.StateRejected, protocol.ErrUnknownCompartment, "no such compartment"
		}
		return putCommand(tx, now, rec)
	})
	if err != nil {
		l.log.Error("recording command failed", "cmd_id", c.ID, "err", err)
		return // the cloud will redeliver: nothing was promised
	}
	l.notify()
	if existed || rec.State.Final() {
		return
	}
	l.cmdWG.Add(1)
	go func() {
		defer l.cmdWG.Done()
		l.cmdMu.Lock()
		defer l.cmdMu.Unlock()
		l.runCommand(ctx, c)
	}()
}

// putCommand records a command's state and queues the ack that reports it, in one
// transaction (bolt's invariant 7: the newest queued ack of a command is its state).
func putCommand(tx Tx, now time.Time, rec CommandRecord) error {
	if err := tx.PutCommand(rec); err != nil {
		return err
	}
	return tx.QueueCommandAck(now, rec.Ack())
}

// WaitCommands waits for commands in progress (tests and shutdown).
func (l *Locker) WaitCommands() { l.cmdWG.Wait() }

func (l *Locker) finishCommand(id string, state protocol.CommandState, code protocol.ErrorCode, msg string) {
	err := l.cfg.Store.Update(func(tx Tx) error {
		rec, _, err := tx.Command(id)
		if err != nil {
			return err
		}
		rec.State, rec.Error, rec.Message = state, code, msg
		return putCommand(tx, l.clock.Now(), rec)
	})
	if err != nil {
		// The record keeps its unfinished state: the next start ends it TIMED_OUT and
		// queues that ack.
		l.log.Error("recording command state failed", "cmd_id", id, "err", err)
		return
	}
	l.notify()
}

func (l *Locker) runCommand(ctx context.Context, c protocol.Command) {
	now := l.clock.Now()
	var reject protocol.ErrorCode
	var msg string
	var sess *Session
	var rec CommandRecord
	err := l.cfg.Store.Update(func(tx Tx) error {
		reject, msg, sess = "", "", nil
		var err error
		rec, _, err = tx.Command(c.ID)
		if err != nil {
			return err
		}
		if rec.State != protocol.StateQueued {
			return nil // already moved on (a restart ended it, and queued its ack)
		}
		comp, _, err := tx.Compartment(c.Compartment)
		if err != nil {
			return err
		}
		switch c.Kind {
		case protocol.CmdOpen:
			if comp.State == StateOpening || comp.State == StateLoading {
				reject, msg = protocol.ErrBusy, "the door is already open for someone"
				break
			}
			if c.Purpose == protocol.PurposeLoading {
				if comp.Order != c.Order || comp.Generation != c.Generation || comp.State != StateReserved {
					reject, msg = protocol.ErrStaleGeneration, "the compartment is not reserved for that order and generation"
					break
				}
				s := Session{ID: newToken(), Kind: SessionLoading, Order: c.Order, Compartments: []int{c.Compartment},
					Credential: protocol.CredDriver, Actor: c.Actor, Started: now}
				if err := l.openDoors(tx, s, "loading (remote)", now); err != nil {
					return err
				}
				sess = &s
			} else if err := tx.Audit(AuditEntry{At: now, Compartment: c.Compartment, Reason: "ops: " + c.Reason,
				Credential: protocol.CredOpsRemote, Order: comp.Order, Actor: c.Actor}); err != nil {
				return err
			}
		case protocol.CmdOutOfService:
			if comp.State.Held() {
				reject, msg = protocol.ErrBusy, "the compartment holds an order"
				break
			}
			comp.State, comp.Reason, comp.Since = StateOutOfService, c.Reason, now
			if err := tx.PutCompartment(comp); err != nil {
				return err
			}
		case protocol.CmdInService:
			if comp.State == StateOutOfService || comp.State == StateJammed {
				comp.State, comp.Reason, comp.Since = StateFree, "", now
				if err := tx.PutCompartment(comp); err != nil {
					return err
				}
			}
		case protocol.CmdResync:
		default:
			reject, msg = protocol.ErrInvalidCommand, "unknown command kind"
		}
		if reject != "" {
			rec.State, rec.Error, rec.Message = protocol.StateRejected, reject, msg
		} else if c.Kind == protocol.CmdOpen {
			rec.State = protocol.StateInProgress
		} else {
			rec.State = protocol.StateSucceeded
		}
		return putCommand(tx, now, rec)
	})
	if err != nil {
		l.log.Error("command failed", "cmd_id", c.ID, "err", err)
		l.finishCommand(c.ID, protocol.StateFailed, protocol.ErrInternal, "store failure")
		return
	}
	l.notify()
	if rec.State != protocol.StateInProgress {
		l.refreshGauges()
		return
	}
	// An open: pulse, then report what the door's feedback said.
	if sess != nil {
		l.trackSession(*sess)
	} else {
		l.mu.Lock()
		l.opsOpen[c.Compartment] = protocol.CredOpsRemote
		l.mu.Unlock()
	}
	uctx, cancel := context.WithTimeout(ctx, commandOpenTimeout)
	err = l.unlock(uctx, c.Compartment)
	cancel()
	switch {
	case err == nil:
		l.log.Info("command carried out", "cmd_id", c.ID, "compartment", c.Compartment)
		l.finishCommand(c.ID, protocol.StateSucceeded, "", "")
		return
	case errors.Is(err, hw.ErrJammed):
		if sess != nil {
			l.recordJams(*sess, []int{c.Compartment}, []error{err})
		} else {
			_ = l.cfg.Store.Update(func(tx Tx) error {
				return enqueue(tx, l.clock.Now(), protocol.Event{Kind: protocol.EventLockJammed, Credential: protocol.CredOpsRemote, Compartment: c.Compartment})
			})
			l.notify()
		}
		l.finishCommand(c.ID, protocol.StateFailed, protocol.ErrJammed, "the door did not open")
	case errors.Is(err, hw.ErrBoardOffline):
		l.finishCommand(c.ID, protocol.StateFailed, protocol.ErrBoardOffline, "the lock board does not answer")
	case errors.Is(err, context.DeadlineExceeded):
		l.finishCommand(c.ID, protocol.StateTimedOut, protocol.ErrInternal, "no confirmation in time")
	default:
		l.finishCommand(c.ID, protocol.StateFailed, protocol.ErrInternal, err.Error())
	}
	if sess != nil {
		_ = l.abandon(*sess)
	}
	l.mu.Lock()
	delete(l.opsOpen, c.Compartment)
	l.mu.Unlock()
}

// commandOpenTimeout bounds a remote open: past it the command is TIMED_OUT.
const commandOpenTimeout = 15 * time.Second

// endInterruptedCommands marks commands that a restart interrupted as TIMED_OUT and
// queues that ack: their relay may or may not have fired, and a command is never carried
// out twice.
func endInterruptedCommands(tx Tx, now time.Time, ids []string) error {
	for _, id := range ids {
		rec, ok, err := tx.Command(id)
		if err != nil || !ok {
			return err
		}
		if !rec.State.Final() {
			rec.State, rec.Error, rec.Message = protocol.StateTimedOut, protocol.ErrInternal, "the edge restarted while carrying it out"
			if err := putCommand(tx, now, rec); err != nil {
				return err
			}
		}
	}
	return nil
}

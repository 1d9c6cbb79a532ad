package bolt

import (
	"encoding/json"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/larder-lockers/larder/edge"
	"github.com/larder-lockers/larder/protocol"
)

// Entry is one outbox event as it travels: its sequence and its encoded envelope.
type Entry struct {
	Seq     uint64
	Payload []byte
}

// Pending returns up to max events with Seq > after, in order and contiguous.
func (s *Store) Pending(after uint64, max int) ([]Entry, error) {
	var out []Entry
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bOutbox).Cursor()
		for k, v := c.Seek(u64(after + 1)); k != nil && len(out) < max; k, v = c.Next() {
			out = append(out, Entry{Seq: beU64(k), Payload: append([]byte(nil), v...)})
		}
		return nil
	})
	return out, err
}

// Ack records the cloud's cumulative acknowledgement and deletes the acknowledged
// events, except those the cloud rejected, which it sets aside in the same transaction
// (see [Store.RejectedEvents]) and returns. Idempotent; a seq beyond the high water
// changes nothing and wraps ErrAckBeyond.
func (s *Store) Ack(seq uint64, rejected ...protocol.Rejection) ([]RejectedEvent, error) {
	var moved []RejectedEvent
	err := s.db.Update(func(tx *bbolt.Tx) error {
		moved = nil
		meta := tx.Bucket(bMeta)
		acked := getU64(meta, kOutboxAcked)
		if seq <= acked {
			return nil
		}
		high := highWater(meta)
		if seq > high {
			return fmt.Errorf("bolt: ack %d, high water %d: %w", seq, high, ErrAckBeyond)
		}
		var err error
		if moved, err = setAside(tx, acked, seq, rejected, time.Now()); err != nil {
			return err
		}
		b := tx.Bucket(bOutbox)
		for q := acked + 1; q <= seq; q++ {
			if err := b.Delete(u64(q)); err != nil {
				return err
			}
		}
		return meta.Put(kOutboxAcked, u64(seq))
	})
	if err != nil {
		return nil, err
	}
	return moved, nil
}

// Acked returns the highest acknowledged sequence.
func (s *Store) Acked() (uint64, error) {
	var v uint64
	err := s.db.View(func(tx *bbolt.Tx) error { v = getU64(tx.Bucket(bMeta), kOutboxAcked); return nil })
	return v, err
}

// HighWater returns the sequence of the last event written (0: none).
func (s *Store) HighWater() (uint64, error) {
	var v uint64
	err := s.db.View(func(tx *bbolt.Tx) error { v = highWater(tx.Bucket(bMeta)); return nil })
	return v, err
}

// Depth is how many events await acknowledgement.
func (s *Store) Depth() (int, error) {
	var d int
	err := s.db.View(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bMeta)
		d = int(highWater(meta) - getU64(meta, kOutboxAcked))
		return nil
	})
	return d, err
}

func highWater(meta *bbolt.Bucket) uint64 {
	n := getU64(meta, kOutboxNext)
	if n == 0 {
		return 0
	}
	return n - 1
}

func beU64(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

// Retention of finished records, counted from now in Prune.
const (
	// CommandRetention keeps final command records long enough to answer any redelivery
	// (commands expire within minutes) with the same ack.
	CommandRetention = 7 * 24 * time.Hour
	// TombstoneRetention keeps finished orders long enough that no late desired state can
	// bring one back (the cloud drops them from its snapshots within hours).
	TombstoneRetention = 30 * 24 * time.Hour
)

// Prune deletes inbox ids that expired before now, command acks older than
// CommandAckRetention, drivers' kiosk sessions that have ended, final command records
// older than CommandRetention and finished orders older than TombstoneRetention. It
// returns how many records it deleted. Call it now and then (larder-edge: hourly).
func (s *Store) Prune(now time.Time) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bbolt.Tx) error {
		n = 0
		var dead [][]byte
		collect := func(b *bbolt.Bucket, doomed func(v []byte) bool) error {
			dead = dead[:0]
			err := b.ForEach(func(k, v []byte) error {
				if doomed(v) {
					dead = append(dead, append([]byte(nil), k...))
				}
				return nil
			})
			if err != nil {
				return err
			}
			for _, k := range dead {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
			n += len(dead)
			return nil
		}
		if err := collect(tx.Bucket(bInbox), func(v []byte) bool {
			return len(v) == 8 && int64(beU64(v)) < now.UnixNano()
		}); err != nil {
			return err
		}
		if err := collect(tx.Bucket(bCommandAcks), expiredCommandAck(now)); err != nil {
			return err
		}
		if err := collect(tx.Bucket(bDriverTokens), expiredDriverToken(now)); err != nil {
			return err
		}
		queued := queuedAckCommands(tx) // a record outlives its queued acks (invariant 7)
		if err := collect(tx.Bucket(bCommands), func(v []byte) bool {
			var c edge.CommandRecord
			return json.Unmarshal(v, &c) == nil && c.State.Final() && now.Sub(c.Received) > CommandRetention && !queued[c.ID]
		}); err != nil {
			return err
		}
		var old []string
		err := tx.Bucket(bReservations).ForEach(func(k, v []byte) error {
			var r edge.Reservation
			if json.Unmarshal(v, &r) == nil && !r.State.Holds() && !r.Finished.IsZero() && now.Sub(r.Finished) > TombstoneRetention {
				old = append(old, r.Order)
			}
			return nil
		})
		if err != nil {
			return err
		}
		t := &txn{tx: tx}
		for _, o := range old {
			if err := t.DeleteReservation(o); err != nil {
				return err
			}
		}
		n += len(old)
		return nil
	})
	return n, err
}

// AuditLog returns the audit entries in order (for tests and ops tools).
func (s *Store) AuditLog() ([]edge.AuditEntry, error) {
	var out []edge.AuditEntry
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bAudit).ForEach(func(k, v []byte) error {
			a, _, err := get[edge.AuditEntry](tx.Bucket(bAudit), k)
			out = append(out, a)
			return err
		})
	})
	return out, err
}

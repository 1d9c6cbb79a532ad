package bolt

import (
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/larder-lockers/larder/protocol"
)

// The command-ack queue: every CommandAck the core produces is written here, in the
// same transaction as the command state it reports, and stays until the broker has
// taken its publish (the sync calls CommandAckSent after the PUBACK) or until
// CommandAckRetention has passed (Prune). So an ack produced offline, or whose publish
// was cut off, survives a restart and goes out when the link returns.

var bCommandAcks = []byte("command_acks")

// CommandAckRetention bounds how long an ack waits for the broker. The cloud times a
// command out 30 s after its expiry (which it sets 2 min after sending, by default) and
// then keeps that final state whatever ack comes later, and what the door did is in the
// outbox's events anyway; a day covers skewed clocks and a cloud configured with long
// commands, and bounds the queue by the acks of one day.
const CommandAckRetention = 24 * time.Hour

// CommandAck is one queued ack as it travels: its queue key and its encoded envelope.
type CommandAck struct {
	Key     uint64
	Payload []byte
}

func (t *txn) QueueCommandAck(at time.Time, a protocol.CommandAck) error {
	payload, err := protocol.Encode(protocol.Header{ID: protocol.NewID(), Time: at}, a)
	if err != nil {
		return fmt.Errorf("bolt: queue command ack %s: %w", a.CommandID, err)
	}
	b := t.b(bCommandAcks)
	key, err := b.NextSequence()
	if err != nil {
		return err
	}
	return b.Put(u64(key), payload)
}

// PendingCommandAcks returns up to max queued acks, oldest first.
func (s *Store) PendingCommandAcks(max int) ([]CommandAck, error) {
	var out []CommandAck
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bCommandAcks).Cursor()
		for k, v := c.First(); k != nil && len(out) < max; k, v = c.Next() {
			out = append(out, CommandAck{Key: beU64(k), Payload: append([]byte(nil), v...)})
		}
		return nil
	})
	return out, err
}

// CommandAckSent deletes the queued ack with key once the broker has taken it.
// Idempotent.
func (s *Store) CommandAckSent(key uint64) error {
	return s.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bCommandAcks).Delete(u64(key)) })
}

// CommandAcksPending is how many acks wait for the broker.
func (s *Store) CommandAcksPending() (int, error) {
	var n int
	err := s.db.View(func(tx *bbolt.Tx) error { n = tx.Bucket(bCommandAcks).Stats().KeyN; return nil })
	return n, err
}

// expiredCommandAck reports whether a queued ack was written more than
// CommandAckRetention before now. One that does not decode is kept: Check reports it.
func expiredCommandAck(now time.Time) func(v []byte) bool {
	return func(v []byte) bool {
		m, err := protocol.Decode(v)
		return err == nil && now.Sub(m.Time) > CommandAckRetention
	}
}

// queuedAckCommands is the set of command ids with a queued ack.
func queuedAckCommands(tx *bbolt.Tx) map[string]bool {
	ids := map[string]bool{}
	_ = tx.Bucket(bCommandAcks).ForEach(func(_, v []byte) error {
		if m, err := protocol.Decode(v); err == nil {
			if a, ok := m.Body.(protocol.CommandAck); ok {
				ids[a.CommandID] = true
			}
		}
		return nil
	})
	return ids
}

// checkCommandAcks verifies invariant 7 (package doc).
func checkCommandAcks(tx *bbolt.Tx, bad func(string, ...any)) error {
	t := &txn{tx: tx}
	b := tx.Bucket(bCommandAcks)
	newest := map[string]protocol.CommandAck{}
	err := b.ForEach(func(k, v []byte) error {
		key := beU64(k)
		if key == 0 || key > b.Sequence() {
			bad("command ack key %d beyond the queue's sequence %d", key, b.Sequence())
		}
		m, err := protocol.Decode(v)
		if err != nil {
			bad("command ack %d does not decode: %v", key, err)
			return nil
		}
		a, ok := m.Body.(protocol.CommandAck)
		if !ok {
			bad("command ack %d holds a %s", key, m.Type)
			return nil
		}
		newest[a.CommandID] = a
		return nil
	})
	if err != nil {
		return err
	}
	for id, a := range newest {
		rec, ok, err := t.Command(id)
		switch {
		case err != nil:
			return err
		case !ok:
			bad("command ack for command %s, which has no record", id)
		case rec.Ack() != a:
			bad("newest queued ack of command %s says %s, its record %s", id, a.State, rec.State)
		}
	}
	return nil
}

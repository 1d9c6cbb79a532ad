package bolt

import (
	"encoding/json"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/larder-lockers/larder/protocol"
)

// bRejected holds the outbox events the cloud rejected (protocol.EventAck.Rejected), by
// sequence: set aside for inspection instead of deleted with the rest of an ack.
var bRejected = []byte("rejected_events")

// MaxRejected bounds the rejected events kept; the oldest go first. The cloud only
// rejects what a broken or mismatched edge wrote, so a handful is already an incident.
const MaxRejected = 1000

// RejectedEvent is an outbox event the cloud rejected, kept as it was sent.
type RejectedEvent struct {
	protocol.Rejection
	// At is when the edge learnt of the rejection.
	At time.Time `json:"at"`
	// Payload is the envelope exactly as the outbox held and sent it.
	Payload json.RawMessage `json:"payload"`
}

// setAside moves the outbox events named in rejected, after acked and up to seq, into
// the rejected bucket, within tx; it returns those it moved. A rejection of an event the
// outbox no longer holds is ignored (the cloud repeats rejections in later acks).
func setAside(tx *bbolt.Tx, acked, seq uint64, rejected []protocol.Rejection, now time.Time) ([]RejectedEvent, error) {
	ob, rb := tx.Bucket(bOutbox), tx.Bucket(bRejected)
	var moved []RejectedEvent
	for _, r := range rejected {
		if r.Seq <= acked || r.Seq > seq {
			continue
		}
		payload := ob.Get(u64(r.Seq))
		if payload == nil {
			continue
		}
		re := RejectedEvent{Rejection: r, At: now.UTC(), Payload: append(json.RawMessage(nil), payload...)}
		if !json.Valid(re.Payload) {
			// Kept all the same, as a JSON string: what was sent is the evidence.
			re.Payload, _ = json.Marshal(string(payload))
		}
		if err := put(rb, u64(r.Seq), re); err != nil {
			return nil, err
		}
		if err := ob.Delete(u64(r.Seq)); err != nil {
			return nil, err
		}
		moved = append(moved, re)
	}
	if len(moved) == 0 {
		return nil, nil
	}
	n := 0
	c := rb.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		n++
	}
	for ; n > MaxRejected; n-- {
		k, _ := rb.Cursor().First()
		if err := rb.Delete(k); err != nil {
			return nil, err
		}
	}
	return moved, nil
}

// RejectedEvents returns the rejected events kept, oldest sequence first.
func (s *Store) RejectedEvents() ([]RejectedEvent, error) {
	var out []RejectedEvent
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bRejected).ForEach(func(_, v []byte) error {
			var re RejectedEvent
			if err := json.Unmarshal(v, &re); err != nil {
				return err
			}
			out = append(out, re)
			return nil
		})
	})
	return out, err
}

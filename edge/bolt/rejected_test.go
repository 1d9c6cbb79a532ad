package bolt_test

import (
	"testing"
	"time"

	"github.com/larder-lockers/larder/edge"
	"github.com/larder-lockers/larder/edge/bolt"
	"github.com/larder-lockers/larder/edge/bolt/boltest"
	"github.com/larder-lockers/larder/protocol"
)

// TestAckSetsRejectedAside: an ack naming a rejected event keeps that event, byte for
// byte, in the rejected bucket while the rest of the ack is deleted; a rejection outside
// the ack's range, or of an event already gone, changes nothing; the bucket is bounded.
func TestAckSetsRejectedAside(t *testing.T) {
	s := boltest.Open(t) // boltest checks the invariants, 7 included, when the test ends
	enqueue := func(n int) {
		t.Helper()
		if err := s.Update(func(tx edge.Tx) error {
			for range n {
				if _, err := tx.Enqueue(time.Now(), protocol.Event{Kind: protocol.EventHelpRequested, Credential: protocol.CredNone}); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	enqueue(4)
	sent, _ := s.Pending(1, 1)
	rej := func(seq uint64) protocol.Rejection {
		return protocol.Rejection{Seq: seq, Error: protocol.ErrInvalidEvent, Field: "body.kind", Message: "required"}
	}
	moved, err := s.Ack(3, rej(2), rej(4))
	if err != nil {
		t.Fatal(err)
	}
	if len(moved) != 1 || moved[0].Seq != 2 {
		t.Fatalf("moved %+v, want seq 2 only (4 is beyond the ack)", moved)
	}
	kept, err := s.RejectedEvents()
	if err != nil {
		t.Fatal(err)
	}
	if len(kept) != 1 || kept[0].Rejection != rej(2) || string(kept[0].Payload) != string(sent[0].Payload) {
		t.Fatalf("kept %+v, want seq 2 as sent (%s)", kept, sent[0].Payload)
	}
	if pend, _ := s.Pending(3, 10); len(pend) != 1 || pend[0].Seq != 4 {
		t.Fatalf("pending %+v, want 4 alone", pend)
	}
	// A repeat for an event already set aside changes nothing.
	if moved, err := s.Ack(4, rej(2)); err != nil || len(moved) != 0 {
		t.Fatalf("repeat: moved %+v, %v", moved, err)
	}

	// At most MaxRejected are kept, the oldest dropped.
	enqueue(bolt.MaxRejected + 1)
	var all []protocol.Rejection
	for seq := uint64(5); seq <= 4+bolt.MaxRejected+1; seq++ {
		all = append(all, rej(seq))
	}
	if _, err := s.Ack(4+bolt.MaxRejected+1, all...); err != nil {
		t.Fatal(err)
	}
	kept, _ = s.RejectedEvents()
	if len(kept) != bolt.MaxRejected || kept[0].Seq != 6 {
		t.Fatalf("kept %d from seq %d, want %d from 6", len(kept), kept[0].Seq, bolt.MaxRejected)
	}
}

package bolt_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/larder-lockers/larder/edge"
	"github.com/larder-lockers/larder/edge/bolt"
	"github.com/larder-lockers/larder/edge/bolt/boltest"
	"github.com/larder-lockers/larder/protocol"
)

// putCommand records a command state with its ack, as the core does.
func putCommand(t *testing.T, s *bolt.Store, at time.Time, rec edge.CommandRecord) {
	t.Helper()
	if err := s.Update(func(tx edge.Tx) error {
		if err := tx.PutCommand(rec); err != nil {
			return err
		}
		return tx.QueueCommandAck(at, rec.Ack())
	}); err != nil {
		t.Fatal(err)
	}
}

func ackOf(t *testing.T, a bolt.CommandAck) protocol.Message {
	t.Helper()
	m, err := protocol.Decode(a.Payload)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestCommandAcksQueue: acks wait in order across a reopen of the store, are removed
// one by one as the broker takes them, and a failed transaction queues nothing.
func TestCommandAcksQueue(t *testing.T) {
	path := filepath.Join(t.TempDir(), "edge.db")
	s := boltest.OpenAt(t, path)
	at := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	rec := edge.CommandRecord{ID: "cmd-1", Kind: protocol.CmdOpen, State: protocol.StateQueued, Received: at}
	putCommand(t, s, at, rec)
	rec.State = protocol.StateInProgress
	putCommand(t, s, at.Add(time.Second), rec)
	_ = s.Update(func(tx edge.Tx) error {
		tx.QueueCommandAck(at, protocol.CommandAck{CommandID: "cmd-1", State: protocol.StateSucceeded})
		return errors.New("rollback")
	})
	// An ack that would not be valid on the wire is refused when it is queued, not sent.
	if err := s.Update(func(tx edge.Tx) error {
		return tx.QueueCommandAck(at, protocol.CommandAck{CommandID: "cmd-1", State: protocol.StateFailed})
	}); err == nil {
		t.Fatal("a FAILED ack without its error was queued")
	}

	s.Close()
	s = boltest.OpenAt(t, path)
	as, err := s.PendingCommandAcks(10)
	if err != nil || len(as) != 2 {
		t.Fatalf("pending after reopen: %d %v", len(as), err)
	}
	first := ackOf(t, as[0])
	if a := first.Body.(protocol.CommandAck); a.State != protocol.StateQueued || !first.Time.Equal(at) {
		t.Fatalf("first ack %+v at %v", a, first.Time)
	}
	if a := ackOf(t, as[1]).Body.(protocol.CommandAck); a.State != protocol.StateInProgress {
		t.Fatalf("second ack %+v", a)
	}
	if n, _ := s.CommandAcksPending(); n != 2 {
		t.Fatalf("%d pending", n)
	}
	// A resend is the very same bytes (the same message id).
	again, _ := s.PendingCommandAcks(1)
	if string(again[0].Payload) != string(as[0].Payload) {
		t.Fatal("payload changed between reads")
	}
	for range 2 { // idempotent
		if err := s.CommandAckSent(as[0].Key); err != nil {
			t.Fatal(err)
		}
	}
	left, _ := s.PendingCommandAcks(10)
	if len(left) != 1 || left[0].Key != as[1].Key {
		t.Fatalf("left %+v", left)
	}
}

// TestCommandAcksExpire: Prune drops acks older than CommandAckRetention and keeps the
// command record of an ack still queued, however old the record.
func TestCommandAcksExpire(t *testing.T) {
	s := boltest.Open(t)
	now := time.Date(2026, 6, 10, 0, 0, 0, 0, time.UTC)
	putCommand(t, s, now.Add(-bolt.CommandAckRetention-time.Second), edge.CommandRecord{ID: "stale", State: protocol.StateSucceeded, Received: now.Add(-25 * time.Hour)})
	putCommand(t, s, now.Add(-time.Hour), edge.CommandRecord{ID: "fresh", State: protocol.StateSucceeded, Received: now.Add(-time.Hour)})
	// Redelivered after a week: its record is old, its ack new.
	putCommand(t, s, now.Add(-time.Minute), edge.CommandRecord{ID: "old", State: protocol.StateRejected, Error: protocol.ErrExpired,
		Received: now.Add(-8 * 24 * time.Hour)})
	if n, err := s.Prune(now); err != nil || n != 1 {
		t.Fatalf("pruned %d: %v", n, err)
	}
	as, _ := s.PendingCommandAcks(10)
	var ids []string
	for _, a := range as {
		ids = append(ids, ackOf(t, a).Body.(protocol.CommandAck).CommandID)
	}
	if strings.Join(ids, " ") != "fresh old" {
		t.Fatalf("acks left: %v", ids)
	}
	s.View(func(tx edge.Tx) error {
		if _, ok, _ := tx.Command("old"); !ok {
			t.Error("the record of a queued ack was pruned")
		}
		return nil
	})
}

func TestCheckFindsAckViolations(t *testing.T) {
	s, err := bolt.Open(filepath.Join(t.TempDir(), "edge.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	at := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	err = s.Update(func(tx edge.Tx) error {
		// An ack for a command never recorded.
		tx.QueueCommandAck(at, protocol.CommandAck{CommandID: "ghost", State: protocol.StateQueued})
		// A state recorded without its ack.
		tx.PutCommand(edge.CommandRecord{ID: "cmd-2", State: protocol.StateQueued})
		tx.QueueCommandAck(at, protocol.CommandAck{CommandID: "cmd-2", State: protocol.StateQueued})
		return tx.PutCommand(edge.CommandRecord{ID: "cmd-2", State: protocol.StateSucceeded})
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Check()
	for _, want := range []string{"command ghost, which has no record", "command cmd-2 says QUEUED, its record SUCCEEDED"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check did not report %q: %v", want, err)
		}
	}
}

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

func TestSecondOpenFailsFast(t *testing.T) {
	path := filepath.Join(t.TempDir(), "edge.db")
	s := boltest.OpenAt(t, path)
	start := time.Now()
	_, err := bolt.Open(path, bolt.Options{Timeout: 100 * time.Millisecond})
	if !errors.Is(err, bolt.ErrLocked) || !strings.Contains(err.Error(), "another larder-edge") {
		t.Fatalf("second open: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("second open waited %v", d)
	}
	_ = s
}

func TestOutbox(t *testing.T) {
	s := boltest.Open(t)
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range 5 {
		err := s.Update(func(tx edge.Tx) error {
			seq, err := tx.Enqueue(at, protocol.Event{Kind: protocol.EventDoorClosed, Credential: protocol.CredNone, Compartment: i + 1})
			if seq != uint64(i+1) {
				t.Fatalf("seq %d, want %d", seq, i+1)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// A failed transaction leaves no hole.
	_ = s.Update(func(tx edge.Tx) error {
		tx.Enqueue(at, protocol.Event{Kind: protocol.EventDoorClosed, Credential: protocol.CredNone, Compartment: 9})
		return errors.New("rollback")
	})
	es, _ := s.Pending(2, 10)
	if len(es) != 3 || es[0].Seq != 3 {
		t.Fatalf("pending %+v", es)
	}
	m, err := protocol.Decode(es[0].Payload)
	if err != nil || m.Seq != 3 || !m.Time.Equal(at) || m.Body.(protocol.Event).Compartment != 3 {
		t.Fatalf("envelope %+v %v", m, err)
	}
	// Redelivery carries the very same bytes (same message id).
	again, _ := s.Pending(2, 1)
	if string(again[0].Payload) != string(es[0].Payload) {
		t.Fatal("payload changed between reads")
	}
	if _, err := s.Ack(3); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Ack(2); err != nil {
		t.Fatal("an old ack must be a no-op")
	}
	if _, err := s.Ack(9); !errors.Is(err, bolt.ErrAckBeyond) {
		t.Fatalf("ack beyond: %v", err)
	}
	if a, _ := s.Acked(); a != 3 {
		t.Fatalf("acked %d", a)
	}
	if d, _ := s.Depth(); d != 2 {
		t.Fatalf("depth %d", d)
	}
	if h, _ := s.HighWater(); h != 5 {
		t.Fatalf("high water %d", h)
	}
}

func TestCodeIndexFollowsState(t *testing.T) {
	s := boltest.Open(t)
	r := edge.Reservation{Order: "o1", State: edge.OrderReserved, CodeDigest: "d1", Slots: []edge.Slot{{Compartment: 1, Generation: 1}}}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	lookup := func(d string) (string, bool) {
		var o string
		var ok bool
		_ = s.View(func(tx edge.Tx) error { o, ok, _ = tx.OrderByCode(d); return nil })
		return o, ok
	}
	must(s.Update(func(tx edge.Tx) error {
		must(tx.PutCompartment(edge.Compartment{Number: 1, State: edge.StateReserved, Order: "o1", Generation: 1}))
		return tx.PutReservation(r)
	}))
	if o, ok := lookup("d1"); !ok || o != "o1" {
		t.Fatal("no index entry")
	}
	r.CodeDigest = "d2" // reissued
	must(s.Update(func(tx edge.Tx) error { return tx.PutReservation(r) }))
	if _, ok := lookup("d1"); ok {
		t.Fatal("old digest still indexed")
	}
	r.State = edge.OrderPickedUp // single use
	must(s.Update(func(tx edge.Tx) error {
		must(tx.PutCompartment(edge.Compartment{Number: 1, State: edge.StateFree, Generation: 1}))
		return tx.PutReservation(r)
	}))
	if _, ok := lookup("d2"); ok {
		t.Fatal("picked-up order still indexed")
	}
	// Another order may not take a live digest.
	err := s.Update(func(tx edge.Tx) error {
		must(tx.PutReservation(edge.Reservation{Order: "o2", State: edge.OrderCancelled, CodeDigest: "d3"}))
		must(tx.PutReservation(edge.Reservation{Order: "o3", State: edge.OrderReserved, CodeDigest: "d3"}))
		return tx.PutReservation(edge.Reservation{Order: "o4", State: edge.OrderReserved, CodeDigest: "d3"})
	})
	if err == nil {
		t.Fatal("two live orders share a digest")
	}
}

func TestCheckFindsViolations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "edge.db")
	s, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.Update(func(tx edge.Tx) error {
		// Two orders in compartment 1, one of them not named by the compartment.
		tx.PutCompartment(edge.Compartment{Number: 1, State: edge.StateLoaded, Order: "a"})
		tx.PutReservation(edge.Reservation{Order: "a", State: edge.OrderLoaded, CodeDigest: "x", Slots: []edge.Slot{{Compartment: 1, Loaded: true}}})
		tx.PutReservation(edge.Reservation{Order: "b", State: edge.OrderLoaded, CodeDigest: "y", Slots: []edge.Slot{{Compartment: 1, Loaded: true}}})
		// A session of an order that does not exist.
		return tx.PutSession(edge.Session{ID: "s", Kind: edge.SessionPickup, Order: "zz", Compartments: []int{1}})
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Check()
	for _, want := range []string{"held by orders a and b", "session pickup names order zz"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check did not report %q: %v", want, err)
		}
	}
}

func TestPrune(t *testing.T) {
	s := boltest.Open(t)
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	err := s.Update(func(tx edge.Tx) error {
		tx.MarkSeen("old", now.Add(-time.Second))
		tx.MarkSeen("new", now.Add(time.Hour))
		tx.PutCommand(edge.CommandRecord{ID: "c-old", State: protocol.StateSucceeded, Received: now.Add(-8 * 24 * time.Hour)})
		tx.PutCommand(edge.CommandRecord{ID: "c-new", State: protocol.StateSucceeded, Received: now.Add(-time.Hour)})
		tx.PutReservation(edge.Reservation{Order: "gone", State: edge.OrderPickedUp, Finished: now.Add(-31 * 24 * time.Hour)})
		return tx.PutReservation(edge.Reservation{Order: "recent", State: edge.OrderPickedUp, Finished: now.Add(-24 * time.Hour)})
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.Prune(now); err != nil || n != 3 {
		t.Fatalf("pruned %d: %v", n, err)
	}
	s.View(func(tx edge.Tx) error {
		if seen, _ := tx.Seen("new"); !seen {
			t.Error("live inbox id pruned")
		}
		if _, ok, _ := tx.Command("c-new"); !ok {
			t.Error("recent command pruned")
		}
		if _, ok, _ := tx.Reservation("recent"); !ok {
			t.Error("recent tombstone pruned")
		}
		if _, ok, _ := tx.Reservation("gone"); ok {
			t.Error("old tombstone kept")
		}
		return nil
	})
}

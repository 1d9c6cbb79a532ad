package e2e_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/larder-lockers/larder/demo"
	"github.com/larder-lockers/larder/edge"
	"github.com/larder-lockers/larder/edge/bolt"
)

// withEdgeStore opens the stopped edge's store.
func (s *system) withEdgeStore(fn func(*bolt.Store) error) {
	s.t.Helper()
	st, err := bolt.Open(filepath.Join(s.edge.Opts.DataDir, "edge.db"), bolt.Options{})
	if err != nil {
		s.t.Fatal(err)
	}
	defer st.Close()
	if err := fn(st); err != nil {
		s.t.Fatal(err)
	}
}

// TestEdgeOutageExtendsOnce: an outage only the edge can measure (it was stopped; its
// record of the outage is moved 10 minutes into the past, as if it had been down that
// long) reaches the cloud as the edge's outage event when it is back: the cloud moves
// the loaded order's deadline by the outage once, and the edge's deadline is then the
// cloud's, with the food-safety cap beside it.
func TestEdgeOutageExtendsOnce(t *testing.T) {
	s := newSystem(t, sysOpts{hold: 2 * time.Hour})
	rc := s.order("ext-outage-1", "+8613600136000", "platform", demo.Parcel{Size: "M", Zone: "chilled"})
	s.load(s.driverToken(), rc.Order)
	before := s.waitState(rc.Order.ID, "loaded", 20*time.Second)

	if err := s.edge.Stop(); err != nil {
		t.Fatal(err)
	}
	s.waitOnline(false, 30*time.Second)
	s.withEdgeStore(func(st *bolt.Store) error {
		return st.Update(func(tx edge.Tx) error {
			k, err := tx.Link()
			if err != nil || k.Down.IsZero() {
				t.Fatalf("link record of the stopped edge: %+v, %v; want down since the stop", k, err)
			}
			k.Down = k.Down.Add(-10 * time.Minute)
			return tx.PutLink(k)
		})
	})
	restarted := time.Now()
	s.startEdge()
	var after demo.Order
	if err := demo.Eventually(s.ctx, 30*time.Second, "deadline extended", func() error {
		var err error
		after, err = s.platform.Order(s.ctx, rc.Order.ID)
		if err == nil && !after.ExpiresAt.After(before.ExpiresAt) {
			err = fmt.Errorf("expires at %v, as before", after.ExpiresAt)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	s.waitDrained(30 * time.Second)
	s.waitEdgeDesired(30 * time.Second)
	after, err := s.platform.Order(s.ctx, rc.Order.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Ten minutes of backdating plus the real time of the stop and the restart, once.
	got, most := after.ExpiresAt.Sub(before.ExpiresAt), 10*time.Minute+time.Since(restarted)+30*time.Second
	t.Logf("deadline moved by %v", got)
	if got < 10*time.Minute || got > most {
		t.Errorf("deadline moved by %v, want the outage of 10 min and a few seconds, once", got)
	}

	if err := s.edge.Stop(); err != nil {
		t.Fatal(err)
	}
	s.withEdgeStore(func(st *bolt.Store) error {
		return st.View(func(tx edge.Tx) error {
			r, ok, err := tx.Reservation(rc.Order.ID)
			if err != nil || !ok {
				t.Fatalf("edge reservation: %v %v", ok, err)
			}
			if !r.ExpiresAt.Equal(after.ExpiresAt) {
				t.Errorf("edge deadline %v, cloud's %v", r.ExpiresAt, after.ExpiresAt)
			}
			if want := after.LoadedAt.Add(24 * time.Hour); !r.MaxExpiresAt.Equal(want) {
				t.Errorf("edge's cap %v, want 24 h after loading %v", r.MaxExpiresAt, want)
			}
			return nil
		})
	})
}

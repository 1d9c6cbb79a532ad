package cloud_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/cloud/bolt"
	"github.com/larder-lockers/larder/protocol"
)

// countingStore is the real store with a tally of the reads and writes of one bucket in
// the last read-write transaction.
type countingStore struct {
	cloud.Store
	bucket string
	mu     sync.Mutex
	gets   int // guarded by mu
	puts   int // guarded by mu
}

func (s *countingStore) Update(ctx context.Context, fn func(cloud.Tx) error) error {
	return s.Store.Update(ctx, func(tx cloud.Tx) error {
		s.mu.Lock()
		s.gets, s.puts = 0, 0
		s.mu.Unlock()
		return fn(countingTx{tx, s})
	})
}

func (s *countingStore) last() (gets, puts int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gets, s.puts
}

type countingTx struct {
	cloud.Tx
	s *countingStore
}

func (t countingTx) Get(bucket, key string) []byte {
	if bucket == t.s.bucket {
		t.s.mu.Lock()
		t.s.gets++
		t.s.mu.Unlock()
	}
	return t.Tx.Get(bucket, key)
}

func (t countingTx) Put(bucket, key string, v []byte) error {
	if bucket == t.s.bucket {
		t.s.mu.Lock()
		t.s.puts++
		t.s.mu.Unlock()
	}
	return t.Tx.Put(bucket, key, v)
}

// An edge event reads and writes its site's record once, whatever its lifecycle effects
// (a delta bumps the desired version, a notice names the locker bank): the ingest path
// does not decode and encode the same record twice.
func TestEdgeEventTouchesItsSiteOnce(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "cloud.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cs := &countingStore{Store: db, bucket: "sites"}
	e := newEnv(t)
	e.svc = cloud.New(cloud.Options{Store: cs, Now: e.clock.Now, Desired: e.rec, Commands: e.rec, Notifier: e.rec})
	e.site("t1", nil, bank(2, []protocol.Zone{protocol.ZoneAmbient}, []protocol.Size{protocol.SizeS}))
	rc, err := e.svc.CreateOrder(e.ctx, e.plat, "k1", e.orderReq("t1", "a", ambientS))
	if err != nil {
		t.Fatal(err)
	}
	id, comp := rc.Order.ID, rc.Order.Slots[0].Compartment
	for _, ev := range []protocol.Event{
		{Kind: protocol.EventLoaded, Credential: protocol.CredDriver, Order: id, Compartment: comp},
		{Kind: protocol.EventCodeLockout, Credential: protocol.CredNone, Order: id},
		{Kind: protocol.EventExpiredRemoved, Credential: protocol.CredDriver, Order: id},
	} {
		e.mustEvent("t1", ev)
		if gets, puts := cs.last(); gets != 1 || puts != 1 {
			t.Errorf("%s: the site record was read %d and written %d times, want once each", ev.Kind, gets, puts)
		}
	}
	if o, _ := e.svc.GetOrder(e.ctx, e.ops, id); o.State != cloud.StateReturned {
		t.Fatalf("state %s, want returned", o.State)
	}
}

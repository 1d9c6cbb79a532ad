package pg_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/cloud/bolt"
	"github.com/larder-lockers/larder/cloud/pg"
	"github.com/larder-lockers/larder/protocol"
)

// TestCopyFromBolt fills a real bbolt store through the Service, copies it into
// PostgreSQL, checks the report and the copied fleet through a Service on the copy, and
// sees Verify catch a changed row and Copy refuse a non-empty destination.
func TestCopyFromBolt(t *testing.T) {
	ctx := context.Background()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "cloud.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	w := &world{t: t, ctx: ctx, clock: &clock{t: time.Now()}, seq: map[string]uint64{},
		admin: cloud.Principal{Role: cloud.RoleAdmin, Subject: "root"},
		plat:  cloud.Principal{Role: cloud.RolePlatform, Subject: "veggie"}}
	w.svc = cloud.New(cloud.Options{Store: db, Now: w.clock.Now})
	w.site("yard-a", 40)
	w.site("yard-b", 40)
	var ids []string
	for i := range 30 {
		id, comp := w.order([]string{"yard-a", "yard-b"}[i%2], fmt.Sprintf("o%d", i), protocol.ZoneAmbient)
		ids = append(ids, id)
		if i%3 == 0 {
			w.event([]string{"yard-a", "yard-b"}[i%2], protocol.Event{Kind: protocol.EventLoaded, Credential: protocol.CredDriver, Order: id, Compartment: comp})
		}
	}
	if _, err := w.svc.OpenCompartment(ctx, cloud.Principal{Role: cloud.RoleOps, Subject: "olga"}, "yard-a", 2, "stuck door"); err != nil {
		t.Fatal(err)
	}
	// A bucket larger than one copy batch: meta keys written directly.
	db.Update(ctx, func(tx cloud.Tx) error {
		for i := range 4500 {
			tx.Put("meta", fmt.Sprintf("filler/%05d", i), []byte("x"))
		}
		return nil
	})

	dst := open(t)
	rep, err := pg.Copy(ctx, db, dst)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, b := range rep.Buckets {
		counts[b.Name] = b.Keys
	}
	if counts["orders"] != len(ids) || counts["sites"] != 2 || counts["comps"] != 80 || counts["meta"] < 4500 || counts["audit"] == 0 {
		t.Fatalf("copied %v", counts)
	}
	t.Logf("copied %d keys in %v", rep.Keys, rep.Elapsed)

	// The copy serves: the Service over it finds the orders.
	svc := cloud.New(cloud.Options{Store: dst})
	for _, id := range ids {
		if _, err := svc.GetOrder(ctx, w.plat, id); err != nil {
			t.Fatalf("order %s on the copy: %v", id, err)
		}
	}

	if _, err := pg.Copy(ctx, db, dst); err == nil || !strings.Contains(err.Error(), "already holds") {
		t.Errorf("copy into a non-empty destination: %v", err)
	}
	if _, err := dst.Pool().Exec(ctx, "UPDATE larder_kv SET value = value || '\\x20'::bytea WHERE bucket = 'orders' AND key = $1", ids[3]); err != nil {
		t.Fatal(err)
	}
	if _, err := pg.Verify(ctx, db, dst); err == nil || !strings.Contains(err.Error(), "verify orders") {
		t.Errorf("verify of a changed copy: %v", err)
	}
}

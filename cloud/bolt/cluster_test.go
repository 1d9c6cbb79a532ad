package bolt_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bbolt "go.etcd.io/bbolt"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/cloud/bolt"
)

// clusteredBuckets are the per-site buckets the store keeps in site clusters
// (cluster.go); each must be one the domain declares.
var clusteredBuckets = []string{"comps", "free", "codes", "by_site", "live"}

func TestClusteredBucketsAreTheDomains(t *testing.T) {
	for _, b := range clusteredBuckets {
		if !slices.Contains(cloud.Buckets(), b) {
			t.Errorf("bucket %s is clustered but not in cloud.Buckets()", b)
		}
	}
}

// TestClusterScansAsSeparateBuckets writes the same random keys to every clustered
// bucket and to a plain one (meta) and checks that Scan and Range of every prefix and
// bound answer alike in both: the cluster's layout does not show.
func TestClusterScansAsSeparateBuckets(t *testing.T) {
	db := open(t, bolt.GroupCommit)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	// Sites whose ids are prefixes of one another and straddle '/' in byte order ('-' and
	// '_' sort around it, digits after).
	sites := []string{"a", "a-b", "a_b", "a0", "ab", "b", "bench-00001", "bench-00002", "z"}
	var keys []string
	for range 400 {
		keys = append(keys, fmt.Sprintf("%s/%05d", sites[rng.IntN(len(sites))], rng.IntN(1000)))
	}
	err := db.Update(ctx, func(tx cloud.Tx) error {
		for i, k := range keys {
			for _, b := range append([]string{"meta"}, clusteredBuckets...) {
				if err := tx.Put(b, k, []byte(b+fmt.Sprint(i))); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	collect := func(tx cloud.Tx, bucket string, scan func(cloud.Tx, string, func(string, []byte) bool) error) []string {
		var out []string
		if err := scan(tx, bucket, func(k string, v []byte) bool {
			out = append(out, k+"="+strings.TrimPrefix(string(v), bucket))
			return len(out) < 150
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	prefixes := []string{"", "a", "a/", "a-", "a0/", "b", "bench-0000", "bench-00002/", "bench-00002/004", "c", "z/9", "~"}
	check := func(name string, tx cloud.Tx) {
		for _, b := range clusteredBuckets {
			for _, p := range prefixes {
				scan := func(tx cloud.Tx, bucket string, fn func(string, []byte) bool) error { return tx.Scan(bucket, p, fn) }
				if diff := cmp.Diff(collect(tx, "meta", scan), collect(tx, b, scan)); diff != "" {
					t.Errorf("%s: Scan(%s, %q) differs from a plain bucket (-plain +clustered):\n%s", name, b, p, diff)
				}
				for _, to := range []string{"", "a0", "b/", "bench-00001/5", "~"} {
					rng := func(tx cloud.Tx, bucket string, fn func(string, []byte) bool) error {
						return tx.Range(bucket, p, to, fn)
					}
					if diff := cmp.Diff(collect(tx, "meta", rng), collect(tx, b, rng)); diff != "" {
						t.Errorf("%s: Range(%s, %q, %q) differs from a plain bucket (-plain +clustered):\n%s", name, b, p, to, diff)
					}
				}
			}
			for _, k := range keys[:20] {
				if got, want := string(tx.Get(b, k)), string(tx.Get("meta", k)); strings.TrimPrefix(got, b) != strings.TrimPrefix(want, "meta") {
					t.Errorf("%s: Get(%s, %q) = %q, want the plain bucket's %q", name, b, k, got, want)
				}
			}
		}
	}
	if err := db.View(ctx, func(tx cloud.Tx) error { check("view", tx); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := db.Update(ctx, func(tx cloud.Tx) error { check("update", tx); return nil }); err != nil {
		t.Fatal(err)
	}
	err = db.Update(ctx, func(tx cloud.Tx) error {
		for _, k := range keys[:100] {
			for _, b := range append([]string{"meta"}, clusteredBuckets...) {
				if err := tx.Delete(b, k); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.View(ctx, func(tx cloud.Tx) error { check("after deletes", tx); return nil }); err != nil {
		t.Fatal(err)
	}
}

// TestClusterScanOfAnEmptyTagStops: a scan of one site's keys of a bucket that holds
// none (a birth reads the live orders of a site with none) stops at the next site
// instead of skipping through the rest of the fleet, two seeks a site; it used to,
// which made a reconnect storm of 10,000 edges cost 10,000² seeks. Same-run ratio: the
// scan's best time over many sites against over one, where it took 10,000 × as long.
func TestClusterScanOfAnEmptyTagStops(t *testing.T) {
	best := func(sites int) time.Duration {
		db := open(t, bolt.GroupCommit)
		ctx := context.Background()
		err := db.Update(ctx, func(tx cloud.Tx) error {
			for i := range sites {
				if err := tx.Put("comps", fmt.Sprintf("site-%05d/1", i), []byte("c")); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		fastest := time.Hour
		for range 50 {
			err := db.View(ctx, func(tx cloud.Tx) error {
				start := time.Now()
				n := 0
				err := tx.Scan("live", "site-00000/", func(string, []byte) bool { n++; return true })
				fastest = min(fastest, time.Since(start))
				if n != 0 {
					t.Errorf("%d live keys, want none", n)
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		return fastest
	}
	one, many := best(1), best(10_000)
	t.Logf("scan of an empty tag at the first site: %s with 1 site, %s with 10,000", one, many)
	if many > 20*one+20*time.Microsecond {
		t.Errorf("scan with 10,000 sites took %s, %.0f × its time with one (%s): it walks the fleet", many, float64(many)/float64(one), one)
	}
}

func TestClusterRefusesKeysWithoutSite(t *testing.T) {
	db := open(t, bolt.GroupCommit)
	err := db.Update(context.Background(), func(tx cloud.Tx) error { return tx.Put("comps", "no-site", []byte("x")) })
	if err == nil || !strings.Contains(err.Error(), "does not start with a site") {
		t.Fatalf("Put of a key without a site: err %v", err)
	}
}

// TestOpenMovesSeparateBucketsIntoClusters opens a file written before site clusters
// (the per-site buckets as buckets of their own) and finds every record through the
// store, and the old buckets gone.
func TestOpenMovesSeparateBucketsIntoClusters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	raw, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]string{}
	err = raw.Update(func(tx *bbolt.Tx) error {
		for i, name := range clusteredBuckets {
			b, err := tx.CreateBucket([]byte(name))
			if err != nil {
				return err
			}
			want[name] = map[string]string{}
			for j := range 50 {
				k, v := fmt.Sprintf("site-%d/%05d", j%7, j), fmt.Sprint(i*100+j)
				want[name][k] = v
				if err := b.Put([]byte(k), []byte(v)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	raw.Close()

	db, err := bolt.Open(path, bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(context.Background(), func(tx cloud.Tx) error {
		for name, kv := range want {
			got := map[string]string{}
			tx.Scan(name, "", func(k string, v []byte) bool { got[k] = string(v); return true })
			if diff := cmp.Diff(kv, got); diff != "" {
				t.Errorf("bucket %s after the move (-want +got):\n%s", name, diff)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Bolt().View(func(tx *bbolt.Tx) error {
		for _, name := range clusteredBuckets {
			if tx.Bucket([]byte(name)) != nil {
				t.Errorf("bucket %s still exists after the move", name)
			}
		}
		return nil
	})
	if err := db.Check(); err != nil {
		t.Fatal(err)
	}
}

// TestOpenMovesTheFirstClusterLayout opens a file of the first cluster layout (by_site
// tagged 'o', after live) and finds a site's orders through the store in order, in the
// present layout, and nothing left under the old tag.
func TestOpenMovesTheFirstClusterLayout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "layout0.db")
	raw, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	err = raw.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucket([]byte("site_records"))
		if err != nil {
			return err
		}
		for j := range 40 {
			site := fmt.Sprintf("site-%d", j%3)
			id := fmt.Sprintf("ord_%03d", j)
			want[site+"/"+id] = ""
			for _, k := range []string{site + "/o" + id, site + "/l" + id, fmt.Sprintf("%s/c%05d", site, j)} {
				if err := b.Put([]byte(k), []byte{}); err != nil {
					return err
				}
			}
		}
		return nil // sequence 0: the first layout
	})
	if err != nil {
		t.Fatal(err)
	}
	raw.Close()

	db, err := bolt.Open(path, bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(context.Background(), func(tx cloud.Tx) error {
		got := map[string]string{}
		var keys []string
		tx.Scan("by_site", "", func(k string, v []byte) bool { got[k] = string(v); keys = append(keys, k); return true })
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("by_site after the move (-want +got):\n%s", diff)
		}
		if !slices.IsSorted(keys) {
			t.Errorf("by_site scans out of order: %v", keys)
		}
		n := 0
		tx.Scan("live", "site-1/", func(string, []byte) bool { n++; return true })
		if n != 13 {
			t.Errorf("live of site-1: %d keys, want 13", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Bolt().View(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte("site_records"))
		b.ForEach(func(k, _ []byte) error {
			if i := bytes.IndexByte(k, '/'); i >= 0 && k[i+1] == 'o' {
				t.Errorf("key %q still under the old tag", k)
			}
			return nil
		})
		if b.Sequence() != 1 {
			t.Errorf("layout %d, want 1", b.Sequence())
		}
		return nil
	})
	if err := db.Check(); err != nil {
		t.Fatal(err)
	}
}

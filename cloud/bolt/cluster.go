package bolt

import (
	"bytes"
	"fmt"
	"strings"

	bbolt "go.etcd.io/bbolt"
)

// Site clusters: the physical layout of the domain's per-site buckets.
//
// The domain keys several buckets by site first ("site/…"): compartments, the free
// index, live codes, and the indexes of a site's orders. Kept as separate bbolt buckets,
// an order at a random site dirties one random leaf page in each of them, and each such
// bucket costs a page per order only once it holds more pages than a commit has orders:
// the cost of an order grew with the orders stored (7.9 pages written per order with 1k
// stored, 10.9 with 100k). Stored here instead in one bucket, sorted by site and then by
// bucket, a site's records sit side by side, so an order's writes land on the few pages
// of its own site however many orders the others hold.
//
// Within a site, the tags put the index of every order the site ever had (by_site,
// which grows with the orders stored) right after the compartments and before the small
// indexes an order also writes (free, codes, live). A new order's id sorts last among
// the site's, so its by_site entry lands at the end of that index, on the page that also
// holds the free, code and live entries: the site's old orders fill pages no order
// writes again. With by_site last (its first layout), a site with a hundred stored
// orders had that index on pages of its own, which each order wrote too: with a million
// orders stored, 8.8 pages written per order in that layout and 8.3 in this one (6.4
// with a thousand).
//
// The logical key "site/rest" of clustered bucket b is stored as "site/" + tag(b) +
// "rest" in bucket clusterBucket. For one tag, physical order is logical order (site
// ids contain no '/', and the tag is the same byte), so a scan reads its own tag's keys
// in order and skips the others site by site (two seeks per site for a scan of every
// site; a scan of one site's keys is one seek, and it stops at the first site out of
// range even when that site has no key of the tag).

// clusterBucket holds the clustered buckets' records.
const clusterBucket = "site_records"

// clustered maps the domain's per-site buckets (cloud/store.go) to their one-byte tags.
// Every key of these buckets starts with a site id and '/'.
var clustered = map[string]byte{
	"comps":   'c',
	"by_site": 'd',
	"free":    'f',
	"codes":   'k',
	"live":    'l',
}

// clusterLayout is the layout of clusterBucket, kept as its bbolt sequence: 0 is the
// first layout (by_site tagged 'o', after live), 1 the present one. Open moves a file's
// records to the present layout once.
const clusterLayout = 1

// oldBySite is the tag of by_site in layout 0.
const oldBySite = 'o'

// clusterKey is the physical key of logical key in the bucket of tag, or false when
// key has no site.
func clusterKey(tag byte, key string) ([]byte, bool) {
	site, rest, ok := strings.Cut(key, "/")
	if !ok || site == "" {
		return nil, false
	}
	k := make([]byte, 0, len(key)+1)
	k = append(k, site...)
	k = append(k, '/', tag)
	return append(k, rest...), true
}

// splitCluster returns the site, tag and rest of physical key k.
func splitCluster(k []byte) (site []byte, tag byte, rest []byte, ok bool) {
	i := bytes.IndexByte(k, '/')
	if i <= 0 || i+1 >= len(k) {
		return nil, 0, nil, false
	}
	return k[:i], k[i+1], k[i+2:], true
}

// clusterScan calls fn with the logical key and value of each key of tag from logical
// key from on (from may be a partial site id, or ""), in order, while in(logical key)
// holds and fn returns true.
func clusterScan(b *bbolt.Bucket, tag byte, from string, in func([]byte) bool, fn func(k, v []byte) bool) {
	c := b.Cursor()
	var k, v []byte
	if pk, ok := clusterKey(tag, from); ok {
		k, v = c.Seek(pk)
	} else {
		// No site yet: physical and logical keys compare alike against a string without
		// '/' (they differ only after the site's '/').
		k, v = c.Seek([]byte(from))
	}
	var logical []byte
	for k != nil {
		site, t, rest, ok := splitCluster(k)
		switch {
		case !ok:
			k, v = c.Next() // not a cluster key (none is written; skip rather than stop)
		case t != tag && !in(siteFloor(&logical, site, from)):
			// No key of this site or a later one can be in range (in holds from the
			// first key on, then no more): stop here rather than skip the rest of the
			// fleet site by site, two seeks each, when the range holds no key of tag.
			return
		case t < tag:
			k, v = c.Seek(append(append(append([]byte(nil), site...), '/'), tag))
		case t > tag:
			k, v = c.Seek(append(append([]byte(nil), site...), '/', 0xff))
		default:
			logical = append(append(append(logical[:0], site...), '/'), rest...)
			if !in(logical) || !fn(logical, v) {
				return
			}
			k, v = c.Next()
		}
	}
}

// siteFloor is the least logical key of site the scan from from may reach: from itself
// within from's own site, else "site/". It is built in *buf.
func siteFloor(buf *[]byte, site []byte, from string) []byte {
	*buf = append(append((*buf)[:0], site...), '/')
	if bytes.Compare(*buf, []byte(from)) < 0 {
		*buf = append((*buf)[:0], from...)
	}
	return *buf
}

// migrateClusters moves the records of clustered buckets kept as separate buckets (a
// file written before site clusters) into clusterBucket and deletes those buckets, and
// moves the records of an older layout of clusterBucket to the present one
// (clusterLayout), in tx. It is a no-op on a file that has neither.
func migrateClusters(tx *bbolt.Tx) error {
	cl, err := tx.CreateBucketIfNotExists([]byte(clusterBucket))
	if err != nil {
		return err
	}
	for name, tag := range clustered {
		old := tx.Bucket([]byte(name))
		if old == nil {
			continue
		}
		err := old.ForEach(func(k, v []byte) error {
			pk, ok := clusterKey(tag, string(k))
			if !ok {
				return fmt.Errorf("bucket %s: key %q has no site", name, k)
			}
			return cl.Put(pk, append([]byte(nil), v...))
		})
		if err != nil {
			return fmt.Errorf("move bucket %s to %s: %w", name, clusterBucket, err)
		}
		if err := tx.DeleteBucket([]byte(name)); err != nil {
			return err
		}
	}
	if cl.Sequence() >= clusterLayout {
		return nil
	}
	// Layout 0 to 1: by_site's records move from tag 'o' to their present tag. The keys
	// are gathered first: a bbolt cursor is not valid across writes.
	var old [][]byte
	c := cl.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if _, t, _, ok := splitCluster(k); ok && t == oldBySite {
			old = append(old, append([]byte(nil), k...))
		}
	}
	for _, k := range old {
		v := append([]byte(nil), cl.Get(k)...)
		site, _, rest, _ := splitCluster(k)
		nk := append(append(append([]byte(nil), site...), '/', clustered["by_site"]), rest...)
		if err := cl.Delete(k); err != nil {
			return err
		}
		if err := cl.Put(nk, v); err != nil {
			return err
		}
	}
	return cl.SetSequence(clusterLayout)
}

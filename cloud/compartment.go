package cloud

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/larder-lockers/larder/protocol"

	"github.com/larder-lockers/larder/cloud/assign"
)

func compKey(site string, n int) string { return fmt.Sprintf("%s/%05d", site, n) }

// freeKey indexes a free compartment by zone, size and height, so that assignment reads
// keys only: site/zone/rank/low/number.
func freeKey(c Compartment) string {
	low := 0
	if c.HeightCM < assign.AccessibleMaxCM {
		low = 1
	}
	return fmt.Sprintf("%s/%s/%d/%d/%05d", c.Site, c.Zone, c.Size.Rank(), low, c.Number)
}

func getComp(tx Tx, site string, n int) (Compartment, bool, error) {
	var c Compartment
	ok, err := getJSON(tx, bComps, compKey(site, n), &c)
	return c, ok, err
}

// putComp writes c and keeps the free index true: old is c's previous record (nil for a
// new compartment).
func putComp(tx Tx, c Compartment, old *Compartment) error {
	if old != nil && old.free() {
		if err := tx.Delete(bFree, freeKey(*old)); err != nil {
			return err
		}
	}
	if c.free() {
		if err := tx.Put(bFree, freeKey(c), []byte{}); err != nil {
			return err
		}
	}
	return putJSON(tx, bComps, compKey(c.Site, c.Number), c)
}

// siteComps returns every compartment of a site, by number.
func siteComps(tx Tx, site string) ([]Compartment, error) {
	var out []Compartment
	var derr error
	err := tx.Scan(bComps, site+"/", func(_ string, v []byte) bool {
		var c Compartment
		if derr = json.Unmarshal(v, &c); derr != nil {
			return false
		}
		out = append(out, c)
		return true
	})
	if err == nil {
		err = derr
	}
	return out, err
}

// freeCandidates reads the free index of a site: for each zone needed, at most need[zone]
// compartments of each size and height class, in the policy's preference order (the
// keys sort by size, then high before low, then door number). That is all a plan can
// use. Each zone is one scan of its part of the index (one seek, not one per class).
func freeCandidates(tx Tx, site string, need map[string]int, accessible bool) ([]assign.Candidate, error) {
	var out []assign.Candidate
	for z, n := range need {
		prefix := site + "/" + z + "/"
		var taken [4][2]int // by rank, low
		err := tx.Scan(bFree, prefix, func(k string, _ []byte) bool {
			rank, low, num, ok := parseFreeKey(strings.TrimPrefix(k, prefix))
			if !ok || accessible && low == 0 || taken[rank][low] >= n {
				return true
			}
			taken[rank][low]++
			out = append(out, assign.Candidate{Number: num, Size: sizeOfRank(rank), Zone: protocol.Zone(z), Low: low == 1})
			return true
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// parseFreeKey parses the rank/low/number tail of a free key (freeKey).
func parseFreeKey(tail string) (rank, low, num int, ok bool) {
	if len(tail) < 5 || tail[1] != '/' || tail[3] != '/' {
		return 0, 0, 0, false
	}
	rank, low = int(tail[0]-'0'), int(tail[2]-'0')
	num, err := strconv.Atoi(tail[4:])
	if err != nil || rank < 1 || rank > 3 || low < 0 || low > 1 {
		return 0, 0, 0, false
	}
	return rank, low, num, true
}

func sizeOfRank(r int) protocol.Size {
	switch r {
	case 1:
		return protocol.SizeS
	case 2:
		return protocol.SizeM
	case 3:
		return protocol.SizeL
	}
	return ""
}

// bindCompartment reserves free compartment n of site for order, bumping its generation
// (the fencing token the edge checks, so that an old code never opens it again).
func bindCompartment(tx Tx, site string, n int, order string) (Compartment, error) {
	c, ok, err := getComp(tx, site, n)
	if err != nil {
		return Compartment{}, err
	}
	if !ok || !c.free() {
		// The free index said otherwise: a broken invariant, never hand it out.
		return Compartment{}, Errorf(EInternal, "free index of site %s lists compartment %d, which is not free", site, n)
	}
	old := c
	c.Generation++
	c.Order = order
	c.Occupied = false
	return c, putComp(tx, c, &old)
}

// releaseCompartments frees the compartments o still holds.
func releaseCompartments(tx Tx, o *Order) error {
	for _, sl := range o.Slots {
		c, ok, err := getComp(tx, o.Site, sl.Compartment)
		if err != nil {
			return err
		}
		if !ok || c.Order != o.ID {
			continue
		}
		old := c
		c.Order, c.Occupied = "", false
		if err := putComp(tx, c, &old); err != nil {
			return err
		}
	}
	return nil
}

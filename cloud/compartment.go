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

// freeCandidates reads the free index of a site for the zones asked.
func freeCandidates(tx Tx, site string, zones map[string]bool) ([]assign.Candidate, error) {
	var out []assign.Candidate
	for z := range zones {
		prefix := site + "/" + z + "/"
		err := tx.Scan(bFree, prefix, func(k string, _ []byte) bool {
			// rank/low/number, parsed by hand: this runs for every order in the committer.
			rest := strings.TrimPrefix(k, prefix)
			if len(rest) < 5 || rest[1] != '/' || rest[3] != '/' {
				return true
			}
			n, err := strconv.Atoi(rest[4:])
			if err != nil {
				return true
			}
			out = append(out, assign.Candidate{Number: n, Size: sizeOfRank(int(rest[0] - '0')), Zone: protocol.Zone(z), Low: rest[2] == '1'})
			return true
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
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

package assign

import (
	"errors"
	"fmt"
	"sort"

	"github.com/larder-lockers/larder/protocol"
)

// AccessibleMaxCM is the highest compartment floor (above the ground) an order flagged
// accessible may go into.
const AccessibleMaxCM = 120

// Units is how many parcel units a compartment of size s holds, and how many units a
// parcel of size s takes: S=1, M=2, L=4. A compartment holds parcels whose sizes are at
// most its own and whose units sum to at most its own units (two M parcels fill an L; an
// M and two S too).
func Units(s protocol.Size) int {
	switch s {
	case protocol.SizeS:
		return 1
	case protocol.SizeM:
		return 2
	case protocol.SizeL:
		return 4
	}
	return 0
}

// Parcel is one item of an order.
type Parcel struct {
	Size protocol.Size
	Zone protocol.Zone
}

// Candidate is a free, in-service compartment that could take parcels.
type Candidate struct {
	Number int
	Size   protocol.Size
	Zone   protocol.Zone
	// Low is true for compartments whose floor is below AccessibleMaxCM.
	Low bool
}

// Pick is one compartment chosen for an order, with the indexes of the parcels it holds.
type Pick struct {
	Compartment int
	Size        protocol.Size
	Zone        protocol.Zone
	Parcels     []int
}

// ErrNoFit means the candidates cannot hold the order.
var ErrNoFit = errors.New("assign: no fit")

// Plan chooses compartments for parcels among candidates, or returns ErrNoFit.
//
// The policy, in one place:
//   - each parcel goes into a compartment of its own zone whose size is at least its own;
//   - parcels of one zone share a compartment when they fit (units, see Units), so an
//     order takes as few compartments as it can;
//   - a new compartment is the best fit: the smallest size that takes the parcel; among
//     equals, for an order that is not accessible, a high compartment first (low ones
//     are kept for residents who need them), then the lowest door number;
//   - an accessible order uses only Low compartments;
//   - parcels are placed largest first (first-fit decreasing).
//
// Plan never picks a compartment twice, and candidates must already exclude compartments
// with a live reservation: "never two live reservations in one compartment" is enforced
// by the caller's index of free compartments, and checked again by the caller.
func Plan(parcels []Parcel, accessible bool, candidates []Candidate) ([]Pick, error) {
	if len(parcels) == 0 {
		return nil, fmt.Errorf("assign: no parcels")
	}
	cands := make([]Candidate, 0, len(candidates))
	for _, c := range candidates {
		if accessible && !c.Low {
			continue
		}
		cands = append(cands, c)
	}
	sort.SliceStable(cands, func(i, j int) bool {
		a, b := cands[i], cands[j]
		if a.Size.Rank() != b.Size.Rank() {
			return a.Size.Rank() < b.Size.Rank()
		}
		if !accessible && a.Low != b.Low {
			return !a.Low
		}
		return a.Number < b.Number
	})
	order := make([]int, len(parcels))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool {
		return parcels[order[i]].Size.Rank() > parcels[order[j]].Size.Rank()
	})
	used := make([]bool, len(cands))
	var picks []Pick
	var left []int // free units of picks[i]
	for _, pi := range order {
		p := parcels[pi]
		u := Units(p.Size)
		if u == 0 || !p.Zone.Valid() {
			return nil, fmt.Errorf("assign: parcel %d: bad size or zone", pi)
		}
		placed := false
		for i := range picks {
			if picks[i].Zone == p.Zone && picks[i].Size.Rank() >= p.Size.Rank() && left[i] >= u {
				picks[i].Parcels = append(picks[i].Parcels, pi)
				left[i] -= u
				placed = true
				break
			}
		}
		if placed {
			continue
		}
		for i, c := range cands {
			if used[i] || c.Zone != p.Zone || c.Size.Rank() < p.Size.Rank() {
				continue
			}
			used[i] = true
			picks = append(picks, Pick{Compartment: c.Number, Size: c.Size, Zone: c.Zone, Parcels: []int{pi}})
			left = append(left, Units(c.Size)-u)
			placed = true
			break
		}
		if !placed {
			return nil, ErrNoFit
		}
	}
	sort.Slice(picks, func(i, j int) bool { return picks[i].Compartment < picks[j].Compartment })
	for i := range picks {
		sort.Ints(picks[i].Parcels)
	}
	return picks, nil
}
